"""Giving the cluster back: undo the completed steps in reverse order, or hand the run to the commander.

A failed step, a failed verification, an abort, an expired time to live or an undo request all
end here.  Each undo is checkpointed like a step (phase ``rollback``; the pending list lives in
the run's context), so a crash during a rollback resumes it without undoing anything twice;
then the incident goes back to ``diagnosed`` and the commander is told why.  Handing back is
the other ending: when the state is unclear, the commander decides, not the bot.
"""

from __future__ import annotations

import functools
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.store.models import PlaybookRun, RunStep
from playbooks.engine import leases, records, run_lifecycle
from playbooks.engine.declaration import Playbook
from playbooks.engine.run_driver import ACTOR, LostOwnership, RunDriver, describe_error
from playbooks.engine.timeouts import call_with_timeout


class Rollback(RunDriver):
    """The endings of a run that give the cluster back (rolled back, aborted, failed, handed back)."""

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
        assert step.undo is not None
        now = self.clock.now()
        with self.db.session() as session:
            row = self._step_row(session, run_id, "rollback", index, step.name)
            row.state, row.attempts, row.started_at = "running", row.attempts + 1, row.started_at or now
            session.add(row)
        self._hook(f"rollback:{index}:started", run_id)
        ctx = self._ctx(run, playbook)
        error = None
        try:
            call_with_timeout(functools.partial(step.undo, ctx), timeout=self._timeout(step),
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
                col(RunStep.run_id) == run_id, col(RunStep.phase) == "execute", col(RunStep.state) == "done")
                .order_by(col(RunStep.index))).scalars()]
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


def begin_undo(run: PlaybookRun, *, reason: str, by: str, now: Any, playbook: Playbook) -> None:
    """Turn a succeeded run into a rollback the worker carries out (every step with an undo, in reverse)."""
    pending = [i for i in reversed(range(len(playbook.steps))) if playbook.steps[i].undo is not None]
    records.with_context(run, rollback={"reason": reason, "by": by, "at": now.isoformat(), "pending": pending,
                                        "done": [], "errors": []})
    run_lifecycle.move(run, "undo")
    run.phase, run.owner, run.owner_heartbeat_at = "rollback", None, None
