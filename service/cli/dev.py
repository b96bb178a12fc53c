"""`hookyard dev` / `make run`: the whole service on embedded defaults, one Ctrl-C away.

Uses `./hookyard.toml` or `HOOKYARD_CONFIG` when present; otherwise writes
`var/dev.toml` with a `gxm` source, a random secret and an admin API key
(kept across runs). Starts a private Redis unless `HOOKYARD_REDIS_URL` is set,
migrates the SQLite database under `var/`, then runs the API and a worker and
prints how to send a first event once `/health/ready` answers.

Ctrl-C in a terminal sends SIGINT to the whole foreground process group. The
children therefore run in process groups of their own (and die with this
process if it is killed), and only this process sees the Ctrl-C: it stops
them in order — workers first (their Redis is still there), then the API,
then Redis — and says goodbye in one line. A second Ctrl-C kills what is left.
"""

from __future__ import annotations

import argparse
import base64
import contextlib
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING

from service.cli._common import Subparsers, add_parser, positive

if TYPE_CHECKING:
    from schemas.presets import Preset
    from schemas.settings import Settings
    from service.embedded_redis import EmbeddedRedis

VAR = Path("var")
READY_TIMEOUT_SECONDS = 60.0
"""How long the API gets to answer `/health/ready` before `hookyard dev` gives up."""
STOP_TIMEOUT_SECONDS = 30.0
"""How long each child gets after SIGTERM before it is killed."""


def add_command(commands: Subparsers) -> None:
    dev = add_parser(
        commands,
        "dev",
        summary="everything on embedded defaults in one process group",
        description="Start a private Redis (unless HOOKYARD_REDIS_URL is set), migrate var/hookyard.db, run "
        "the API and a worker, and print how to send an event once the API is ready. Writes var/dev.toml "
        "unless HOOKYARD_CONFIG or ./hookyard.toml names a configuration. Ctrl-C stops everything.",
        examples=["hookyard dev", "make run", "hookyard dev --port 8080 --processes 2"],
    )
    dev.add_argument("--port", type=int, default=8000, help="API port written into a new var/dev.toml")
    dev.add_argument("--processes", type=positive, default=1, help="worker processes")
    dev.set_defaults(func=run, no_settings=True)


def run(args: argparse.Namespace, _settings: Settings) -> int:
    return run_dev(port=args.port, processes=args.processes)


def _dev_config(port: int) -> Path:
    path = VAR / "dev.toml"
    if path.exists():
        return path
    VAR.mkdir(exist_ok=True)
    secret = secrets.token_hex(16)
    api_key = secrets.token_hex(16)
    path.write_text(
        f"""# Written by `hookyard dev`; edit freely, delete to start over.
[server]
port = {port}

[database]
url = "sqlite:///var/hookyard.db"

[[sources]]
name = "gxm"
scheme = "gxm-sha256"
secrets = ["{secret}"]

[[api_keys]]
name = "dev-admin"
key = "{api_key}"
role = "admin"

{_preset_examples()}
[handlers]
modules = ["workers.builtin", "workers.demo"]
retry_base_seconds = 1.0

# [[forwards]]                         # POST each matching event, signed, to a URL (docs/handlers.md)
# name = "billing"
# actions = ["INVOICE:*"]               # "HOOKYARD:DELIVERY:DEAD": an alert for every dead delivery
# url = "http://127.0.0.1:9000/hooks"
# secret = "whsec_{_forward_secret()}"
# allow_hosts = ["127.0.0.1"]           # a local receiver: exempt from the private-address guard

[log]
format = "console"
"""
    )
    path.chmod(0o600)
    return path


def _forward_secret() -> str:
    """A fresh Standard Webhooks key (base64) for the commented `[[forwards]]` example."""
    return base64.b64encode(secrets.token_bytes(24)).decode()


def _preset_examples() -> str:
    """A commented `[[sources]]` block per vendor preset (uncomment one, export its secret, restart)."""
    from schemas.presets import PRESETS  # noqa: PLC0415 - commands import the stack when they run

    blocks = [_example(preset) for name, preset in sorted(PRESETS.items()) if name != "gxm"]
    return "\n".join(blocks)


