"""Executing runs: rollback on failure, abort, freeze, one mitigation per cluster, timeouts, resume, hand back."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from bot.compose.app.bot import Bot
from bot.chat.dispatcher import ChatContext
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Incident, Lease, PlaybookRun, RunStep
from playbooks.engine import Engine
from tests.playbooks.conftest import diagnosed_incident


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def events(bot: Bot, incident: int, prefix: str = "run.") -> list[str]:
    return [e.text for e in bot.services.incidents.timeline(incident)[1] if e.kind.startswith(prefix)]


def notices(chat: MemoryChat) -> list[str]:
    return [m.payload["text"] for m in chat.deliverer.delivered if m.kind == "notice"]


def test_a_failing_step_rolls_back_in_reverse_and_hands_the_incident_back(
        pchat: MemoryChat, pb_bot: Bot, engine: Engine, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target} fail_at=2")
    pchat.say("alice", "/incident approve RUN-1")
    assert lines(target) == []
    run = engine.service.get(1)
    assert run.state == "rolled_back" and run.error == "step write line 2 failed: injected failure at step 2"
    assert events(pb_bot, inc)[-6:] == [
        "RUN-1 write-file: step 3 write line 2 failed: injected failure at step 2",
        "RUN-1 write-file: step write line 2 failed: injected failure at step 2; rolling back: write line 2, "
        "write line 1, write line 0",
        "RUN-1 write-file: undo write line 2: done",
        "RUN-1 write-file: undo write line 1: done",
        "RUN-1 write-file: undo write line 0: done",
        "RUN-1 write-file: step write line 2 failed: injected failure at step 2; rolled back",
    ]
    incident = pb_bot.services.incidents.get(inc)
    assert incident.state == "diagnosed"
    states = [e.text for e in pb_bot.services.incidents.timeline(inc)[1] if e.kind == "state.changed"]
    assert states[-1].startswith("mitigating → diagnosed by incident-bot: RUN-1 write-file: step write line 2 failed")
    assert notices(pchat)[-1] == ("@alice RUN-1 write-file: step write line 2 failed: injected failure at step 2; "
                                  "rolled back; the incident is back to diagnosed")
    with pb_bot.db.session() as s:  # the lease is free again
        assert s.get(Lease, "mitigation:default") is None


def test_a_failed_verification_rolls_back(pchat: MemoryChat, pb_bot: Bot, engine: Engine, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target} verify_ok=false")
    pchat.say("alice", "/incident approve RUN-1")
    assert lines(target) == [] and engine.service.get(1).state == "rolled_back"
    assert "RUN-1 write-file: verification failed: verify_ok=false" in events(pb_bot, inc)
    assert pb_bot.services.incidents.get(inc).state == "diagnosed"


def test_a_step_that_outlasts_its_timeout_fails_the_run(pchat: MemoryChat, engine: Engine, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file-quick-timeout path={target} hang_at=1")
    pchat.say("alice", "/incident approve RUN-1")
    run = engine.service.get(1)
    assert run.state == "rolled_back"
    assert run.error == "step write line 1 failed: step write line 1 timed out after 0.3s"
    assert lines(target) == []


def test_abort_stops_at_the_next_step_boundary_and_rolls_back(pchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                              target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target}")
    replies = []

    def abort_after_first_step(label: str, run_id: int) -> None:
        if label == "step:0:checkpointed":
            replies.append(pchat.dispatcher.handle(ChatContext(user="alice", adapter="memory"),
                                                   "/incident abort RUN-1").text)

    engine.executor.hooks.append(abort_after_first_step)
    pchat.say("alice", "/incident approve RUN-1")
    assert replies == ["RUN-1 stops at the next step boundary and rolls back what it did."]
    assert lines(target) == [] and engine.service.get(1).state == "aborted"
    assert events(pb_bot, inc)[-1] == "RUN-1 write-file: aborted by @alice; rolled back"
    assert pb_bot.services.incidents.get(inc).state == "diagnosed"


def test_abort_before_the_start_changes_nothing(pchat: MemoryChat, engine: Engine, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file path={target}")
    assert pchat.say("frank", "/incident abort RUN-1").startswith("@frank may not abort RUN-1")
    assert pchat.say("bob", "/incident abort RUN-1") == "RUN-1 aborted before it started; nothing was changed."
    assert engine.service.get(1).state == "aborted" and not target.exists()


def test_freeze_refuses_new_runs_and_halts_running_ones(pchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                         target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target}")

    def freeze_after_first_step(label: str, run_id: int) -> None:
        if label == "step:0:checkpointed":
            engine.service.freeze(user="carol", reason="LB maintenance")

    engine.executor.hooks.append(freeze_after_first_step)
    pchat.say("alice", "/incident approve RUN-1")
    assert lines(target) == ["run:step-0"]  # halted at the boundary, nothing more done
    run = engine.service.get(1)
    assert run.state == "handed_back"
    assert run.error.startswith("halted at a step boundary: playbooks are frozen by @carol at ")
    assert pb_bot.services.incidents.get(inc).state == "diagnosed"
    assert any(t.startswith("@alice RUN-1 write-file: handed back to the commander: halted at a step boundary")
               for t in notices(pchat))

    assert pchat.say("bob", f"/incident run write-file path={target} tag=again").startswith(
        "playbooks are frozen by @carol at ")
    assert pchat.say("alice", "/incident freeze") .startswith("Playbooks are frozen by @carol")
    assert pchat.say("frank", "/incident unfreeze").startswith("@frank may not unfreeze")
    assert pchat.say("alice", "/incident unfreeze") == "Playbooks unfrozen by @alice."
    # the commander decides: undo what the halted run did
    assert pchat.say("alice", "/incident abort RUN-1") == (
        "RUN-1 was handed back; its changes are being removed (undo).")
    assert lines(target) == []


def test_one_mitigation_at_a_time_per_cluster(pchat: MemoryChat, pb_bot: Bot, engine: Engine, clock: FakeClock,
                                              target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    with pb_bot.db.session() as s:  # another run (another replica) holds the cluster
        s.add(Lease(name="mitigation:default", holder="run:99", acquired_at=clock.now(),
                    expires_at=clock.now() + timedelta(seconds=60)))
    pchat.say("alice", f"/incident run write-file path={target}")
    pchat.say("alice", "/incident approve RUN-1")
    assert engine.service.get(1).state == "approved" and lines(target) == []
    clock.advance(61)  # the other holder stopped renewing: its lease expires
    pchat.pump()
    assert engine.service.get(1).state == "succeeded"
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]
    assert pb_bot.services.incidents.get(inc).state == "mitigated"


def test_a_second_run_on_the_same_cluster_waits_for_the_first(pb_bot: Bot, engine: Engine, clock: FakeClock,
                                                              tmp_path: Path) -> None:
    incidents = pb_bot.services.incidents
    ids = []
    for title in ("first", "second"):
        row = incidents.declare(title, actor="alice")
        incidents.ack(row.id, actor="alice")
        incidents.cause(row.id, "cause", actor="alice")
        run = engine.service.propose(row.id, "write-file", {"path": str(tmp_path / f"{title}.txt")},
                                     requested_by="alice")
        engine.service.approve(run.id, user="alice")
        ids.append(run.id)
    seen: list[str] = []

    def second_tries_meanwhile(label: str, run_id: int) -> None:
        if label == "step:1:started" and run_id == ids[0]:
            seen.append(engine.executor.start(ids[1]))

    engine.executor.hooks.append(second_tries_meanwhile)
    engine.worker.tick()
    assert seen == ["waiting"]
    assert [engine.service.get(i).state for i in ids] == ["succeeded", "succeeded"]


def test_an_orphaned_run_resumes_at_its_checkpoint(pchat: MemoryChat, pb_bot: Bot, engine: Engine, clock: FakeClock,
                                                   target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    run = engine.service.propose(inc, "write-file", {"path": str(target)}, requested_by="alice")
    # a worker on another host started it, did step 0, checkpointed, and died
    target.write_text("run:step-0\n")
    with pb_bot.db.session() as s:
        row = s.get(PlaybookRun, run.id)
        row.state, row.phase, row.checkpoint, row.owner = "running", "execute", 1, "dead-host:1:abc"
        row.owner_heartbeat_at = clock.now()
        s.add(row)
        incident = s.get(Incident, inc)
        incident.state = "mitigating"
        s.add(incident)
    pchat.pump()
    assert engine.service.get(run.id).state == "running"  # its heartbeat is still fresh: not an orphan yet
    clock.advance(pb_bot.settings.playbooks.stale_after_seconds + 1)
    pchat.pump()
    assert engine.service.get(run.id).state == "succeeded"
    assert lines(target) == ["run:step-0", "run:step-1", "run:step-2"]
    assert "RUN-1 write-file: resumed after its worker stopped, at execute step 2" in events(pb_bot, inc)
    assert pb_bot.services.incidents.get(inc).state == "mitigated"


def test_a_resumed_run_whose_done_steps_were_undone_is_handed_back(pchat: MemoryChat, pb_bot: Bot, engine: Engine,
                                                                   clock: FakeClock, target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target}")
    pchat.say("alice", "/incident approve RUN-1")
    target.write_text("")  # someone removed what step 0 and 1 did
    with pb_bot.db.session() as s:
        run = s.get(PlaybookRun, 1)
        run.state, run.phase, run.checkpoint, run.owner = "running", "execute", 2, "dead-host:1:abc"
        run.owner_heartbeat_at = clock.now() - timedelta(minutes=5)
        s.add(run)
        incident = s.get(Incident, inc)
        incident.state = "mitigating"
        s.add(incident)
    pchat.pump()
    run = engine.service.get(1)
    assert run.state == "handed_back"
    assert run.error == "after a restart, the change of step write line 0 is no longer in place"
    assert lines(target) == []  # nothing was redone blindly
    assert pb_bot.services.incidents.get(inc).state == "diagnosed"


def test_a_step_without_check_interrupted_by_a_crash_is_handed_back(pb_bot: Bot, engine: Engine, clock: FakeClock,
                                                                     tmp_path: Path) -> None:
    from playbooks.engine import Param, Plan, Playbook, Step

    calls: list[str] = []
    blind = Playbook(name="blind", summary="a step that cannot check", risk="low",
                     params=(Param("x", "anything", default="1"),),
                     plan=lambda ctx: Plan(changes=[{"do": "it"}], lines=["do it"]),
                     steps=(Step("do it", do=lambda ctx: calls.append("do") or {}),))
    engine.registry.register(blind)
    incidents = pb_bot.services.incidents
    row = incidents.declare("x", actor="alice")
    incidents.ack(row.id, actor="alice")
    incidents.cause(row.id, "c", actor="alice")
    run = engine.service.propose(row.id, "blind", {}, requested_by="alice")
    engine.service.approve(run.id, user="alice")
    with pb_bot.db.session() as s:  # the process died inside the step
        r = s.get(PlaybookRun, run.id)
        r.state, r.owner, r.owner_heartbeat_at = "running", "dead:1:x", clock.now() - timedelta(minutes=5)
        s.add(r)
        s.add(RunStep(run_id=run.id, index=0, phase="execute", name="do it", state="running", attempts=1))
    engine.worker.tick()
    assert calls == [] and engine.service.get(run.id).state == "handed_back"
    assert engine.service.get(run.id).error == ("the process stopped inside step do it, which cannot tell whether "
                                                "its change is in place")


def test_unapproved_requests_expire(pchat: MemoryChat, pb_bot: Bot, engine: Engine, clock: FakeClock,
                                    target: Path) -> None:
    inc = diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file path={target}")
    clock.advance(pb_bot.settings.playbooks.request_ttl_seconds + 1)
    pchat.pump()
    assert engine.service.get(1).state == "expired"
    assert events(pb_bot, inc)[-1] == "RUN-1 write-file: expired: not approved within 1h"
    assert pchat.say("alice", "/incident approve RUN-1") == (
        "RUN-1 is expired; only a run awaiting approval can be approved.")
    assert "awaits approval" not in pchat.say("alice", "/incident status")


def test_runs_need_a_recorded_cause(pchat: MemoryChat, target: Path) -> None:
    pchat.say("alice", "/incident declare etcd slow")
    assert pchat.say("alice", f"/incident run write-file path={target}") == (
        "INC-1 is notified: a playbook runs only once the cause is recorded (`/incident cause <text>` or "
        "diagnosis). `/incident plan` works now.")
    pchat.say("alice", "/incident resolve")
    assert pchat.say("alice", f"/incident run write-file path={target}").startswith(
        "INC-1 is resolved: a playbook starts only from diagnosed.")


def test_unknown_playbooks_and_runs_are_named(pchat: MemoryChat) -> None:
    diagnosed_incident(pchat, "alice")
    assert pchat.say("alice", "/incident run nope").startswith("there is no playbook `nope`; known playbooks: ")
    assert pchat.say("alice", "/incident approve RUN-42") == "there is no run RUN-42."
    assert pchat.say("alice", "/incident approve banana").startswith("`banana` is not a run; write RUN-<number>.")


def test_runs_and_the_freeze_are_exported_as_metrics(pchat: MemoryChat, pb_bot: Bot, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("alice", f"/incident run write-file path={target}")
    pchat.say("alice", "/incident approve RUN-1")
    pchat.say("alice", "/incident freeze")
    from bot.compose.app.metrics import render_metrics

    lines_ = render_metrics(pb_bot).splitlines()
    assert 'incident_bot_playbook_runs{playbook="write-file",state="succeeded"} 1.0' in lines_
    assert "incident_bot_playbooks_frozen 1.0" in lines_
