"""Append-only timeline events: who did what, when, from where, with evidence.

Every fact the post-mortem shows is written here.  ``record`` is idempotent
when given a ``dedupe_key``: the second delivery of the same fact is refused
by a unique constraint inside a savepoint, so concurrent replicas and retried
webhooks can race safely.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.store import outbox
from bot.core.store.db import insert_once
from bot.core.store.messages import TimelinePost
from bot.core.store.models import TimelineEvent
from bot.core.store.raw import RawSql, Statement

# Events from these sources are the bot acting on its own: chat adapters show them.
AUTONOMOUS_SOURCES = frozenset({"watcher", "alertmanager", "prober", "engine", "diagnosis", "system", "drill"})


def record(
    session: Session,
    incident_id: int,
    kind: str,
    text: str,
    *,
    at: datetime,
    actor: str = "system",
    source: str = "system",
    data: dict[str, Any] | None = None,
    dedupe_key: str | None = None,
    post: bool = True,
) -> TimelineEvent | None:
    """Append an event (and queue its chat post); None if ``dedupe_key`` exists."""
    event = TimelineEvent(
        incident_id=incident_id,
        at=at,
        kind=kind,
        actor=actor,
        source=source,
        text=text,
        data=data or {},
        dedupe_key=dedupe_key,
    )
    if dedupe_key is not None:
        exists = session.execute(
            select(col(TimelineEvent.id)).where(
                col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.dedupe_key) == dedupe_key
            )
        ).first()
        if exists:
            return None
        if not insert_once(session, event):
            return None
    else:
        session.add(event)
        session.flush()
    if post:
        assert event.id is not None  # flushed or inserted above
        outbox.enqueue(session, TimelinePost(event_id=event.id), incident_id=incident_id, now=at)
    return event


def fact_statement(raw: RawSql, incident_id: int, kind: str, text: str, *, at: datetime, dedupe_key: str,
                   actor: str = "system", source: str = "system", data: dict[str, Any] | None = None) -> Statement:
    """An event not posted to chat, skipped if ``dedupe_key`` exists: a statement, to travel with others.

    What ``record(..., dedupe_key=..., post=False)`` does, as one ``INSERT ... ON CONFLICT DO
    NOTHING RETURNING id`` on the session's DBAPI cursor (``RawSql.batch``) instead of a lookup, a
    savepoint and an ORM flush: the alert ingestion writes such a fact with every batch.
    """
    return _INSERT_FACT, [incident_id, raw.time(at), kind, actor, source, text, raw.json(data or {}), dedupe_key]


_INSERT_FACT = ("INSERT INTO timeline_events (incident_id, at, kind, actor, source, text, data, dedupe_key) "
                "VALUES (?, ?, ?, ?, ?, ?, ?, ?) ON CONFLICT (incident_id, dedupe_key) DO NOTHING RETURNING id")


def exists(session: Session, incident_id: int, dedupe_key: str) -> bool:
    return (
        session.execute(
            select(col(TimelineEvent.id)).where(
                col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.dedupe_key) == dedupe_key
            )
        ).first()
        is not None
    )


def events(session: Session, incident_id: int, *, kinds: Sequence[str] | None = None) -> list[TimelineEvent]:
    query = select(TimelineEvent).where(col(TimelineEvent.incident_id) == incident_id)
    if kinds:
        query = query.where(col(TimelineEvent.kind).in_(list(kinds)))
    query = query.order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    return list(session.execute(query).scalars().all())