def _example(preset: Preset) -> str:
    action = "[" + ", ".join(f'"{text}"' for text in preset.action) + "]"
    filled = [("scheme", preset.scheme), ("format", preset.format), ("action", action)]
    filled += [("event_id", preset.event_id), ("sent_at", preset.sent_at)]
    lines = [
        f"# [[sources]]                          # POST /webhooks/{preset.name}",
        f'# name = "{preset.name}"',
        f'# preset = "{preset.name}"',
        f'# secrets = ["env:{preset.env_name}"]',
        "# # what the preset fills in (set any of them to override it):",
    ]
    lines += [
        f"# # {key} = {value if key == 'action' else chr(34) + value + chr(34)}" for key, value in filled if value
    ]
    return "\n".join(lines) + "\n"


class _Stop(Exception):
    """Ctrl-C (SIGINT) or SIGTERM reached `hookyard dev`."""


def _own_group_dying_with_parent() -> None:
    """In the child, before exec: its own process group (the terminal's Ctrl-C is not for it),
    and SIGTERM from the kernel if `hookyard dev` dies without stopping it (Linux)."""
    os.setpgrp()
    try:
        import ctypes  # noqa: PLC0415 - only in the forked child

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


def _start(argv: list[str], env: dict[str, str]) -> subprocess.Popen[bytes]:
    return subprocess.Popen(argv, env=env, preexec_fn=_own_group_dying_with_parent)


def run_dev(port: int, processes: int) -> int:
    from schemas.settings import CONFIG_ENV, DEFAULT_CONFIG_PATH, load_settings  # noqa: PLC0415
    from service.embedded_redis import EmbeddedRedis, NoRedisServer  # noqa: PLC0415

    def stop(signum: int, _frame: FrameType | None) -> None:
        raise _Stop(signum)

    signal.signal(signal.SIGINT, stop)
    signal.signal(signal.SIGTERM, stop)
    env = dict(os.environ)
    if CONFIG_ENV not in env and not Path(DEFAULT_CONFIG_PATH).exists():
        env[CONFIG_ENV] = str(_dev_config(port))
    embedded: EmbeddedRedis | None = None
    workers: subprocess.Popen[bytes] | None = None
    api: subprocess.Popen[bytes] | None = None
    hookyard = [sys.executable, "-m", "service.cli"]
    try:
        if "HOOKYARD_REDIS_URL" not in env:
            embedded = EmbeddedRedis(VAR / "redis").start()
            env["HOOKYARD_REDIS_URL"] = embedded.url
        settings = load_settings(env)
        migrate = _start([*hookyard, "migrate"], env)
        if migrate.wait() != 0:
            print(f"hookyard dev: {shlex.join([*hookyard[-2:], 'migrate'])} failed", file=sys.stderr)
            return 1
        api = _start([*hookyard, "serve"], env)
        workers = _start([*hookyard, "worker", "--processes", str(processes)], env)
        if not _wait_ready(settings, {"API": api, "worker": workers}):
            return 1
        _print_welcome(settings, env)
        while True:
            for name, child in (("API", api), ("worker", workers)):
                if child.poll() is not None:
                    print(f"hookyard dev: the {name} exited ({child.returncode}); stopping the rest", file=sys.stderr)
                    return 1
            time.sleep(0.5)
    except _Stop:
        return 0
    except NoRedisServer as exc:
        print(f"hookyard dev: {exc}", file=sys.stderr)
        return 1
    finally:
        signal.signal(signal.SIGINT, _kill_rest)  # a second Ctrl-C: no more waiting
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        stopped = [name for name, child in (("workers", workers), ("API", api)) if _stop_child(child)]
        if embedded is not None:
            embedded.stop()
            stopped.append("Redis")
        if stopped:
            print(f"hookyard dev: stopped {', '.join(stopped)}. Bye.", file=sys.stderr, flush=True)


def _stop_child(child: subprocess.Popen[bytes] | None) -> bool:
    """SIGTERM, then wait (a worker finishes its handler), then SIGKILL. True if it was running."""
    if child is None:
        return False
    if child.poll() is None:
        child.send_signal(signal.SIGTERM)
    try:
        child.wait(timeout=STOP_TIMEOUT_SECONDS)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()
    return True


