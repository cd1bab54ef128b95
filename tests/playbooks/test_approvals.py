"""The approval policy, proven by chat transcripts: who may approve what, and when an approval stops counting."""

from __future__ import annotations

from pathlib import Path

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import PlaybookRun
from playbooks.engine import Engine
from tests.playbooks.conftest import diagnosed_incident


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def run_state(engine: Engine, run_id: int) -> str:
    return engine.service.get(run_id).state


def kinds(bot: Bot, incident: int) -> list[str]:
    return [e.kind for e in bot.services.incidents.timeline(incident)[1]]


def test_low_and_high_risk_runs_need_the_commander(pchat: MemoryChat, pb_bot: Bot, engine: Engine, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    reply = pchat.say("bob", f"/incident run write-file-high path={target}")
    assert reply.startswith("RUN-1 write-file-high (high risk) awaits approval")
    assert "[Approve: /incident approve RUN-1]  [Reject: /incident reject RUN-1]" in reply

    assert pchat.say("bob", "/incident approve RUN-1") == "only the commander @alice can approve RUN-1 (high risk)."
    assert pchat.say("dave", "/incident approve RUN-1") == "only the commander @alice can approve RUN-1 (high risk)."
    assert lines(target) == [] and run_state(engine, 1) == "awaiting_approval"

    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]
    assert run_state(engine, 1) == "succeeded"
    assert pb_bot.services.incidents.get(inc).state == "mitigated"
    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 is succeeded already."
    assert kinds(pb_bot, inc).count("run.approval") == 1


def test_an_incident_without_commander_cannot_approve(pchat: MemoryChat, target: Path) -> None:
    pchat.say("alice", "/incident declare etcd slow")
    pchat.say("alice", "/incident cause disk")
    pchat.say("alice", f"/incident run write-file path={target}")
    assert pchat.say("alice", "/incident approve RUN-1") == (
        "RUN-1 cannot be approved yet: its incident has no commander. Take command with `/incident ack` first.")


def test_critical_runs_need_two_people_and_never_the_requester(pchat: MemoryChat, engine: Engine,
                                                              target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    reply = pchat.say("bob", f"/incident run write-file-critical path={target}")
    assert "needs the commander and a second approver (not the requester)" in reply.lower()

    assert pchat.say("bob", "/incident approve RUN-1") == (
        "you requested RUN-1; nobody approves their own critical run. It needs the commander @alice and a second "
        "approver.")
    assert pchat.say("frank", "/incident approve RUN-1") == (
        "@frank is not an approver (settings.approvers: users, groups, on-call rota); RUN-1 needs the commander "
        "@alice and a second approver.")
    assert pchat.say("alice", "/incident approve RUN-1") == (
        "RUN-1: approval by @alice recorded; still needed: a second approver (not the commander, not the requester).")
    assert pchat.say("alice", "/incident approve RUN-1") == (
        "you approved RUN-1 already; still needed: a second approver (not the commander, not the requester).")
    assert lines(target) == []

    # erin approves through the configured group sre-leads
    assert pchat.say("erin", "/incident approve RUN-1") == "RUN-1 approved by @erin; it starts now."
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]


def test_a_second_approver_alone_is_not_enough(pchat: MemoryChat, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file-critical path={target}")
    assert pchat.say("carol", "/incident approve RUN-1") == (  # carol is on the rota
        "RUN-1: approval by @carol recorded; still needed: the commander @alice's approval.")
    assert pchat.say("dave", "/incident approve RUN-1") == (  # two non-commanders do not make it
        "RUN-1: approval by @dave recorded; still needed: the commander @alice's approval.")
    assert lines(target) == []
    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."


def test_the_commander_cannot_approve_a_critical_run_they_requested(pchat: MemoryChat) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("alice", "/incident run write-file-critical path=/nonexistent/x")
    assert pchat.say("alice", "/incident approve RUN-1").startswith(
        "you requested RUN-1; nobody approves their own critical run. You are its commander: hand command over")


def test_approvals_expire(pchat: MemoryChat, pb_bot: Bot, clock: FakeClock, target: Path) -> None:
    ttl = pb_bot.settings.approvers.approval_ttl_seconds
    diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file-critical path={target}")
    pchat.say("alice", "/incident approve RUN-1")
    clock.advance(ttl + 1)
    assert pchat.say("erin", "/incident approve RUN-1") == (
        "RUN-1: approval by @erin recorded (@alice's approval expired); still needed: the commander @alice's "
        "approval.")
    assert lines(target) == []
    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]


def test_an_approval_that_expires_before_the_run_starts_is_asked_again(pchat: MemoryChat, pb_bot: Bot,
                                                                      engine: Engine, clock: FakeClock,
                                                                      target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target}")
    pchat.say("carol", "/incident freeze maintenance of the LB")
    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert run_state(engine, 1) == "approved" and lines(target) == []  # frozen: it waits
    clock.advance(pb_bot.settings.approvers.approval_ttl_seconds + 1)
    assert pchat.say("carol", "/incident unfreeze") == "Playbooks unfrozen by @carol."
    assert run_state(engine, 1) == "awaiting_approval" and lines(target) == []
    assert "run.approval_expired" in kinds(pb_bot, inc)
    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]


