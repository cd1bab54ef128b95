"""The on-call duty rota: who is primary now, and who comes next on escalation."""

from __future__ import annotations

from datetime import datetime

from bot.config import OnCall


def primary_index(oncall: OnCall, now: datetime) -> int:
    if not oncall.rota:
        return 0
    period = oncall.rotation_hours * 3600
    shifts = int((now - oncall.rotation_start).total_seconds() // period)
    return shifts % len(oncall.rota)


def primary(oncall: OnCall, now: datetime) -> str | None:
    """The person on duty now (the would-be incident commander)."""
    return oncall.rota[primary_index(oncall, now)] if oncall.rota else None


def escalation_target(oncall: OnCall, now: datetime, level: int, exclude: set[str] | None = None) -> str | None:
    """The person ``level`` steps after the primary, skipping ``exclude``; None if nobody is left."""
    if not oncall.rota:
        return None
    start = primary_index(oncall, now)
    exclude = exclude or set()
    candidates = [oncall.rota[(start + step) % len(oncall.rota)] for step in range(1, len(oncall.rota))]
    candidates = [c for c in candidates if c not in exclude]
    if not candidates:
        return None
    return candidates[min(level - 1, len(candidates) - 1)]
