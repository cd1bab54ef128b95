"""Driving a claimed run: step by step with a checkpoint after each, then verify, then an ending.

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

import functools
import logging
from datetime import timedelta

from bot.core.errors import IncidentBotError
from bot.domain.incidents import fleet
from bot.core.store.models import PlaybookRun
from playbooks.engine import freeze, leases, records, run_lifecycle
from playbooks.engine.declaration import Playbook, Verdict
from playbooks.engine.rollback import Rollback
from playbooks.engine.run_driver import ACTOR, HandBack, HandedBack, LostOwnership, describe_error, jsonable
from playbooks.engine.timeouts import call_with_timeout

log = logging.getLogger(__name__)




class Stepper(Rollback):
    """Moves a run this process owns from boundary to boundary until it needs nothing more."""

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
                already = bool(call_with_timeout(functools.partial(step.check, ctx), timeout=timeout,
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
            row.state, row.finished_at, row.result, row.error = "done", now, jsonable(result), None
            session.add(row)
            results = dict((locked.context or {}).get("results") or {})
            results[step.name] = jsonable(result)
            records.with_context(locked, results=results)
            locked.checkpoint = index + 1
            locked.owner_heartbeat_at = now
            session.add(locked)
            how = "already in place" if already else "done"
            records.event(session, locked, "run.step", f"step {index + 1}/{len(playbook.steps)} {step.name}: {how}",
                          at=now, key=f"execute:{index}", data={"step": step.name, "index": index,
                                                                 "already_done": already, "result": jsonable(result)})
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
                verdict = call_with_timeout(functools.partial(playbook.verify, ctx),
                                            timeout=self.cfg.default_step_timeout_seconds,
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
                          key="verify_failed", data=jsonable(verdict.data))
        self._begin_rollback(run_id, reason="verify", error=f"verification failed: {verdict.text}")

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
                          data=jsonable(verdict.data))
            records.event(session, run, "run.succeeded", f"succeeded{ttl_note}", at=now, key="succeeded")
            incident = records.lock_incident(session, run.incident_id) if run.incident_id else None
            if incident is not None and incident.state in ("notified", "diagnosing", "diagnosed", "mitigating") \
                    and run.cluster in {c.cluster for c in fleet.clusters(session, incident.id)}:
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
