"""The outbox: side effects towards people, written with the facts that cause them.

A message is enqueued in the caller's transaction, so a crash can never record
a fact and lose its notification (or the reverse).  Senders claim pending
messages with a lease (``claimed_until``) so that several replicas never send
the same message twice, deliver them in id order per incident, and either
complete them or reschedule them with backoff (honouring Retry-After).

Coalescing: a message with a ``coalesce_key`` replaces the payload of a pending
message with the same key instead of queueing another one, so a storm of
events produces one card update, not thousands.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from bot.core.store.db import insert_once
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage
from bot.core.store.raw import RawSql

MAX_BACKOFF_SECONDS = 300.0

def enqueue(
    session: Session,
    message: Message,
    *,
    now: datetime,
    incident_id: int | None = None,
    channel: str = "chat",
    coalesce_key: str | None = None,
    dedupe_key: str | None = None,
    not_before: datetime | None = None,
) -> OutboxMessage | None:
    """Queue a message; returns None when ``dedupe_key`` was already queued.

    ``coalesce_key`` defaults to the kind's own (an incident's card coalesces per incident): a
    message still pending and unclaimed under that key takes this one's fields instead
    (``merge_pending``), and is returned."""
    coalesce_key = coalesce_key if coalesce_key is not None else message.coalesce_key()
    if coalesce_key is not None:
        merged_into = merge_pending(session, message, channel=channel, coalesce_key=coalesce_key)
        if merged_into is not None:
            return session.get(OutboxMessage, merged_into)
    return _insert(session, message, now=now, incident_id=incident_id, channel=channel, coalesce_key=coalesce_key,
                   dedupe_key=dedupe_key, not_before=not_before)


def coalesce(session: Session, message: Message, *, now: datetime, incident_id: int, coalesce_key: str) -> None:
    """``enqueue`` with a ``coalesce_key`` on the chat channel, without reading the row back.

    A storm coalesces its incident's notice on every delivery: when a message is
    pending, this is one or two plain statements and no ORM work at all.
    """
    if merge_pending(session, message, channel="chat", coalesce_key=coalesce_key) is None:
        _insert(session, message, now=now, incident_id=incident_id, channel="chat", coalesce_key=coalesce_key)


def merge_pending(session: Session, message: Message, *, channel: str, coalesce_key: str) -> int | None:
    """Merge ``message``'s fields into the oldest message pending and unclaimed under ``coalesce_key``.

    The id of the message merged into, or None when there is none.  The lookup and
    the merge run on the session's DBAPI cursor (``raw``), on PostgreSQL in one
    statement.  The update checks again that the message is still pending and
    unclaimed, so a sender that claimed it meanwhile (another replica) never
    sends a payload this transaction then changes: the caller queues a new
    message instead.
    """
    raw = RawSql.of(session)
    payload = message.to_payload()
    if raw.sqlite:
        pending = raw.rows(_PENDING_RAW, [channel, coalesce_key])
        merged = {**raw.read_json(pending[0][1]), **payload} if pending else None
        updated = raw.rows(SET_PAYLOAD_RAW, [raw.json(merged), pending[0][0]]) if pending else []
    else:
        updated = raw.rows(MERGE_PAYLOAD_PG, [raw.json(payload), channel, coalesce_key])
    if not updated:
        return None
    row_id, stored = updated[0]
    tell_loaded(session, int(row_id), raw.read_json(stored))
    return int(row_id)


def tell_loaded(session: Session, row_id: int, payload: Any) -> None:
    """A payload changed by hand-written SQL: an object of the row this transaction holds learns it."""
    loaded = session.identity_map.get(Session.identity_key(OutboxMessage, row_id))
    if loaded is not None:
        set_committed_value(loaded, "payload", payload)


def _insert(session: Session, message: Message, *, now: datetime, incident_id: int | None, channel: str,
            coalesce_key: str | None, dedupe_key: str | None = None,
            not_before: datetime | None = None) -> OutboxMessage | None:
    row = OutboxMessage(
        incident_id=incident_id,
        channel=channel,
        kind=message.kind,
        payload=message.to_payload(),
        coalesce_key=coalesce_key,
        dedupe_key=dedupe_key,
        created_at=now,
        not_before=not_before or now,
    )
    if dedupe_key is None:
        session.add(row)
        session.flush()
        return row
    return row if insert_once(session, row) else None


UNCLAIMED = "status = 'pending' AND claimed_by IS NULL"
_PENDING_RAW = f"SELECT id, payload FROM outbox WHERE channel = ? AND coalesce_key = ? AND {UNCLAIMED} ORDER BY id LIMIT 1"
SET_PAYLOAD_RAW = f"UPDATE outbox SET payload = ? WHERE id = ? AND {UNCLAIMED} RETURNING id, payload"
MERGE_PAYLOAD_PG = (f"UPDATE outbox SET payload = (payload::jsonb || ?::jsonb)::json WHERE {UNCLAIMED} AND id = ("
                    f"SELECT id FROM outbox WHERE channel = ? AND coalesce_key = ? AND {UNCLAIMED} ORDER BY id LIMIT 1"
                    ") RETURNING id, payload")


def claim(
    session: Session,
    *,
    channel: str,
    worker: str,
    now: datetime,
    limit: int = 50,
    lease_seconds: float = 60.0,
) -> Sequence[OutboxMessage]:
    """Claim due messages for ``worker``, oldest first, skipping incidents whose
    earlier message is still waiting (per-incident order is never broken)."""
    blocked: set[int] = set()
    rows = session.execute(
        select(OutboxMessage)
        .where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.status) == "pending",
        )
        .order_by(col(OutboxMessage.id))
        .limit(limit * 4)
    ).scalars().all()
    claimed: list[OutboxMessage] = []
    for row in rows:
        key = row.incident_id if row.incident_id is not None else -row.id
        if key in blocked:
            continue
        held = row.claimed_by is not None and row.claimed_until is not None and row.claimed_until > now
        due = row.not_before is None or row.not_before <= now
        if held or not due:
            blocked.add(key)
            continue
        # someone claimed it before and neither completed nor released it (read before the update,
        # which refreshes the loaded row)
        lapsed = row.claimed_by is not None
        result = session.exec(  # exec, not execute: SQLModel types a DML result as a CursorResult (rowcount)
            update(OutboxMessage)
            .where(
                and_(
                    col(OutboxMessage.id) == row.id,
                    col(OutboxMessage.status) == "pending",
                    or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now),
                )
            )
            .values(claimed_by=worker, claimed_until=now + timedelta(seconds=lease_seconds))
        )
        if result.rowcount != 1:
            blocked.add(key)
            continue
        session.refresh(row)
        if lapsed:  # that holder may have delivered it and died: count the attempt, so delivery checks first
            row.attempts += 1
            row.last_error = "a previous claim lapsed (its holder stopped or was too slow)"
            session.add(row)
        claimed.append(row)
        if len(claimed) >= limit:
            break
    return claimed


def anything_due(session: Session, *, channel: str, now: datetime) -> bool:
    """Whether ``claim`` could find a message: a read, so an idle sender never asks for SQLite's write lock."""
    return session.execute(
        select(col(OutboxMessage.id)).where(
            col(OutboxMessage.channel) == channel,
            col(OutboxMessage.status) == "pending",
            or_(col(OutboxMessage.not_before).is_(None), col(OutboxMessage.not_before) <= now),
            or_(col(OutboxMessage.claimed_until).is_(None), col(OutboxMessage.claimed_until) <= now),
        ).limit(1)
    ).first() is not None


