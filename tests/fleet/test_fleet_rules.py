"""The fleet join rule as shipped (alert name + `region`, 5 minutes), and what split and merge do with clusters."""

from __future__ import annotations

from datetime import timedelta

from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.conftest import T0
from tests.detect.payloads import alert, webhook
from tests.fleet.test_fleet_incidents import fire


def test_by_default_the_same_alert_and_region_within_five_minutes_of_t0_join(client: TestClient, bot: Bot,
                                                                            settings: Settings) -> None:
    fleet = settings.alerting.fleet
    assert (fleet.enabled, fleet.match_labels, fleet.window_seconds) == (True, ["alertname", "region"], 300)
    assert fire(client, "prod-eu-1")["opened"] == ["INC-1"]
    assert fire(client, "prod-eu-2", after=300)["joined"] == {"INC-1": 1}, "exactly 5 minutes after T0"
    assert fire(client, "prod-eu-3", after=301)["opened"] == ["INC-2"], "one second later: a fault of its own"
    no_region = webhook(alert("EtcdHighFsyncDurations", T0, cluster="prod-eu-4", component="etcd"))
    assert client.post("/webhooks/alertmanager", json=no_region).json()["opened"] == ["INC-3"], \
        "an alert without a region label is never part of a fleet"


def test_a_split_cluster_pages_its_own_on_call(client: TestClient, bot: Bot, chat: MemoryChat,
                                               clock: FakeClock) -> None:
    fire(client, "prod-eu-1")
    fire(client, "prod-eu-2", after=10)
    chat.pump()
    chat.say("alice", "/incident split prod-eu-2", incident=1)
    pages = [(m.incident_id, m.payload["user"]) for m in chat.deliverer.delivered if m.kind == "page"]
    assert pages == [(1, "alice"), (2, "alice")], "the new incident pages the on-call like any new incident"
    assert bot.services.incidents.get("INC-2").notified_at == clock.now()


def test_merging_a_fleet_incident_brings_its_clusters_and_their_facts(client: TestClient, bot: Bot,
                                                                      chat: MemoryChat, clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=20))
    fire(client, "prod-eu-1")
    fire(client, "prod-us-1", region="us-east")
    fire(client, "prod-us-2", region="us-east", after=15)
    chat.pump()
    chat.say("alice", "/incident cluster prod-us-2 diagnosed its etcd volume is full", incident=2)
    assert chat.say("alice", "/incident merge INC-1 INC-2").startswith("INC-2 is merged into INC-1")
    clusters = {c["name"]: c for c in client.get("/api/incidents/INC-1").json()["clusters"]}
    assert sorted(clusters) == ["prod-eu-1", "prod-us-1", "prod-us-2"]
    assert clusters["prod-us-2"]["started_at"] == (T0 + timedelta(seconds=15)).isoformat()
    assert clusters["prod-us-2"]["diagnosed_at"] == (T0 + timedelta(seconds=20)).isoformat()
    assert clusters["prod-us-1"]["diagnosed_at"] is None


def test_a_cluster_joining_after_the_cause_or_the_mitigation_is_not_counted_as_done(
        client: TestClient, bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    def late(name: str) -> tuple[str | None, str | None, str | None]:
        row = next(c for c in client.get("/api/incidents/INC-1").json()["clusters"] if c["name"] == name)
        return row["notified_at"], row["diagnosed_at"], row["mitigated_at"]

    def at(seconds: int) -> str:
        return (T0 + timedelta(seconds=seconds)).isoformat()

    clock.set(T0 + timedelta(seconds=10))
    fire(client, "prod-eu-1")
    chat.pump()
    chat.say("alice", "/incident ack", incident=1)
    chat.say("alice", "/incident cause etcd disks on the regional storage class", incident=1)
    clock.advance(60)
    fire(client, "prod-eu-2", after=65)  # the same fault reaches another cluster after the cause was found
    chat.pump()
    assert late("prod-eu-2") == (at(70), None, None), "told about it; nobody looked at it yet"
    clock.advance(15)
    chat.say("alice", "/incident cause etcd disks on the regional storage class, prod-eu-2 too", incident=1)
    assert late("prod-eu-2") == (at(70), at(85), None), "the cause stated again reaches it"
    chat.say("alice", "/incident mitigated", incident=1)
    clock.advance(10)
    fire(client, "prod-eu-3", after=90)  # and another one after the mitigation
    chat.pump()
    assert late("prod-eu-3") == (at(95), None, None)
    assert [late(c)[2] for c in ("prod-eu-1", "prod-eu-2")] == [at(85), at(85)]
    status = chat.say("alice", "/incident status INC-1")
    assert "3 clusters; 1-5-10 overall (the worst cluster): running" in status
    assert chat.say("alice", "/incident cluster prod-eu-3 mitigated", incident=1) == \
        "Cluster prod-eu-3 of INC-1 is mitigated."
