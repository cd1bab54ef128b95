"""``RawSql.batch``: several statements in one round trip on PostgreSQL, in order, as one unit of failure.

The webhook's writer sends a delivery's lock and lookups together, its inserts and counts
together, and its summary with the ``COMMIT``. What must hold: each statement answers its
own rows, a later statement sees an earlier one's write, a read sent after the cluster lock
sees what committed while the lock was awaited, and a failure anywhere leaves nothing behind.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import datetime, timezone

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, select

from bot.core.store import timeline
from bot.core.store.db import Database
from bot.core.store.migrate import upgrade
from bot.core.store.models import Incident, TimelineEvent
from bot.core.store.raw import RawSql
from bot.domain.incidents import alert_sql

T0 = datetime(2026, 11, 25, 20, 0, tzinfo=timezone.utc)


def migrated(url: str) -> Iterator[Database]:
    database = Database(url)
    upgrade(database)
    yield database
    database.dispose()


@pytest.fixture
def db(database_url: str) -> Iterator[Database]:
    yield from migrated(database_url)


@pytest.fixture
def pg(postgres_url: str) -> Iterator[Database]:
    yield from migrated(postgres_url)


def an_incident(db: Database) -> int:
    with db.session() as session:
        incident = Incident(title="etcd", alerts_firing=0, created_at=T0, started_at=T0, detected_at=T0, updated_at=T0)
        session.add(incident)
        session.flush()
        assert incident.id is not None
        return incident.id


def a_fact(raw: RawSql, incident_id: int, key: str) -> tuple[str, list[object]]:
    statement, params = timeline.fact_statement(raw, incident_id, "alerts.firing", f"fact {key}", at=T0, dedupe_key=key)
    return statement, list(params)


def facts(db: Database, incident_id: int) -> list[str]:
    with db.reading() as session:
        return list(session.execute(select(col(TimelineEvent.text)).where(col(TimelineEvent.incident_id) == incident_id)
                                    .order_by(col(TimelineEvent.id))).scalars())


def test_a_batch_answers_each_statement_in_order_and_a_later_one_sees_an_earlier_write(db: Database) -> None:
    incident_id = an_incident(db)
    with db.session() as session:
        raw = RawSql.of(session)
        inserted, counted, again = raw.batch([
            a_fact(raw, incident_id, "one"),
            ("SELECT count(*) FROM timeline_events WHERE incident_id = ?", [incident_id]),
            a_fact(raw, incident_id, "one"),  # the same dedupe key: skipped, no id
        ])
    assert len(inserted) == 1 and counted == [(1,)] and again == []
    assert facts(db, incident_id) == ["fact one"]


def test_a_failing_statement_fails_the_batch_and_leaves_nothing_of_its_transaction(db: Database) -> None:
    incident_id = an_incident(db)
    with pytest.raises(IntegrityError), db.session() as session:
        raw = RawSql.of(session)
        raw.batch([a_fact(raw, incident_id, "kept?"), a_fact(raw, incident_id + 1000, "no such incident")])
    assert facts(db, incident_id) == []


def test_a_batch_that_commits_ends_its_transaction_and_the_session_finds_nothing_left(pg: Database) -> None:
    incident_id = an_incident(pg)
    with pg.session() as session:
        raw = RawSql.of(session)
        raw.batch([a_fact(raw, incident_id, "first"), a_fact(raw, incident_id, "second")], commit=True)
        assert facts(pg, incident_id) == ["fact first", "fact second"]  # another connection sees them now
    assert facts(pg, incident_id) == ["fact first", "fact second"]
    with pytest.raises(IntegrityError), pg.session() as session:
        raw = RawSql.of(session)
        raw.batch([a_fact(raw, incident_id, "third"), a_fact(raw, incident_id + 1000, "broken")], commit=True)
    assert facts(pg, incident_id) == ["fact first", "fact second"]  # the COMMIT went with the failed batch


def test_a_lookup_sent_with_the_cluster_lock_sees_what_committed_while_the_lock_was_awaited(
        pg: Database, postgres_admin_url: str) -> None:
    """The lock and the reads travel together; the reads' snapshots are taken after the lock is granted."""
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    row = {"incident_id": None, "fingerprint": "f-1", "alertname": "EtcdNoLeader", "status": "firing",
           "cluster": "prod", "component": "etcd", "severity": "critical", "labels": {}, "annotations": {},
           "starts_at": T0, "ends_at": None, "generator_url": None, "group_key": "g", "received_at": T0,
           "updated_at": T0}
    seen: list[set[tuple[str, datetime]]] = []

    def next_delivery() -> None:
        with pg.session() as session:
            waiting = RawSql.of(session)
            locks = alert_sql.lock_statements(waiting, {"prod"})
            answers = waiting.batch([*locks, *alert_sql.lookup_statements(waiting, {"f-1"})])
            seen.append(set(alert_sql.read_stored(waiting, answers[len(locks):])))

    try:
        with pg.session() as holder:  # a delivery of cluster prod holds the lock and stores an alert
            raw = RawSql.of(holder)
            alert_sql.lock_clusters(raw, {"prod"})
            alert_sql.insert(raw, [row])
            follower = threading.Thread(target=next_delivery)
            follower.start()
            with admin.connect() as conn:  # the next delivery's batch is queued behind the lock
                while conn.execute(text("SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
                                        "AND NOT granted")).scalar_one() == 0:
                    follower.join(0.01)
                    assert follower.is_alive(), "the next delivery did not wait for the lock"
        follower.join(30)
        assert seen == [{("f-1", T0)}]
    finally:
        admin.dispose()
