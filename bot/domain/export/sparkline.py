"""Small inline charts of the Prometheus series frozen at T0 (HTML post-mortem).

A reviewer wants the shape of a series around T0 (flat, then a cliff), not an
axis-labelled plot; a 160 x 32 polyline per series with T0 marked is enough
and keeps the page a single file without scripts.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Mapping

WIDTH, HEIGHT, PAD = 160, 32, 2


def _epoch(text: str | None) -> float | None:
    if not text:
        return None
    try:
        return datetime.fromisoformat(str(text)).timestamp()
    except ValueError:
        return None


def sparkline(series: Mapping[str, Any], section: Mapping[str, Any], t0: str | None) -> dict[str, Any]:
    """``points`` (an SVG polyline), ``t0_x`` (T0's x, or None) and the series' min/max for the label."""
    start = _epoch(section.get("start"))
    end = _epoch(section.get("end"))
    points = [(float(t), float(v)) for t, v in series.get("points") or []]
    if not points or start is None or end is None or end <= start:
        return {"points": "", "t0_x": None, "min": None, "max": None}
    low = min(v for _, v in points)
    high = max(v for _, v in points)
    span = (high - low) or 1.0

    def x(t: float) -> float:
        return round(PAD + (t - start) / (end - start) * (WIDTH - 2 * PAD), 1)

    def y(v: float) -> float:
        return round(HEIGHT - PAD - (v - low) / span * (HEIGHT - 2 * PAD), 1)

    t0_epoch = _epoch(t0)
    return {"points": " ".join(f"{x(t)},{y(v)}" for t, v in points),
            "t0_x": x(t0_epoch) if t0_epoch is not None and start <= t0_epoch <= end else None,
            "min": low, "max": high, "width": WIDTH, "height": HEIGHT}
