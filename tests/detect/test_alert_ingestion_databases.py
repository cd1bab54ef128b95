"""Ingestion on both stores (SQLite and PostgreSQL): batch insert, grouping, idempotency, races."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import func, select

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.domain.incidents.alert_payload import parse_notification
from bot.domain.incidents import alert_sql, alert_tally
from bot.domain.incidents.alerts import AlertIngestor
from bot.core.store.db import Database
from bot.core.store.raw import RawSql
from bot.core.store.models import Alert, Incident, OutboxMessage
from tests.conftest import T0, make_settings
from tests.detect.payloads import alert, webhook


def test_deliveries_are_stored_once_and_grouped_on_both_stores(database_url: str) -> None:
    bot = build_bot(make_settings(database_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        ingest = bot.services.extras["alerts"].ingest
        cascade = [alert("EtcdMemberDown", T0, job="etcd", instance=f"m{i}") for i in range(3)] + \
                  [alert("KubeNodeNotReady", T0 + timedelta(seconds=5), severity="warning", node=f"n{i}")
                   for i in range(600)]
        first = ingest(parse_notification(webhook(*cascade)))
        assert first.stored == 603 and first.opened == [1]
        # two replicas receive the same re-send at once: nothing is stored twice, nothing opens
        fresh = [type(bot.services.extras["alerts"])(bot.db, bot.settings, bot.clock, bot.services.incidents)
                 for _ in range(2)]
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda ing: ing.ingest(parse_notification(webhook(*cascade))), fresh))
        assert [r.stored for r in results] == [0, 0] and all(not r.opened for r in results)
        with bot.db.session() as s:
            assert s.execute(select(func.count()).select_from(Alert)).scalar_one() == 603
            assert s.execute(select(func.count()).select_from(Incident)).scalar_one() == 1
    finally:
        bot.close()


def test_two_replicas_receiving_a_new_fault_at_once_open_one_incident(database_url: str) -> None:
    bot = build_bot(make_settings(database_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        kind = type(bot.services.extras["alerts"])
        replicas = [kind(bot.db, bot.settings, bot.clock, bot.services.incidents) for _ in range(2)]
        body = webhook(*[alert("EtcdNoLeader", T0, job="etcd", instance=f"m{i}") for i in range(3)])
        with ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda ing: ing.ingest(parse_notification(body)), replicas))
        assert sorted(r.stored for r in results) == [0, 3]
        assert sum(len(r.opened) for r in results) == 1
        with bot.db.session() as s:
            assert s.execute(select(func.count()).select_from(Incident)).scalar_one() == 1
    finally:
        bot.close()


def test_the_counts_people_read_match_the_stored_alerts_after_joins_resolutions_and_races(database_url: str) -> None:
    """The status line ("N firing, M resolved") is kept by increments: it must still equal a full recount."""
    bot = build_bot(make_settings(database_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        kind = type(bot.services.extras["alerts"])
        replicas = [kind(bot.db, bot.settings, bot.clock, bot.services.incidents) for _ in range(2)]
        down = [alert("EtcdMemberDown", T0, job="etcd", instance=f"m{i}") for i in range(3)]
        slow = [alert("EtcdHighFsyncDurations", T0 + timedelta(seconds=3), job="etcd", instance=f"m{i}")
                for i in range(40)]
        replicas[0].ingest(parse_notification(webhook(*down)))
        with ThreadPoolExecutor(2) as pool:  # the same join reaches both replicas at once
            list(pool.map(lambda ing: ing.ingest(parse_notification(webhook(*slow))), replicas))
        bot.clock.advance(30)
        resolved = [alert("EtcdHighFsyncDurations", T0 + timedelta(seconds=3), job="etcd", instance=f"m{i}",
                          status="resolved", ends=T0 + timedelta(seconds=30)) for i in range(10)]
        replicas[1].ingest(parse_notification(webhook(*resolved)))
        replicas[0].ingest(parse_notification(webhook(*resolved)))  # its cache is stale: the database judges
        with bot.db.session() as s:
            recount = {(status, name): n for status, name, n in s.execute(
                select(Alert.status, Alert.alertname, func.count()).group_by(Alert.status, Alert.alertname))}
            assert alert_tally.read(s, 1) == recount == {("firing", "EtcdMemberDown"): 3,
                                                         ("firing", "EtcdHighFsyncDurations"): 30,
                                                         ("resolved", "EtcdHighFsyncDurations"): 10}
            incident = s.get(Incident, 1)
            assert incident.alerts_firing == 33 and incident.last_alert_at == T0
            notices = [m.payload["text"] for m in s.execute(
                select(OutboxMessage).where(OutboxMessage.kind == "notice").order_by(OutboxMessage.id)).scalars()]
        assert notices[-1].startswith("INC-1 alerts: 33 firing, 10 resolved")
    finally:
        bot.close()


def test_an_instance_stored_meanwhile_by_a_writer_that_skipped_the_lock_is_retried_not_counted_twice(
        postgres_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    """The writer inserts what its lookup did not find; the unique index catches a foreign writer in between."""
    bot = build_bot(make_settings(postgres_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    foreign = Database(postgres_url)
    try:
        ingestor = bot.services.extras["alerts"]
        assert ingestor.ingest(parse_notification(webhook(alert("EtcdNoLeader", T0, job="etcd", instance="m0")))).opened
        assign = AlertIngestor._assign
        raced: list[str] = []

        def assign_then_a_foreign_insert(self: AlertIngestor, *args: Any) -> Any:
            rows = assign(self, *args)
            if not raced:  # after the lookup, before the insert: a writer without the cluster lock stores it
                with foreign.session() as session:
                    alert_sql.insert(RawSql.of(session), [rows[0][0]])
                raced.append(rows[0][0]["fingerprint"])
            return rows

        monkeypatch.setattr(AlertIngestor, "_assign", assign_then_a_foreign_insert)
        result = ingestor.ingest(parse_notification(webhook(alert("EtcdNoLeader", T0, job="etcd", instance="m1"))))
        assert len(raced) == 1 and result.stored == 0 and result.unchanged == 1  # tried again, found it stored
        with bot.db.session() as s:
            assert s.execute(select(func.count()).select_from(Alert)).scalar_one() == 2
            assert alert_tally.read(s, 1) == {("firing", "EtcdNoLeader"): 1}  # the foreign row was not counted here
    finally:
        foreign.dispose()
        bot.close()
