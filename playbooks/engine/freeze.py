"""The global kill switch: while frozen no run starts, and running ones halt at the next step.

Stored as the ``Flag`` row ``playbooks.freeze`` so that every replica and
every restarted process sees it at once.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.store.models import Flag

FREEZE = "playbooks.freeze"


def current(session: Session) -> Flag | None:
    """The freeze flag when set, else None."""
    flag = session.get(Flag, FREEZE)
    return flag if flag is not None and flag.value else None


def set_frozen(session: Session, *, by: str, reason: str | None, now: datetime) -> bool:
    """Freeze; returns False when it already was frozen."""
    flag = session.get(Flag, FREEZE)
    if flag is not None and flag.value:
        return False
    if flag is None:
        flag = Flag(name=FREEZE)
    flag.value, flag.set_by, flag.set_at, flag.reason = True, by, now, reason
    session.add(flag)
    session.flush()
    return True


def clear(session: Session, *, by: str, now: datetime) -> Flag | None:
    """Unfreeze; returns the flag as it was (None when it was not frozen)."""
    flag = session.get(Flag, FREEZE)
    if flag is None or not flag.value:
        return None
    was = Flag(name=flag.name, value=True, set_by=flag.set_by, set_at=flag.set_at, reason=flag.reason)
    flag.value, flag.set_by, flag.set_at, flag.reason = False, by, now, None
    session.add(flag)
    return was


def describe(flag: Flag) -> str:
    when = flag.set_at.strftime("%H:%M:%S UTC") if flag.set_at else "?"
    return f"frozen by @{flag.set_by} at {when}" + (f": {flag.reason}" if flag.reason else "")
