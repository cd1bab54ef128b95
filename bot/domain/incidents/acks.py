"""Acknowledgement: a person answered the page.

"Notified" says a page was delivered; ``acknowledged_at`` says somebody took
it, from a pager (PagerDuty ``incident.acknowledged``, Opsgenie
``Acknowledge``) or from chat (``/incident ack``).  The first acknowledgement
is the fact (later ones are no news); it stops the re-paging of
bot/domain/slo/repage.py, and the card shows the time it took beside "notified".
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.clock import human_duration
from bot.core.store.messages import IncidentCard
from bot.core.store.states import ACTIVE_STATES
from bot.core.store import timeline
from bot.core.store import outbox
from bot.core.store.models import Incident


def stamp(session: Session, row: Incident, *, user: str, via: str, now: datetime) -> bool:
    """Stamp ``acknowledged_at`` once, inside the caller's transaction; False if it was already."""
    if row.acknowledged_at is not None or row.id is None:
        return False
    row.acknowledged_at, row.acknowledged_by, row.updated_at = now, user, now
    session.add(row)
    after = (now - row.notified_at).total_seconds() if row.notified_at else None
    text = f"page acknowledged by @{user} via {via}" + (
        f", {human_duration(after)} after the notification" if after is not None else "")
    timeline.record(session, row.id, "page.acknowledged", text, at=now, actor=user, source=via,
                    data={"user": user, "via": via, **({"seconds_after_notified": round(after, 3)} if after is not None else {})},
                    dedupe_key="acknowledged")
    outbox.enqueue(session, IncidentCard(incident_id=row.id), incident_id=row.id, now=now)
    return True


def time_to_acknowledge(row: Incident) -> float | None:
    """Seconds from the notification to the acknowledgement (None until both happened)."""
    if row.acknowledged_at is None or row.notified_at is None:
        return None
    return max(0.0, (row.acknowledged_at - row.notified_at).total_seconds())


def describe(row: Incident, now: datetime | None = None) -> str:
    """The card's line: who acknowledged, how long after the notification; or how long it has waited."""
    if row.acknowledged_at is not None:
        after = time_to_acknowledge(row)
        return f"@{row.acknowledged_by}, {human_duration(after)} after notified" if after is not None else f"@{row.acknowledged_by}"
    if row.notified_at is None:
        return "—"
    if row.state not in ACTIVE_STATES:
        return "never"
    if now is None:
        return "not yet"
    return f"not yet ({human_duration((now - row.notified_at).total_seconds())} since notified)"
