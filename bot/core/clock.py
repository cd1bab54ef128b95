"""Time as an injectable dependency.

Stage timestamps are facts in the database; deciding whether a budget is
breached compares them with ``clock.now()``.  Production uses ``SystemClock``;
tests use ``FakeClock`` (or freezegun, which ``SystemClock`` follows because it
reads ``datetime.now``).  All times are timezone-aware UTC.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from typing import Protocol


def utc(dt: datetime) -> datetime:
    """Normalise a datetime to aware UTC (naive values are taken as UTC)."""
    if dt.tzinfo is None:
        return dt.replace(tzinfo=timezone.utc)
    return dt.astimezone(timezone.utc)


class Clock(Protocol):
    def now(self) -> datetime: ...


class SystemClock:
    """Wall-clock time in UTC."""

    def now(self) -> datetime:
        return datetime.now(timezone.utc)


class FakeClock:
    """A clock that only moves when told to."""

    def __init__(self, start: datetime | None = None) -> None:
        self._now = utc(start or datetime(2026, 1, 1, tzinfo=timezone.utc))

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float = 0.0, **kwargs: float) -> datetime:
        self._now = self._now + timedelta(seconds=seconds, **kwargs)
        return self._now

    def set(self, when: datetime) -> None:
        self._now = utc(when)


def human_duration(seconds: float | None) -> str:
    """Compact duration for people: 45s, 4m12s, 1h02m05s (the sign is dropped by callers that say "left"/"by")."""
    if seconds is None:
        return "—"
    sign = "-" if seconds < 0 else ""
    total = int(round(abs(seconds)))
    if total < 60:
        return f"{sign}{total}s"
    minutes, sec = divmod(total, 60)
    if minutes < 60:
        return f"{sign}{minutes}m{sec:02d}s"
    hours, minutes = divmod(minutes, 60)
    return f"{sign}{hours}h{minutes:02d}m{sec:02d}s"