def test_a_changed_plan_needs_a_new_approval(pchat: MemoryChat, pb_bot: Bot, engine: Engine, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    target.write_text("someone else's line\n")
    pchat.say("alice", f"/incident run write-file path={target}")
    first_hash = engine.service.get(1).plan_hash
    pchat.say("alice", "/incident freeze hold on")
    pchat.say("alice", "/incident approve RUN-1")
    target.write_text("someone else's line\nand another one\n")  # the world changes after the approval
    pchat.say("alice", "/incident unfreeze")

    run = engine.service.get(1)
    assert run.state == "awaiting_approval" and run.plan_hash != first_hash
    assert lines(target) == ["someone else's line", "and another one"]  # nothing ran on the old approval
    replanned = [e for e in pb_bot.services.incidents.timeline(inc)[1] if e.kind == "run.replanned"]
    assert replanned[0].text.startswith(f"RUN-1 write-file: the plan changed since approval ({first_hash[:12]} → ")
    notices = [m.payload["text"] for m in pchat.deliverer.delivered if m.kind == "notice"]
    assert any("the plan did: review and approve again" in n and n.startswith("@alice") for n in notices)

    assert pchat.say("alice", "/incident approve RUN-1") == "RUN-1 approved by @alice; it starts now."
    assert lines(target)[-3:] == ["run:step-0", "run:step-1", "run:step-2"]


def test_rejecting_ends_the_request(pchat: MemoryChat, pb_bot: Bot, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file path={target}")
    assert pchat.say("frank", "/incident reject RUN-1").startswith("@frank may not reject RUN-1")
    assert pchat.say("alice", "/incident reject RUN-1 wrong client") == "RUN-1 rejected by @alice: wrong client."
    assert pchat.say("alice", "/incident approve RUN-1") == (
        "RUN-1 is rejected; only a run awaiting approval can be approved.")
    assert lines(target) == []
    assert ["run.requested", "run.rejected"] == [k for k in kinds(pb_bot, inc) if k.startswith("run.")]


def test_unattended_drills_are_auto_approved_and_say_so(pb_bot: Bot, engine: Engine, target: Path) -> None:
    incidents = pb_bot.services.incidents
    row = incidents.declare("drill: noisy client", actor="drill", source="drill", is_drill=True)
    incidents.cause(row.id, "drill fault injected", actor="drill", source="drill")
    run = engine.service.propose(row.id, "write-file-critical", {"path": str(target)}, requested_by="diagnosis")
    assert run.state == "approved" and run.auto_approved
    engine.worker.tick()
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]
    approval = [e for e in incidents.timeline(row.id)[1] if e.kind == "run.approval"]
    assert approval[0].text == f"RUN-{run.id} write-file-critical: auto-approved (unattended drill), plan {run.plan_hash[:12]}"
    assert approval[0].data["auto"] is True and approval[0].source == "drill"


def test_every_decision_is_on_the_timeline(pchat: MemoryChat, pb_bot: Bot, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file-critical path={target}")
    pchat.say("alice", "/incident approve RUN-1")
    pchat.say("dave", "/incident approve RUN-1")
    run_events = [(e.kind, e.actor) for e in pb_bot.services.incidents.timeline(inc)[1] if e.kind.startswith("run.")]
    assert run_events[:4] == [("run.requested", "bob"), ("run.approval", "alice"), ("run.approval", "dave"),
                              ("run.approved", "dave")]
    assert run_events[-1] == ("run.succeeded", "incident-bot")


def test_the_card_shows_pending_runs_with_buttons(pchat: MemoryChat, pb_bot: Bot, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file path={target}")
    card = pchat.say("alice", "/incident status")
    assert "RUN-1 write-file (low risk) awaits approval" in card
    assert "[Approve: /incident approve RUN-1]" in card
    pchat.say("alice", "/incident approve RUN-1")
    assert "awaits approval" not in pchat.say("alice", "/incident status")


def test_plan_is_a_dry_run(pchat: MemoryChat, engine: Engine, target: Path) -> None:
    pchat.say("alice", "/incident declare etcd slow")
    reply = pchat.say("alice", f"/incident plan write-file path={target} tag=x")
    assert reply.startswith("Plan: write-file (dry run, nothing changed)")
    assert f"1. append x:step-0 to {target}" in reply
    assert reply.splitlines()[-1] == f"To request it: `/incident run write-file path={target} tag=x`"
    assert engine.service.get(1).state == "planned"
    assert pchat.say("alice", "/incident approve RUN-1").startswith("RUN-1 is a dry run;")
    assert not target.exists()
    with engine.service.db.session() as s:
        assert f"plan {s.get(PlaybookRun, 1).plan_hash[:12]}" in reply
