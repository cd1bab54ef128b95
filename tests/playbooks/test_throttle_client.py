"""throttle-client against the apiserver stand-in (kmock over real HTTP, the real kubernetes client)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.clock import FakeClock
from playbooks.engine import Engine
from tests.playbooks.conftest import diagnosed_incident
from tests.support.apiserver import ApiServerStandIn

SA = "serviceaccount:team-a/noisy-controller"
SA_USER = "system:serviceaccount:team-a:noisy-controller"


@pytest.fixture
def kchat(pchat: MemoryChat, pb_bot: Bot, apiserver_kubeconfig: Path) -> MemoryChat:
    pb_bot.settings.kubeconfig = str(apiserver_kubeconfig)
    return pchat


def ours(apiserver: ApiServerStandIn) -> tuple[list[str], list[str]]:
    def managed(objs: list[dict]) -> list[str]:
        return sorted(o["metadata"]["name"] for o in objs
                      if (o["metadata"].get("labels") or {}).get("app.kubernetes.io/managed-by") == "incident-bot")
    return managed(apiserver.priority_levels()), managed(apiserver.flow_schemas())


def test_the_plan_names_the_exact_objects_and_changes_nothing(kchat: MemoryChat, apiserver: ApiServerStandIn) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    reply = kchat.say("alice", f"/incident plan throttle-client subject={SA} verbs=list,get resources=pods")
    assert "create PriorityLevelConfiguration incident-bot-throttle-serviceaccount-team-a-noisy-controller-" in reply
    assert (f"at precedence 8999 (now {SA} lands in service-accounts @ 9000 → workload-low) for list,get on pods"
            in reply)
    assert "rollback: delete FlowSchema incident-bot-throttle-" in reply
    assert "blast radius: 2 objects (limit 2), 1 subjects (limit 1)" in reply
    assert ours(apiserver) == ([], [])
    assert not [r for r in apiserver.request_log if r.method != "GET"]


def test_a_human_is_throttled_below_global_default(kchat: MemoryChat) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    reply = kchat.say("alice", "/incident plan throttle-client subject=user:ci@example.com")
    assert "at precedence 9899 (now user:ci@example.com lands in global-default @ 9900 → global-default)" in reply


def test_run_throttles_the_client_and_verifies_it_lands_in_the_new_schema(
        kchat: MemoryChat, pb_bot: Bot, engine: Engine, apiserver: ApiServerStandIn) -> None:
    inc = diagnosed_incident(kchat, "alice")
    assert apiserver.classify(SA_USER, namespace="default")["metadata"]["name"] == "service-accounts"
    kchat.say("bob", f"/incident run throttle-client subject={SA} ttl=15m")
    assert kchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."

    run = engine.service.get(1)
    name = run.plan["facts"]["name"]
    assert run.state == "succeeded"
    assert ours(apiserver) == ([name], [name])
    fs = next(f for f in apiserver.flow_schemas() if f["metadata"]["name"] == name)
    assert fs["spec"]["matchingPrecedence"] == 8999
    assert fs["spec"]["rules"][0]["subjects"] == [
        {"kind": "ServiceAccount", "serviceAccount": {"namespace": "team-a", "name": "noisy-controller"}}]
    assert apiserver.classify(SA_USER, namespace="default")["metadata"]["name"] == name
    assert apiserver.classify("system:serviceaccount:team-b:quiet", namespace="default")["metadata"]["name"] \
        == "service-accounts"  # nobody else is caught
    # verification impersonated the client over HTTP and read the APF headers
    assert any(r.user == SA_USER and r.flow_schema == name for r in apiserver.request_log)

    _, events = pb_bot.services.incidents.timeline(inc)
    texts = [e.text for e in events if e.kind.startswith("run.")]
    assert "RUN-1 throttle-client: step 1/3 validate on the server: done" in texts
    assert "RUN-1 throttle-client: step 3/3 create flow schema: done" in texts
    assert any(t.startswith(f"RUN-1 throttle-client: verified: requests of {SA} now land in FlowSchema {name}")
               for t in texts)
    incident = pb_bot.services.incidents.get(inc)
    assert incident.state == "mitigated" and incident.mitigation == "throttle-client (RUN-1)"


def test_the_throttle_is_removed_when_its_ttl_ends(kchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                   apiserver: ApiServerStandIn, clock: FakeClock) -> None:
    inc = diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={SA} ttl=10m")
    kchat.say("alice", "/incident approve RUN-1")
    name = engine.service.get(1).plan["facts"]["name"]
    clock.advance(599)
    kchat.pump()
    assert ours(apiserver) == ([name], [name])
    clock.advance(2)
    kchat.pump()
    assert ours(apiserver) == ([], [])
    assert engine.service.get(1).state == "rolled_back"
    deletes = [r.path.split("/")[-2] for r in apiserver.request_log if r.method == "DELETE"]
    assert deletes == ["flowschemas", "prioritylevelconfigurations"]  # the FlowSchema goes first
    kinds = [e.kind for e in pb_bot.services.incidents.timeline(inc)[1]]
    assert "run.ttl_expired" in kinds and kinds.count("run.rollback_step") == 2 and kinds[-1] == "run.rolled_back"
    assert pb_bot.services.incidents.get(inc).state == "mitigated"  # expiry is not a failed mitigation


def test_undo_on_request_removes_the_throttle(kchat: MemoryChat, engine: Engine, apiserver: ApiServerStandIn) -> None:
    diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={SA}")
    kchat.say("alice", "/incident approve RUN-1")
    assert kchat.say("alice", "/incident abort RUN-1") == (
        "RUN-1 succeeded earlier; its changes are being removed (undo).")
    assert ours(apiserver) == ([], []) and engine.service.get(1).state == "rolled_back"


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
def test_bad_parameters_are_named_and_change_nothing(kchat: MemoryChat, apiserver: ApiServerStandIn,
                                                     engine: Engine, params: str, answer: str) -> None:
    diagnosed_incident(kchat, "alice")
    reply = kchat.say("alice", f"/incident run throttle-client {params}")
    assert reply.startswith(answer), reply
    assert engine.service.runs() == [] and ours(apiserver) == ([], [])


def test_the_subject_can_come_from_the_diagnosis(kchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                 apiserver: ApiServerStandIn) -> None:
    kchat.say("alice", "/incident declare apiserver overloaded")
    kchat.say("alice", "/incident ack")
    inc = kchat.current
    pb_bot.services.incidents.cause(inc, "one client floods LIST pods", actor="diagnosis", source="diagnosis",
                                    data={"evidence": {"user": SA_USER}})
    run = engine.service.propose(inc, "throttle-client", {}, requested_by="diagnosis")
    assert run.params["subject"] == SA and run.state == "awaiting_approval"
    assert kchat.say("alice", f"/incident approve RUN-{run.id}") == f"RUN-{run.id} approved by @alice; it starts now."
    assert engine.service.get(run.id).state == "succeeded"


def test_a_step_failure_rolls_back_without_touching_objects_that_are_not_ours(
        kchat: MemoryChat, pb_bot: Bot, engine: Engine, apiserver: ApiServerStandIn) -> None:
    inc = diagnosed_incident(kchat, "alice")
    kchat.say("alice", f"/incident run throttle-client subject={SA}")
    name = engine.service.get(1).plan["facts"]["name"]

    def someone_else_creates_the_level(label: str, run_id: int) -> None:
        if label == "step:0:checkpointed":
            foreign = {"metadata": {"name": name}, "spec": {"type": "Limited", "limited": {
                "nominalConcurrencyShares": 5, "limitResponse": {"type": "Reject"}}}}
            from integrations.kubernetes import connect
            client = connect(pb_bot.settings.kubeconfig)
            client.create_priority_level(foreign)
            client.close()

    engine.executor.hooks.append(someone_else_creates_the_level)
    kchat.say("alice", "/incident approve RUN-1")
    run = engine.service.get(1)
    assert run.state == "rolled_back"
    assert run.error == f"step create priority level failed: PriorityLevelConfiguration {name} exists and is not the bot's"
    assert [p["metadata"]["name"] for p in apiserver.priority_levels()].count(name) == 1  # the foreign one stays
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
