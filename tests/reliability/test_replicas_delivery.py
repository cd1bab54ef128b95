"""Replicas on PostgreSQL deliver every message and page exactly once to a slow, failing, answer-losing
Slack and PagerDuty, also while PostgreSQL is stopped hard and started again."""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy import create_engine

from bot.core.store import outbox
from bot.core.store.models import Incident
from tests.reliability.replicas import (
    HttpTally,
    count,
    drain,
    make_durable,
    open_incidents,
    post_alerts_while,
    replica_bots,
    restart_postgres,
    unreliable_pager,
)
from tests.support.fake_pagers import FakePagerDuty
from tests.support.fake_slack import FakeSlack
from tests.support.postgres_server import PostgresServer


@pytest.fixture
def unreliable_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.delay_seconds = 0.02
    fake.flaky(seed=14, fail=0.1, lose=0.1)
    yield fake
    fake.stop()


@pytest.fixture
def pager() -> Iterator[FakePagerDuty]:
    fake = unreliable_pager(seed=14)
    yield fake
    fake.stop()


@pytest.fixture
def fast_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    # exactly-once is what is tested, not the backoff: a card that needs several calls, each failing
    # one time in five, would otherwise back off for minutes (up to 300 s) before its last try
    monkeypatch.setattr(outbox, "MAX_BACKOFF_SECONDS", 2.0)


def test_three_replicas_deliver_everything_once(postgres_url: str, unreliable_slack: FakeSlack,
                                                pager: FakePagerDuty, fast_backoff: None) -> None:
    bots = replica_bots(postgres_url, unreliable_slack, 3, pager=pager)
    try:
        incidents = open_incidents(bots[0], count=6, notes=2)
        seconds = drain(bots, timeout=240)
        figures = count(bots, unreliable_slack, len(incidents), seconds, pager=pager)
        print(figures.line())
        assert figures.by_status[500] + figures.by_status[504] > 0  # Slack really failed and lost answers
        assert figures.pager_status[500] + figures.pager_status[504] > 0  # so did the pager
        assert figures.pages >= len(incidents)  # every incident paged its on-call
        assert set(pager.opened) == {f"INC-{i}" for i in incidents}  # one pager incident each, none missing
        assert figures.clean, figures.line()
    finally:
        for bot in bots:
            bot.close()


@pytest.fixture
def private_postgres() -> Iterator[PostgresServer]:
    """A server of this test's own: it is restarted mid-run, which the session's shared one must not be."""
    server = PostgresServer.start()
    make_durable(server)
    yield server
    server.stop()


def test_a_postgres_restart_mid_run_loses_and_repeats_nothing(private_postgres: PostgresServer,
                                                              unreliable_slack: FakeSlack, pager: FakePagerDuty,
                                                              fast_backoff: None) -> None:
    name = f"ib_restart_{uuid.uuid4().hex[:8]}"
    admin = create_engine(private_postgres.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = private_postgres.admin_url.rsplit("/", 1)[0] + f"/{name}"
    bots = replica_bots(url, unreliable_slack, 3, pager=pager)
    for bot in bots:
        bot.settings.webhook_token = SecretStr("restart-hook-token")

    def restart() -> None:
        done = restart_postgres(private_postgres)
        assert done.returncode == 0, done.stderr

    tally = HttpTally()
    try:
        declared = open_incidents(bots[0], count=4, notes=2)
        seconds = drain(bots, timeout=300, chaos=post_alerts_while(bots, tally, restart))
        with bots[0].db.session() as session:
            chaos_incidents = session.query(Incident).filter(Incident.cluster.like("chaos-%")).count()  # type: ignore[union-attr]
        figures = count(bots, unreliable_slack, len(declared) + chaos_incidents, seconds, pager=pager)
        figures.errors_5xx = tally.errors_5xx
        print(figures.line(), f"; webhooks {tally.alerts} alerts, answers {dict(tally.by_status)}")
        assert chaos_incidents == tally.alerts  # every alert posted while the database restarted was stored
        assert tally.by_status[503] > 0  # the restart was seen (and answered with the promised 503)
        assert figures.clean, figures.line() + f"; HTTP answers {dict(tally.by_status)}"
    finally:
        for bot in bots:
            bot.close()
