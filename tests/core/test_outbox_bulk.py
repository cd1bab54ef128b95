"""A mass deadline queues thousands of card updates at once: pending cards take them in, once.

``outbox_many.enqueue_many`` coalesces like ``enqueue``: a card still pending and unclaimed takes the
new fields, and a sender that claimed it in the meantime (another replica's, on PostgreSQL)
never sees its payload change under it; the update is queued as a new message instead.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import select

from bot.core.store import outbox, outbox_many
from bot.core.store.db import Database
from bot.core.store.messages import IncidentCard, Notice
from bot.core.store.models import OutboxMessage
from bot.core.store.raw import RawSql
from tests.core.test_store import NOW, fresh, new_incident


def cards(db: Database) -> list[tuple[int | None, str, dict[str, Any], str | None]]:
    with db.reading() as s:
        return [(m.incident_id, m.status, m.payload, m.claimed_by)
                for m in s.execute(select(OutboxMessage).order_by(OutboxMessage.id)).scalars()]  # type: ignore[arg-type]


def card(incident_id: int, **fields: bool) -> outbox_many.Queued:
    return outbox_many.Queued(IncidentCard(incident_id=incident_id, **fields), incident_id=incident_id)


def test_a_pending_card_takes_the_update_and_the_others_are_queued_once(database_url: str) -> None:
    db = fresh(database_url)
    announced, quiet = new_incident(db), new_incident(db)
    with db.session() as s:  # the announcement is still waiting for the sender
        outbox.enqueue(s, IncidentCard(incident_id=announced, announce=True, notifies=True),
                       incident_id=announced, now=NOW)
    with db.session() as s:
        added = outbox_many.enqueue_many(s, [card(announced), card(quiet), card(quiet, notifies=True)], now=NOW)
    assert added == 1  # the quiet incident's two updates are one card
    assert cards(db) == [
        (announced, "pending", {"incident_id": announced, "announce": True, "notifies": True}, None),
        (quiet, "pending", {"incident_id": quiet, "notifies": True}, None)]  # default fields are left out
    db.dispose()


def test_a_card_claimed_by_another_replica_meanwhile_keeps_its_payload_and_the_update_is_queued_anew(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    db, other_replica = fresh(postgres_url), Database(postgres_url)
    incident_id = new_incident(db)
    with db.session() as s:
        outbox.enqueue(s, IncidentCard(incident_id=incident_id, announce=True), incident_id=incident_id, now=NOW)
    read = outbox_many._pending_by_key

    def read_then_claimed_elsewhere(*args: Any) -> Any:
        found = read(*args)
        with other_replica.session() as s:  # its sender claims the card right after this read
            assert len(outbox.claim(s, channel="chat", worker="replica-2", now=NOW)) == 1
        return found

    monkeypatch.setattr(outbox_many, "_pending_by_key", read_then_claimed_elsewhere)
    with db.session() as s:
        assert outbox_many.enqueue_many(s, [card(incident_id, notifies=True)], now=NOW) == 1
    assert cards(db) == [
        (incident_id, "pending", {"incident_id": incident_id, "announce": True}, "replica-2"),
        (incident_id, "pending", {"incident_id": incident_id, "notifies": True}, None)]
    db.dispose()
    other_replica.dispose()


def test_a_storms_notice_merges_into_the_pending_one_and_is_queued_anew_once_a_sender_claimed_it(
        postgres_url: str) -> None:
    """``coalesce_statements``: the webhook writer's notices, sent with its COMMIT (no answer read)."""
    db = fresh(postgres_url)
    incident_id = new_incident(db)

    def tell(text: str) -> None:
        with db.session() as s:
            raw = RawSql.of(s)
            queued = outbox_many.Queued(Notice(text=text, incident_id=incident_id), incident_id=incident_id,
                                        coalesce_key=f"alerts:{incident_id}")
            raw.batch(outbox_many.coalesce_statements(raw, [queued], now=NOW), commit=True)

    tell("INC-1 alerts: 1 firing")
    tell("INC-1 alerts: 2 firing")
    with db.session() as s:  # a sender claims the pending notice
        assert len(outbox.claim(s, channel="chat", worker="replica-2", now=NOW)) == 1
    tell("INC-1 alerts: 3 firing")
    assert [(i, status, payload["text"], by) for i, status, payload, by in cards(db)] == [
        (incident_id, "pending", "INC-1 alerts: 2 firing", "replica-2"),
        (incident_id, "pending", "INC-1 alerts: 3 firing", None)]
    assert all(payload["incident_id"] == incident_id for _, _, payload, _ in cards(db))  # merged, not replaced
