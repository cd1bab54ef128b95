"""Which procedure an incident gets (its alerts' names, labels, component), what templates see,
and the check kinds' own behaviour."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.diagnosis.fakes import FakeEtcd, FakeHttp, cluster_config
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.runner import Runner
from bot.domain.incidents.alert_payload import parse_notification
from integrations.clients.kubernetes import FakeKubernetes
from integrations.clients.prometheus import FakePrometheus
from integrations.clients.prometheus.client import Matrix, Series
from tests.conftest import T0

ETCD = ["http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379"]


def webhook(alertname: str, **labels: str) -> dict:
    labels = {"alertname": alertname, "cluster": "prod-1", **labels}
    alert = {"status": "firing", "labels": labels, "annotations": {"summary": alertname},
             "startsAt": "2026-11-25T02:59:30Z", "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "",
             "fingerprint": f"fp-{alertname}"}
    return {"receiver": "bot", "status": "firing", "alerts": [alert], "groupLabels": {"alertname": alertname},
            "commonLabels": labels, "commonAnnotations": {}, "externalURL": "", "version": "4",
            "groupKey": f"{{}}:{{alertname=\"{alertname}\"}}", "truncatedAlerts": 0}


@pytest.fixture
def world(bot: Bot) -> dict:
    etcd = FakeEtcd(tuple(ETCD), down={ETCD[1]})
    http = FakeHttp({"http://main-1:6443/readyz": 200, "http://bypass-1:6443/readyz": 200})
    access = ClusterAccess("prod-1", cluster_config(main=["http://main-1:6443"], bypass=["http://bypass-1:6443"],
                                                    etcd=ETCD),
                           metrics=FakePrometheus(), kubernetes=FakeKubernetes(), etcd=etcd, http=http)
    bot.services.extras["diagnoser"].backends = lambda name: access if name == "prod-1" else ClusterAccess(name)
    bot.services.extras["diagnoser"].sleep = lambda seconds: None
    return {"bot": bot, "http": http, "access": access}


def procedure_of(bot: Bot) -> str:
    events = bot.services.incidents.timeline("INC-1")[1]
    return next(e.data["procedure"] for e in events if e.kind == "diagnosis.started")


@pytest.mark.parametrize(("alertname", "component", "procedure"), [
    ("EtcdMemberDown", "etcd", "etcd-health"),
    ("KubeAPIFlowControlRejections", "apiserver", "apiserver-overload"),
    ("KubeAPIDown", "apiserver", "apiserver-unavailable"),
    ("SomethingNew", "scheduler", "control-plane-triage"),
])
def test_an_alert_picks_its_procedure(world: dict, chat: MemoryChat, alertname: str, component: str,
                                      procedure: str) -> None:
    bot = world["bot"]
    bot.services.extras["alerts"].ingest(parse_notification(webhook(alertname, component=component)))
    for _ in range(3):
        chat.pump()
    assert procedure_of(bot) == procedure


def test_etcd_member_down_alert_is_diagnosed_as_one_member_down(world: dict, chat: MemoryChat) -> None:
    bot = world["bot"]
    bot.services.extras["alerts"].ingest(parse_notification(webhook("EtcdMemberDown", component="etcd",
                                                                    instance="etcd-2")))
    for _ in range(3):
        chat.pump()
    incident = bot.services.incidents.get("INC-1")
    assert incident.root_cause is None and incident.state == "diagnosing"
    conclusion = next(e for e in bot.services.incidents.timeline("INC-1")[1] if e.kind == "diagnosis.conclusion")
    assert conclusion.data["conclusion"] == "one_member_down" and ETCD[1] in conclusion.text


def test_templates_see_the_alert_labels(world: dict, chat: MemoryChat, tmp_path: Path) -> None:
    (tmp_path / "instance.yaml").write_text("""
title: Probe the instance the alert names
applies_to: {labels: {component: apiserver}}
checks:
  - {id: ready, kind: http, url: "http://{{ incident.labels.instance }}/readyz"}
