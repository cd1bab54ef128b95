"""Who plays which part in an incident: the commander, scribes, responders.

The commander is the one person who may end an incident or hand it over, so "who is
commander now" is read in the caller's transaction, from the participants table, every
time it matters (a hand-over in another replica is seen at once).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.errors import PermissionDenied
from bot.core.store import timeline
from bot.core.store.models import Incident, Participant
from bot.core.store.refs import ref_of

ROLES = ("commander", "scribe", "responder")
COMMANDER_ONLY = {"mitigated", "resolve", "reopen", "cancel", "close"}


def require_commander(session: Session, row: Incident, actor: str, verb: str) -> None:
    """Once an incident has a commander, only they may end it or hand over (``COMMANDER_ONLY``)."""
    commander = commander_of(session, row.id)
    if verb in COMMANDER_ONLY and commander is not None and commander != actor:
        raise PermissionDenied(f"only the commander @{commander} can `{verb}` {ref_of(row.id)}.")

def set_role(session: Session, row: Incident, role: str, user: str, *, by: str, source: str, now: datetime) -> None:
    """``user`` takes ``role`` (a new commander replaces the old one), recorded on the timeline."""
    if role == "commander":
        for old in session.execute(
            select(Participant).where(col(Participant.incident_id) == row.id, col(Participant.role) == "commander",
                                      col(Participant.active))
        ).scalars():
            old.active = False
            session.add(old)
    existing = session.execute(
        select(Participant).where(col(Participant.incident_id) == row.id, col(Participant.role) == role,
                                  col(Participant.user) == user)
    ).scalars().first()
    if existing is not None:
        existing.active, existing.assigned_by, existing.assigned_at = True, by, now
        session.add(existing)
    else:
        session.add(Participant(incident_id=row.id, user=user, role=role, assigned_by=by, assigned_at=now))
    session.flush()
    text = f"@{user} is now {role}" + ("" if by == user else f" (assigned by @{by})")
    timeline.record(session, row.id, "role.assigned", text, at=now, actor=by, source=source,
                    data={"role": role, "user": user})
    row.updated_at = now

def commander_of(session: Session, incident_id: int) -> str | None:
    """The incident's active commander, read in the caller's transaction (None before anyone acks)."""
    return roles_of(session, incident_id).get("commander", [None])[0]

def roles_of(session: Session, incident_id: int) -> dict[str, list[str]]:
    """Active people by role, in the order they were assigned."""
    roles: dict[str, list[str]] = {}
    for p in session.execute(
        select(Participant).where(col(Participant.incident_id) == incident_id, col(Participant.active))
        .order_by(col(Participant.id))
    ).scalars():
        roles.setdefault(p.role, []).append(p.user)
    return roles
