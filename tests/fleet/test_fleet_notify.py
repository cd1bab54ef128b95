"""A cluster joining an announced incident is notified when a card showing it reaches people, not when it joins."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.conftest import T0
from tests.fleet.test_fleet_incidents import fire


def cluster(client: TestClient, name: str) -> dict[str, Any]:
    return next(c for c in client.get("/api/incidents/INC-1").json()["clusters"] if c["name"] == name)


def test_a_joining_cluster_is_notified_by_the_delivered_card_update(client: TestClient, bot: Bot, chat: MemoryChat,
                                                                     clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=10))
    fire(client, "prod-eu-1")
    chat.pump()
    clock.set(T0 + timedelta(seconds=40))
    chat.deliverer.refuse = True  # chat is down when prod-eu-2 joins
    fire(client, "prod-eu-2", after=35)
    chat.pump()
    assert cluster(client, "prod-eu-2")["notified_at"] is None, "nobody has seen it yet"
    clock.set(T0 + timedelta(seconds=100))
    assert cluster(client, "prod-eu-2")["clocks"]["notify"] == "breached", "65 s after its T0, still unseen"
    chat.deliverer.refuse = False  # chat is back: the card update showing prod-eu-2 goes out
    clock.advance(30)  # past the retry backoff
    chat.pump()
    joined = cluster(client, "prod-eu-2")
    assert joined["notified_at"] == (T0 + timedelta(seconds=130)).isoformat()
    assert joined["state"] == "notified" and joined["clocks"]["notify"] == "breached"
    assert cluster(client, "prod-eu-1")["notified_at"] == (T0 + timedelta(seconds=10)).isoformat()
    assert "cluster prod-eu-2 announced via memory incident.card" in chat.say("carol", "/incident timeline INC-1")
    cards = [m for m in chat.deliverer.delivered if m.kind == "incident.card"]
    assert len(cards) == 3, "the announcement, the update showing prod-eu-2, the update showing it notified"


def test_a_cluster_joining_before_the_announcement_is_notified_by_it(client: TestClient, bot: Bot,
                                                                     chat: MemoryChat, clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=5))
    chat.deliverer.refuse = True
    fire(client, "prod-eu-1")
    clock.advance(10)
    fire(client, "prod-eu-2", after=12)
    chat.pump()
    chat.deliverer.refuse = False
    clock.advance(20)
    chat.pump()
    announced = (T0 + timedelta(seconds=35)).isoformat()
    assert client.get("/api/incidents/INC-1").json()["notified_at"] == announced
    assert [cluster(client, c)["notified_at"] for c in ("prod-eu-1", "prod-eu-2")] == [announced, announced]


def test_a_later_edit_does_not_back_date_a_joined_cluster(client: TestClient, bot: Bot, chat: MemoryChat,
                                                          clock: FakeClock) -> None:
    """Stages of the whole incident reach every cluster, but the announcement only those it showed."""
    clock.set(T0 + timedelta(seconds=5))
    fire(client, "prod-eu-1")
    chat.pump()
    chat.deliverer.refuse = True
    clock.advance(20)
    fire(client, "prod-eu-2", after=20)
    chat.say("alice", "/incident cause etcd disks on the regional storage class", incident=1)
    assert cluster(client, "prod-eu-2")["notified_at"] is None
    assert cluster(client, "prod-eu-2")["diagnosed_at"] == (T0 + timedelta(seconds=25)).isoformat()


def test_the_console_prints_the_card_update_that_notifies_a_joining_cluster(client: TestClient, bot: Bot,
                                                                            clock: FakeClock) -> None:
    import io

    from bot.chat.console import ConsoleDeliverer
    from bot.chat.delivery import OutboxSender

    out = io.StringIO()
    console = OutboxSender(bot.services, ConsoleDeliverer(bot.dispatcher, out))
    fire(client, "prod-eu-1")
    console.tick()
    assert out.getvalue().count("📣") == 1, "the announcement"
    clock.advance(20)
    fire(client, "prod-eu-2", after=5)
    console.tick()
    printed = out.getvalue().split("📣")[-1]
    assert out.getvalue().count("📣") == 2 and "prod-eu-2" in printed, "the update showing prod-eu-2 is printed"
    assert cluster(client, "prod-eu-2")["notified_at"] == clock.now().isoformat()
    clock.advance(5)
    bot.services.incidents.ack("INC-1", actor="alice")
    console.tick()
    assert out.getvalue().count("📣") == 2, "other card updates are seen as timeline lines, as before"
