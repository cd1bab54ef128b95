"""Evidence frozen at T0 and the changes before it, as the commander and the reviewer see them.

The bot is the whole bot (every extension) with its diagnosis clients pointed at the fakes of
Prometheus, the Kubernetes API, etcd and the apiservers' /readyz; the clock is a FakeClock, so
"five minutes after T0" is one ``advance``.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.chat.cards import card
from bot.chat.memory import MemoryChat
from bot.chat.render_text import render
from bot.core.clock import FakeClock
from bot.domain.diagnosis.changes import WATCHED, ChangeRecorder
from bot.domain.diagnosis.fakes import FakeEtcd, FakeHttp, cluster_config
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.export import export_incident
from bot.core.store.models import EvidenceSection
from integrations.clients.kubernetes.fake import FakeKubernetes
from integrations.clients.prometheus.fake import FakePrometheus

MAIN = "https://main-1:6443"
ETCD = ("http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379")
VWC = next(w for w in WATCHED if w.kind == "ValidatingWebhookConfiguration")


@pytest.fixture
def world(bot: Bot) -> dict[str, Any]:
    prometheus = FakePrometheus()
    kube = FakeKubernetes()
    etcd = FakeEtcd(ETCD)
    http = FakeHttp({MAIN + "/readyz?verbose": 200})
    access = ClusterAccess("prod-1", cluster_config(main=[MAIN], etcd=ETCD), metrics=prometheus, kubernetes=kube,
                           etcd=etcd, http=http)
    diagnoser = bot.services.extras["diagnoser"]
    diagnoser.backends = lambda name: access if name == "prod-1" else ClusterAccess(name)
    bot.settings.diagnosis.auto = False  # these tests are about the evidence, not the diagnosis
    return {"bot": bot, "prometheus": prometheus, "kube": kube, "etcd": etcd}


def sections(bot: Bot) -> dict[str, EvidenceSection]:
    with bot.db.reading() as session:
        return {r.section: r for r in session.query(EvidenceSection).all()}


def test_the_snapshot_is_taken_at_once_and_prometheus_once_its_window_is_complete(
        world: dict[str, Any], chat: MemoryChat, clock: FakeClock) -> None:
    bot = world["bot"]
    # the series the fitting procedure (here the fallback, control-plane-triage) names
    rejected = "sum by (flow_schema, priority_level) (rate(apiserver_flowcontrol_rejected_requests_total[1m]))"
    t0 = clock.now().timestamp()
    world["prometheus"].set(rejected, [({"priority_level": "workload-low"}, [(t0 - 60, "0"), (t0, "12.5")])])
    chat.say("alice", "/incident declare writes fail --cluster prod-1")
    answer = chat.say("alice", "/incident evidence")
    assert "etcd: leader 1, term 2, 3/3 members healthy" in answer
    assert f"readyz: {MAIN} 200" in answer
    assert "apf: 0 FlowSchemas, 0 priority levels" in answer
    assert "prometheus" not in answer  # [T0 - 15 min, T0 + 5 min] is not complete yet
    assert "Changed before T0: nothing seen in the 30 minutes before." in answer

    clock.advance(301)
    chat.pump()
    answer = chat.say("alice", "/incident evidence")
    assert "prometheus: 1 series of 1 queries over 02:45:00–03:05:00 UTC" in answer
    stored = sections(bot)["prometheus"]
    assert stored.window_end - stored.window_start == timedelta(minutes=20)  # type: ignore[operator]
    html = export_incident(bot.db, bot.settings, "INC-1", fmt="html").content
    assert 'class="sparkline"' in html and "<h2>Evidence at T0</h2>" in html


def test_sources_down_at_t0_are_recorded_gaps_and_what_is_stored_never_changes(
        world: dict[str, Any], chat: MemoryChat, clock: FakeClock) -> None:
    world["prometheus"].down = True
    world["etcd"].down = set(ETCD)
    world["kube"].fail("list_objects")
    chat.say("alice", "/incident declare etcd gone --cluster prod-1")
    clock.advance(301)
    chat.pump()
    answer = chat.say("alice", "/incident evidence")
    assert "etcd: evidence unavailable: etcd: no member answered: http://etcd-1:2379" in answer
    assert "prometheus: evidence unavailable: sum by (flow_schema, priority_level) (rate(apiserver_flowcontrol_" \
           "rejected_requests_total[1m])): Prometheus at http://fake-prometheus:9090 is unreachable" in answer
    assert "events: evidence unavailable: Kubernetes Events:" in answer
    assert "State         notified" in chat.say("alice", "/incident status")  # the incident went on regardless

    world["etcd"].down = set()  # etcd is back: the evidence of T0 stays what T0 looked like
    clock.advance(60)
    chat.pump()
    assert "etcd: evidence unavailable" in chat.say("alice", "/incident evidence")
    doc = json.loads(export_incident(world["bot"].db, world["bot"].settings, "INC-1", fmt="json").content)
    gaps = {s["section"]: s["error"] for s in doc["evidence_at_t0"] if s["status"] == "unavailable"}
    assert set(gaps) >= {"etcd", "prometheus", "events", "apf"}


def test_evidence_over_the_size_cap_is_cut_and_the_cut_recorded(
        world: dict[str, Any], chat: MemoryChat) -> None:
    bot, kube = world["bot"], world["kube"]
    bot.settings.evidence.max_bytes = 4096
    kube.create_object({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "kube-system"}}, exist_ok=True)
    for i in range(200):
        kube.create_object({"apiVersion": "v1", "kind": "Event", "metadata": {"name": f"e{i}", "namespace": "kube-system"},
                            "type": "Warning", "reason": "FailedCallingWebhook", "lastTimestamp": f"2026-01-01T00:00:{i % 60:02d}Z",
                            "involvedObject": {"kind": "Pod", "name": f"p{i}"}, "message": "x" * 100})
    chat.say("alice", "/incident declare noisy --cluster prod-1")
    events = sections(bot)["events"]
    assert events.status == "truncated" and events.size_bytes <= 4096 * 0.15
    assert events.data["truncated"]["dropped"]["events"] == 50 - len(events.data["events"])
    assert "(truncated to the size cap)" in chat.say("alice", "/incident evidence")


def test_a_change_before_t0_is_on_the_card_the_timeline_the_chat_and_the_export(
        world: dict[str, Any], chat: MemoryChat, clock: FakeClock) -> None:
    bot = world["bot"]
    recorder = ChangeRecorder(bot.db, "prod-1", clock)
    recorder.observe(VWC, [])  # the watch's first listing: nothing there
    created = (clock.now() - timedelta(seconds=130)).strftime("%Y-%m-%dT%H:%M:%SZ")
    recorder.observe(VWC, [{"metadata": {"name": "deny-all", "uid": "u1", "resourceVersion": "7",
                                         "creationTimestamp": created},
                            "webhooks": [{"name": "deny.example.com", "failurePolicy": "Fail"}]}])
    chat.say("alice", "/incident declare writes refused --cluster prod-1")
    clock.advance(12)  # the change watch lists again after T0 before the changes are frozen
    chat.pump()
    answer = chat.say("alice", "/incident evidence")
    assert "ValidatingWebhookConfiguration `deny-all`, created 2m10s before" in answer
    view = bot.services.incidents.view("INC-1")
    assert "Changed before T0: ValidatingWebhookConfiguration `deny-all`, created 2m10s before" in render(card(view))
    assert any(e.kind == "evidence.changes" for e in bot.services.incidents.timeline("INC-1")[1])
    doc = json.loads(export_incident(bot.db, bot.settings, "INC-1", fmt="json").content)
    change = doc["changes_before_t0"][0]
    assert (change["kind"], change["name"], change["change"], change["seconds_before_t0"]) == \
        ("ValidatingWebhookConfiguration", "deny-all", "created", 130.0)
    md = export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    assert "## Changed before T0" in md and "deny-all" in md


def test_evidence_is_due_only_where_the_bot_can_look_and_something_is_missing(
        world: dict[str, Any], chat: MemoryChat, clock: FakeClock) -> None:
    bot = world["bot"]
    chat.say("alice", "/incident declare writes fail --cluster prod-1")  # its snapshot is taken at once
    chat.say("alice", "/incident declare nodes flap --cluster lab-7")  # no endpoints for lab-7: nothing to take
    keeper = bot.services.extras["evidence"]
    assert keeper.due() == []  # prometheus waits for its window; lab-7's incident is never due
    clock.advance(301)
    assert [(row.cluster, missing) for row, missing in keeper.due()] == [("prod-1", ["changes", "prometheus"])]
    chat.pump()  # the worker takes both: Prometheus's window is complete, the change watch has had its turn
    assert keeper.due() == []
