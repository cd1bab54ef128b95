"""Executing runs: step by step with a checkpoint after each, verify, roll back, resume.

The order of writes is what makes a crash harmless:

1. mark the step ``running`` (committed) -- a restart knows it was inside it;
2. ``check`` whether the change is already in place, else ``do`` it;
3. in one transaction: the step row ``done``, ``run.checkpoint = i + 1``, its
   result, and its timeline event (dedupe key ``run:<id>:execute:<i>``).

A process killed between 2 and 3 is resumed by another (or the restarted)
one at step ``i``: ``check`` says the change is there, so nothing is done
twice, and the event is written once.  A step without ``check`` cannot say,
so the run is handed back to the commander instead.  Before resuming, the
checks of the steps already done are run again: if the world no longer
matches the checkpoint, the run is handed back as well.

Failure (a step raises or times out, or verify says no) rolls back: the undo
of every completed step in reverse order, each one checkpointed the same way
(phase ``rollback``); then the incident goes back to ``diagnosed`` and the
commander is told why.  Success moves the incident to ``mitigated``.

Named ``hooks`` are called at every boundary (``claimed``, ``step:<i>:started``,
``step:<i>:done``, ``step:<i>:checkpointed``, ``verify:done``, ``rollback:<i>:done``,
``finished`` ...): for metrics and for the crash tests that kill the process
exactly there.
"""

from __future__ import annotations

import logging
import os
import socket
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update

from bot.clock import Clock
from bot.config import Settings
from bot.errors import IncidentBotError
from bot.incidents import fleet
from bot.incidents.service import Incidents
from bot.store.db import Database
from bot.store.models import Incident, PlaybookRun, RunStep
from playbooks.engine import approval, freeze, leases, records, run_lifecycle
from playbooks.engine.declaration import Playbook, StepContext, Verdict
from playbooks.engine.params import format_duration
from playbooks.engine.planning import compute
from playbooks.engine.registry import Registry
from playbooks.engine.service import begin_undo
from playbooks.engine.timeouts import call_with_timeout
from playbooks.engine.toolbox import Toolbox

log = logging.getLogger(__name__)
ACTOR = "incident-bot"


class Stop(Exception):
    """This process must not touch the run any more."""


class LostOwnership(Stop):
    """Another process took the run over (this one was too slow to beat): stop touching it."""


class HandedBack(Stop):
    """The run was just handed back to the commander."""


class HandBack(Exception):
    """The state is unclear: the commander decides, not the bot."""


