"""The store on SQLite and on PostgreSQL: migrations, timestamps, idempotent facts, outbox."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import select

from bot.core.store import timeline
from bot.core.store import migrate, outbox
from bot.core.store.db import Database
from bot.core.store.messages import IncidentCard, Page, TimelinePost
from bot.core.store.models import ALL_TABLES, Incident

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


def fresh(url: str) -> Database:
    db = Database(url)
    migrate.upgrade(db)
    return db


def new_incident(db: Database) -> int:
    with db.session() as s:
        row = Incident(title="etcd down", started_at=NOW - timedelta(seconds=50), detected_at=NOW,
                       created_at=NOW, updated_at=NOW)
        s.add(row)
        s.flush()
        return row.id  # type: ignore[return-value]


def test_migrations_build_exactly_the_models(database_url: str) -> None:
    db = fresh(database_url)
    assert migrate.current_revision(db) == migrate.head_revision()
    with db.engine.connect() as conn:
        assert compare_metadata(MigrationContext.configure(conn), ALL_TABLES) == []
    assert migrate.upgrade(db)[1] == migrate.current_revision(db)  # repeatable
    db.dispose()


def test_timestamps_come_back_as_aware_utc(database_url: str) -> None:
    db = fresh(database_url)
    incident_id = new_incident(db)
    with db.session() as s:
        row = s.get(Incident, incident_id)
        assert row.started_at == NOW - timedelta(seconds=50)
        assert row.started_at.tzinfo is not None
    db.dispose()


def test_a_fact_with_a_dedupe_key_is_recorded_once(database_url: str) -> None:
    db = fresh(database_url)
    incident_id = new_incident(db)
    for _ in range(3):
        with db.session() as s:
            timeline.record(s, incident_id, "slo.breach", "breach", at=NOW, dedupe_key="slo.breach:notify")
    with db.session() as s:
        assert [e.kind for e in timeline.events(s, incident_id)] == ["slo.breach"]
    db.dispose()


def test_outbox_keeps_order_per_incident_and_coalesces_cards(database_url: str) -> None:
    db = fresh(database_url)
    incident_id = new_incident(db)
    with db.session() as s:
        first = outbox.enqueue(s, TimelinePost(event_id=1), incident_id=incident_id, now=NOW)
        for n in range(50):  # the first announces; the updates merged into it keep it an announcement
            outbox.enqueue(s, IncidentCard(incident_id=incident_id, announce=n == 0, notifies=n == 0),
                           incident_id=incident_id, now=NOW)
        outbox.enqueue(s, TimelinePost(event_id=2), incident_id=incident_id, now=NOW)
    with db.session() as s:
        claimed = outbox.claim(s, channel="chat", worker="w1", now=NOW)
        assert [(m.kind, m.payload) for m in claimed] == [
            ("timeline.post", {"event_id": 1}),
            ("incident.card", {"incident_id": incident_id, "announce": True, "notifies": True}),
            ("timeline.post", {"event_id": 2})]
        order = [m.id for m in claimed]
        # a message that must wait blocks the later ones of the same incident
        outbox.retry_later(s, first.id, now=NOW, error="429", retry_after=30)  # type: ignore[union-attr]
        for m in claimed[1:]:
            outbox.retry_later(s, m.id, now=NOW, error="released", retry_after=0)
    with db.session() as s:
        assert outbox.claim(s, channel="chat", worker="w1", now=NOW + timedelta(seconds=1)) == []
        assert [m.id for m in outbox.claim(s, channel="chat", worker="w1", now=NOW + timedelta(seconds=31))] == order
    db.dispose()


def test_two_replicas_never_claim_the_same_message(database_url: str) -> None:
    db = fresh(database_url)
    incident_ids = [new_incident(db) for _ in range(5)]
    with db.session() as s:
        for incident_id in incident_ids:
            outbox.enqueue(s, Page(user="alice", reason="etcd down"), incident_id=incident_id, now=NOW)
    with db.session() as s1:
        a = {m.id for m in outbox.claim(s1, channel="chat", worker="a", now=NOW, limit=3)}
    with db.session() as s2:
        b = {m.id for m in outbox.claim(s2, channel="chat", worker="b", now=NOW)}
    assert len(a) == 3 and len(b) == 2 and not (a & b)
    db.dispose()


def test_the_incident_survives_a_new_connection(database_url: str) -> None:
    db = fresh(database_url)
    incident_id = new_incident(db)
    db.dispose()
    again = Database(database_url)
    with again.session() as s:
        assert s.execute(select(Incident.title).where(Incident.id == incident_id)).scalar_one() == "etcd down"
    again.dispose()
