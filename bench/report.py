"""The one table a run prints, the machine it ran on, and the JSON it leaves in `bench/results/`."""

from __future__ import annotations

import math
import os
import platform
import statistics
import time
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

import msgspec

RESULTS = Path(__file__).resolve().parent / "results"
LIBRARIES = ("uvicorn", "uvloop", "httptools", "litestar", "msgspec", "redis", "rq", "sqlalchemy", "psycopg")


class Row(msgspec.Struct, kw_only=True):
    """One target: what was measured, against what, and whether it meets its goal."""

    section: str
    target: str
    measured: float | None
    unit: str
    reference: float | None = None
    reference_name: str = ""
    reference_unit: str | None = None
    """When the reference counts something else (RQ jobs/s against events/s)."""
    ratio: float | None = None
    goal: str = ""
    passed: bool | None = None
    """None: not measured (skipped), with the reason in `note`."""
    note: str = ""


def at_least(value: float | None, goal: float) -> bool | None:
    return None if value is None else value >= goal


def at_most(value: float | None, goal: float) -> bool | None:
    return None if value is None else value <= goal


def page_rows(
    section: str,
    targets: tuple[str, str],
    first: float,
    deep: float,
    *,
    first_goal_ms: float,
    deep_goal: float,
    note: str = "",
) -> list[Row]:
    """The two rows of a keyset list: page 1's p50 against its goal, a deep page's p50 against page 1's."""
    ratio = deep / first if first else None
    return [
        Row(
            section=section,
            target=targets[0],
            measured=first,
            unit="ms",
            goal=f"<= {first_goal_ms:g} ms",
            passed=at_most(first, first_goal_ms),
            note=note,
        ),
        Row(
            section=section,
            target=targets[1],
            measured=deep,
            unit="ms",
            reference=first,
            reference_name="page 1",
            ratio=ratio,
            goal=f"<= {deep_goal}x",
            passed=at_most(ratio, deep_goal),
        ),
    ]


def median(values: list[float]) -> float:
    return float(statistics.median(values)) if values else float("nan")


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile, as load tools report it."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    rank = max(1, math.ceil(pct / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def machine(extra: dict[str, str]) -> dict[str, str]:
    model = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    info = {
        "cores": str(os.cpu_count()),
        "cpu": model,
        "os": f"{platform.system()} {platform.release()}",
        "python": platform.python_version(),
        "load_avg_at_start": " ".join(f"{v:.2f}" for v in os.getloadavg()),
    }
    for name in LIBRARIES:
        try:
            info[name] = version(name)
        except PackageNotFoundError:
            continue
    info.update(extra)
    return info


def _fmt(value: float | None, unit: str = "") -> str:
    if value is None or value != value:
        return "-"
    if unit == "x":
        return f"{value:.2f}x"
    text = f"{value:,.0f}" if abs(value) >= 100 else f"{value:.2f}" if abs(value) < 10 else f"{value:.1f}"
    return f"{text} {unit}".strip()


def render(rows: list[Row], info: dict[str, str], settings: dict[str, Any]) -> str:
    header = ("target", "measured", "reference", "ratio", "goal", "result")
    body = []
    for row in rows:
        result = "skipped" if row.passed is None else "PASS" if row.passed else "FAIL"
        unit = row.unit if row.reference_unit is None else row.reference_unit
        reference = f"{_fmt(row.reference, unit)} {row.reference_name}".strip() if row.reference_name else "-"
        body.append((row.target, _fmt(row.measured, row.unit), reference, _fmt(row.ratio, "x"), row.goal, result))
    widths = [max(len(str(line[i])) for line in [header, *body]) for i in range(len(header))]

    def line(cells: tuple[str, ...]) -> str:
        return "| " + " | ".join(str(c).ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"

    out = [line(header), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
    out += [line(cells) for cells in body]
    notes = [f"- {row.target}: {row.note}" for row in rows if row.note]
    machine_line = ", ".join(f"{k} {v}" for k, v in info.items())
    settings_line = ", ".join(f"{k}={v}" for k, v in settings.items())
    return "\n".join([*out, "", "Notes:", *notes, "", f"Machine: {machine_line}", f"Run: {settings_line}"])


def save(rows: list[Row], info: dict[str, str], settings: dict[str, Any], raw: dict[str, Any]) -> Path:
    RESULTS.mkdir(exist_ok=True)
    path = RESULTS / time.strftime("bench-%Y%m%d-%H%M%S.json")
    document = {"machine": info, "settings": settings, "rows": rows, "raw": raw}
    path.write_bytes(msgspec.json.format(msgspec.json.encode(document), indent=2))
    return path
