"""throttle-client against a real kube-apiserver, as the bot's least-privilege user.

The session's kube-apiserver (``tests.support.kube_apiserver``) validates the objects, runs API
Priority and Fairness for real and answers the impersonated verification request with its APF
headers. Each test throttles its own ServiceAccount, so the objects of one test never meet
another's. Only the flowcontrol v1beta3 case, which this Kubernetes release no longer serves,
uses the kmock stand-in.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from playbooks.engine import Engine
from tests.playbooks.conftest import diagnosed_incident
from integrations.clients.kubernetes import KubernetesClient
from integrations.clients.kubernetes.client import Classification
from tests.support.apiserver import ApiServerStandIn
from tests.support.kube_apiserver import RealCluster

SA = "serviceaccount:team-a/noisy-controller"  # replaced per test by the ``subject`` fixture
SA_USER = "system:serviceaccount:team-a:noisy-controller"


class Subject:
    """A ServiceAccount of this test only: its chat form, its user name, its throttle objects' prefix."""

    def __init__(self, name: str) -> None:
        self.chat = f"serviceaccount:team-a/{name}"
        self.user = f"system:serviceaccount:team-a:{name}"
        self.prefix = f"incident-bot-throttle-serviceaccount-team-a-{name}-"


@pytest.fixture
def subject() -> Subject:
    return Subject(f"noisy-{uuid.uuid4().hex[:6]}")


@pytest.fixture
def apiserver(kube_apiserver: RealCluster) -> Iterator[KubernetesClient]:
    """The admin's client of the real kube-apiserver (what the test looks at; the bot uses its own user)."""
    admin = kube_apiserver.admin()
    yield admin
    admin.close()


@pytest.fixture
def kchat(pchat: MemoryChat, pb_bot: Bot, bot_kubeconfig: Path) -> MemoryChat:
    pb_bot.settings.kubeconfig = str(bot_kubeconfig)
    return pchat


def ours(apiserver: KubernetesClient, subject: Subject) -> tuple[list[str], list[str]]:
    """The bot's throttle objects for ``subject``: (priority levels, flow schemas)."""
    def managed(objs: list[dict]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs
                      if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "incident-bot"
                      and o["metadata"]["name"].startswith(subject.prefix))
    return managed(apiserver.list_priority_levels()), managed(apiserver.list_flow_schemas())


def lands_in(apiserver: KubernetesClient, user: str) -> str | None:
    """The FlowSchema the real apiserver puts ``user``'s requests in (its APF response headers)."""
    return apiserver.classify(user, ("system:serviceaccounts", f"system:serviceaccounts:{user.split(':')[2]}")).flow_schema


def test_the_plan_names_the_exact_objects_and_changes_nothing(kchat: MemoryChat, apiserver: KubernetesClient,
                                                              subject: Subject) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    reply = kchat.say("alice", f"/incident plan throttle-client subject={subject.chat} verbs=list,get resources=pods")
    assert f"create PriorityLevelConfiguration {subject.prefix}" in reply
    assert (f"at precedence 8999 (now {subject.chat} lands in service-accounts @ 9000 → workload-low) for list,get "
            f"on pods" in reply)
    assert "rollback: delete FlowSchema incident-bot-throttle-" in reply
    assert "blast radius: 2 objects (limit 2), 1 subjects (limit 1)" in reply
    assert ours(apiserver, subject) == ([], [])


def test_a_human_is_throttled_below_global_default(kchat: MemoryChat) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    reply = kchat.say("alice", "/incident plan throttle-client subject=user:ci@example.com")
    assert "at precedence 9899 (now user:ci@example.com lands in global-default @ 9900 → global-default)" in reply


def test_run_throttles_the_client_and_verifies_it_lands_in_the_new_schema(
        kchat: MemoryChat, pb_bot: Bot, engine: Engine, apiserver: KubernetesClient, subject: Subject) -> None:
    inc = diagnosed_incident(kchat, "alice")
    assert lands_in(apiserver, subject.user) == "service-accounts"
    kchat.say("bob", f"/incident run throttle-client subject={subject.chat} ttl=15m")
    assert kchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."

    run = engine.service.get(1)
    name = run.plan["facts"]["name"]
    assert run.state == "succeeded", run.error
    assert ours(apiserver, subject) == ([name], [name])
    fs = next(f for f in apiserver.list_flow_schemas() if f["metadata"]["name"] == name)
    assert fs["spec"]["matchingPrecedence"] == 8999
    assert fs["spec"]["rules"][0]["subjects"] == [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "team-a", "name": subject.user.split(":")[-1]}}]
    assert lands_in(apiserver, subject.user) == name  # the real APF now classifies the client there
    assert lands_in(apiserver, "system:serviceaccount:team-b:quiet") == "service-accounts"  # nobody else is caught

    _, events = pb_bot.services.incidents.timeline(inc)
    texts = [e.text for e in events if e.kind.startswith("run.")]
    assert "RUN-1 throttle-client: step 1/3 validate on the server: done" in texts
    assert "RUN-1 throttle-client: step 3/3 create flow schema: done" in texts
    assert any(t.startswith(f"RUN-1 throttle-client: verified: requests of {subject.chat} now land in FlowSchema {name}")
               for t in texts)
    incident = pb_bot.services.incidents.get(inc)
    assert incident.state == "mitigated" and incident.mitigation == "throttle-client (RUN-1)"
    kchat.say("alice", "/incident abort RUN-1")  # leave the shared apiserver as it was
    assert ours(apiserver, subject) == ([], [])


