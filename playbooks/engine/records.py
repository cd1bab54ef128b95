"""Reading and writing what a run leaves in the database: events, notices, approvals.

Every engine event carries a dedupe key ``run:<id>:<what>`` so that a
process killed after doing something and before noting it, and then
resumed, writes each fact exactly once.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.errors import BadInput, NotFound
from bot.core.store import timeline
from bot.core.store import outbox
from bot.core.store.messages import IncidentCard, Notice
from bot.core.store.models import Approval, Incident, Participant, PlaybookRun
from playbooks.engine import run_lifecycle


def run_ref(run: PlaybookRun | int) -> str:
    return f"RUN-{run if isinstance(run, int) else run.id}"


MAX_RUN_ID = 2**31 - 1  # 32-bit ids in both databases


def parse_run(value: int | str) -> int:
    """``RUN-7``, ``run-7`` or ``7`` as the id; a bad or impossible reference is a clear answer, not a crash."""
    if isinstance(value, int):
        return value
    text = str(value).strip().upper().removeprefix("RUN-")
    if not (text.isascii() and text.isdigit()):
        raise BadInput(f"`{value}` is not a run; write RUN-<number>.", field="run")
    if len(text) > 10 or int(text) > MAX_RUN_ID:
        raise NotFound(f"there is no run RUN-{text[:24]}; run numbers stop at {MAX_RUN_ID}.")
    return int(text)


def event(session: Session, run: PlaybookRun, kind: str, text: str, *, at: datetime, key: str,
          actor: str = "incident-bot", source: str = "engine", data: dict[str, Any] | None = None) -> bool:
    """A timeline event about ``run`` on its incident (once per ``key``); False if already there."""
    if run.incident_id is None:
        return False
    payload = {"run_id": run.id, "playbook": run.playbook, **(data or {})}
    return timeline.record(session, run.incident_id, kind, f"{run_ref(run)} {run.playbook}: {text}", at=at,
                           actor=actor, source=source, data=payload, dedupe_key=f"run:{run.id}:{key}") is not None


def expire_if_due(session: Session, run: PlaybookRun, *, now: datetime, ttl_seconds: float) -> bool:
    """A request nobody approved within ``ttl_seconds`` expires now; True if it did.

    Called by the worker's sweep *and* by every decision on the run, so an
    expired request can never be approved in the gap before the next sweep.
    """
    from datetime import timedelta

    from bot.core.clock import utc
    from playbooks.engine.params import format_duration

    if run.state != "awaiting_approval" or utc(run.requested_at) > now - timedelta(seconds=ttl_seconds):
        return False
    run_lifecycle.move(run, "expire")
    run.finished_at, run.error = now, "nobody approved it in time"
    session.add(run)
    event(session, run, "run.expired", f"expired: not approved within {format_duration(ttl_seconds)}",
          at=now, key="expired")
    refresh_card(session, run.incident_id, now)
    return True


def notify_commander(session: Session, run: PlaybookRun, text: str, *, at: datetime, key: str) -> None:
    """A direct notice to the incident commander (the outbox delivers it), once per ``key``."""
    if run.incident_id is None:
        return
    commander = commander_of(session, run.incident_id)
    notice = Notice(text=f"{'@' + commander + ' ' if commander else ''}{run_ref(run)} {run.playbook}: {text}",
                    user=commander, run_id=run.id)
    outbox.enqueue(session, notice, incident_id=run.incident_id, now=at, dedupe_key=f"notice:run:{run.id}:{key}")


def refresh_card(session: Session, incident_id: int | None, at: datetime) -> None:
    """Queue a card update (coalesced), so the Approve/Reject buttons appear or go."""
    if incident_id is None:
        return
    outbox.enqueue(session, IncidentCard(incident_id=incident_id), incident_id=incident_id, now=at)


def commander_of(session: Session, incident_id: int) -> str | None:
    row = session.execute(
        select(col(Participant.user))
        .where(col(Participant.incident_id) == incident_id, col(Participant.role) == "commander",
               col(Participant.active)).order_by(col(Participant.id).desc())
    ).first()
    return row[0] if row else None


def approvals_of(session: Session, run_id: int) -> list[Approval]:
    return list(session.execute(select(Approval).where(col(Approval.run_id) == run_id)
                                .order_by(col(Approval.id))).scalars())


def lock_run(session: Session, run_id: int) -> PlaybookRun | None:
    query = select(PlaybookRun).where(col(PlaybookRun.id) == run_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def lock_incident(session: Session, incident_id: int) -> Incident | None:
    query = select(Incident).where(col(Incident.id) == incident_id)
    if session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def evidence_of(session: Session, incident: Incident) -> dict[str, Any]:
    """What diagnosis said about the incident: the latest cause event's data (and its evidence)."""
    from bot.core.store.models import TimelineEvent

    found: dict[str, Any] = {}
    diag = (incident.extra or {}).get("diagnosis")
    if isinstance(diag, dict):
        found.update(diag)
    row = session.execute(
        select(col(TimelineEvent.data))
        .where(col(TimelineEvent.incident_id) == incident.id, col(TimelineEvent.kind) == "cause")
        .order_by(col(TimelineEvent.id).desc())
    ).first()
    if row and isinstance(row[0], dict):
        data = row[0]
        if isinstance(data.get("evidence"), dict):
            found.update(data["evidence"])
        found.update({k: v for k, v in data.items() if k != "evidence"})
    return found


def with_context(run: PlaybookRun, **updates: Any) -> None:
    """Replace ``run.context`` (JSON columns see reassignment, not in-place edits)."""
    context = dict(run.context or {})
    for key, value in updates.items():
        if value is None:
            context.pop(key, None)
        else:
            context[key] = value
    run.context = context
