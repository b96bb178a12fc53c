"""`hookyard dev` / `make run`: the whole service on embedded defaults, one Ctrl-C away.

Uses `./hookyard.toml` or `HOOKYARD_CONFIG` when present; otherwise writes
`var/dev.toml` with a `gxm` source, a random secret and an admin API key
(kept across runs). Starts a private Redis unless `HOOKYARD_REDIS_URL` is set,
migrates the SQLite database under `var/`, then runs the API and a worker.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path

from schemas.presets import PRESETS, Preset
from schemas.settings import CONFIG_ENV, DEFAULT_CONFIG_PATH, Settings, load_settings
from schemas.signatures import scheme_for
from service.cli._common import Subparsers, positive
from service.embedded_redis import EmbeddedRedis

VAR = Path("var")


def add_command(commands: Subparsers) -> None:
    dev = commands.add_parser("dev", help="everything on embedded defaults in one process group")
    dev.add_argument("--port", type=int, default=8000)
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

[log]
format = "console"
"""
    )
    path.chmod(0o600)
    return path


def _preset_examples() -> str:
    """A commented `[[sources]]` block per vendor preset (uncomment one, export its secret, restart)."""
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


def run_dev(port: int, processes: int) -> int:
    env = dict(os.environ)
    if CONFIG_ENV not in env and not Path(DEFAULT_CONFIG_PATH).exists():
        env[CONFIG_ENV] = str(_dev_config(port))
    embedded: EmbeddedRedis | None = None
    if "HOOKYARD_REDIS_URL" not in env:
        embedded = EmbeddedRedis(VAR / "redis").start()
        env["HOOKYARD_REDIS_URL"] = embedded.url
    settings = load_settings(env)
    hookyard = [sys.executable, "-m", "service.cli"]
    children: list[subprocess.Popen[bytes]] = []
    try:
        subprocess.run([*hookyard, "migrate"], env=env, check=True)
        children.append(subprocess.Popen([*hookyard, "serve"], env=env))
        children.append(subprocess.Popen([*hookyard, "worker", "--processes", str(processes)], env=env))
        _print_welcome(settings, env)
        while all(child.poll() is None for child in children):
            time.sleep(0.5)
        print("hookyard dev: a process exited; stopping the rest", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("\nhookyard dev: stopping", file=sys.stderr)
        return 0
    except subprocess.CalledProcessError as exc:
        print(f"hookyard dev: {shlex.join(map(str, exc.cmd))} failed", file=sys.stderr)
        return 1
    finally:
        for child in children:
            if child.poll() is None:
                child.send_signal(signal.SIGTERM)
        for child in children:
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
        if embedded is not None:
            embedded.stop()


def _print_welcome(settings: Settings, env: dict[str, str]) -> None:
    base = f"http://{settings.server.host}:{settings.server.port}"
    config = env.get(CONFIG_ENV, DEFAULT_CONFIG_PATH)
    lines = [f"hookyard is starting on {base} (config: {config}, Redis: {env['HOOKYARD_REDIS_URL']})"]
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