def test_the_throttle_is_removed_when_its_ttl_ends(kchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                   apiserver: KubernetesClient, clock: FakeClock,
                                                   subject: Subject) -> None:
    inc = diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={subject.chat} ttl=10m")
    kchat.say("alice", "/incident approve RUN-1")
    name = engine.service.get(1).plan["facts"]["name"]
    clock.advance(599)
    kchat.pump()
    assert ours(apiserver, subject) == ([name], [name])
    clock.advance(2)
    kchat.pump()
    assert ours(apiserver, subject) == ([], [])
    assert lands_in(apiserver, subject.user) == "service-accounts"
    assert engine.service.get(1).state == "rolled_back"
    kinds = [e.kind for e in pb_bot.services.incidents.timeline(inc)[1]]
    rollback = [e.text for e in pb_bot.services.incidents.timeline(inc)[1] if e.kind == "run.rollback_step"]
    assert "flow schema" in rollback[0] and "priority level" in rollback[1]  # the FlowSchema goes first
    assert "run.ttl_expired" in kinds and kinds.count("run.rollback_step") == 2 and kinds[-1] == "run.rolled_back"
    assert pb_bot.services.incidents.get(inc).state == "mitigated"  # expiry is not a failed mitigation


def test_undo_on_request_removes_the_throttle(kchat: MemoryChat, engine: Engine, apiserver: KubernetesClient,
                                             subject: Subject) -> None:
    diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={subject.chat}")
    kchat.say("alice", "/incident approve RUN-1")
    assert kchat.say("alice", "/incident abort RUN-1") == (
        "RUN-1 succeeded earlier; its changes are being removed (undo).")
    assert ours(apiserver, subject) == ([], []) and engine.service.get(1).state == "rolled_back"


@pytest.mark.parametrize(("params", "answer"), [
    ("subject=group:system:masters", "parameter `subject`: the group system:masters must never be throttled (the "
                                     "control plane or everyone depends on it)."),
    ("subject=group:system:nodes", "parameter `subject`: the group system:nodes must never be throttled (the "
                                   "control plane or everyone depends on it)."),
    ("subject=serviceaccount:kube-system/coredns",
     "parameter `subject`: kube-system service accounts run the control plane and must never be throttled."),
    ("subject=user:system:kube-scheduler",
     "parameter `subject`: the user system:kube-scheduler is part of the control plane and must never be throttled."),
    (f"subject={SA} shares=lots", "parameter `shares`: expected a whole number (at least 0, at most 100), not `lots`."),
    (f"subject={SA} precedence=2", "parameter `precedence`: expected a whole number (at least 3, at most 9999), "
                                   "not `2`."),
    (f"subject={SA} verbs=list,smash", "parameter `verbs`: `smash` is not one of get, list, watch, create, update, "
                                       "patch, delete, deletecollection, *."),
    (f"subject={SA} ttl=forever", "parameter `ttl`: expected a duration like 90s, 15m or 2h (at least 1m, at most "
                                  "1d), not `forever`."),
    (f"subject={SA} colour=red", "unknown parameter `colour`; this playbook takes: subject, verbs, resources, "
                                 "api_groups, shares, limit, queue_length, ttl, precedence."),
])
def test_bad_parameters_are_named_and_change_nothing(kchat: MemoryChat, apiserver: KubernetesClient,
                                                     engine: Engine, params: str, answer: str) -> None:
    diagnosed_incident(kchat, "alice")
    reply = kchat.say("alice", f"/incident run throttle-client {params}")
    assert reply.startswith(answer), reply
    assert engine.service.runs() == [] and ours(apiserver, Subject("noisy-controller")) == ([], [])


