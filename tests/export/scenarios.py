"""Incidents built the way people build them: chat transcripts on a fake clock.

Only the playbook runs are written straight through the store (the engine
that will write them is being built elsewhere): the rows and the ``run.*``
timeline events are those the engine is specified to write.
"""

from __future__ import annotations

from datetime import timedelta

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store import timeline
from bot.core.store.models import Alert, Approval, PlaybookRun, RunStep


def all_met(chat: MemoryChat, clock: FakeClock) -> None:
    """INC: announced at once, diagnosed in 3 min, mitigated in 8 min, resolved; all three stages met."""
    chat.say("alice", "/incident declare apiserver 5xx in prod-1 --severity sev1 --cluster prod-1")
    chat.say("alice", "/incident ack")
    chat.say("alice", "/incident assign scribe @dave")
    chat.say("alice", "/incident assign responder @erin")
    clock.advance(60)
    chat.say("dave", "/incident note LIST pods p99 at 40s")
    clock.advance(120)
    chat.say("dave", "/incident cause a CI robot lists all pods every second")
    clock.advance(300)
    chat.say("alice", "/incident mitigated throttled ci-robots with APF")
    chat.say("alice", "/incident action add an APF schema for CI robots")
    chat.say("alice", "/incident action alert on LIST latency per user")
    chat.say("alice", "/incident action done 1")
    clock.advance(60)
    chat.say("alice", "/incident resolve")


def breached(chat: MemoryChat, clock: FakeClock) -> None:
    """INC: announced at once, diagnosed after 7 min (breach), mitigated after 12 min (breach)."""
    chat.say("bob", "/incident declare etcd fsync latency --severity sev2 --cluster prod-2")
    chat.say("bob", "/incident ack")
    clock.advance(240)
    chat.pump()  # the watcher warns at 80 %
    clock.advance(180)
    chat.pump()  # ... and records the breach of the 5-minute budget
    chat.say("bob", "/incident cause etcd member 2 on a throttled disk")
    clock.advance(300)
    chat.pump()
    chat.say("bob", "/incident mitigated moved etcd-2 to a local SSD")
    chat.say("bob", "/incident resolve")


def cancelled(chat: MemoryChat, clock: FakeClock) -> None:
    """INC: a false positive, cancelled after 2 minutes; diagnosis and recovery never reached."""
    chat.say("carol", "/incident declare apiserver latency spike --severity sev3")
    chat.say("carol", "/incident ack")
    clock.advance(120)
    chat.say("carol", "/incident cancel synthetic probe misconfigured")


def failed_then_successful_mitigation(bot: Bot, chat: MemoryChat, clock: FakeClock) -> None:
    """INC: the first playbook run fails and is rolled back; the second, re-approved, recovers."""
    chat.say("alice", "/incident declare apiserver overloaded by LIST storms --severity sev1 --cluster prod-1")
    chat.say("alice", "/incident ack")
    incident_id = chat.current
    assert incident_id is not None
    with bot.db.session() as s:
        s.add(Alert(incident_id=incident_id, fingerprint="a1b2c3", alertname="KubeAPIErrorBudgetBurn",
                    status="firing", cluster="prod-1", component="apiserver", severity="critical",
                    labels={"alertname": "KubeAPIErrorBudgetBurn", "cluster": "prod-1", "severity": "critical"},
                    annotations={"summary": "apiserver error budget burning 14x"},
                    starts_at=clock.now() - timedelta(seconds=20), received_at=clock.now(), updated_at=clock.now(),
                    generator_url="http://prometheus.invalid/graph?g0.expr=apiserver"))
    clock.advance(30)
    incidents = bot.services.incidents
    with incidents.transaction(incident_id) as (session, row):
        timeline.record(session, incident_id, "diagnosis.check", "apiserver LIST latency p99 = 41s (threshold 5s)",
                        at=clock.now(), actor="diagnosis", source="diagnosis",
                        data={"check": "apiserver-list-latency", "result": "fail", "value": 41.0,
                              "query": "histogram_quantile(0.99, apiserver_request_duration_seconds_bucket)"})
        timeline.record(session, incident_id, "diagnosis.conclusion", "LIST storm from user ci-robot",
                        at=clock.now(), actor="diagnosis", source="diagnosis",
                        data={"sop": "apiserver-overload", "suspect": "ci-robot", "playbooks": ["apf-throttle"]})
    chat.say("alice", "/incident cause LIST storm from ci-robot")
    clock.advance(30)
    first = _run(bot, clock, incident_id, plan_hash="sha256:1111", approver="alice", fail=True)
    clock.advance(60)
    second = _run(bot, clock, incident_id, plan_hash="sha256:2222", approver="alice", fail=False)
    assert first != second
    clock.advance(30)
    chat.say("alice", "/incident resolve")


