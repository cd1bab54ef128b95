"""The breaker across replicas: two ``serve`` replicas on one database hold the thresholds together.

Each replica is a whole bot with its own guard (its own in-memory counts) on the same database,
SQLite and PostgreSQL; the kube-apiservers' reviews are split between them as a Service would.
The worker's tick (publish, read) is run by hand, so the tests say exactly what each replica knew.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.exc import OperationalError
from sqlmodel import col
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import (
    Alert,
    GuardBreaker,
    GuardDeleteCount,
    Incident,
    TimelineEvent,
)
from tests.conftest import make_settings
from tests.guard.conftest import CLUSTER, Apiserver

JANITOR = "system:serviceaccount:batch:janitor"


class Replica:
    """One ``serve`` replica: its bot, the apiserver's connection to it, its guard worker."""

    def __init__(self, bot: Bot, client: TestClient) -> None:
        self.bot = bot
        self.api = Apiserver(client)
        self.guard = bot.services.extras["guard"]
        self.worker = next(w for w in bot.workers if w.name == "admission-guard")

    def tick(self) -> None:
        """One refresh: store trips, publish this replica's counts, read the others'."""
        self.worker.tick()

    def delete(self, n: int, *, user: str = JANITOR, start: int = 0) -> int:
        """Delete ``n`` Pods through this replica; how many it allowed."""
        return sum(self.api.allowed("DELETE", "pods", namespace="batch", name=f"p-{i}", user=user)
                   for i in range(start, start + n))


@pytest.fixture
def replicas(database_url: str, clock: FakeClock) -> Iterator[tuple[Replica, Replica]]:
    settings = make_settings(database_url, default_cluster=CLUSTER)
    settings.guard.enabled = True
    settings.guard.breaker.per_client = 100
    settings.guard.breaker.cluster_wide = 300
    settings.guard.breaker.window_seconds = 60
    a, b = build_bot(settings, clock=clock), build_bot(settings, clock=clock)
    try:
        with TestClient(a.services.extras["guard_app"]) as ca, TestClient(b.services.extras["guard_app"]) as cb:
            pair = Replica(a, ca), Replica(b, cb)
            for r in pair:
                r.tick()  # serve reads the guard's state at start
            yield pair
    finally:
        a.close()
        b.close()


def stored(bot: Bot) -> tuple[list[Incident], list[GuardBreaker], list[str]]:
    with bot.db.reading() as s:
        incidents = list(s.execute(select(Incident)).scalars())
        breakers = list(s.execute(select(GuardBreaker)).scalars())
        trips = [e.text for e in s.execute(select(TimelineEvent).where(TimelineEvent.kind == "guard.breaker.tripped"))
                 .scalars()]
    return incidents, breakers, trips


def test_deletes_split_across_two_replicas_stop_at_the_threshold_and_open_one_incident(
        replicas: tuple[Replica, Replica], clock: FakeClock) -> None:
    a, b = replicas
    first_delete = clock.now()
    assert a.delete(60) == 60
    a.tick()  # A publishes its 60
    clock.advance(1)
    b.tick()  # B reads them
    assert b.delete(41, start=60) == 40  # 60 on A + 40 on B = the threshold; B denies the 101st
    b.tick()  # B stores its trip and opens the incident
    a.tick()  # A adopts the stored breaker (and reads B's 40)
    denied = a.api.send("DELETE", "pods", namespace="batch", name="p-201", user=JANITOR)
    assert denied["allowed"] is False and "until the commander of INC-1 lifts" in denied["status"]["message"]
    assert f"(first at {first_delete.isoformat(timespec='seconds')})" in denied["status"]["message"]
    assert a.delete(5, user="alice", start=300) == 5  # other clients go on
    incidents, breakers, trips = stored(a.bot)
    assert len(incidents) == 1 and incidents[0].started_at == first_delete  # T0: the first delete, on A
    assert [(br.client, br.incident_id) for br in breakers] == [(JANITOR, incidents[0].id)]
    assert len(trips) == 1 and f"{JANITOR} deleted 100 pods within 60s" in trips[0]


def test_replicas_tripping_together_open_one_incident_and_one_lift_reopens_both(
        replicas: tuple[Replica, Replica], clock: FakeClock) -> None:
    a, b = replicas
    assert a.delete(50) == 50 and b.delete(50, start=50) == 50
    a.tick(), b.tick(), a.tick()  # each has read the other's 50
    assert not a.api.allowed("DELETE", "pods", namespace="batch", name="p-100", user=JANITOR)
    assert not b.api.allowed("DELETE", "pods", namespace="batch", name="p-101", user=JANITOR)
    a.tick(), b.tick(), a.tick()  # both try to store their trip; the database keeps one
    incidents, breakers, trips = stored(a.bot)
    assert len(incidents) == 1 and len(breakers) == 1 and len(trips) == 1
    with a.bot.db.reading() as s:
        assert len(list(s.execute(select(Alert)).scalars())) == 1
    for r in (a, b):
        assert r.delete(3, start=400) == 0
        assert [t.row_id for t in r.guard.breaker.tripped()] == [breakers[0].id]
    chat = MemoryChat(a.bot.dispatcher)
    chat.say("carol", "/incident ack INC-1")
    assert chat.say("carol", "/incident guard lift INC-1").startswith("mass-deletion breaker lifted by @carol")
    clock.advance(1)
    assert a.delete(20, start=500) == 20  # A forgot the 100 before the lift at once, its own and B's
    b.tick()
    assert b.delete(20, start=600) == 20  # B too, at its next refresh
    b.tick(), a.tick()  # B publishes its 20, A reads them
    assert a.delete(60, start=700) == 60 and a.delete(1, start=800) == 0  # 20 + 20 + 60 since the lift