def test_the_subject_can_come_from_the_diagnosis(kchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                 apiserver: KubernetesClient, subject: Subject) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    kchat.say("alice", "/incident ack")
    inc = kchat.current
    pb_bot.services.incidents.cause(inc, "one client floods LIST pods", actor="diagnosis", source="diagnosis",
                                    data={"evidence": {"user": subject.user}})
    run = engine.service.propose(inc, "throttle-client", {}, requested_by="diagnosis")
    assert run.params["subject"] == subject.chat and run.state == "awaiting_approval"
    assert kchat.say("alice", f"/incident approve RUN-{run.id}") == f"RUN-{run.id} approved by @alice; it starts now."
    assert engine.service.get(run.id).state == "succeeded"
    assert lands_in(apiserver, subject.user) == run.plan["facts"]["name"]
    kchat.say("alice", f"/incident abort RUN-{run.id}")


def test_a_step_failure_rolls_back_without_touching_objects_that_are_not_ours(
        kchat: MemoryChat, pb_bot: Bot, engine: Engine, apiserver: KubernetesClient, subject: Subject) -> None:
    inc = diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={subject.chat}")
    name = engine.service.get(1).plan["facts"]["name"]

    def someone_else_creates_the_level(label: str, run_id: int) -> None:
        if label == "step:0:checkpointed":
            foreign = {"metadata": {"name": name}, "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}
            apiserver.create_priority_level(foreign)  # someone else (the admin), not the bot

    engine.executor.hooks.append(someone_else_creates_the_level)
    kchat.say("alice", "/incident approve RUN-1")
    run = engine.service.get(1)
    assert run.state == "rolled_back"
    assert run.error == f"step create priority level failed: PriorityLevelConfiguration {name} exists and is not the bot's"
    assert [p["metadata"]["name"] for p in apiserver.list_priority_levels()].count(name) == 1  # the foreign one stays
    apiserver.delete_object("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", name)
    assert pb_bot.services.incidents.get(inc).state == "diagnosed"
    notices = [m.payload["text"] for m in kchat.deliverer.delivered if m.kind == "notice"]
    assert any(n.startswith("@alice RUN-1 throttle-client: step create priority level failed") and
               n.endswith("the incident is back to diagnosed") for n in notices)


def test_a_v1beta3_cluster_gets_v1beta3_objects_validated_for_its_version(pb_bot: Bot, engine: Engine,
                                                                           tmp_path: Path) -> None:
    with ApiServerStandIn(kubernetes_version="1.28.9", flowcontrol_versions=("v1beta3",)) as old:
        pb_bot.settings.kubeconfig = str(old.write_kubeconfig(tmp_path / "kubeconfig"))
        chat = MemoryChat(pb_bot.dispatcher, workers=pb_bot.workers)
        inc = diagnosed_incident(chat, "alice")
        assert chat.say("alice", f"/incident run throttle-client subject={SA} shares=0") == (
            "parameter `shares`: must be at least 1 on this cluster (flowcontrol v1beta3 reads 0 as the default, 30).")
        chat.say("alice", f"/incident run throttle-client subject={SA}")
        chat.say("alice", "/incident approve RUN-1")
        run = engine.service.get(1)
        assert run.state == "succeeded" and run.plan["facts"]["schema_version"] == "1.28"
        assert {c["manifest"]["apiVersion"] for c in run.plan["changes"]} == {"flowcontrol.apiserver.k8s.io/v1beta3"}
        assert pb_bot.services.incidents.get(inc).state == "mitigated"


def test_verification_waits_for_the_apiserver_to_apply_the_new_flow_schema(
        kchat: MemoryChat, pb_bot: Bot, engine: Engine, subject: Subject, monkeypatch: pytest.MonkeyPatch) -> None:
    """A loaded apiserver classifies the first requests after the create by its old configuration."""
    real = KubernetesClient.classify
    stale: list[str] = []

    def slow_to_adopt(self: KubernetesClient, user: str, groups: Sequence[str] = (), **kw: Any) -> Classification:
        landed = real(self, user, groups, **kw)
        if (landed.flow_schema or "").startswith(subject.prefix) and len(stale) < 2:
            stale.append(landed.flow_schema or "")
            return replace(landed, flow_schema="service-accounts", priority_level="workload-low")
        return landed

    monkeypatch.setattr(KubernetesClient, "classify", slow_to_adopt)
    diagnosed_incident(kchat, "alice")
    kchat.say("bob", f"/incident run throttle-client subject={subject.chat} ttl=15m")
    kchat.say("alice", "/incident approve RUN-1")

    run = engine.service.get(1)
    assert run.state == "succeeded", run.error  # verified on the third answer, not rolled back on the first
    assert len(stale) == 2
