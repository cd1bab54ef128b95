"""The mass-deletion circuit breaker: a runaway client is stopped at the threshold, an incident opens."""

from __future__ import annotations

from sqlalchemy import select

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Alert, Incident
from tests.guard.conftest import Apiserver

JANITOR = "system:serviceaccount:batch:janitor"


def delete_pods(apiserver: Apiserver, n: int, *, user: str = JANITOR, start: int = 0) -> list[bool]:
    return [apiserver.allowed("DELETE", "pods", namespace="batch", name=f"p-{i}", user=user)
            for i in range(start, start + n)]


def test_deletes_past_the_threshold_are_denied_and_an_incident_opens_at_the_first_delete(
        gchat: MemoryChat, apiserver: Apiserver, guarded: Bot, clock: FakeClock) -> None:
    gchat.pump()  # the guard's first read of the incident state (serve does it at start)
    first_delete = clock.now()
    assert all(delete_pods(apiserver, 60))
    clock.advance(20)
    gchat.pump()  # the guard re-reads its state every second
    assert all(delete_pods(apiserver, 40, start=60))  # 100 within 60 s: still allowed
    clock.advance(1)
    gchat.pump()
    denied = apiserver.send("DELETE", "pods", namespace="batch", name="p-100", user=JANITOR)
    assert denied["allowed"] is False
    assert (f"mass-deletion circuit breaker open on cluster prod-1: {JANITOR} deleted 100 pods within 60s "
            f"(first at {first_delete.isoformat(timespec='seconds')})") in denied["status"]["message"]
    assert not any(delete_pods(apiserver, 20, start=101))
    assert apiserver.allowed("DELETE", "pods", namespace="apps", name="web-1", user="alice")  # others go on
    gchat.pump()
    with guarded.db.session() as s:
        incident = s.execute(select(Incident)).scalars().one()
        alert = s.execute(select(Alert)).scalars().one()
    assert incident.started_at == first_delete and incident.cluster == "prod-1" and incident.severity == "sev1"
    assert alert.labels["client"] == JANITOR and alert.alertname == "KubeMassDeletionBlocked"
    timeline = gchat.say("carol", "/incident timeline INC-1")
    assert (f"admission guard: mass-deletion breaker tripped on prod-1: {JANITOR} deleted 100 pods within 60s "
            f"from {first_delete.isoformat(timespec='seconds')}") in timeline
    assert f"admission guard denied 21 writes since 03:00:21: 21 DELETE pods by {JANITOR} (breaker)" in timeline
    # the denial now names the incident, and only its commander lifts the breaker
    assert "until the commander of INC-1 lifts" in apiserver.send("DELETE", "pods", name="p-200", user=JANITOR,
                                                                  namespace="batch")["status"]["message"]
    assert gchat.say("alice", "/incident guard lift INC-1") == (
        "the commander lifts the breaker: take the incident first (`/incident ack`).")
    gchat.say("carol", "/incident ack INC-1")
    assert gchat.say("alice", "/incident guard lift INC-1") == (
        "only the commander @carol can lift the mass-deletion breaker.")
    assert "breaker open: deletes of pods by " + JANITOR in gchat.say("carol", "/incident guard status INC-1")
    assert gchat.say("carol", "/incident guard lift INC-1") == (
        f"mass-deletion breaker lifted by @carol on prod-1: deletes of pods by {JANITOR} allowed again")
    assert all(delete_pods(apiserver, 5, start=300))


def test_the_cluster_wide_breaker_stops_many_clients_together(gchat: MemoryChat, apiserver: Apiserver,
                                                               guarded: Bot) -> None:
    gchat.pump()
    for n in range(4):  # four controllers, 75 each: none past its own threshold, 300 together
        assert all(delete_pods(apiserver, 75, user=f"controller-{n}", start=n * 100))
    assert not apiserver.allowed("DELETE", "pods", namespace="batch", name="last", user="controller-9")
    gchat.pump()
    with guarded.db.session() as s:
        alert = s.execute(select(Alert)).scalars().one()
    assert alert.labels["scope"] == "cluster" and alert.labels["client"] == "controller-0"


def test_the_breaker_survives_a_restart_of_the_bot(gchat: MemoryChat, apiserver: Apiserver, guarded: Bot) -> None:
    gchat.pump()
    delete_pods(apiserver, 101)
    gchat.pump()
    guarded.services.extras["guard"].breaker._tripped.clear()  # a fresh replica: nothing in memory
    gchat.pump()  # reads the open breaker from the database
    assert not apiserver.allowed("DELETE", "pods", namespace="batch", name="again", user=JANITOR)


def test_audit_mode_counts_and_warns_but_never_denies(guard_settings, clock: FakeClock) -> None:  # type: ignore[no-untyped-def]
    from starlette.testclient import TestClient

    from bot.compose.app.bot import build_bot

    guard_settings.guard.mode = "audit"
    bot = build_bot(guard_settings, clock=clock)
    try:
        chat = MemoryChat(bot.dispatcher, workers=bot.workers)
        chat.pump()
        with TestClient(bot.services.extras["guard_app"]) as client:
            api = Apiserver(client)
            assert all(delete_pods(api, 150))
            answer = api.send("DELETE", "pods", namespace="batch", name="p-x", user=JANITOR)
            assert answer["allowed"] is True and answer["warnings"][0].startswith(
                "would be denied (audit mode): incident-bot admission guard: mass-deletion circuit breaker")
        counts = bot.services.extras["guard"].counts
        assert counts[("prod-1", "allow", "no-incident")] == 100 and counts[("prod-1", "would-deny", "breaker")] == 51
    finally:
        bot.close()


def test_a_pod_reviewed_twice_for_one_deletion_counts_once(gchat: MemoryChat, apiserver: Apiserver) -> None:
    gchat.pump()
    for i in range(100):  # the graceful delete and the final one: two reviews of one object
        assert apiserver.allowed("DELETE", "pods", namespace="batch", name=f"p-{i}", user=JANITOR)
        assert apiserver.allowed("DELETE", "pods", namespace="batch", name=f"p-{i}", user=JANITOR)
    assert not apiserver.allowed("DELETE", "pods", namespace="batch", name="p-100", user=JANITOR)
    assert apiserver.allowed("DELETE", "pods", namespace="batch", name="p-99", user=JANITOR)  # its last review
