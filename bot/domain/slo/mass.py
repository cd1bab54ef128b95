"""Evaluating many due incidents at once: a storm's incidents share their T0, so they fall due together.

``watcher.evaluate`` records one incident's warnings and breaches with a few
statements each (look up the dedupe key, insert the event in a savepoint,
queue its chat post and the card update).  Ten thousand incidents falling due
in the same second would take tens of seconds that way.  Here a batch of due
incidents is written with a handful of statements: one read of the keys
already recorded, one insert of the new events that skips any another
replica wrote meanwhile (the unique dedupe key decides), one insert of their
chat posts and card updates.  Escalations after a breach page people one by
one as before (each needs the rota and the incident's commander).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, NamedTuple, Sequence

from sqlalchemy import bindparam, select, update
from sqlmodel import Session, col

from bot.core.config import Settings
from bot.domain.slo import watcher
from bot.domain.slo.clocks import StageClock, clocks
from bot.core.store import outbox_many
from bot.core.store.chunks import chunked
from bot.core.store.messages import IncidentCard, TimelinePost
from bot.core.store.models import Incident, TimelineEvent, table_of
from bot.core.store.states import ACTIVE_STATES

KIND_OF_VERDICT = {"warning": "slo.warning", "breached": "slo.breach"}


class DueIncident(NamedTuple):
    """The columns a clock, ``next_due`` and an escalation read: a plain row, not an ORM object.

    Loading 10,000 ORM objects (identity map, attribute instrumentation) cost
    more than everything else the mass tick does; a row is what the clocks need.
    """

    id: int
    title: str
    severity: str
    cluster: str
    component: str | None
    state: str
    started_at: datetime
    notified_at: datetime | None
    diagnosed_at: datetime | None
    mitigated_at: datetime | None
    cancelled_at: datetime | None
    resolved_at: datetime | None


DUE_COLUMNS = tuple(DueIncident.__annotations__)  # the fields, in order: the columns selected


def load_due(session: Session, ids: Sequence[int], now: datetime, *, sqlite: bool) -> list[DueIncident]:
    """The incidents among ``ids`` still due at ``now``; on PostgreSQL rows another replica holds are skipped
    (it evaluates them)."""
    table = table_of(Incident)
    query = (select(*(table.c[name] for name in DUE_COLUMNS))
             .where(table.c.id.in_(ids), table.c.slo_due_at <= now).order_by(table.c.id))
    if not sqlite:
        query = query.with_for_update(skip_locked=True)
    return [DueIncident(*row) for row in session.execute(query)]


def evaluate_many(session: Session, incidents: Sequence[DueIncident], settings: Settings, now: datetime, *,
                  sqlite: bool) -> int:
    """What ``watcher.evaluate`` records for each incident, in bulk; returns how many records.

    Incidents no longer active (closed since they fell due) only get their
    next-due instant cleared.
    """
    ids = [i.id for i in incidents]
    recorded = {(incident_id, key) for incident_id, key in session.execute(
        select(col(TimelineEvent.incident_id), col(TimelineEvent.dedupe_key)).where(
            col(TimelineEvent.incident_id).in_(ids),
            col(TimelineEvent.kind).in_(sorted(KIND_OF_VERDICT.values())),
        ))}
    wanted: dict[tuple[int, str], tuple[DueIncident, StageClock, str]] = {}
    for incident in incidents:
        if incident.state not in ACTIVE_STATES:
            continue
        for clock in clocks(incident, settings.budgets, now):
            kind = KIND_OF_VERDICT.get(clock.verdict)
            key = f"{kind}:{clock.stage}"
            if kind and (incident.id, key) not in recorded:
                wanted[(incident.id, key)] = (incident, clock, kind)
    count = _record(session, wanted, settings, now, sqlite=sqlite) if wanted else 0
    table = table_of(Incident)
    due = [{"row_id": i.id, "due": watcher.next_due(i, settings, now)} for i in incidents]
    if due:  # one executemany, not an ORM flush of every row
        session.execute(update(table).where(table.c.id == bindparam("row_id")).values(slo_due_at=bindparam("due")), due)
    return count


def _record(session: Session, wanted: dict[tuple[int, str], tuple[DueIncident, StageClock, str]],
            settings: Settings, now: datetime, *, sqlite: bool) -> int:
    """Insert the events not recorded yet, queue a post and a card update for each; escalate breaches."""
    rows = []
    for (incident_id, key), (_incident, clock, kind) in wanted.items():
        text, data = watcher.event_of(clock, kind)
        rows.append({"incident_id": incident_id, "at": now, "kind": kind, "actor": "watcher",
                     "source": "watcher", "text": text, "data": data, "dedupe_key": key})
    inserted = _insert_new(session, rows, sqlite=sqlite)
    messages: list[outbox_many.Queued] = []
    for (incident_id, key), event_id in sorted(inserted.items()):
        messages.append(outbox_many.Queued(TimelinePost(event_id=event_id), incident_id=incident_id))
        messages.append(outbox_many.Queued(IncidentCard(incident_id=incident_id), incident_id=incident_id))
    outbox_many.enqueue_many(session, messages, now=now)
    count = len(inserted)
    for (incident_id, key) in sorted(inserted):
        incident, clock, kind = wanted[(incident_id, key)]
        if kind == "slo.breach" and watcher.escalate(session, incident, clock, settings, now):
            count += 1
    session.flush()  # what escalations changed, before the rows are updated behind the ORM's back
    return count


def _insert_new(session: Session, rows: list[dict[str, Any]], *, sqlite: bool) -> dict[tuple[int, str], int]:
    """Insert the events, skipping keys already there; (incident, key) -> id of those inserted."""
    if sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]  # each dialect's insert() is its own type
    table = table_of(TimelineEvent)
    out: dict[tuple[int, str], int] = {}
    statement = (insert(table).on_conflict_do_nothing(index_elements=["incident_id", "dedupe_key"])
                 .returning(table.c.id, table.c.incident_id, table.c.dedupe_key))
    for chunk in chunked(rows):
        for event_id, incident_id, key in session.execute(statement, chunk):
            out[(incident_id, key)] = event_id
    return out
