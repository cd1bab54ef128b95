"""Alertmanager deliveries as the bot sees them: stored, grouped, idempotent, summarised."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from sqlalchemy import func, select
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.config.detection import AlertRule
from bot.core.store.models import Alert, Incident, OutboxMessage, TimelineEvent
from tests.conftest import T0
from tests.detect.payloads import alert, webhook

ETCD = {"job": "etcd"}


def post(client: TestClient, body: Any, **kw: Any) -> Any:
    return client.post("/webhooks/alertmanager", json=body, **kw)


def table_counts(bot: Bot) -> dict[str, int]:
    with bot.db.session() as s:
        return {t.__name__: s.execute(select(func.count()).select_from(t)).scalar_one()
                for t in (Incident, Alert, TimelineEvent, OutboxMessage)}


def incidents(bot: Bot) -> list[Incident]:
    with bot.db.session() as s:
        return list(s.execute(select(Incident).order_by(Incident.id)).scalars())


def events(bot: Bot, kind: str) -> list[TimelineEvent]:
    with bot.db.session() as s:
        return list(s.execute(select(TimelineEvent).where(TimelineEvent.kind == kind).order_by(TimelineEvent.id)).scalars())


def test_a_firing_alert_opens_an_incident_whose_t0_is_its_start(client: TestClient, bot: Bot) -> None:
    started = T0 - timedelta(seconds=2)
    answer = post(client, webhook(alert("EtcdMemberDownFast", started, instance="127.0.0.1:23813", **ETCD)))
    assert answer.status_code == 200
    assert answer.json()["opened"] == ["INC-1"] and answer.json()["stored"] == 1
    (incident,) = incidents(bot)
    assert incident.started_at == started
    assert (incident.severity, incident.cluster, incident.component) == ("sev1", "default", "etcd")
    assert incident.title == "etcd: EtcdMemberDownFast — EtcdMemberDownFast on 127.0.0.1:23813"
    assert incident.source == "alertmanager" and incident.group_key == "default/etcd"


def test_the_announcement_and_page_are_delivered_and_stamp_notified_at(client: TestClient, bot: Bot,
                                                                        chat: MemoryChat) -> None:
    post(client, webhook(alert("EtcdMemberDownFast", T0 - timedelta(seconds=2), instance="m3", **ETCD)))
    bot.clock.advance(0.3)  # type: ignore[attr-defined]
    chat.pump()
    assert chat.deliverer.kinds() == ["incident.card", "page"]
    assert chat.deliverer.delivered[1].payload["user"] == "alice"
    (incident,) = incidents(bot)
    assert incident.state == "notified" and incident.notified_at == T0 + timedelta(seconds=0.3)


def test_without_the_token_the_webhook_answers_401_and_stores_nothing(client: TestClient, bot: Bot) -> None:
    body = webhook(alert("EtcdMemberDownFast", T0, **ETCD))
    before = table_counts(bot)
    no_token = client.post("/webhooks/alertmanager", json=body, headers={"Authorization": ""})
    wrong = client.post("/webhooks/alertmanager", json=body, headers={"Authorization": "Bearer guess"})
    basic = client.post("/webhooks/alertmanager", json=body, headers={"Authorization": "Basic YTpi"})
    assert [r.status_code for r in (no_token, wrong, basic)] == [401, 401, 401]
    assert "bearer token" in wrong.json()["error"]
    assert table_counts(bot) == before


def test_a_payload_sent_twice_creates_nothing_new(client: TestClient, bot: Bot, chat: MemoryChat) -> None:
    body = webhook(alert("EtcdMemberDownFast", T0, instance="m3", **ETCD),
                   alert("etcdNoLeader", T0, instance="m3", **ETCD))
    post(client, body)
    chat.pump()
    after_first = table_counts(bot)
    again = post(client, body)
    assert again.status_code == 200
    assert again.json() == {"received": 2, "stored": 0, "resolved": 0, "unchanged": 2, "opened": [], "joined": {}}
    assert table_counts(bot) == after_first


def test_a_cascade_is_one_incident_not_ten(client: TestClient, bot: Bot, chat: MemoryChat) -> None:
    post(client, webhook(alert("EtcdMemberDownFast", T0, instance="m3", **ETCD)))
    chat.pump()
    bot.clock.advance(2)  # type: ignore[attr-defined]
    post(client, webhook(alert("etcdInsufficientMembers", T0 + timedelta(seconds=1), **ETCD),
                         alert("etcdNoLeader", T0 + timedelta(seconds=1), instance="m1", **ETCD),
                         alert("etcdNoLeader", T0 + timedelta(seconds=1), instance="m2", **ETCD)))
    post(client, webhook(alert("KubeAPIErrorBudgetBurn", T0 + timedelta(seconds=2), job="apiserver"),
                         alert("KubeAPITerminatedRequests", T0 + timedelta(seconds=2), severity="warning",
                               job="apiserver")))
    post(client, webhook(alert("KubeSchedulerDown", T0 + timedelta(seconds=3), job="kube-scheduler")))
    (incident,) = incidents(bot)
    with bot.db.session() as s:
        assert s.execute(select(func.count()).select_from(Alert).where(Alert.incident_id == incident.id)).scalar_one() == 7
    chat.pump()
    notices = [m.payload["text"] for m in chat.deliverer.delivered if m.kind == "notice"]
    assert len(notices) == 1, "three deliveries in a row coalesce into one chat update"
    assert notices[0].startswith("INC-1 alerts: 7 firing, 0 resolved — etcdNoLeader ×2")
    joined = [e.text for e in events(bot, "alerts.firing")]
    assert joined == ["3 more alerts firing: etcdNoLeader ×2, etcdInsufficientMembers",
                      "2 more alerts firing: KubeAPIErrorBudgetBurn, KubeAPITerminatedRequests",
                      "1 more alert firing: KubeSchedulerDown"]


def test_a_cascade_in_one_delivery_opens_at_the_root_component(client: TestClient, bot: Bot) -> None:
    answer = post(client, webhook(alert("KubeAPIDown", T0 - timedelta(seconds=5), job="apiserver"),
                                  alert("etcdMembersDown", T0 - timedelta(seconds=1), **ETCD)))
    assert answer.json()["opened"] == ["INC-1"]
    (incident,) = incidents(bot)
    assert incident.component == "etcd"
    assert incident.started_at == T0 - timedelta(seconds=5), "T0 is the earliest startsAt of its alerts"


def test_other_clusters_and_components_are_other_incidents(client: TestClient, bot: Bot) -> None:
    post(client, webhook(alert("etcdNoLeader", T0, cluster="prod-1", **ETCD)))
    post(client, webhook(alert("etcdNoLeader", T0, cluster="prod-2", **ETCD)))
    post(client, webhook(alert("KubeAPIDown", T0, cluster="prod-2", job="apiserver")))  # joins prod-2 etcd
    post(client, webhook(alert("CoreDNSDown", T0, cluster="prod-1", job="coredns")))
    assert [(i.cluster, i.component) for i in incidents(bot)] == [
        ("prod-1", "etcd"), ("prod-2", "etcd"), ("prod-1", "dns")]


def test_each_alert_s_own_status_is_read_in_a_mixed_group(client: TestClient, bot: Bot) -> None:
    m2 = alert("EtcdMemberDownFast", T0, instance="m2", **ETCD)
    m3 = alert("EtcdMemberDownFast", T0, instance="m3", **ETCD)
    post(client, webhook(m2, m3))
    bot.clock.advance(20)  # type: ignore[attr-defined]
    m2_resolved = {**m2, "status": "resolved", "endsAt": "2026-11-25T03:00:20.000Z"}
    mixed = webhook(m2_resolved, m3)
    assert mixed["status"] == "firing"
    answer = post(client, mixed)
    assert answer.json()["resolved"] == 1 and answer.json()["unchanged"] == 1
    with bot.db.session() as s:
        statuses = {a.labels["instance"]: a.status for a in s.execute(select(Alert)).scalars()}
    assert statuses == {"m2": "resolved", "m3": "firing"}
    assert [e.text for e in events(bot, "alert.resolved")] == ["alert EtcdMemberDownFast resolved (m2)"]
    assert events(bot, "alerts.all_resolved") == []


def test_when_every_alert_resolved_the_commander_is_offered_to_resolve(client: TestClient, bot: Bot,
                                                                       chat: MemoryChat) -> None:
    down = alert("EtcdMemberDownFast", T0, instance="m3", **ETCD)
    post(client, webhook(down))
    chat.pump()
    chat.say("bob", "/incident ack INC-1")
    bot.clock.advance(30)  # type: ignore[attr-defined]
    resolved = webhook({**down, "status": "resolved", "endsAt": "2026-11-25T03:00:29.000Z"})
    post(client, resolved)
    post(client, resolved)  # Alertmanager re-sends: one offer, not two
    chat.pump()
    offers = [m.payload for m in chat.deliverer.delivered if m.payload.get("offer") == "resolve"]
    assert len(offers) == 1 and offers[0]["user"] == "bob"
    assert offers[0]["text"].startswith("All 1 alert of INC-1 have resolved, @bob. A resolved alert is not proof")
    (incident,) = incidents(bot)
    assert incident.state == "notified", "resolution is the commander's call, never automatic"
    assert [e.text for e in events(bot, "alert.resolved")] == ["alert EtcdMemberDownFast resolved (m3)"]


def test_after_a_quiet_window_a_new_fault_is_a_new_incident(client: TestClient, bot: Bot) -> None:
    down = alert("EtcdMemberDownFast", T0, instance="m3", **ETCD)
    post(client, webhook(down))
    post(client, webhook({**down, "status": "resolved", "endsAt": "2026-11-25T03:00:30.000Z"}))
    bot.clock.advance(bot.settings.alerting.group_window_seconds - 5)  # type: ignore[attr-defined]
    post(client, webhook(alert("etcdNoLeader", bot.clock.now(), instance="m1", **ETCD)))
    assert len(incidents(bot)) == 1, "within the window: joins"
    bot.clock.advance(bot.settings.alerting.group_window_seconds + 5)  # type: ignore[attr-defined]
    post(client, webhook({**alert("etcdNoLeader", T0 + timedelta(seconds=595), instance="m1", **ETCD),
                          "status": "resolved"}))
    post(client, webhook(alert("EtcdMemberDownFast", bot.clock.now(), instance="m2", **ETCD)))
    assert len(incidents(bot)) == 2, "after a quiet window: a new incident"


def test_alert_rules_decide_severity_component_cluster_and_who_is_paged(client: TestClient, bot: Bot,
                                                                       chat: MemoryChat) -> None:
    bot.settings.alerting.rules = [
        AlertRule(match={"team": "storage"}, match_re={"alertname": "Disk.*"}, severity="sev1",
                  component="etcd", cluster="prod-9", page=["dave"]),
    ]
    post(client, webhook(alert("DiskAlmostFull", T0, severity="warning", team="storage")))
    post(client, webhook(alert("DiskAlmostFull", T0, severity="warning", team="compute", instance="n1")))
    first, second = incidents(bot)
    assert (first.severity, first.component, first.cluster) == ("sev1", "etcd", "prod-9")
    assert (second.severity, second.component, second.cluster) == ("sev2", "other", "default")
    chat.pump()
    pages = [(m.incident_id, m.payload["user"]) for m in chat.deliverer.delivered if m.kind == "page"]
    assert pages == [(1, "alice"), (1, "dave"), (2, "alice")]


def test_a_more_severe_joining_alert_raises_the_incident(client: TestClient, bot: Bot) -> None:
    post(client, webhook(alert("etcdHighFsyncDurations", T0, severity="warning", **ETCD)))
    post(client, webhook(alert("etcdNoLeader", T0 + timedelta(seconds=3), **ETCD)))
    (incident,) = incidents(bot)
    assert incident.severity == "sev1"
    assert [e.text for e in events(bot, "incident.severity_raised")] == [
        "severity sev2 → sev1: etcdNoLeader is sev1"]


def test_malformed_payloads_get_400_naming_the_field_and_change_nothing(client: TestClient, bot: Bot) -> None:
    good = alert("etcdNoLeader", T0, **ETCD)
    cases = {
        "version": {**webhook(good), "version": "3"},
        "alerts": {**webhook(good), "alerts": "none"},
        "alerts[1].startsAt": webhook(good, {**good, "startsAt": "yesterday"}),
        "alerts[0].status": webhook({**good, "status": "pending"}),
        "alerts[0].labels.alertname": webhook({**good, "labels": {"job": "etcd"}}),
        "alerts[0].labels.severity": webhook({**good, "labels": {"alertname": "x", "severity": 1}}),
    }
    before = table_counts(bot)
    for field, body in cases.items():
        answer = post(client, body)
        assert answer.status_code == 400, field
        assert f": {field}: expected" in answer.json()["error"], answer.json()
    not_json = client.post("/webhooks/alertmanager", content=b"{not json", headers={"Content-Type": "application/json"})
    assert not_json.status_code == 400 and "(body): not JSON" in not_json.json()["error"]
    assert table_counts(bot) == before


def test_alerts_are_on_metrics(client: TestClient, bot: Bot) -> None:
    post(client, webhook(alert("etcdNoLeader", T0, **ETCD)))
    post(client, webhook(alert("etcdNoLeader", T0, **ETCD)))  # Alertmanager's re-send: stored once
    metrics = client.get("/metrics").text
    assert 'incident_bot_alerts{status="firing"} 1.0' in metrics
    assert "incident_bot_alert_deliveries_total 2.0" in metrics  # each delivery answered after its transaction
    assert "incident_bot_alert_delivery_batches_total 2.0" in metrics  # one at a time: each its own


def test_racing_deliveries_of_one_cascade_still_make_one_incident(client: TestClient, bot: Bot) -> None:
    # Alertmanager sends groups in parallel: the apiserver's alerts may land before etcd's
    post(client, webhook(alert("KubeAPIErrorRatioHigh", T0 + timedelta(seconds=2), job="apiserver")))
    post(client, webhook(alert("EtcdMemberDown", T0, instance="m3", **ETCD)))
    post(client, webhook(alert("KubeAPITerminatedRequests", T0 + timedelta(seconds=3), job="apiserver")))
    (incident,) = incidents(bot)
    assert incident.started_at == T0
    assert (incident.component, incident.group_key) == ("etcd", "default/etcd"), "the incident is about the root"
    assert [e.text for e in events(bot, "incident.component_changed")] == [
        "component apiserver → etcd: EtcdMemberDown shows the apiserver alerts are downstream of etcd"]


def test_an_old_downstream_incident_is_not_joined_by_a_new_root_fault(client: TestClient, bot: Bot) -> None:
    post(client, webhook(alert("KubeAPIErrorRatioHigh", T0, job="apiserver")))
    bot.clock.advance(bot.settings.alerting.group_window_seconds + 60)  # type: ignore[attr-defined]
    post(client, webhook(alert("EtcdMemberDown", bot.clock.now(), instance="m3", **ETCD)))
    assert [i.component for i in incidents(bot)] == ["apiserver", "etcd"]


def test_a_bad_alert_rule_stops_the_bot_at_start_naming_the_setting() -> None:
    import pytest

    from bot.core.config import load_settings
    from bot.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"alerting\.rules\.0\.severity: .*expected one of sev1, sev2, sev3"):
        load_settings(environ={"INCIDENT_BOT_ALERTING__RULES": "[{severity: critical}]"})
    with pytest.raises(ConfigError, match=r"alerting\.rules\.0\.match_re: .*alertname: '\(' is not a regular"):
        load_settings(environ={"INCIDENT_BOT_ALERTING__RULES": "[{match_re: {alertname: '('}}]"})


def test_once_a_cause_is_recorded_the_incident_keeps_its_component(client: TestClient, bot: Bot) -> None:
    post(client, webhook(alert("KubeAPIErrorRatioHigh", T0, job="apiserver")))
    bot.services.incidents.cause("INC-1", "a CI robot lists all pods", actor="alice")
    post(client, webhook(alert("EtcdHighCommitDurations", T0 + timedelta(seconds=30), severity="warning", **ETCD)))
    (incident,) = incidents(bot)
    assert incident.component == "apiserver" and events(bot, "incident.component_changed") == []


def test_an_alert_is_received_when_the_webhook_arrives_not_when_the_writer_gets_to_it(
        client: TestClient, bot: Bot, monkeypatch: Any) -> None:
    # the delivery waits 1.2 s for the store's writer (a storm, a slow disk): that wait is the bot's own
    # time, so received_at keeps the arrival and the drills' scorecards book the wait to the bot
    from bot.compose.app.webhooks import ALERTS

    ingestor = bot.services.extras.need(ALERTS)
    original = ingestor.ingest_many

    def after_a_wait(notifications: Any) -> Any:
        bot.clock.advance(1.2)  # type: ignore[attr-defined]
        return original(notifications)

    monkeypatch.setattr(ingestor, "ingest_many", after_a_wait)
    assert post(client, webhook(alert("EtcdMemberDownFast", T0 - timedelta(seconds=2), **ETCD))).status_code == 200
    (incident,) = incidents(bot)
    with bot.db.session() as s:
        (stored,) = s.execute(select(Alert)).scalars()
    assert stored.received_at == T0 and incident.detected_at == T0 + timedelta(seconds=1.2)
