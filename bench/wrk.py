"""Run `wrk` with the reference kit's `gxm_post.lua` (or our `vendor_post.lua`) and read its `WRKSUMMARY` line."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import msgspec

from bench.procs import ROOT, SHARED

VENDOR_SCRIPT = ROOT / "bench" / "vendor_post.lua"
"""Signs each ~1 KiB body as Stripe or Standard Webhooks do (env VENDOR, HMAC_KEY)."""


class WrkResult(msgspec.Struct):
    requests: int
    rps: float
    p50_ms: float
    p99_ms: float
    max_ms: float
    errors: int
    """Non-2xx/3xx answers plus socket errors: must stay 0 for a run to count."""


def ensure_wrk() -> str:
    """Find wrk; as root on Debian install it, otherwise say how."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: wrk not found, installing it (apt-get install -y wrk)", file=sys.stderr)
        subprocess.run(["apt-get", "update", "-qq"], check=False)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
        if found:
            return found
    raise SystemExit("bench: wrk is missing; install it with `sudo apt-get install wrk` (Debian/Ubuntu)")


def run_wrk(
    url: str,
    connections: int,
    seconds: float,
    timeout_s: int = 5,
    script: str | None = None,
    env: dict[str, str] | None = None,
) -> WrkResult:
    argv = [
        ensure_wrk(),
        "-t1",
        f"-c{connections}",
        f"-d{max(1, round(seconds))}s",
        f"--timeout={timeout_s}s",
        "--latency",
        "-s",
        script or str(SHARED / "gxm_post.lua"),
        url,
    ]
    environ = {**os.environ, **(env or {})}
    done = subprocess.run(argv, capture_output=True, text=True, timeout=seconds + 60, check=False, env=environ)
    for line in done.stdout.splitlines():
        if line.startswith("WRKSUMMARY"):
            fields = dict(part.split("=", 1) for part in line.split()[1:])
            errors = sum(int(fields[k]) for k in ("non2xx3xx", "err_connect", "err_read", "err_write", "err_timeout"))
            return WrkResult(
                requests=int(fields["requests"]),
                rps=float(fields["rps"]),
                p50_ms=float(fields["p50_ms"]),
                p99_ms=float(fields["p99_ms"]),
                max_ms=float(fields["max_ms"]),
                errors=errors,
            )
    raise RuntimeError(f"wrk printed no WRKSUMMARY line: {done.stderr.strip()[-300:] or done.stdout[-300:]}")