def owner_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def describe_error(exc: BaseException) -> str:
    if isinstance(exc, IncidentBotError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


class Executor:
    def __init__(self, db: Database, settings: Settings, clock: Clock, incidents: Incidents, registry: Registry,
                 tools: Toolbox, *, owner: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.incidents = incidents
        self.registry = registry
        self.tools = tools
        self.owner = owner or owner_id()
        self.hooks: list[Callable[[str, int], None]] = []

    @property
    def cfg(self) -> Any:
        return self.settings.playbooks

    def _hook(self, label: str, run_id: int) -> None:
        for hook in self.hooks:
            hook(label, run_id)

    # ================================================================== worker entry points
    def expire_requests(self) -> int:
        """Requests nobody approved within ``request_ttl_seconds`` expire (their buttons go)."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.cfg.request_ttl_seconds)
        count = 0
        with self.db.session() as session:
            for run in session.execute(select(PlaybookRun).where(
                    PlaybookRun.state == "awaiting_approval", PlaybookRun.requested_at <= cutoff)).scalars():
                count += records.expire_if_due(session, run, now=now, ttl_seconds=self.cfg.request_ttl_seconds)
        return count

    def start_ttl_expiries(self) -> int:
        """Succeeded runs whose TTL passed are turned into rollbacks (the worker then carries them out)."""
        now = self.clock.now()
        count = 0
        with self.db.session() as session:
            for run in session.execute(select(PlaybookRun).where(PlaybookRun.state == "succeeded")).scalars():
                expires = (run.context or {}).get("expires_at")
                if not expires or datetime.fromisoformat(expires) > now or (run.context or {}).get("rollback"):
                    continue
                playbook = self.registry.get(run.playbook)
                begin_undo(run, reason="ttl", by=ACTOR, now=now, playbook=playbook)
                session.add(run)
                records.event(session, run, "run.ttl_expired",
                              f"its time to live ended at {expires[11:19]} UTC; removing its changes", at=now,
                              key="ttl_expired")
                count += 1
        return count

    def resume_orphans(self) -> int:
        """Runs left ``running`` by a dead owner (stale heartbeat) are claimed and resumed."""
        now = self.clock.now()
        stale = now - timedelta(seconds=self.cfg.stale_after_seconds)
        with self.db.session() as session:
            orphans = [(r.id, r.owner, r.owner_heartbeat_at) for r in session.execute(
                select(PlaybookRun).where(
                    PlaybookRun.state == "running",
                    or_(PlaybookRun.owner.is_(None), PlaybookRun.owner_heartbeat_at.is_(None),  # type: ignore[union-attr]
                        PlaybookRun.owner_heartbeat_at < stale))  # type: ignore[operator]
                .order_by(PlaybookRun.id)).scalars()]  # type: ignore[arg-type]
        resumed = 0
        for run_id, old_owner, old_beat in orphans:
            with self.db.session() as session:
                query = update(PlaybookRun).where(PlaybookRun.id == run_id, PlaybookRun.state == "running")
                query = query.where(PlaybookRun.owner.is_(None) if old_owner is None  # type: ignore[union-attr]
                                    else PlaybookRun.owner == old_owner)
                query = query.where(PlaybookRun.owner_heartbeat_at.is_(None) if old_beat is None  # type: ignore[union-attr]
                                    else PlaybookRun.owner_heartbeat_at == old_beat)
                claimed = session.execute(query.values(owner=self.owner, owner_heartbeat_at=now)).rowcount == 1
            if claimed:
                resumed += 1
                self._resume(run_id, previous_owner=old_owner)
        return resumed

    def start_approved(self) -> int:
        with self.db.session() as session:
            ids = [r for (r,) in session.execute(select(PlaybookRun.id).where(PlaybookRun.state == "approved")
                                                 .order_by(PlaybookRun.id)).all()]  # type: ignore[arg-type]
        started = 0
        for run_id in ids:
            if self.start(run_id) == "started":
                started += 1
        return started

    # ================================================================== start
    def start(self, run_id: int) -> str:
        """Re-plan, re-check approvals, take the cluster lease, claim the run, execute it."""
        with self.db.session() as session:
            run = session.get(PlaybookRun, run_id)
            if run is None or run.state != "approved":
                return "not-approved"
            if freeze.current(session) is not None:
                return "frozen"
            if leases.holder(session, run.cluster, now=self.clock.now()) not in (None, leases.holder_of(run_id)):
                return "waiting"
        playbook = self.registry.get(run.playbook)
        try:
            computed = self._replan(run, playbook)
        except Exception as exc:  # cannot plan: nothing was changed, say why
            log.warning("re-planning RUN-%s failed: %s", run_id, exc, exc_info=not isinstance(exc, IncidentBotError))
            return self._fail_unstarted(run_id, f"re-planning before execution failed: {describe_error(exc)}")
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.state != "approved":
                return "not-approved"
            if computed.hash != run.plan_hash:
                old = run.plan_hash
                run.plan, run.plan_text, run.plan_hash = computed.document, computed.text, computed.hash
                run_lifecycle.move(run, "approval_lapsed")
                session.add(run)
                records.event(session, run, "run.replanned",
                              f"the plan changed since approval ({old[:12]} → {computed.hash[:12]}); "
                              f"it needs a new approval", at=now, key=f"replanned:{computed.hash[:16]}",
                              data={"old_hash": old, "plan_hash": computed.hash, "plan_text": computed.text})
                records.notify_commander(session, run, "the cluster changed since approval, so the plan did: "
                                         f"review and approve again (plan {computed.hash[:12]}).", at=now,
                                         key=f"replanned:{computed.hash[:16]}")
                records.refresh_card(session, run.incident_id, now)
                return "replanned"
            commander = records.commander_of(session, run.incident_id) if run.incident_id else None
            state = approval.status(run, records.approvals_of(session, run_id), commander=commander, now=now)
            if not state.satisfied:
                run_lifecycle.move(run, "approval_lapsed")
                session.add(run)
                records.event(session, run, "run.approval_expired",
                              f"its approval expired before it could start; still needed: {state.missing}",
                              at=now, key=f"approval_lapsed:{int(now.timestamp())}")
                records.notify_commander(session, run, f"approval expired before it started; approve again.",
                                         at=now, key=f"approval_lapsed:{int(now.timestamp())}")
                records.refresh_card(session, run.incident_id, now)
                return "approval-expired"
            holder = leases.acquire(session, run.cluster, run_id, now=now, seconds=self.cfg.lease_seconds)
            if holder is not None:
                records.event(session, run, "run.waiting", f"waits: cluster {run.cluster} has a mitigation "
                              f"running ({holder.replace('run:', 'RUN-')})", at=now, key=f"waiting:{holder}")
                return "waiting"
            incident = records.lock_incident(session, run.incident_id) if run.incident_id else None
            if incident is not None and not fleet.may_mitigate(session, incident, run.cluster):
                leases.release(session, run.cluster, run_id)
                run_lifecycle.move(run, "refuse_start")
                run.finished_at = now
                run.error = f"its incident is {incident.state}; a playbook starts only from diagnosed"
                session.add(run)
                records.event(session, run, "run.aborted", f"not started: {run.error}", at=now, key="aborted")
                records.refresh_card(session, run.incident_id, now)
                return "aborted"
            if incident is not None and incident.state == "diagnosed":
                self.incidents.move(session, incident, "start_mitigation", actor=ACTOR, source="engine",
                                    note=f"{records.run_ref(run)} {run.playbook}", facts={"approved_run": run_id},
                                    data={"run_id": run_id})
            run_lifecycle.move(run, "start")
            run.phase, run.checkpoint = "execute", 0
            run.owner, run.owner_heartbeat_at, run.started_at = self.owner, now, now
            session.add(run)
            records.event(session, run, "run.started",
                          f"started ({len(playbook.steps)} steps, approved by "
                          f"{', '.join('@' + u for u in state.approvers)})", at=now, key="started",
                          data={"plan_hash": run.plan_hash, "approvers": list(state.approvers)})
            records.refresh_card(session, run.incident_id, now)
        self._hook("claimed", run_id)
        self.drive(run_id)
        return "started"

    def _replan(self, run: PlaybookRun, playbook: Playbook) -> Any:
        from playbooks.engine.declaration import PlanContext

        info: dict[str, Any] = {}
        if run.incident_id is not None:
            with self.db.session() as session:
                incident = session.get(Incident, run.incident_id)
                if incident is not None:
                    info = {"id": incident.id, "title": incident.title, "severity": incident.severity,
                            "is_drill": incident.is_drill, "evidence": records.evidence_of(session, incident)}
        ctx = PlanContext(playbook, dict(run.params), run.cluster, self.tools, info, self.clock.now())
        return compute(playbook, ctx)

    def _fail_unstarted(self, run_id: int, reason: str) -> str:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.state != "approved":
                return "not-approved"
            run_lifecycle.move(run, "fail_to_start")
            run.finished_at, run.error = now, reason
            session.add(run)
            records.event(session, run, "run.failed", f"did not start: {reason}", at=now, key="failed")
            records.notify_commander(session, run, f"did not start: {reason}", at=now, key="failed")
            records.refresh_card(session, run.incident_id, now)
        return "failed"

    # ================================================================== resume
    def _resume(self, run_id: int, *, previous_owner: str | None) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = session.get(PlaybookRun, run_id)
            assert run is not None
            playbook = self.registry.get(run.playbook)
            holder = leases.acquire(session, run.cluster, run_id, now=now, seconds=self.cfg.lease_seconds)
            if holder is not None:
                if run.phase == "rollback" and (run.context or {}).get("rollback", {}).get("reason") in ("ttl", "undo"):
                    run.owner, run.owner_heartbeat_at = None, None  # an undo waits for the lease
                    session.add(run)
                    return
            crashed = previous_owner is not None
            if crashed:
                records.event(session, run, "run.resumed",
                              f"resumed after its worker stopped, at {run.phase} step {run.checkpoint + 1}",
                              at=now, key=f"resumed:{run.phase}:{run.checkpoint}",
                              data={"previous_owner": previous_owner, "phase": run.phase,
                                    "checkpoint": run.checkpoint})
        if holder is not None:
            self._hand_back(run_id, f"cluster {run.cluster} is now held by {holder.replace('run:', 'RUN-')}")
            return
        if run.phase == "execute" and crashed:
            try:
                self._recheck(run, playbook)
            except HandBack as exc:
                self._hand_back(run_id, str(exc))
                return
        self._hook("resumed", run_id)
        self.drive(run_id)

    def _recheck(self, run: PlaybookRun, playbook: Playbook) -> None:
        """The steps before the checkpoint must still be in place, else the state is unclear."""
        ctx = self._ctx(run, playbook)
        for index in range(run.checkpoint):
            step = playbook.steps[index]
            if step.check is None:
                continue
            try:
                ok = call_with_timeout(lambda: step.check(ctx), timeout=self._timeout(step),  # type: ignore[misc]
                                       what=f"re-check of {step.name}")
            except Exception as exc:
                raise HandBack(f"cannot re-check step {step.name} after a restart: {describe_error(exc)}") from exc
            if not ok:
                raise HandBack(f"after a restart, the change of step {step.name} is no longer in place")

    # ================================================================== driving
    def drive(self, run_id: int) -> None:
        try:
            while self._advance(run_id):
                pass
        except LostOwnership:
            log.warning("RUN-%s was taken over by another worker; %s stops", run_id, self.owner)
        except HandedBack:
            log.info("RUN-%s was handed back to the commander", run_id)

    def _advance(self, run_id: int) -> bool:
        """One boundary: returns False when the run needs nothing more from this process."""
        with self.db.session() as session:
            run = session.get(PlaybookRun, run_id)
            if run is None or run.state != "running" or run.owner != self.owner:
                return False
            flag = freeze.current(session)
        playbook = self.registry.get(run.playbook)
        if flag is not None:
            self._hand_back(run_id, f"halted at a step boundary: playbooks are {freeze.describe(flag)}")
            return False
        self._heartbeat(run_id)
        if run.phase in ("execute", "verify") and (run.context or {}).get("abort"):
            abort = run.context["abort"]
            self._begin_rollback(run_id, reason="abort", error=f"aborted by @{abort.get('by')}")
            return True
        if run.phase == "execute":
            if run.checkpoint < len(playbook.steps):
                self._execute_step(run, playbook, run.checkpoint)
            else:
                self._set_phase(run_id, "verify")
            return True
        if run.phase == "verify":
            self._verify(run, playbook)
            return True
        if run.phase == "rollback":
            pending = (run.context or {}).get("rollback", {}).get("pending") or []
            if pending:
                self._undo_step(run, playbook, pending[0])
                return True
            self._finish_rollback(run_id)
            return False
        raise IncidentBotError(f"RUN-{run_id} is in an unknown phase {run.phase!r}")

    def _ctx(self, run: PlaybookRun, playbook: Playbook) -> StepContext:
        return StepContext(run_id=run.id, playbook=playbook, params=dict(run.params), plan=dict(run.plan),  # type: ignore[arg-type]
                           cluster=run.cluster, tools=self.tools, incident_id=run.incident_id,
                           results=dict((run.context or {}).get("results") or {}))

    def _timeout(self, step: Any) -> float:
        return float(step.timeout or self.cfg.default_step_timeout_seconds)

    def _beat(self, run_id: int) -> Callable[[], None]:
        return lambda: self._heartbeat(run_id)

    def _heartbeat(self, run_id: int) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.owner != self.owner or run.state != "running":
                raise LostOwnership()
            run.owner_heartbeat_at = now
            session.add(run)
            leases.renew(session, run.cluster, run_id, now=now, seconds=self.cfg.lease_seconds)

    def _step_row(self, session: Any, run_id: int, phase: str, index: int, name: str) -> RunStep:
        row = session.execute(select(RunStep).where(RunStep.run_id == run_id, RunStep.phase == phase,
                                                    RunStep.index == index)).scalars().first()
        if row is None:
            row = RunStep(run_id=run_id, phase=phase, index=index, name=name)
        return row

    def _execute_step(self, run: PlaybookRun, playbook: Playbook, index: int) -> None:
        step = playbook.steps[index]
        run_id = run.id
        assert run_id is not None
        now = self.clock.now()
        with self.db.session() as session:
            row = self._step_row(session, run_id, "execute", index, step.name)
            interrupted = row.state == "running"
            row.state, row.attempts = "running", row.attempts + 1
            row.started_at = row.started_at or now
            session.add(row)
        self._hook(f"step:{index}:started", run_id)
        ctx = self._ctx(run, playbook)
        timeout = self._timeout(step)
        try:
            already = False
            if step.check is not None:
                already = bool(call_with_timeout(lambda: step.check(ctx), timeout=timeout,  # type: ignore[misc]
                                                 what=f"step {step.name} (check)", beat=self._beat(run_id)))
            elif interrupted and not step.repeatable:
                raise HandBack(f"the process stopped inside step {step.name}, which cannot tell whether its "
                               f"change is in place")
            result = {"already_done": True} if already else dict(
                call_with_timeout(lambda: step.do(ctx), timeout=timeout, what=f"step {step.name}",
                                  beat=self._beat(run_id)) or {})
        except LostOwnership:
            raise
        except HandBack as exc:
            self._hand_back(run_id, str(exc))
            raise HandedBack() from exc
        except Exception as exc:
            if not isinstance(exc, IncidentBotError):
                log.exception("RUN-%s step %s failed", run_id, step.name)
            self._step_failed(run_id, index, step.name, describe_error(exc))
            return
        self._hook(f"step:{index}:done", run_id)
        now = self.clock.now()
        with self.db.session() as session:
            locked = records.lock_run(session, run_id)
            if locked is None or locked.owner != self.owner or locked.state != "running":
                raise LostOwnership()
            row = self._step_row(session, run_id, "execute", index, step.name)
            row.state, row.finished_at, row.result, row.error = "done", now, _jsonable(result), None
            session.add(row)
            results = dict((locked.context or {}).get("results") or {})
            results[step.name] = _jsonable(result)
            records.with_context(locked, results=results)
            locked.checkpoint = index + 1
            locked.owner_heartbeat_at = now
            session.add(locked)
            how = "already in place" if already else "done"
            records.event(session, locked, "run.step", f"step {index + 1}/{len(playbook.steps)} {step.name}: {how}",
                          at=now, key=f"execute:{index}", data={"step": step.name, "index": index,
                                                                 "already_done": already, "result": _jsonable(result)})
        self._hook(f"step:{index}:checkpointed", run_id)

    def _step_failed(self, run_id: int, index: int, name: str, error: str) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            assert run is not None
            row = self._step_row(session, run_id, "execute", index, name)
            row.state, row.finished_at, row.error = "failed", now, error
            session.add(row)
            records.event(session, run, "run.step_failed", f"step {index + 1} {name} failed: {error}", at=now,
                          key=f"execute:{index}:failed", data={"step": name, "index": index, "error": error})
        self._begin_rollback(run_id, reason="failure", error=f"step {name} failed: {error}", failed_index=index)

    def _set_phase(self, run_id: int, phase: str) -> None:
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.owner != self.owner:
                raise LostOwnership()
            run.phase = phase
            session.add(run)

    def _verify(self, run: PlaybookRun, playbook: Playbook) -> None:
        run_id = run.id
        assert run_id is not None
        verdict = Verdict(True, "no verification declared")
        if playbook.verify is not None:
            ctx = self._ctx(run, playbook)
            try:
                verdict = call_with_timeout(lambda: playbook.verify(ctx), timeout=self.cfg.default_step_timeout_seconds,  # type: ignore[misc]
                                            what="verification", beat=self._beat(run_id))
            except LostOwnership:
                raise
            except Exception as exc:
                verdict = Verdict(False, f"verification failed: {describe_error(exc)}")
        self._hook("verify:done", run_id)
        if verdict.ok:
            self._finish_success(run_id, playbook, verdict)
            return
        now = self.clock.now()
        with self.db.session() as session:
            locked = records.lock_run(session, run_id)
            assert locked is not None
            records.event(session, locked, "run.verify_failed", f"verification failed: {verdict.text}", at=now,
                          key="verify_failed", data=_jsonable(verdict.data))
        self._begin_rollback(run_id, reason="verify", error=f"verification failed: {verdict.text}")

    # ================================================================== endings
    def _finish_success(self, run_id: int, playbook: Playbook, verdict: Verdict) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.owner != self.owner or run.state != "running":
                raise LostOwnership()
            ref = records.run_ref(run)
            run_lifecycle.move(run, "succeed")
            run.finished_at, run.owner, run.phase = now, None, "done"
            ttl_note = ""
            if playbook.ttl_param and run.params.get(playbook.ttl_param):
                expires = now + timedelta(seconds=float(run.params[playbook.ttl_param]))
                records.with_context(run, expires_at=expires.isoformat())
                ttl_note = f"; removed automatically at {expires.strftime('%H:%M:%S UTC')} (or `/incident abort {ref}`)"
            session.add(run)
            leases.release(session, run.cluster, run_id)
            records.event(session, run, "run.verified", f"verified: {verdict.text}", at=now, key="verified",
                          data=_jsonable(verdict.data))
            records.event(session, run, "run.succeeded", f"succeeded{ttl_note}", at=now, key="succeeded")
            incident = records.lock_incident(session, run.incident_id) if run.incident_id else None
            if incident is not None and incident.state in ("notified", "diagnosing", "diagnosed", "mitigating") \
                    and run.cluster in {c.cluster for c in fleet.clusters(session, incident.id)}:  # type: ignore[arg-type]
                # only the cluster the run changed is mitigated; the incident once every cluster is
                if fleet.reach(session, self.incidents, incident, run.cluster, "mitigated", actor=ACTOR,
                               source="engine", text=f"{ref} {run.playbook} verified: {verdict.text}",
                               data={"run_id": run_id}):
                    incident.mitigation = f"{run.playbook} ({ref})"
                    session.add(incident)
            records.notify_commander(session, run, f"succeeded and verified: {verdict.text}{ttl_note}", at=now,
                                     key="succeeded")
            records.refresh_card(session, run.incident_id, now)
        self._hook("finished", run_id)

    def _begin_rollback(self, run_id: int, *, reason: str, error: str, failed_index: int | None = None) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.owner != self.owner:
                raise LostOwnership()
            playbook = self.registry.get(run.playbook)
            done = range(min(run.checkpoint, len(playbook.steps)))
            pending = [i for i in reversed(done) if playbook.steps[i].undo is not None]
            if failed_index is not None and playbook.steps[failed_index].undo is not None \
                    and failed_index not in pending:
                pending.insert(0, failed_index)  # it may have half-applied; undo is idempotent
            records.with_context(run, rollback={"reason": reason, "error": error, "at": now.isoformat(),
                                                "pending": pending, "done": [], "errors": []})
            run.phase, run.error = "rollback", error
            session.add(run)
            steps = ", ".join(playbook.steps[i].name for i in pending) or "nothing to undo"
            records.event(session, run, "run.rolling_back", f"{error}; rolling back: {steps}", at=now,
                          key="rollback", data={"reason": reason, "pending": pending})
        self._hook("rollback:begin", run_id)

    def _undo_step(self, run: PlaybookRun, playbook: Playbook, index: int) -> None:
        step = playbook.steps[index]
        run_id = run.id
        assert run_id is not None and step.undo is not None
        now = self.clock.now()
        with self.db.session() as session:
            row = self._step_row(session, run_id, "rollback", index, step.name)
            row.state, row.attempts, row.started_at = "running", row.attempts + 1, row.started_at or now
            session.add(row)
        self._hook(f"rollback:{index}:started", run_id)
        ctx = self._ctx(run, playbook)
        error = None
        try:
            call_with_timeout(lambda: step.undo(ctx), timeout=self._timeout(step),  # type: ignore[misc]
                              what=f"undo of {step.name}", beat=self._beat(run_id))
        except LostOwnership:
            raise
        except Exception as exc:
            error = describe_error(exc)
        now = self.clock.now()
        with self.db.session() as session:
            locked = records.lock_run(session, run_id)
            if locked is None or locked.owner != self.owner:
                raise LostOwnership()
            row = self._step_row(session, run_id, "rollback", index, step.name)
            row.state, row.finished_at, row.error = ("failed" if error else "done"), now, error
            session.add(row)
            rb = dict((locked.context or {}).get("rollback") or {})
            rb["pending"] = [i for i in rb.get("pending", []) if i != index]
            if error:
                rb["errors"] = [*rb.get("errors", []), {"step": step.name, "error": error}]
            else:
                rb["done"] = [*rb.get("done", []), index]
            records.with_context(locked, rollback=rb)
            locked.owner_heartbeat_at = now
            session.add(locked)
            records.event(session, locked, "run.rollback_step",
                          f"undo {step.name}: " + (f"failed: {error}" if error else "done"), at=now,
                          key=f"rollback:{index}", data={"step": step.name, "index": index, "error": error})
        self._hook(f"rollback:{index}:done", run_id)

    def _finish_rollback(self, run_id: int) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.owner != self.owner or run.state != "running":
                raise LostOwnership()
            ref = records.run_ref(run)
            rb = (run.context or {}).get("rollback") or {}
            reason, errors = rb.get("reason"), rb.get("errors") or []
            incomplete = "; ".join(f"{e['step']}: {e['error']}" for e in errors)
            if reason in ("ttl", "undo"):
                run_lifecycle.move(run, "fail" if errors else "roll_back")
                what = "its time to live ended" if reason == "ttl" else f"undo requested by @{rb.get('by')}"
                text = (f"changes removed ({what})" if not errors
                        else f"removing its changes ({what}) failed: {incomplete}; check by hand")
                if errors:
                    run.error = text
            else:
                run_lifecycle.move(run, "fail" if errors else ("abort" if reason == "abort" else "roll_back"))
                cause = run.error or reason
                text = (f"{cause}; rolled back" if not errors
                        else f"{cause}; rollback incomplete ({incomplete}): check the cluster by hand")
                if errors:
                    run.error = f"{cause}; rollback incomplete: {incomplete}"
            run.finished_at, run.owner, run.phase = now, None, "done"
            session.add(run)
            leases.release(session, run.cluster, run_id)
            kind = {"rolled_back": "run.rolled_back", "aborted": "run.aborted", "failed": "run.failed"}[run.state]
            records.event(session, run, kind, text, at=now, key="finished", data={"reason": reason, "errors": errors})
            incident = records.lock_incident(session, run.incident_id) if run.incident_id else None
            if reason not in ("ttl", "undo") and incident is not None and incident.state == "mitigating":
                self.incidents.move(session, incident, "mitigation_failed", actor=ACTOR, source="engine",
                                    note=f"{ref} {run.playbook}: {text}", data={"run_id": run_id})
            records.notify_commander(session, run, text + ("" if reason in ("ttl", "undo") else
                                                           "; the incident is back to diagnosed"),
                                     at=now, key="finished")
            records.refresh_card(session, run.incident_id, now)
        self._hook("finished", run_id)

    def _hand_back(self, run_id: int, reason: str) -> None:
        now = self.clock.now()
        with self.db.session() as session:
            run = records.lock_run(session, run_id)
            if run is None or run.state != "running":
                return
            done = [s.name for s in session.execute(select(RunStep).where(
                RunStep.run_id == run_id, RunStep.phase == "execute", RunStep.state == "done")
                .order_by(RunStep.index)).scalars()]  # type: ignore[arg-type]
            run_lifecycle.move(run, "hand_back")
            run.finished_at, run.owner, run.error = now, None, reason
            session.add(run)
            leases.release(session, run.cluster, run_id)
            ref = records.run_ref(run)
            text = (f"handed back to the commander: {reason}. Steps done: {', '.join(done) or 'none'}. "
                    f"`/incident abort {ref}` undoes them")
            records.event(session, run, "run.handed_back", text, at=now, key="handed_back",
                          data={"reason": reason, "steps_done": done})
            incident = records.lock_incident(session, run.incident_id) if run.incident_id else None
            if incident is not None and incident.state == "mitigating":
                self.incidents.move(session, incident, "mitigation_failed", actor=ACTOR, source="engine",
                                    note=f"{ref} handed back: {reason}", data={"run_id": run_id})
            records.notify_commander(session, run, text, at=now, key="handed_back")
            records.refresh_card(session, run.incident_id, now)
        self._hook("handed_back", run_id)


def _jsonable(value: Any) -> Any:
    import json

    return json.loads(json.dumps(value, default=str))
