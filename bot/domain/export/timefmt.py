"""Times as the post-mortem shows them: one zone for the whole document.

Stored times are aware UTC.  A reader in Berlin may ask for their own zone;
every time in every format is then shown in that zone, and the document says
which zone it uses, so two readers can never disagree about "03:00".
"""

from __future__ import annotations

from datetime import datetime, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from bot.core.clock import human_duration
from bot.core.errors import BadInput

UTC_NAMES = frozenset({"", "utc", "z", "etc/utc", "zulu"})


def zone(name: str | None) -> tuple[str, tzinfo]:
    """Parse a zone name (IANA, e.g. Europe/Berlin); None or "UTC" is UTC.

    A bad name is a ``BadInput`` naming the field, never a traceback.
    """
    if name is None or name.strip().lower() in UTC_NAMES:
        return "UTC", timezone.utc
    name = name.strip()
    try:
        return name, ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, OSError):
        raise BadInput(
            f"`{name}` is not a time zone; expected an IANA name such as Europe/Berlin, America/New_York or UTC.",
            field="tz",
        ) from None


def iso(value: datetime | None, tz: tzinfo) -> str | None:
    """ISO 8601 with the zone's offset (seconds precision unless the value has more)."""
    if value is None:
        return None
    return value.astimezone(tz).isoformat()


def display(value: str | None) -> str:
    """'2026-11-25 04:00:12' from an ISO string already in the document's zone."""
    if not value:
        return "—"
    # isoformat() text: YYYY-MM-DDTHH:MM:SS[.ffffff]+HH:MM — sliced, not parsed (50,000 rows)
    text = f"{value[:10]} {value[11:19]}"
    return text + value[19:23] if value[19:20] == "." else text


def clock_time(value: str | None) -> str:
    """'04:00:12' (the timeline shows the date once per day)."""
    if not value:
        return "—"
    return value[11:19]


duration = human_duration  # one formatter for chat, cards and post-mortems


def offset(seconds: float | None) -> str:
    """T+offset from T0 for a timeline row: T+0:45, T+12:03, T+1:02:05."""
    if seconds is None:
        return ""
    total = int(abs(seconds) // 1)
    sign = "-" if seconds < 0 and total else "+"  # a fault injected 0.3 s before T0 is T+0:00, not "T-0:00"
    hours, rest = divmod(total, 3600)
    minutes, sec = divmod(rest, 60)
    return f"T{sign}{hours}:{minutes:02d}:{sec:02d}" if hours else f"T{sign}{minutes}:{sec:02d}"
