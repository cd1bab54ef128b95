"""Geometry of the HTML timeline chart: stages as bars against the 1-5-10 budget marks.

Pure arithmetic on the document, so the template only draws.  The x axis is
seconds from T0, scaled to the incident itself (its events and stages), not
to the budgets: a 3-second drill fills the width instead of being a sliver
on an 11-minute axis.  A budget within twice the incident's extent widens the
axis to show it; a budget further away is drawn at the right edge as an
off-scale mark ("→ 10 min"), so the budgets are always on the chart.  Each stage is a bar from T0 to the moment it was reached
(or, never reached, to where the incident stopped), one budget mark per stage
at the incident's actual budget, and the timeline's events as ticks below.
Ticks that fall on the same pixel are merged into one (with a count), which
keeps the SVG small and linear for incidents with tens of thousands of events.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.domain.export import timefmt

WIDTH = 1000
LEFT = 150
RIGHT = 24
TOP = 34
ROW = 30
BAR = 18
TICK_ROW = 34
AXIS = 28
GRID_STEPS = (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600, 7200, 10800, 21600, 43200, 86400)
STAGE_EVENT_KINDS = ("incident.", "state.", "cause", "slo.")


@dataclass(frozen=True)
class Bar:
    stage: str
    label: str
    verdict: str
    x: float
    y: float
    width: float
    height: float
    title: str


@dataclass(frozen=True)
class Mark:
    stage: str
    x: float
    y1: float
    y2: float
    label: str
    title: str
    off_scale: bool = False  # the budget lies beyond the axis: drawn at the right edge with an arrow
    label_y: float = 0.0


@dataclass(frozen=True)
class Tick:
    x: float
    y1: float
    y2: float
    count: int
    emphasis: bool
    title: str


@dataclass(frozen=True)
class GridLine:
    x: float
    label: str


@dataclass(frozen=True)
class Chart:
    width: int
    height: int
    left: float
    right: float
    plot_top: float
    plot_bottom: float
    zero_x: float
    bars: list[Bar]
    marks: list[Mark]
    ticks: list[Tick]
    grid: list[GridLine]
    tick_row_y: float
    axis_y: float


def short(seconds: float) -> str:
    """Axis and budget labels: 1 min, 5 min, 90s, 2 h."""
    seconds = int(round(seconds))
    if seconds and seconds % 3600 == 0:
        return f"{seconds // 3600} h"
    if seconds and seconds % 60 == 0:
        return f"{seconds // 60} min"
    return timefmt.duration(seconds)


def _f(value: float) -> float:
    """Round coordinates so the SVG text is short and identical run to run."""
    return round(value, 1)


def build(doc: dict[str, Any]) -> Chart:
    stages = doc["slo"]["stages"]
    events = doc["timeline"]
    budgets = [s["budget_seconds"] for s in stages]
    ends = [s["elapsed_seconds"] or s["stopped_after_seconds"] or 0.0 for s in stages]
    first = min([0.0] + [e["offset_seconds"] for e in events[:1]])
    extent = max([1.0] + ends + [e["offset_seconds"] for e in events[-1:]])
    last = max([extent] + [b for b in budgets if b <= extent * 2])
    span = (last - first) * 1.05 or 1.0
    plot_w = WIDTH - LEFT - RIGHT

    def x(seconds: float) -> float:
        return _f(LEFT + (seconds - first) / span * plot_w)

    bars: list[Bar] = []
    for i, s in enumerate(stages):
        y = TOP + i * ROW + (ROW - BAR) / 2
        end = s["elapsed_seconds"] if s["elapsed_seconds"] is not None else (s["stopped_after_seconds"] or 0.0)
        width = max(_f(x(end) - x(0.0)), 1.0)
        if s["verdict"] == "never-reached":
            title = f"{s['title']}: never reached (stopped after {timefmt.duration(end)}; budget {timefmt.duration(s['budget_seconds'])})"
        else:
            title = f"{s['title']}: {s['label']} after {timefmt.duration(end)} (budget {timefmt.duration(s['budget_seconds'])}): {s['verdict']}"
        bars.append(Bar(s["stage"], s["title"], s["verdict"], x(0.0), _f(y), width, BAR, title))

    plot_bottom = TOP + len(stages) * ROW
    tick_row_y = plot_bottom + 6
    axis_y = tick_row_y + TICK_ROW
    marks = []
    for i, s in enumerate(stages):
        off = s["budget_seconds"] > first + span
        title = f"{s['stage']} budget: {timefmt.duration(s['budget_seconds'])} after T0" + (
            " (beyond this chart's time axis)" if off else "")
        if off:  # at the right edge, each label on its stage's row so they never overlap
            y = TOP + i * ROW + (ROW - BAR) / 2
            marks.append(Mark(s["stage"], _f(WIDTH - RIGHT), _f(y), _f(y + BAR), short(s["budget_seconds"]), title,
                              True, _f(y + 13)))
        else:
            marks.append(Mark(s["stage"], x(s["budget_seconds"]), TOP - 8, axis_y, short(s["budget_seconds"]), title,
                              False, TOP - 12))

    # events as ticks, merged per pixel column
    ticks: list[Tick] = []
    column: float | None = None
    count = 0
    emphasis = False
    first_title = ""
    for ev in events:
        cx = round(x(ev["offset_seconds"]))
        if cx != column:
            if column is not None:
                ticks.append(_tick(column, tick_row_y, count, emphasis, first_title))
            column, count, emphasis = cx, 0, False
            first_title = f"{timefmt.clock_time(ev['at'])} {ev['kind']}: {ev['text'][:120]}"
        count += 1
        emphasis = emphasis or ev["kind"].startswith(STAGE_EVENT_KINDS)
    if column is not None:
        ticks.append(_tick(column, tick_row_y, count, emphasis, first_title))

    step = next((g for g in GRID_STEPS if span / g <= 12), GRID_STEPS[-1])
    grid = []
    t = (int(first // step)) * step
    while t <= first + span:
        if t >= first:
            grid.append(GridLine(x(t), "T0" if t == 0 else short(t)))
        t += step
    return Chart(WIDTH, int(axis_y + AXIS), LEFT, WIDTH - RIGHT, TOP, plot_bottom, x(0.0), bars, marks, ticks,
                 grid, tick_row_y, axis_y)


def _tick(column: float, y: float, count: int, emphasis: bool, title: str) -> Tick:
    height = 14 if count == 1 else min(26, 14 + 3 * count.bit_length())
    more = f" (+{count - 1} more)" if count > 1 else ""
    return Tick(float(column), y + (26 - height), y + 26, count, emphasis, title + more)