def renew(session: Session, message_id: int, *, worker: str, now: datetime, lease_seconds: float = 60.0) -> bool:
    """Extend ``worker``'s claim right before it delivers; False when the claim is no longer its own.

    A sender works through a batch one message at a time; when Slack is slow the
    lease of the last messages could lapse and another replica claim them.  The
    sender renews each claim just before delivering, and skips a message it lost.
    """
    result = session.exec(  # exec: typed as a CursorResult (rowcount)
        update(OutboxMessage)
        .where(col(OutboxMessage.id) == message_id, col(OutboxMessage.status) == "pending",
               col(OutboxMessage.claimed_by) == worker)
        .values(claimed_until=now + timedelta(seconds=lease_seconds))
    )
    return result.rowcount == 1


def complete(session: Session, message_id: int, *, now: datetime, result: dict[str, Any] | None = None,
             worker: str | None = None) -> bool:
    """Mark a message sent; with ``worker``, only if that worker holds its claim (False otherwise)."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != "pending":
        return False
    if worker is not None and row.claimed_by not in (worker, None):
        return False
    row.status = "sent"
    row.sent_at = now
    row.claimed_by = None
    row.claimed_until = None
    row.attempts += 1
    if result:
        row.result = result
    session.add(row)
    return True


def retry_later(
    session: Session,
    message_id: int,
    *,
    now: datetime,
    error: str,
    retry_after: float | None = None,
    give_up_after: int | None = None,
    worker: str | None = None,
    attempted: bool = True,
) -> None:
    """Put a message back with exponential backoff (or the server's Retry-After).

    With ``worker``, only a claim that worker still holds is released. ``attempted=False``: the
    message was not tried (it waits behind an earlier one of its incident), so it keeps its
    attempt count, and a later real failure is not backed off as if it had failed many times."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != "pending" or (worker is not None and row.claimed_by not in (worker, None)):
        return
    if attempted:
        row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_by = None
    row.claimed_until = None
    if give_up_after is not None and row.attempts >= give_up_after:
        row.status = "failed"
    else:
        delay = retry_after if retry_after is not None else min(MAX_BACKOFF_SECONDS, 0.5 * (2 ** min(row.attempts, 10)))
        row.not_before = now + timedelta(seconds=delay)
    session.add(row)


def fail(session: Session, message_id: int, *, error: str, worker: str | None = None) -> bool:
    """Give up on a message that can never be delivered (its stored payload does not fit its declaration).

    The row stays, ``failed`` with the reason in ``last_error``, for a person to read; it no
    longer holds back its incident's later messages.  With ``worker``, only that worker's claim."""
    row = session.get(OutboxMessage, message_id)
    if row is None or row.status != "pending" or (worker is not None and row.claimed_by not in (worker, None)):
        return False
    row.status = "failed"
    row.attempts += 1
    row.last_error = error[:2000]
    row.claimed_by = None
    row.claimed_until = None
    session.add(row)
    return True


def pending_count(session: Session, channel: str | None = None) -> int:
    query = select(col(OutboxMessage.id)).where(col(OutboxMessage.status) == "pending")
    if channel:
        query = query.where(col(OutboxMessage.channel) == channel)
    return len(session.execute(query).all())