def test_the_cluster_wide_threshold_holds_across_replicas(replicas: tuple[Replica, Replica]) -> None:
    a, b = replicas
    assert a.delete(75, user="controller-0") == 75 and a.delete(75, user="controller-1", start=100) == 75
    a.tick(), b.tick()
    assert b.delete(75, user="controller-2", start=200) == 75
    assert b.delete(76, user="controller-3", start=300) == 75  # 300 in all: the cluster-wide breaker
    b.tick()
    with b.bot.db.reading() as s:
        alert = s.execute(select(Alert)).scalars().one()
    assert alert.labels["scope"] == "cluster" and alert.labels["client"] in {f"controller-{n}" for n in range(4)}
    a.tick()
    assert not a.api.allowed("DELETE", "pods", namespace="apps", name="web-1", user="alice")


def test_overshoot_is_at_most_what_the_other_replica_admitted_within_one_publish_interval(
        replicas: tuple[Replica, Replica], clock: FakeClock) -> None:
    a, b = replicas
    allowed = a.delete(60)
    a.tick(), b.tick()
    allowed += a.delete(30, start=60)  # not published yet: B cannot know
    allowed += b.delete(41, start=100)  # B: 60 read + 40 of its own
    assert allowed == 100 + 30  # the overshoot: what A admitted within one publish interval
    b.tick(), a.tick()  # B stores its trip; A adopts it
    assert not a.api.allowed("DELETE", "pods", namespace="batch", name="p-300", user=JANITOR)


def test_counts_leave_the_window_on_every_replica_and_old_rows_are_pruned(
        replicas: tuple[Replica, Replica], clock: FakeClock) -> None:
    a, b = replicas
    assert a.delete(90) == 90
    a.tick(), b.tick()
    clock.advance(61)  # A's deletes are out of the window: B counts only its own
    b.tick()
    assert b.delete(100, start=100) == 100
    clock.advance(61)
    b.tick()  # B publishes and prunes rows two windows old (A's 90)
    with b.bot.db.reading() as s:
        replicas_left = {row.replica for row in s.execute(select(GuardDeleteCount)).scalars()}
    assert replicas_left == {b.guard.replica}


def test_a_replica_whose_database_is_down_counts_alone_then_allows_and_counts_it(
        replicas: tuple[Replica, Replica], clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    a, b = replicas

    def database_down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr(b.bot.db, "session", database_down)
    monkeypatch.setattr(b.bot.db, "reading", database_down)
    assert a.delete(60) == 60
    a.tick()
    b.tick()  # cannot read A's 60 (nor publish): B goes on with its own count
    assert b.delete(101, start=100) == 100  # local-only: its own threshold still holds
    assert b.guard.counts[(CLUSTER, "deny", "breaker")] == 1
    clock.advance(11)  # past stale_after_seconds without a read: B answers allow, and counts it
    b.tick()
    assert b.api.allowed("DELETE", "pods", namespace="batch", name="p-500", user=JANITOR)
    assert b.guard.counts[(CLUSTER, "allow", "state-unavailable")] == 1
    assert stored(a.bot)[0] == []  # B could store neither its trip nor its counts
    monkeypatch.undo()  # the database is back: B stores its trip (T0 its first delete) and publishes
    b.tick()
    incidents, breakers, _ = stored(a.bot)
    assert len(incidents) == 1 and incidents[0].started_at == clock.now() - timedelta(seconds=11)
    assert [br.incident_id for br in breakers] == [incidents[0].id]
    a.tick()
    assert not a.api.allowed("DELETE", "pods", namespace="batch", name="p-600", user=JANITOR)


def test_a_trip_stored_by_a_replica_that_stopped_before_opening_the_incident_is_finished_by_another(
        replicas: tuple[Replica, Replica], clock: FakeClock) -> None:
    a, b = replicas
    first_delete = clock.now()
    assert a.delete(101) == 100
    (trip,) = a.guard.breaker.take_new()
    assert a.worker._claim(trip)  # A stored the open breaker, then its process stopped
    b.tick()
    assert not b.api.allowed("DELETE", "pods", namespace="batch", name="p-300", user=JANITOR)  # B denies at once
    assert stored(b.bot)[0] == []  # and waits for A to open the incident
    clock.advance(31)
    b.tick(), b.tick()  # A never did: B opens it, T0 the burst's first delete
    incidents, breakers, trips = stored(b.bot)
    assert len(incidents) == 1 and incidents[0].started_at == first_delete
    assert [br.incident_id for br in breakers] == [incidents[0].id] and len(trips) == 1
    b.tick()
    assert len(stored(b.bot)[2]) == 1  # once


def test_upgrading_keeps_the_earliest_of_duplicate_open_breakers_left_by_replicas_that_counted_alone(
        database_url: str) -> None:
    from bot.core.store import migrate
    from bot.core.store.db import Database

    db = Database(database_url)
    try:
        migrate.upgrade(db, "0012")  # before the shared counts: two replicas each stored a trip of one key
        with db.engine.begin() as conn:
            for tripped in ("2026-11-25 03:00:05", "2026-11-25 03:00:06"):
                conn.exec_driver_sql(
                    "INSERT INTO guard_breakers (cluster, client, resource, first_delete_at, tripped_at, threshold) "
                    f"VALUES ('prod-1', 'janitor', 'pods', '2026-11-25 03:00:00', '{tripped}', 100)")
        migrate.upgrade(db)
        with db.reading() as s:
            rows = list(s.execute(select(GuardBreaker).order_by(col(GuardBreaker.id))).scalars())
        assert [(r.lifted_at is None, r.lifted_by) for r in rows] == [(True, None),
                                                                      (False, "duplicate (migration 0014)")]
    finally:
        db.dispose()
