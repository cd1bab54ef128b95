"""Many outbox messages in a few statements: the watcher's mass deadline, a storm's notices.

``outbox`` queues one message at a time; a mass deadline queues thousands of
posts and card updates, and a storm's delivery one notice per incident it
touched.  Here they coalesce exactly as ``outbox.enqueue`` would (a message
pending and unclaimed under the same key takes the new fields), in bulk
statements, and on PostgreSQL in one round trip (``RawSql.batch``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import insert, select
from sqlmodel import Session, col

from bot.core.store.chunks import chunked
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage, table_of
from bot.core.store.outbox import MERGE_PAYLOAD_PG, SET_PAYLOAD_RAW, UNCLAIMED, tell_loaded
from bot.core.store.raw import RawSql, Statement

_MERGE_MANY_PG = ("UPDATE outbox SET payload = (outbox.payload::jsonb || m.fields::jsonb)::json "
                  f"FROM json_to_recordset(?::json) AS m(id int, fields json) WHERE outbox.id = m.id AND {UNCLAIMED} "
                  "RETURNING outbox.id, outbox.payload")

_COALESCE_PG = (f"WITH merged AS ({MERGE_PAYLOAD_PG}) INSERT INTO outbox (incident_id, channel, kind, payload, "
                "coalesce_key, status, attempts, created_at, not_before, result) "
                "SELECT ?, ?, ?, ?::json, ?, 'pending', 0, ?, ?, '{}'::json WHERE NOT EXISTS (SELECT 1 FROM merged)")


@dataclass(frozen=True)
class Queued:
    """One message of ``enqueue_many``, with ``enqueue``'s keywords (no ``dedupe_key``: bulk rows never collide)."""

    message: Message
    incident_id: int | None = None
    channel: str = "chat"
    coalesce_key: str | None = None

    def as_row(self) -> dict[str, Any]:
        return {"incident_id": self.incident_id, "channel": self.channel, "kind": self.message.kind,
                "payload": self.message.to_payload(), "coalesce_key": self.key}

    @property
    def key(self) -> str | None:
        return self.coalesce_key if self.coalesce_key is not None else self.message.coalesce_key()


def enqueue_many(session: Session, queued: Sequence[Queued], *, now: datetime) -> int:
    """Queue many messages in a few statements (the watcher's mass deadline); same coalescing as ``enqueue``.

    Returns how many new rows.
    """
    messages = [q.as_row() for q in queued]
    pending = _pending_by_key(session, sorted({(m["channel"], m["coalesce_key"]) for m in messages
                                               if m["coalesce_key"]}))
    fields: dict[tuple[str, str], dict[str, Any]] = {}  # what each pending message takes in
    last: dict[tuple[str, str], dict[str, Any]] = {}
    rows: list[dict[str, Any]] = []
    new_by_key: dict[tuple[str, str], dict[str, Any]] = {}
    for m in messages:
        key = (m["channel"], m["coalesce_key"])
        if key in pending:
            fields[key] = {**fields.get(key, {}), **m["payload"]}
            last[key] = m
            continue
        if key[1] is not None and key in new_by_key:
            new_by_key[key]["payload"] = {**new_by_key[key]["payload"], **m["payload"]}
            continue
        rows.append(_new_row(m, m["payload"], now))
        if key[1] is not None:
            new_by_key[key] = rows[-1]
    for key in _merge_unclaimed(session, pending, fields):  # claimed by a sender meanwhile: queued anew
        rows.append(_new_row(last[key], fields[key], now))
    table = table_of(OutboxMessage)
    for chunk in chunked(rows):
        session.execute(insert(table), chunk)  # the table: one executemany, not a row at a time
    return len(rows)


def _new_row(message: dict[str, Any], payload: dict[str, Any], now: datetime) -> dict[str, Any]:
    return {**message, "payload": payload, "status": "pending", "attempts": 0, "created_at": now, "not_before": now,
            "result": {}}


def _pending_by_key(session: Session, keys: Sequence[tuple[str, str]]) -> dict[tuple[str, str], tuple[int, Any]]:
    """The oldest pending, unclaimed message (id, payload) under each (channel, coalesce key)."""
    pending: dict[tuple[str, str], tuple[int, Any]] = {}
    wanted = set(keys)
    for chunk in chunked(keys):
        for row_id, channel, coalesce_key, payload in session.execute(
            select(col(OutboxMessage.id), col(OutboxMessage.channel), col(OutboxMessage.coalesce_key),
                   col(OutboxMessage.payload)).where(
                col(OutboxMessage.coalesce_key).in_([k for _, k in chunk]),
                col(OutboxMessage.status) == "pending",
                col(OutboxMessage.claimed_by).is_(None),
            ).order_by(col(OutboxMessage.id))
        ):
            if (channel, coalesce_key) in wanted:
                pending.setdefault((channel, coalesce_key), (row_id, payload))
    return pending


def _merge_unclaimed(session: Session, pending: dict[tuple[str, str], tuple[int, Any]],
                     fields: dict[tuple[str, str], dict[str, Any]]) -> list[tuple[str, str]]:
    """Merge ``fields`` into the pending messages that are still unclaimed; the keys of those that were not.

    Like ``merge_pending``, the update checks again that no sender claimed the message since it
    was read (another replica's sender on PostgreSQL), so a payload being sent never changes.
    """
    changed = {key: f for key, f in fields.items() if any(pending[key][1].get(k) != v for k, v in f.items())}
    if not changed:
        return []
    raw = RawSql.of(session)
    if raw.sqlite:  # one writer at a time: what was read is what is stored
        merged = {key: {**pending[key][1], **f} for key, f in changed.items()}
        updated = {int(row[0]): raw.read_json(row[1]) for key, payload in merged.items()
                   for row in raw.rows(SET_PAYLOAD_RAW, [raw.json(payload), pending[key][0]])}
    else:  # only the new fields, added to what is stored now (another replica may have merged too)
        document = [{"id": pending[key][0], "fields": f} for key, f in changed.items()]
        updated = {int(i): p for i, p in raw.rows(_MERGE_MANY_PG, [raw.json(document)])}
    for row_id, stored in updated.items():
        tell_loaded(session, row_id, stored)
    return [key for key in changed if pending[key][0] not in updated]


def coalesce_statements(raw: RawSql, queued: Sequence[Queued], *, now: datetime) -> list[Statement]:
    """PostgreSQL: ``outbox.coalesce`` for each message as one statement whose rows nobody reads.

    Each merges the message's fields into the oldest message pending and unclaimed under its key,
    or, when there is none (its card was claimed or sent), queues it anew: the same as ``enqueue``,
    without a round trip of its own, so it can travel with the transaction's ``COMMIT``
    (``RawSql.batch``). SQLite has no data-modifying ``WITH``: there ``outbox.coalesce`` does it.
    """
    if raw.sqlite:
        raise ValueError("coalesce_statements is for PostgreSQL: on SQLite use outbox.coalesce")
    statements: list[Statement] = []
    for item in queued:
        payload = raw.json(item.message.to_payload())
        statements.append((_COALESCE_PG, [payload, item.channel, item.key, item.incident_id, item.channel,
                                          item.message.kind, payload, item.key, raw.time(now), raw.time(now)]))
    return statements
