"""Change freeze during incidents: what an SRE sees from kubectl and in the incident's chat."""

from __future__ import annotations

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.guard.conftest import Apiserver


def test_a_sev1_freezes_risky_writes_and_the_denial_names_the_incident(gchat: MemoryChat, apiserver: Apiserver,
                                                                        guarded: Bot) -> None:
    assert apiserver.allowed("DELETE", "namespaces", name="payments")  # no incident: nothing frozen
    gchat.say("carol", "/incident declare etcd latency --severity sev1 --cluster prod-1")
    answer = apiserver.send("DELETE", "namespaces", name="payments", user="alice")
    assert answer["allowed"] is False and answer["status"]["code"] == 403
    message = answer["status"]["message"]
    assert "DELETE namespaces payments is on the risk list (delete-namespaces)" in message
    assert "INC-1 (sev1: etcd latency) is open" in message
    assert "`/incident guard allow @alice 30m delete-namespaces INC-1` (needs two approvers" in message
    # not on the risk list, or by the bot itself: allowed at once
    assert apiserver.allowed("DELETE", "configmaps", namespace="apps")
    assert apiserver.allowed("UPDATE", "deployments", group="apps", namespace="payments")
    assert apiserver.allowed("DELETE", "namespaces", name="payments", user="incident-bot")
    assert not apiserver.allowed("UPDATE", "deployments", group="apps", namespace="kube-system", name="coredns")
    gchat.pump()
    timeline = gchat.say("carol", "/incident timeline INC-1")
    assert ("admission guard denied 2 writes since 03:00:00: 1 DELETE namespaces by alice (freeze); "
            "1 UPDATE apps/deployments by alice (freeze)") in timeline


def test_a_sev3_does_not_freeze_but_the_global_freeze_does(gchat: MemoryChat, apiserver: Apiserver) -> None:
    gchat.say("carol", "/incident declare noisy alert --severity sev3 --cluster prod-1")
    assert apiserver.allowed("DELETE", "nodes", name="node-7")
    gchat.say("carol", "/incident freeze etcd restore in progress")
    answer = apiserver.send("DELETE", "nodes", name="node-7")
    assert answer["allowed"] is False
    assert "while the change freeze set by @carol (etcd restore in progress) is on" in answer["status"]["message"]
    gchat.say("carol", "/incident unfreeze")
    assert apiserver.allowed("DELETE", "nodes", name="node-7")


def test_an_exception_for_a_critical_kind_needs_two_people_and_expires(gchat: MemoryChat, apiserver: Apiserver,
                                                                        clock: FakeClock) -> None:
    gchat.say("carol", "/incident declare etcd latency --severity sev2 --cluster prod-1")
    gchat.say("carol", "/incident ack")
    assert gchat.say("alice", "/incident guard allow @alice 30m delete-namespaces remove the old tenant") == (
        "exception 1 requested by @alice: @alice may make delete-namespaces writes on prod-1 for 30 min once "
        "approved (two approvers, not @alice): `/incident guard approve 1`")
    assert gchat.say("alice", "/incident guard approve 1") == (
        "only the commander @carol or a configured approver (approvers.users) can approve guard exceptions.")
    assert gchat.say("carol", "/incident guard approve 1") == "exception 1: @carol approved; it needs 1 more approver"
    assert not apiserver.allowed("DELETE", "namespaces", name="old-tenant")
    assert gchat.say("carol", "/incident guard approve 1") == (
        "@carol already approved exception 1; it needs another person.")
    gchat.dispatcher.services.settings.approvers.users.append("dave")
    assert gchat.say("dave", "/incident guard approve 1") == (
        "exception 1 approved by @carol, @dave: @alice may make delete-namespaces writes on prod-1 until 03:30 UTC")
    assert apiserver.allowed("DELETE", "namespaces", name="old-tenant", user="alice")
    assert not apiserver.allowed("DELETE", "namespaces", name="old-tenant", user="mallory")  # one user only
    assert not apiserver.allowed("DELETE", "nodes", name="node-1", user="alice")  # one rule only
    clock.advance(31 * 60)
    gchat.pump()
    assert not apiserver.allowed("DELETE", "namespaces", name="old-tenant", user="alice")
    timeline = gchat.say("carol", "/incident timeline")
    assert "exception 1 requested by @alice" in timeline and "exception 1 approved by @carol, @dave" in timeline


def test_an_ordinary_kind_needs_the_commander_only(gchat: MemoryChat, apiserver: Apiserver) -> None:
    gchat.say("carol", "/incident declare etcd latency --severity sev1 --cluster prod-1")
    gchat.say("carol", "/incident ack")
    gchat.say("carol", "/incident guard allow @bob 1h delete-nodes drain node-7")
    assert gchat.say("carol", "/incident guard approve 1").startswith(
        "exception 1 approved by @carol: @bob may make delete-nodes writes on prod-1 until 04:00 UTC")
    assert apiserver.allowed("DELETE", "nodes", name="node-7", user="bob")


def test_bad_exception_requests_say_what_is_wrong_and_change_nothing(gchat: MemoryChat) -> None:
    gchat.say("carol", "/incident declare etcd latency --severity sev1 --cluster prod-1")
    gchat.say("carol", "/incident ack")
    assert gchat.say("carol", "/incident guard allow @bob forever").startswith(
        "the window `forever` is not a duration; expected minutes or hours, e.g. 30m or 2h.")
    assert gchat.say("carol", "/incident guard allow @bob 9h").startswith(
        "the window must be between 1 minute and 240 minutes (guard.max_exception_minutes), not 540.")
    assert gchat.say("carol", "/incident guard allow @bob 30m delete-everything").startswith(
        "there is no risk-list rule `delete-everything`; expected one of delete-namespaces, delete-crds")
    assert gchat.say("carol", "/incident guard approve 7") == "there is no guard exception 7."
    assert gchat.say("carol", "/incident guard explode").startswith(
        "`/incident guard explode`: expected one of status, allow, approve, lift.")
    assert "exception" not in gchat.say("carol", "/incident timeline")
