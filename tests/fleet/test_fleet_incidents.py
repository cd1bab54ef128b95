"""A regional fault across clusters is one incident, with 1-5-10 facts and verdicts per cluster."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from typing import Any

import jsonschema

from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import export_incident
from bot.core.store.models import Alert, Incident
from tests.conftest import T0
from tests.detect.payloads import alert, webhook


def fire(client: TestClient, cluster: str, *, name: str = "EtcdHighFsyncDurations", region: str = "eu-west",
         after: float = 0.0) -> dict[str, Any]:
    body = webhook(alert(name, T0 + timedelta(seconds=after), cluster=cluster, region=region, component="etcd",
                         instance=f"{cluster}-etcd-0"), group=f'{{}}:{{cluster="{cluster}"}}')
    answer = client.post("/webhooks/alertmanager", json=body)
    assert answer.status_code == 200, answer.text
    return answer.json()


def incident_ids(bot: Bot) -> list[int]:
    with bot.db.session() as s:
        return [i.id for i in s.query(Incident).order_by(Incident.id)]  # type: ignore[misc]


def test_the_same_alert_in_three_clusters_of_a_region_is_one_incident(client: TestClient, bot: Bot,
                                                                     chat: MemoryChat, clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=20))
    assert fire(client, "prod-eu-1")["opened"] == ["INC-1"]
    chat.pump()  # announced at once: prod-eu-1 is notified 20 s after its T0
    clock.advance(30)
    assert fire(client, "prod-eu-2", after=40)["joined"] == {"INC-1": 1}
    chat.pump()  # the card update showing prod-eu-2 is delivered: it is notified now, 10 s after its T0
    clock.advance(60)
    assert fire(client, "prod-eu-3", after=100)["joined"] == {"INC-1": 1}
    assert fire(client, "prod-us-1", region="us-east", after=100)["opened"] == ["INC-2"], "another region"
    assert fire(client, "prod-eu-4", name="KubeAPIErrorsHigh", after=100)["opened"] == ["INC-3"], "another alert"
    chat.pump()
    status = chat.say("carol", "/incident status INC-1")
    assert "3 clusters; 1-5-10 overall (the worst cluster): running" in status
    lines = [line.split() for line in status.splitlines() if line.strip().startswith("prod-eu-")]
    assert [(cells[0], cells[2], cells[3]) for cells in lines] == [
        ("prod-eu-1", "03:00:00", "+20s"), ("prod-eu-2", "03:00:40", "+10s"), ("prod-eu-3", "03:01:40", "+10s")]
    api = client.get("/api/incidents/INC-1").json()
    assert [c["name"] for c in api["clusters"]] == ["prod-eu-1", "prod-eu-2", "prod-eu-3"]
    assert api["clusters"][1]["started_at"] == (T0 + timedelta(seconds=40)).isoformat()
    assert set(api["clusters"][0]) >= {"name", "state", "started_at", "notified_at", "diagnosed_at", "mitigated_at"}
    assert "cluster prod-eu-2 joined INC-1" in chat.say("carol", "/incident timeline INC-1")


def test_one_delivery_holding_several_clusters_opens_one_incident(client: TestClient, bot: Bot) -> None:
    alerts = [alert("EtcdHighFsyncDurations", T0 + timedelta(seconds=i), cluster=f"prod-eu-{i}", region="eu-west",
                    component="etcd") for i in (1, 2, 3)]
    assert client.post("/webhooks/alertmanager", json=webhook(*alerts)).json()["opened"] == ["INC-1"]
    assert len(client.get("/api/incidents/INC-1").json()["clusters"]) == 3


def test_outside_the_window_a_region_gets_a_new_incident(client: TestClient, bot: Bot, clock: FakeClock) -> None:
    bot.settings.alerting.fleet.window_seconds = 60
    fire(client, "prod-eu-1")
    assert fire(client, "prod-eu-2", after=61)["opened"] == ["INC-2"]
    bot.settings.alerting.fleet.enabled = False
    assert fire(client, "prod-eu-3")["opened"] == ["INC-3"], "fleets switched off: one incident per cluster"


def test_verdicts_per_cluster_and_overall_the_worst(client: TestClient, bot: Bot, chat: MemoryChat,
                                                    clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=5))
    fire(client, "prod-eu-1")
    fire(client, "prod-eu-2", after=1)
    chat.pump()
    clock.advance(120)
    assert chat.say("alice", "/incident cluster prod-eu-1 diagnosed etcd disk on a slow volume", incident=1) == \
        "Cluster prod-eu-1 of INC-1 is diagnosed."
    clock.set(T0 + timedelta(seconds=400))
    status = chat.say("alice", "/incident status INC-1")
    assert "1-5-10 overall (the worst cluster): breached" in status
    rows = {line.split()[0]: line for line in status.splitlines() if line.strip().startswith("prod-eu-")}
    assert "+2m05s" in rows["prod-eu-1"] and rows["prod-eu-1"].rstrip().endswith("… running")
    assert rows["prod-eu-2"].rstrip().endswith("✗ breached"), "not diagnosed after 6m39s"
    assert chat.say("alice", "/incident cluster prod-eu-9 mitigated", incident=1) == \
        "INC-1 has no cluster `prod-eu-9`; its clusters: prod-eu-1, prod-eu-2."
    assert chat.say("alice", "/incident cluster prod-eu-1 resolved", incident=1) == \
        "a cluster can be marked diagnosed or mitigated, not `resolved`."
    chat.say("alice", "/incident cause etcd disks on the regional storage class", incident=1)
    api = client.get("/api/incidents/INC-1").json()
    first, second = api["clusters"]
    assert first["diagnosed_at"] == (T0 + timedelta(seconds=125)).isoformat(), "its own diagnosis stands"
    assert second["diagnosed_at"] == (T0 + timedelta(seconds=400)).isoformat(), "the incident's cause reached it"


def test_a_cluster_split_out_takes_its_alerts_to_its_own_incident(client: TestClient, bot: Bot,
                                                                  chat: MemoryChat, clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=60))
    fire(client, "prod-eu-1")
    fire(client, "prod-eu-2", after=30)
    chat.pump()
    clock.advance(40)
    chat.say("alice", "/incident cluster prod-eu-2 diagnosed its own etcd volume is full", incident=1)
    clock.advance(20)
    assert chat.say("alice", "/incident split prod-eu-2", incident=1) == \
        "Cluster prod-eu-2 is split out of INC-1 into INC-2."
    carried = client.get("/api/incidents/INC-2").json()["clusters"]
    assert [(c["name"], c["notified_at"], c["diagnosed_at"]) for c in carried] == [
        ("prod-eu-2", (T0 + timedelta(seconds=60)).isoformat(), (T0 + timedelta(seconds=100)).isoformat())], \
        "its facts go with it"
    new = bot.services.incidents.get("INC-2")
    assert (new.cluster, new.started_at) == ("prod-eu-2", T0 + timedelta(seconds=30))
    with bot.db.session() as s:
        assert {a.cluster: a.incident_id for a in s.query(Alert)} == {"prod-eu-1": 1, "prod-eu-2": 2}
    assert [c["name"] for c in client.get("/api/incidents/INC-1").json()["clusters"]] == ["prod-eu-1"]
    assert chat.say("alice", "/incident split prod-eu-1", incident=1) == \
        "INC-1 has only cluster prod-eu-1; there is nothing to split it from."
    assert client.get("/api/incidents/INC-2").json()["links"] == [{"incident": "INC-1", "relation": "related"}]


def test_the_post_mortem_shows_each_cluster_and_the_acknowledgement(client: TestClient, bot: Bot, chat: MemoryChat,
                                                                    clock: FakeClock) -> None:
    clock.set(T0 + timedelta(seconds=10))
    fire(client, "prod-eu-1")
    chat.pump()
    fire(client, "prod-eu-2", after=5)
    clock.advance(50)
    chat.say("alice", "/incident ack", incident=1)
    doc = json.loads(export_incident(bot.db, bot.settings, "INC-1", fmt="json").content)  # type: ignore[arg-type]
    schema = json.loads((Path(__file__).parents[2] / "bot/domain/export/schema/postmortem-v2.json").read_text())
    jsonschema.validate(doc, schema)
    assert [(c["name"], c["started_at"]) for c in doc["slo"]["clusters"]] == [
        ("prod-eu-1", T0.isoformat()), ("prod-eu-2", (T0 + timedelta(seconds=5)).isoformat())]
    assert (doc["slo"]["acknowledged_by"], doc["slo"]["acknowledged_at"]) == ("alice", clock.now().isoformat())
    markdown = export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    assert "### Clusters (2)" in markdown and "| prod-eu-2 |" in markdown  # type: ignore[operator]
    assert "page acknowledged by @alice via chat:memory" in markdown  # type: ignore[operator]
    html = export_incident(bot.db, bot.settings, "INC-1", fmt="html").content
    assert "<td>prod-eu-2</td>" in html  # type: ignore[operator]