tree:
  start: ok
  nodes:
    ok: {when: checks.ready.all_ok, then: fine, else: broken, unknown: broken}
conclusions:
  fine: {cause: "{{ incident.labels.instance }} is ready ({{ incident.alert_names | join(',') }})", escalate: true}
  broken: {cause: "{{ incident.labels.instance }} is not ready", escalate: true}
""")
    bot = world["bot"]
    bot.services.extras["diagnoser"].library = Library.load([tmp_path])
    bot.services.extras["alerts"].ingest(parse_notification(webhook("KubeAPIServerInstanceDown", component="apiserver",
                                                                    instance="main-1:6443")))
    for _ in range(3):
        chat.pump()
    # (the evidence at T0 reads /readyz?verbose of the same apiservers in its own worker)
    assert [c for c in world["http"].calls if not c.endswith("?verbose")] == ["http://main-1:6443/readyz"]
    conclusion = next(e for e in bot.services.incidents.timeline("INC-1")[1] if e.kind == "diagnosis.conclusion")
    assert conclusion.data["cause"] == "main-1:6443 is ready (KubeAPIServerInstanceDown)"


def run_one(access: ClusterAccess, text: str, tmp_path: Path):
    (tmp_path / "p.yaml").write_text(text)
    proc = Library.load([tmp_path]).get("p")
    return Runner(access, FakeClock(T0), check_timeout=2).run(proc, {"labels": {}, "alerts": [], "alert_names": []})


def test_range_queries_and_kubernetes_reads(world: dict, tmp_path: Path) -> None:
    access = world["access"]
    access.metrics.set("rate(x[1m])", Matrix((Series({"instance": "a"}, ((1.0, 1.0), (2.0, 7.0), (3.0, 2.0))),)))
    access.kubernetes.health_status["/livez"] = 500
    access.kubernetes.raw["/version"] = '{"gitVersion": "v1.30.2"}'
    outcome = run_one(access, """
applies_to: {fallback: true}
checks:
  - {id: peak, kind: promql, query: "rate(x[1m])", range: 10m, step: 30s}
  - {id: live, kind: kubernetes, op: health, endpoint: livez}
  - {id: ns, kind: kubernetes, op: get, api_version: v1, object_kind: Namespace, name: kube-system}
  - {id: version, kind: kubernetes, op: raw, path: /version}
tree:
  start: n
  nodes:
    n: {when: "checks.peak.max == 7 and not checks.live.ok and checks.ns.exists and 'v1.30' in checks.version.text",
        then: found, else: missing, unknown: missing}
conclusions:
  found: {cause: "peak {{ checks.peak.max }} on {{ checks.peak.labels.instance }}", escalate: true}
  missing: {cause: none, escalate: true}
""", tmp_path)
    assert [c.known for c in outcome.checks] == [True, True, True, True], [c.error for c in outcome.checks]
    assert outcome.conclusion.id == "found" and outcome.cause == "peak 7.0 on a"
    assert outcome.checks[0].evidence["type"] == "range" and outcome.checks[0].evidence["step_seconds"] == 30


def test_a_check_whose_template_fails_is_unknown_and_so_are_its_dependants(world: dict, tmp_path: Path) -> None:
    outcome = run_one(world["access"], """
applies_to: {fallback: true}
checks:
  - {id: a, kind: http, url: "http://{{ incident.labels.nope }}/readyz"}
  - {id: b, kind: http, url: "{{ checks.a.probes[0].url }}"}
tree:
  start: n
  nodes:
    n: {when: checks.b.all_ok, then: done, else: done, unknown: unsure}
conclusions:
  done: {cause: ok, escalate: true}
  unsure: {cause: "could not tell", escalate: true}
""", tmp_path)
    a, b = outcome.checks
    assert not a.known and "could not be filled" in a.error and "nope" in a.error
    assert (b.known, b.error) == (False, "depends on check a, which is unknown")
    assert outcome.conclusion.id == "unsure" and outcome.path[0].reason.startswith("check b is unknown")
