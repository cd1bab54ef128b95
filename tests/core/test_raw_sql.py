"""What the webhook writes with hand-written SQL reads back as the ORM's own, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import create_engine, text, update
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlmodel import Session, col, select

from bot.core.store import outbox
from bot.core.store.db import Database
from bot.core.store.messages import Notice
from bot.core.store.migrate import upgrade
from bot.core.store.models import Alert, Incident, OutboxMessage
from bot.core.store.raw import RawSql
from bot.domain.incidents import alert_sql

T0 = datetime(2026, 11, 30, 14, 0, 0, tzinfo=timezone.utc)


def _row(fingerprint: str, starts_at: datetime, **extra: object) -> dict[str, object]:
    return {"incident_id": None, "fingerprint": fingerprint, "alertname": "EtcdMemberDown", "status": "firing",
            "cluster": "prod", "component": "etcd", "severity": "critical",
            "labels": {"instance": "m1", "quote": 'a "b" \\ c', "unicode": "é"}, "annotations": {"summary": "x"},
            "starts_at": starts_at, "ends_at": None, "generator_url": None, "group_key": "g",
            "received_at": T0, "updated_at": T0, **extra}


def test_an_alert_written_raw_reads_back_like_one_written_by_the_orm(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db)
    try:
        with db.session() as session:
            session.add(Alert(fingerprint="orm", alertname="EtcdMemberDown", starts_at=T0, received_at=T0,
                              updated_at=T0, labels={"instance": "m1"}))
        later = T0 + timedelta(microseconds=1500)
        with db.session() as session:
            raw = RawSql.of(session)
            assert RawSql.of(session) is raw  # one cursor per transaction
            alert_sql.insert(raw, [_row("raw", later)])
        with pytest.raises(IntegrityError) as refused, db.session() as session:
            alert_sql.insert(RawSql.of(session), [_row("orm", T0)])
        assert alert_sql.is_stored_instance(refused.value)  # the ORM's row is the same instance: its stored text matches
        with db.reading() as session:
            stored = {a.fingerprint: a for a in session.execute(select(Alert)).scalars()}
            found = alert_sql.stored(RawSql.of(session), {"raw", "orm", "absent"})
        assert stored["raw"].starts_at == later and stored["raw"].ends_at is None
        assert stored["raw"].labels == {"instance": "m1", "quote": 'a "b" \\ c', "unicode": "é"}
        assert stored["raw"].received_at == T0 and stored["raw"].annotations == {"summary": "x"}
        assert set(found) == {("raw", later), ("orm", T0)}
        assert found[("raw", later)].status == "firing" and found[("raw", later)].incident_id is None
    finally:
        db.dispose()


def _an_incident(db: Database) -> int:
    with db.session() as session:
        incident = Incident(title="etcd", alerts_firing=0, created_at=T0, started_at=T0, detected_at=T0,
                            updated_at=T0)
        session.add(incident)
        session.flush()
        assert incident.id is not None
        return incident.id


def test_counts_added_raw_move_the_incident_and_read_back(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db)
    try:
        incident_id = _an_incident(db)
        now = T0 + timedelta(seconds=5)
        for _ in range(2):  # two deliveries add up
            with db.session() as session:
                alert_sql.add_counts(RawSql.of(session), [(incident_id, "EtcdMemberDown", 2, 1)], {incident_id: 2},
                                     {incident_id}, now)
        with db.reading() as session:
            row = session.get(Incident, incident_id)
            counts = alert_sql.read_counts(RawSql.of(session), incident_id)
        assert row is not None and row.alerts_firing == 4 and row.last_alert_at == now and row.updated_at == now
        assert counts == {("firing", "EtcdMemberDown"): 4, ("resolved", "EtcdMemberDown"): 2}
    finally:
        db.dispose()


def test_a_notice_coalesces_into_the_pending_one_but_never_into_one_a_sender_claimed(database_url: str) -> None:
    db = Database(database_url)
    upgrade(db)
    try:
        incident_id = _an_incident(db)
        for text in ("INC-1 alerts: 1 firing", "INC-1 alerts: 2 firing"):
            with db.session() as session:
                outbox.coalesce(session, Notice(text=text, incident_id=incident_id), now=T0,
                                incident_id=incident_id, coalesce_key="alerts:1")
        with db.session() as session:  # a sender (another replica) claims the pending notice
            session.execute(update(OutboxMessage).values(claimed_by="replica-b", claimed_until=T0))
        with db.session() as session:
            outbox.coalesce(session, Notice(text="INC-1 alerts: 3 firing", incident_id=incident_id), now=T0,
                            incident_id=incident_id, coalesce_key="alerts:1")
        with db.reading() as session:
            rows = session.execute(select(OutboxMessage).order_by(col(OutboxMessage.id))).scalars().all()
        assert [(r.payload["text"], r.claimed_by) for r in rows] == [
            ("INC-1 alerts: 2 firing", "replica-b"), ("INC-1 alerts: 3 firing", None)]
        assert rows[0].payload["incident_id"] == incident_id  # merged, not replaced
    finally:
        db.dispose()


def test_a_connection_lost_under_a_raw_statement_is_sqlalchemys_operational_error_and_leaves_the_pool(
        postgres_url: str, postgres_admin_url: str) -> None:
    """What the webhook answers 503 to (Alertmanager retries it); the next transaction gets a live connection."""
    db = Database(postgres_url)
    upgrade(db)
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    session = Session(db.engine)
    try:
        raw = RawSql.of(session)
        backend = raw.rows("SELECT pg_backend_pid()")[0][0]
        with admin.connect() as conn:  # the server goes away under the transaction, as in a restart
            conn.execute(text(f"SELECT pg_terminate_backend({int(backend)})"))
        with pytest.raises(OperationalError) as lost:
            alert_sql.stored(raw, {"fingerprint-with-a-secret-label"})
        session.close()
        assert lost.value.connection_invalidated
        assert "fingerprint-with-a-secret-label" not in str(lost.value)  # parameters stay out of messages
        with db.session() as session:
            assert alert_sql.stored(RawSql.of(session), {"absent"}) == {}
    finally:
        admin.dispose()
        db.dispose()