def _kill_rest(_signum: int, _frame: FrameType | None) -> None:
    """Second Ctrl-C while stopping: SIGKILL the children's process groups (each child leads its own)."""
    for pid in _children_pids():
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pid, signal.SIGKILL)


def _children_pids() -> list[int]:
    try:
        with open(f"/proc/{os.getpid()}/task/{os.getpid()}/children") as children:
            return [int(pid) for pid in children.read().split()]
    except OSError:
        return []


def _base_url(settings: Settings) -> str:
    host = settings.server.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - bound everywhere: ask over loopback
        host = "127.0.0.1"
    return f"http://{host}:{settings.server.port}"


def _wait_ready(settings: Settings, children: dict[str, subprocess.Popen[bytes]]) -> bool:
    """Wait until `/health/ready` answers 200; False (with one line) if a child died or time ran out."""
    import urllib.error  # noqa: PLC0415 - commands import what they need when they run
    import urllib.request  # noqa: PLC0415

    url = _base_url(settings) + "/health/ready"
    deadline = time.monotonic() + READY_TIMEOUT_SECONDS
    while time.monotonic() < deadline:
        for name, child in children.items():
            if child.poll() is not None:
                print(f"hookyard dev: the {name} exited ({child.returncode}) while starting", file=sys.stderr)
                return False
        try:
            with urllib.request.urlopen(url, timeout=2) as response:  # noqa: S310 - our own server
                if response.status == 200:
                    return True
        except (urllib.error.URLError, OSError):
            pass
        time.sleep(0.2)
    print(f"hookyard dev: {url} did not answer within {READY_TIMEOUT_SECONDS:.0f} s", file=sys.stderr)
    return False


def _print_welcome(settings: Settings, env: dict[str, str]) -> None:
    from schemas.settings import CONFIG_ENV, DEFAULT_CONFIG_PATH  # noqa: PLC0415
    from schemas.signatures import scheme_for  # noqa: PLC0415

    base = _base_url(settings)
    config = env.get(CONFIG_ENV, DEFAULT_CONFIG_PATH)
    lines = [f"hookyard is ready on {base} (config: {config}, Redis: {env['HOOKYARD_REDIS_URL']})"]
    if settings.sources:
        source = settings.sources[0]
        signed = scheme_for(source.scheme, source.secrets).sign(source.secrets[0], b"")
        header, value = next(iter(signed.items()))
        payload = '"action":"LOCATION:CREATED","payload":{"company_id":1}},"meta":{},"warnings":{}}'
        body = '\'{"data":{"sent_at":\'"$(date +%s)"\',' + payload + "'"
        lines += [
            "Send a first event:",
            f"  HOOKYARD_CONFIG={config} .venv/bin/hookyard send --source {source.name} "
            "--action LOCATION:CREATED --payload '{\"company_id\": 1}'",
            "or with curl:",
            f"  curl -i -X POST {base}/webhooks/{source.name} -H 'Content-Type: application/json' "
            f"-H '{header}: {value}' -d {body}",
        ]
    if settings.api_keys:
        generated = config == str(VAR / "dev.toml")
        key = settings.api_keys[0].key if generated and settings.api_keys[0].key else "<your API key>"
        lines += [
            "Read what was stored:",
            f"  curl -s -H 'X-API-Key: {key}' '{base}/v1/events?select=payload'",
        ]
        if settings.console.enabled:
            lines += [f"Open the console: {base}/ui/ and sign in with the API key {key}"]
            if "workers.demo" in settings.handlers.modules and settings.sources:
                lines += [
                    "Make a dead letter to replay from the console (the demo-flaky handler fails it once):",
                    f"  HOOKYARD_CONFIG={config} .venv/bin/hookyard send --source {settings.sources[0].name} "
                    "--action LOCATION:CREATED --payload '{\"fail\": true}'",
                ]
    lines.append("Ctrl-C stops everything.")
    print("\n".join(lines), flush=True)
