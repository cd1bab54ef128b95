"""The playbook service: plan, propose, approve, reject, abort, undo, freeze.

This is the Python API the chat handlers, the CLI and the diagnosis engine
call (``bot.services.extras.need(PLAYBOOKS)``).  It records decisions; it never
touches a cluster except to compute plans (read-only).  Execution belongs to
``playbooks.engine.execution`` and its worker.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import BadInput, Conflict, IllegalTransition, NotFound, PermissionDenied
from bot.domain.incidents import fleet
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of
from bot.core.store.db import Database, insert_once
from bot.core.store.models import Approval, Incident, PlaybookRun
from playbooks.engine import approval, freeze, records, run_lifecycle
from playbooks.engine.declaration import PlanContext, Playbook
from playbooks.engine.params import parse_params
from playbooks.engine.planning import ComputedPlan, compute
from playbooks.engine.registry import Registry
from playbooks.engine.rollback import begin_undo
from playbooks.engine.toolbox import Toolbox

TERMINAL = run_lifecycle.TERMINAL
OPEN = run_lifecycle.OPEN


@dataclass(frozen=True)
class Decision:
    """The answer to an approve/reject/abort: the run as it is now and a sentence for people."""

    run: PlaybookRun
    text: str
    changed: bool = True


class PlaybookService:
    def __init__(self, db: Database, settings: Settings, clock: Clock, incidents: Incidents,
                 registry: Registry, tools: Toolbox) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.incidents = incidents
        self.registry = registry
        self.tools = tools

    # ------------------------------------------------------------------ reading
    def get(self, run_id: int | str) -> PlaybookRun:
        rid = records.parse_run(run_id)
        with self.db.session() as session:
            run = session.get(PlaybookRun, rid)
            if run is None:
                raise NotFound(f"there is no run RUN-{rid}.")
            return run

    def runs(self, incident: str | int | None = None, *, states: set[str] | None = None) -> list[PlaybookRun]:
        with self.db.session() as session:
            query = select(PlaybookRun).order_by(col(PlaybookRun.id))
            if incident is not None:
                query = query.where(col(PlaybookRun.incident_id) == self.incidents.get(incident).id)
            if states:
                query = query.where(col(PlaybookRun.state).in_(sorted(states)))
            return list(session.execute(query).scalars())

    def approvals(self, run_id: int) -> list[Approval]:
        with self.db.session() as session:
            return records.approvals_of(session, run_id)

    # ------------------------------------------------------------------ planning
    def compute_plan(self, playbook: Playbook, params: dict[str, Any], cluster: str,
                     incident: Incident | None = None, evidence: Mapping[str, Any] | None = None) -> ComputedPlan:
        info: dict[str, Any] = {}
        if incident is not None:
            info = {"id": incident.id, "title": incident.title, "severity": incident.severity,
                    "is_drill": incident.is_drill, "evidence": dict(evidence or {})}
        ctx = PlanContext(playbook, params, cluster, self.tools, info, self.clock.now())
        return compute(playbook, ctx)

    def _prepare(self, incident_ref: str | int, playbook_name: str, params: Mapping[str, Any],
                 cluster: str | None) -> tuple[Incident, Playbook, dict[str, Any], str, ComputedPlan]:
        playbook = self.registry.get(playbook_name)
        with self.db.session() as session:
            incident = self.incidents.load(session, incident_ref)  # read-only
            evidence = records.evidence_of(session, incident)
        typed = parse_params(playbook.params, params, evidence)
        target = cluster or incident.cluster
        return incident, playbook, typed, target, self.compute_plan(playbook, typed, target, incident, evidence)

    def plan(self, incident_ref: str | int, playbook_name: str, params: Mapping[str, Any] | None = None, *,
             actor: str, source: str = "chat", cluster: str | None = None) -> PlaybookRun:
        """A dry run: computes and records the plan (state ``planned``), changes nothing."""
        incident, playbook, typed, target, computed = self._prepare(incident_ref, playbook_name, params or {},
                                                                    cluster)
        now = self.clock.now()
        with self.db.session() as session:
            run = self._new_run(session, incident, playbook, typed, target, computed, actor, "planned")
            records.event(session, run, "run.planned", f"dry run by @{actor}, plan {run.plan_hash[:12]}",
                          at=now, key="planned", actor=actor, source=source,
                          data={"plan_hash": run.plan_hash, "plan_text": run.plan_text})
            return run

    def propose(self, incident: str | int, playbook: str, params: Mapping[str, Any] | None = None, *,
                requested_by: str = "diagnosis", source: str | None = None, reason: str | None = None,
                cluster: str | None = None) -> PlaybookRun:
        """Plan a run and ask for approval (``awaiting_approval``); the diagnosis engine's entry point.

        Refused while playbooks are frozen, and unless the incident is
        ``diagnosed`` (a playbook starts only from a recorded cause).  On a
        drill incident with ``settings.playbooks.auto_approve_drills`` the
        run is approved by the bot itself and recorded as such.
        """
        source = source or ("diagnosis" if requested_by == "diagnosis" else "chat")
        with self.db.session() as session:
            flag = freeze.current(session)
            if flag is not None:
                raise Conflict(f"playbooks are {freeze.describe(flag)}; no new runs until `/incident unfreeze`.")
            row = self.incidents.load(session, incident)
            if fleet.may_mitigate(session, row, cluster or row.cluster):
                pass  # the incident has its cause, or this cluster of a fleet incident has its own
            elif row.state in ("detected", "notified", "diagnosing"):
                raise IllegalTransition(
                    f"{ref_of(row.id)} is {row.state}: a playbook runs only once the cause is recorded "
                    f"(`/incident cause <text>` or diagnosis). `/incident plan` works now.")
            else:
                raise IllegalTransition(
                    f"{ref_of(row.id)} is {row.state}: a playbook starts only from diagnosed. `/incident reopen` "
                    f"it, or declare a new incident for this change. `/incident plan` works now.")
        inc, pb, typed, target, computed = self._prepare(incident, playbook, params or {}, cluster)
        now = self.clock.now()
        ttl = self.settings.approvers.approval_ttl_seconds
        with self.db.session() as session:
            run = self._new_run(session, inc, pb, typed, target, computed, requested_by, "awaiting_approval")
            records.event(session, run, "run.requested",
                          f"requested by @{requested_by} ({pb.risk} risk), plan {run.plan_hash[:12]}"
                          + (f": {reason}" if reason else ""),
                          at=now, key="requested", actor=requested_by, source=source,
                          data={"plan_hash": run.plan_hash, "plan_text": run.plan_text, "risk": pb.risk,
                                **({"reason": reason} if reason else {})})
            if inc.is_drill and self.settings.playbooks.auto_approve_drills:
                run.auto_approved = True
                run_lifecycle.move(run, "approve")
                session.add(Approval(run_id=run.id, user=approval.AUTO_APPROVER, decision="approve",
                                     plan_hash=run.plan_hash, at=now, expires_at=now + timedelta(seconds=ttl),
                                     source="auto", reason="unattended drill"))
                session.add(run)
                records.event(session, run, "run.approval",
                              f"auto-approved (unattended drill), plan {run.plan_hash[:12]}", at=now,
                              key=f"approval:auto:{run.plan_hash[:16]}", source="drill",
                              data={"user": approval.AUTO_APPROVER, "auto": True, "plan_hash": run.plan_hash})
            else:
                records.notify_commander(session, run, f"awaits approval ({pb.risk} risk): "
                                         f"`/incident approve {records.run_ref(run)}`", at=now, key="requested")
            records.refresh_card(session, run.incident_id, now)
            return run

    def _new_run(self, session: Any, incident: Incident, playbook: Playbook, params: dict[str, Any], cluster: str,
                 computed: ComputedPlan, actor: str, state: str) -> PlaybookRun:
        run = PlaybookRun(incident_id=incident.id, playbook=playbook.name, cluster=cluster, risk=playbook.risk,
                          params=computed.document["params"], plan=computed.document, plan_text=computed.text,
                          plan_hash=computed.hash, state=state, requested_by=actor, requested_at=self.clock.now())
        session.add(run)
        session.flush()
        return run

    # ------------------------------------------------------------------ decisions
    def approve(self, run_id: int | str, *, user: str, source: str = "chat", plan: str | None = None) -> Decision:
        """Approve the run's current plan; ``plan`` (a hash prefix, as a button carries it) is the
        plan the approver saw: if the run's plan changed since, nothing is recorded."""
        now = self.clock.now()
        rid = records.parse_run(run_id)
        with self.db.session() as session:
            run = self._locked(session, rid)
            ref = records.run_ref(run)
            expired = records.expire_if_due(session, run, now=now, ttl_seconds=self.settings.playbooks.request_ttl_seconds)
        if expired:  # committed above: the expiry is a fact even though this approval is refused
            raise IllegalTransition(f"{ref} expired: nobody approved it within the request's time to live; "
                                    f"request it again with `/incident run {run.playbook} ...`.")
        with self.db.session() as session:
            run = self._locked(session, rid)
            if plan is not None and not _same_plan(plan, run.plan_hash):
                raise Conflict(f"{ref}'s plan changed since you saw it (you saw plan {plan[:12]}, it is now "
                               f"{run.plan_hash[:12]}); read the new plan with `/incident status` or the new "
                               f"request, then approve that one. Nothing was approved.")
            if run.state == "planned":
                raise BadInput(f"{ref} is a dry run; request it with `/incident run {run.playbook} ...`.", field="run")
            if run.state in ("approved", "running", "succeeded"):
                return Decision(run, f"{ref} is {run.state} already.", changed=False)
            if run.state != "awaiting_approval":
                raise IllegalTransition(f"{ref} is {run.state}; only a run awaiting approval can be approved.")
            commander = records.commander_of(session, run.incident_id) if run.incident_id else None
            approval.check_may_approve(run, user, commander=commander, settings=self.settings)
            existing = records.approvals_of(session, rid)
            if any(a.user == user and a.plan_hash == run.plan_hash and a.decision == "approve"
                   and (a.expires_at is None or a.expires_at > now) for a in existing):
                state = approval.status(run, existing, commander=commander, now=now)
                return Decision(run, f"you approved {ref} already; still needed: {state.missing}.", changed=False)
            ttl = self.settings.approvers.approval_ttl_seconds
            expires = now + timedelta(seconds=ttl)
            mine = next((a for a in existing if a.user == user and a.plan_hash == run.plan_hash), None)
            if mine is None:
                mine = Approval(run_id=rid, user=user, decision="approve", plan_hash=run.plan_hash, at=now,
                                expires_at=expires, source=source)
            else:  # renewing an expired approval of the same plan
                mine.decision, mine.at, mine.expires_at, mine.source = "approve", now, expires, source
            if not insert_once(session, mine):
                return Decision(run, f"you approved {ref} already.", changed=False)
            existing = records.approvals_of(session, rid)
            state = approval.status(run, existing, commander=commander, now=now)
            role = "commander" if user == commander else "approver"
            records.event(session, run, "run.approval",
                          f"approved by @{user} ({role}) for plan {run.plan_hash[:12]}, valid until "
                          f"{expires.strftime('%H:%M:%S UTC')}", at=now,
                          key=f"approval:{user}:{run.plan_hash[:16]}:{int(now.timestamp())}", actor=user, source=source,
                          data={"user": user, "role": role, "plan_hash": run.plan_hash,
                                "expires_at": expires.isoformat()})
            if state.satisfied:
                run_lifecycle.move(run, "approve")
                session.add(run)
                records.event(session, run, "run.approved",
                              f"approved ({', '.join('@' + u for u in state.approvers)}); it starts when the "
                              f"cluster lease is free", at=now,
                              key=f"approved:{run.plan_hash[:16]}:{int(now.timestamp())}", actor=user, source=source,
                              data={"approvers": list(state.approvers), "plan_hash": run.plan_hash})
                records.refresh_card(session, run.incident_id, now)
                return Decision(run, f"{ref} approved by @{user}; it starts now.")
            lapsed = [a.user for a in approval.expired_for(run, existing, now) if a.user not in state.approvers]
            note = f" (@{', @'.join(lapsed)}'s approval expired)" if lapsed else ""
            return Decision(run, f"{ref}: approval by @{user} recorded{note}; still needed: {state.missing}.")

    def reject(self, run_id: int | str, *, user: str, reason: str | None = None, source: str = "chat") -> Decision:
        now = self.clock.now()
        rid = records.parse_run(run_id)
        with self.db.session() as session:
            run = self._locked(session, rid)
            ref = records.run_ref(run)
            if run.state == "rejected":
                return Decision(run, f"{ref} is rejected already.", changed=False)
            if run.state not in ("awaiting_approval", "approved"):
                raise IllegalTransition(f"{ref} is {run.state}; only a run awaiting approval (or approved and not "
                                        f"started) can be rejected. Use `/incident abort {ref}` to stop a running one.")
            commander = records.commander_of(session, run.incident_id) if run.incident_id else None
            approval.check_may_reject(run, user, commander=commander, settings=self.settings)
            mine = next((a for a in records.approvals_of(session, rid)
                         if a.user == user and a.plan_hash == run.plan_hash), None)
            if mine is None:
                mine = Approval(run_id=rid, user=user, decision="reject", plan_hash=run.plan_hash, at=now)
            mine.decision, mine.at, mine.reason, mine.source, mine.expires_at = "reject", now, reason, source, None
            session.add(mine)
            run_lifecycle.move(run, "reject")
            run.finished_at, run.error = now, reason
            session.add(run)
            records.event(session, run, "run.rejected", f"rejected by @{user}" + (f": {reason}" if reason else ""),
                          at=now, key="rejected", actor=user, source=source,
                          data={"user": user, "reason": reason, "plan_hash": run.plan_hash})
            records.refresh_card(session, run.incident_id, now)
            return Decision(run, f"{ref} rejected by @{user}" + (f": {reason}" if reason else "") + ".")

    def abort(self, run_id: int | str, *, user: str, source: str = "chat") -> Decision:
        """Stop a run: before it starts, it just ends; running, it halts at the next step boundary
        and rolls back what it did; succeeded and reversible, its changes are undone."""
        now = self.clock.now()
        rid = records.parse_run(run_id)
        with self.db.session() as session:
            run = self._locked(session, rid)
            ref = records.run_ref(run)
            commander = records.commander_of(session, run.incident_id) if run.incident_id else None
            if user not in (commander, run.requested_by) and not approval.is_configured_approver(user, self.settings):
                raise PermissionDenied(f"@{user} may not abort {ref}: the commander, the requester or an approver can.")
            if run.state in OPEN:
                run_lifecycle.move(run, "abort_unstarted")
                run.finished_at, run.error = now, f"aborted by @{user} before it started"
                session.add(run)
                records.event(session, run, "run.aborted", f"aborted by @{user} before it started", at=now,
                              key="aborted", actor=user, source=source)
                records.refresh_card(session, run.incident_id, now)
                return Decision(run, f"{ref} aborted before it started; nothing was changed.")
            if run.state == "running":
                if (run.context or {}).get("abort"):
                    return Decision(run, f"{ref} is stopping already.", changed=False)
                records.with_context(run, abort={"by": user, "at": now.isoformat()})
                session.add(run)
                records.event(session, run, "run.abort_requested",
                              f"abort requested by @{user}; it stops at the next step boundary and rolls back",
                              at=now, key="abort_requested", actor=user, source=source)
                return Decision(run, f"{ref} stops at the next step boundary and rolls back what it did.")
            if run.state in run_lifecycle.UNDOABLE:
                return Decision(run, self._request_undo(session, run, user=user, source=source, now=now))
            raise IllegalTransition(f"{ref} is {run.state}; there is nothing to abort.")

    def undo(self, run_id: int | str, *, user: str, source: str = "chat") -> Decision:
        return self.abort(run_id, user=user, source=source)

    def _request_undo(self, session: Any, run: PlaybookRun, *, user: str, source: str, now: Any) -> str:
        playbook = self.registry.get(run.playbook)
        ref = records.run_ref(run)
        if not playbook.reversible:
            raise BadInput(f"{ref} ({run.playbook}) has no undo; its changes stay.", field="run")
        was = "succeeded earlier" if run.state == "succeeded" else f"was {run.state.replace('_', ' ')}"
        begin_undo(run, reason="undo", by=user, now=now, playbook=playbook)
        session.add(run)
        records.event(session, run, "run.undo_requested", f"undo requested by @{user}; its changes are removed",
                      at=now, key="undo_requested", actor=user, source=source)
        return f"{ref} {was}; its changes are being removed (undo)."

    # ------------------------------------------------------------------ freeze
    def freeze(self, *, user: str, reason: str | None = None, incident_id: int | None = None,
               source: str = "chat") -> str:
        now = self.clock.now()
        with self.db.session() as session:
            if not freeze.set_frozen(session, by=user, reason=reason, now=now):
                flag = freeze.current(session)
                assert flag is not None  # set_frozen refused: the freeze is set
                return f"Playbooks are {freeze.describe(flag)} already."
            running = list(session.execute(select(PlaybookRun).where(col(PlaybookRun.state) == "running")).scalars())
            for iid in {incident_id, *(r.incident_id for r in running)} - {None}:
                if session.get(Incident, iid) is None:  # a chat context naming an incident that is gone
                    continue
                from bot.core.store import timeline

                timeline.record(session, iid, "playbooks.frozen",
                                f"playbooks frozen by @{user}" + (f": {reason}" if reason else ""),
                                at=now, actor=user, source=source, data={"reason": reason})
        halting = f" {len(running)} running run(s) halt at the next step boundary." if running else ""
        return f"Playbooks frozen by @{user}: no new runs.{halting} `/incident unfreeze` lifts it."

    def unfreeze(self, *, user: str, incident_id: int | None = None, source: str = "chat") -> str:
        now = self.clock.now()
        with self.db.session() as session:
            flag = freeze.current(session)
            if flag is None:
                return "Playbooks are not frozen."
            if user != flag.set_by and not approval.is_configured_approver(user, self.settings) \
                    and not self._commands_any(session, user):
                raise PermissionDenied(f"@{user} may not unfreeze: the person who froze (@{flag.set_by}), a "
                                       f"commander or an approver can.")
            freeze.clear(session, by=user, now=now)
            if incident_id is not None and session.get(Incident, incident_id) is not None:
                from bot.core.store import timeline

                timeline.record(session, incident_id, "playbooks.unfrozen", f"playbooks unfrozen by @{user}",
                                at=now, actor=user, source=source)
        return f"Playbooks unfrozen by @{user}."

    def frozen(self) -> str | None:
        with self.db.session() as session:
            flag = freeze.current(session)
            return freeze.describe(flag) if flag is not None else None

    # ------------------------------------------------------------------ helpers
    def _commands_any(self, session: Any, user: str) -> bool:
        from bot.core.store.models import Participant

        return session.execute(select(col(Participant.id)).where(
            col(Participant.user) == user, col(Participant.role) == "commander",
            col(Participant.active))).first() is not None

    def _locked(self, session: Any, rid: int) -> PlaybookRun:
        run = records.lock_run(session, rid)
        if run is None:
            raise NotFound(f"there is no run RUN-{rid}.")
        return run


def _same_plan(seen: str, current: str) -> bool:
    """A button carries a prefix of the hash (at least 12 hex digits, as shown in chat)."""
    seen = seen.strip().lower()
    return len(seen) >= 12 and current.lower().startswith(seen)
