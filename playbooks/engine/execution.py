"""Claiming runs: starting approved ones, resuming orphans after a crash, expiring what nobody approved.

The worker's entry points.  Starting re-plans and re-checks the approvals against the plan
they bound to, takes the cluster lease (one mitigation per cluster) and claims the run;
resuming claims a run whose owner stopped beating and re-runs the checks of the steps already
done: if the world no longer matches the checkpoint, the run is handed back to the commander.
Driving a claimed run through its phases is ``stepping``; undoing it is ``rollback``.
"""

from __future__ import annotations

import functools
import logging
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlmodel import col

from bot.core.errors import IncidentBotError
from bot.domain.incidents import fleet
from bot.core.store.models import Incident, PlaybookRun
from playbooks.engine import approval, freeze, leases, records, run_lifecycle
from playbooks.engine.declaration import Playbook
from playbooks.engine.planning import compute
from playbooks.engine.stepping import Stepper
from playbooks.engine.run_driver import ACTOR, HandBack, describe_error
from playbooks.engine.rollback import begin_undo
from playbooks.engine.timeouts import call_with_timeout

log = logging.getLogger(__name__)


class Executor(Stepper):
    """Starts approved runs, drives them step by step, verifies, and resumes orphans after a crash."""

    # ================================================================== worker entry points
    def expire_requests(self) -> int:
        """Requests nobody approved within ``request_ttl_seconds`` expire (their buttons go)."""
        now = self.clock.now()
        cutoff = now - timedelta(seconds=self.cfg.request_ttl_seconds)
        count = 0
        with self.db.session() as session:
            for run in session.execute(select(PlaybookRun).where(
                    col(PlaybookRun.state) == "awaiting_approval", col(PlaybookRun.requested_at) <= cutoff)).scalars():
                count += records.expire_if_due(session, run, now=now, ttl_seconds=self.cfg.request_ttl_seconds)
        return count

    def start_ttl_expiries(self) -> int:
        """Succeeded runs whose TTL passed are turned into rollbacks (the worker then carries them out)."""
        now = self.clock.now()
        count = 0
        with self.db.session() as session:
            for run in session.execute(select(PlaybookRun).where(col(PlaybookRun.state) == "succeeded")).scalars():
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
                    col(PlaybookRun.state) == "running",
                    or_(col(PlaybookRun.owner).is_(None), col(PlaybookRun.owner_heartbeat_at).is_(None),
                        col(PlaybookRun.owner_heartbeat_at) < stale))
                .order_by(col(PlaybookRun.id))).scalars()]
        resumed = 0
        for run_id, old_owner, old_beat in orphans:
            with self.db.session() as session:
                query = update(PlaybookRun).where(col(PlaybookRun.id) == run_id, col(PlaybookRun.state) == "running")
                query = query.where(col(PlaybookRun.owner).is_(None) if old_owner is None
                                    else col(PlaybookRun.owner) == old_owner)
                query = query.where(col(PlaybookRun.owner_heartbeat_at).is_(None) if old_beat is None
                                    else col(PlaybookRun.owner_heartbeat_at) == old_beat)
                # exec, not execute: SQLModel types a DML result as a CursorResult (rowcount)
                claimed = session.exec(query.values(owner=self.owner, owner_heartbeat_at=now)).rowcount == 1
            if claimed:
                resumed += 1
                self._resume(run_id, previous_owner=old_owner)
        return resumed

    def start_approved(self) -> int:
        with self.db.session() as session:
            ids = [r for (r,) in session.execute(select(col(PlaybookRun.id)).where(col(PlaybookRun.state) == "approved")
                                                 .order_by(col(PlaybookRun.id))).all()]
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
                records.notify_commander(session, run, "approval expired before it started; approve again.",
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
                ok = call_with_timeout(functools.partial(step.check, ctx), timeout=self._timeout(step),
                                       what=f"re-check of {step.name}")
            except Exception as exc:
                raise HandBack(f"cannot re-check step {step.name} after a restart: {describe_error(exc)}") from exc
            if not ok:
                raise HandBack(f"after a restart, the change of step {step.name} is no longer in place")