def _run(bot: Bot, clock: FakeClock, incident_id: int, *, plan_hash: str, approver: str, fail: bool) -> int:
    incidents = bot.services.incidents
    plan = {"changes": [{"kind": "FlowSchema", "name": "ci-robot-throttle", "op": "create"}]}
    plan_text = "+ FlowSchema ci-robot-throttle -> PriorityLevel ci-robot (shares 5)"
    with incidents.transaction(incident_id) as (session, row):
        run = PlaybookRun(incident_id=incident_id, playbook="apf-throttle", cluster="prod-1", risk="low",
                          params={"user": "ci-robot", "shares": "5"}, plan=plan, plan_text=plan_text,
                          plan_hash=plan_hash, state="awaiting_approval", requested_by="alice",
                          requested_at=clock.now())
        session.add(run)
        session.flush()
        assert run.id is not None
        timeline.record(session, incident_id, "run.planned", f"RUN-{run.id} apf-throttle planned",
                        at=clock.now(), actor="alice", source="chat:memory",
                        data={"run_id": run.id, "plan_hash": plan_hash})
        session.add(Approval(run_id=run.id, user=approver, plan_hash=plan_hash, at=clock.now(),
                             expires_at=clock.now() + timedelta(minutes=15)))
        timeline.record(session, incident_id, "run.approved", f"RUN-{run.id} approved by @{approver}",
                        at=clock.now(), actor=approver, source="chat:memory",
                        data={"run_id": run.id, "plan_hash": plan_hash})
        run.state, run.started_at = "running", clock.now()
        incidents.move(session, row, "start_mitigation", actor="engine", source="engine",
                       facts={"approved_run": run.id}, data={"run_id": run.id})
        run_id = run.id
    clock.advance(20)
    with incidents.transaction(incident_id) as (session, row):
        run = session.get(PlaybookRun, run_id)
        assert run is not None
        session.add(RunStep(run_id=run_id, index=0, phase="execute", name="create FlowSchema ci-robot-throttle",
                            state="succeeded", started_at=clock.now() - timedelta(seconds=20),
                            finished_at=clock.now() - timedelta(seconds=15), attempts=1,
                            result={"created": "flowschemas/ci-robot-throttle"}))
        if fail:
            session.add(RunStep(run_id=run_id, index=1, phase="verify", name="LIST latency below 5s",
                                state="failed", started_at=clock.now() - timedelta(seconds=15),
                                finished_at=clock.now(), attempts=3, result={"p99_seconds": 38.5},
                                error="p99 still 38.5s after 3 checks"))
            session.add(RunStep(run_id=run_id, index=0, phase="rollback", name="delete FlowSchema ci-robot-throttle",
                                state="succeeded", started_at=clock.now(), finished_at=clock.now(), attempts=1,
                                result={"deleted": "flowschemas/ci-robot-throttle"}))
            run.state, run.finished_at, run.error = "failed", clock.now(), "verification failed; rolled back"
            timeline.record(session, incident_id, "run.failed", f"RUN-{run_id} failed and was rolled back",
                            at=clock.now(), actor="engine", source="engine",
                            data={"run_id": run_id, "step": "LIST latency below 5s"})
            incidents.move(session, row, "mitigation_failed", actor="engine", source="engine",
                           note=f"RUN-{run_id} failed", data={"run_id": run_id})
        else:
            session.add(RunStep(run_id=run_id, index=1, phase="verify", name="LIST latency below 5s",
                                state="succeeded", started_at=clock.now() - timedelta(seconds=15),
                                finished_at=clock.now(), attempts=1, result={"p99_seconds": 1.2}))
            run.state, run.finished_at = "succeeded", clock.now()
            timeline.record(session, incident_id, "run.succeeded", f"RUN-{run_id} succeeded",
                            at=clock.now(), actor="engine", source="engine", data={"run_id": run_id})
            incidents.move(session, row, "mark_mitigated", actor="engine", source="engine",
                           note=f"RUN-{run_id} verified", data={"run_id": run_id})
        session.add(run)
    return run_id
