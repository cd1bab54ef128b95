"""Mirroring action items to an issue tracker, and closing them here when closed there.

One pass (``sync``) creates an issue for every open item not yet mirrored,
then asks the tracker about every mirrored open item and marks closed ones
done (a timeline event says the tracker closed it).  Tracker calls happen
outside any database transaction; a lease keeps two replicas from filing the
same item twice.  A tracker error is stored on the item (shown in the
post-mortem) and retried on the next pass; it never stops the bot.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock, utc
from bot.core.store import timeline
from bot.core.store.refs import ref_of
from bot.core.store.db import Database
from bot.core.store.models import ActionItem, Incident, Lease
from integrations.clients.tickets import Tracker, TrackerError

log = logging.getLogger(__name__)
LEASE = "action-items:tracker-sync"


@dataclass
class SyncResult:
    created: int = 0
    closed: int = 0
    failed: int = 0


def issue_body(item: ActionItem, incident: Incident, public_url: str | None) -> str:
    lines = [(f"Action item #{item.id} from {ref_of(incident.id)}: {incident.title} "
              f"({incident.severity}, cluster {incident.cluster})."), ""]
    if item.owner:
        lines.append(f"Owner: @{item.owner}")
    if item.due_on:
        lines.append(f"Due: {item.due_on.isoformat()}")
    lines.append(f"Priority: {item.priority}")
    if public_url:
        lines += ["", f"Post-mortem: {public_url.rstrip('/')}/ui/incidents/{ref_of(incident.id)}"]
    lines += ["", "Closing this issue closes the action item in incident-bot."]
    return "\n".join(lines)


def _claim(db: Database, holder: str, now: datetime, seconds: float) -> bool:
    with db.session() as session:
        lease = session.execute(select(Lease).where(col(Lease.name) == LEASE).with_for_update()).scalars().first()
        if lease is not None and lease.holder != holder and utc(lease.expires_at) > now:
            return False
        if lease is None:
            lease = Lease(name=LEASE, holder=holder, acquired_at=now, expires_at=now)
        lease.holder, lease.acquired_at, lease.expires_at = holder, now, now + timedelta(seconds=seconds)
        session.add(lease)
        return True


def sync(db: Database, tracker: Tracker, clock: Clock, *, labels: list[str], public_url: str | None = None,
         holder: str = "bot", lease_seconds: float = 120) -> SyncResult:
    result = SyncResult()
    if not _claim(db, holder, clock.now(), lease_seconds):
        return result
    with db.session() as session:
        rows = session.execute(
            select(ActionItem, Incident).join(Incident, col(Incident.id) == col(ActionItem.incident_id))
            .where(col(ActionItem.done).is_(False)).order_by(col(ActionItem.id))
        ).all()
        to_create = [(a.id, f"[{ref_of(i.id)}] {a.text}", issue_body(a, i, public_url), a.priority)
                     for a, i in rows if a.tracker_key is None]
        to_check = [(a.id, a.tracker_key) for a, i in rows if a.tracker_key is not None and a.tracker == tracker.name]
    for item_id, title, body, priority in to_create:
        try:
            ticket = tracker.create(title, body, [*labels, priority])
        except TrackerError as exc:
            result.failed += 1
            _note_error(db, item_id, str(exc))
            continue
        with db.session() as session:
            item = session.get(ActionItem, item_id)
            if item is None:
                continue
            item.tracker, item.tracker_key, item.tracker_url, item.tracker_error = (
                tracker.name, ticket.key, ticket.url, None)
            session.add(item)
            timeline.record(session, item.incident_id, "action.ticket",
                            f"action item #{item_id} filed as {tracker.name} issue {ticket.key}", at=clock.now(),
                            actor=tracker.name, source="tracker",
                            data={"action_id": item_id, "tracker": tracker.name, "key": ticket.key, "url": ticket.url},
                            dedupe_key=f"action-ticket:{item_id}", post=False)
        result.created += 1
    for item_id, key in to_check:
        try:
            closed = tracker.is_closed(key)
        except TrackerError as exc:
            result.failed += 1
            _note_error(db, item_id, str(exc))
            continue
        if closed and _close(db, clock, item_id, tracker.name, key):
            result.closed += 1
    return result


def _close(db: Database, clock: Clock, item_id: int, tracker_name: str, key: str) -> bool:
    with db.session() as session:
        item = session.get(ActionItem, item_id)
        if item is None or item.done:
            return False
        now = clock.now()
        item.done, item.done_at, item.done_by, item.tracker_error = True, now, tracker_name, None
        session.add(item)
        timeline.record(session, item.incident_id, "action.done",
                        f"action item #{item_id} done: {item.text} (issue {key} closed in {tracker_name})",
                        at=now, actor=tracker_name, source="tracker",
                        data={"action_id": item_id, "tracker": tracker_name, "key": key})
        return True


def _note_error(db: Database, item_id: int, message: str) -> None:
    log.warning("action item #%s: %s", item_id, message)
    with db.session() as session:
        item = session.get(ActionItem, item_id)
        if item is not None:
            item.tracker_error = message[:500]
            session.add(item)
