"""The overview's chart: events and failed events per minute over 24 hours, as inline SVG path data.

No script and no style attribute (the CSP allows neither inline): the page
draws two `<path>`s from these coordinates and the stylesheet colours them.
Each hour also gets a transparent band whose `<title>` gives its totals on
hover.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from workers.ops.stats import MinuteCounts

WIDTH = 1440
"""SVG units across: one a minute over 24 hours."""
HEIGHT = 240
PLOT = 200
"""Height of the plotting area; the rest holds the hour labels."""
TICK_HOURS = 3


@dataclass(frozen=True)
class HourBand:
    x: float
    width: float
    label: str
    events: int
    failed: int


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    plot: int
    events_path: str
    failed_path: str
    peak: int
    """Most events in one minute: the top of the scale."""
    total_events: int
    total_failed: int
    ticks: list[tuple[float, str]]
    hours: list[HourBand]


def _area(values: Sequence[int], peak: int, step: float) -> str:
    """A closed area under `values`, one step per minute."""
    if not values:
        return ""
    points = [f"M0 {PLOT}"]
    for i, value in enumerate(values):
        y = PLOT - (value / peak) * (PLOT - 4) if peak else PLOT
        points.append(f"L{i * step:.1f} {y:.1f}L{(i + 1) * step:.1f} {y:.1f}")
    points.append(f"L{len(values) * step:.1f} {PLOT}Z")
    return "".join(points)


def minute_chart(series: Sequence[MinuteCounts]) -> Chart:
    events = [point.events for point in series]
    failed = [point.failed for point in series]
    peak = max(events, default=0)
    step = WIDTH / max(len(series), 1)
    ticks = [
        (i * step, point.minute.strftime("%H:%M"))
        for i, point in enumerate(series)
        if point.minute.minute == 0 and point.minute.hour % TICK_HOURS == 0
    ]
    hours: list[HourBand] = []
    for i, point in enumerate(series):
        if i == 0 or point.minute.minute == 0:
            hours.append(HourBand(i * step, 0.0, point.minute.strftime("%H:00"), 0, 0))
        band = hours[-1]
        hours[-1] = HourBand(
            band.x, band.width + step, band.label, band.events + point.events, band.failed + point.failed
        )
    return Chart(
        width=WIDTH,
        height=HEIGHT,
        plot=PLOT,
        events_path=_area(events, peak, step),
        failed_path=_area(failed, peak, step),
        peak=peak,
        total_events=sum(events),
        total_failed=sum(failed),
        ticks=ticks,
        hours=hours,
    )
