"""What every phase of a run shares: who owns it, its step rows, its context, timeouts and hooks.

Executing, verifying, rolling back and handing back all work on a run this process owns;
losing ownership (another worker took the run over because this one was too slow to beat)
must stop every one of them at once, so the ownership check, the heartbeat that renews the
cluster lease, and the exceptions that end a drive live here, below both ``execution`` and
``rollback``.
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import IncidentBotError
from bot.domain.incidents.service import Incidents
from bot.core.store.db import Database
from bot.core.store.models import PlaybookRun, RunStep
from playbooks.engine import leases, records
from playbooks.engine.declaration import Playbook, StepContext
from playbooks.engine.registry import Registry
from playbooks.engine.toolbox import Toolbox

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
    """host:pid:random: which process owns a run (a restarted process is a new owner)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


def describe_error(exc: BaseException) -> str:
    """Our errors say what failed in a sentence; anything else gets its type name."""
    if isinstance(exc, IncidentBotError):
        return exc.message
    return f"{type(exc).__name__}: {exc}"


def jsonable(value: Any) -> Any:
    """A step's result as the JSON column will store it (datetimes and the like as strings)."""
    return json.loads(json.dumps(value, default=str))


class RunDriver:
    """The state and helpers every phase of a run uses; ``Rollback`` and ``Executor`` build on it."""

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
        """The ``playbooks`` settings section."""
        return self.settings.playbooks

    def _hook(self, label: str, run_id: int) -> None:
        for hook in self.hooks:
            hook(label, run_id)

    def _ctx(self, run: PlaybookRun, playbook: Playbook) -> StepContext:
        return StepContext(run_id=run.id, playbook=playbook, params=dict(run.params), plan=dict(run.plan),
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
        row = session.execute(select(RunStep).where(col(RunStep.run_id) == run_id, col(RunStep.phase) == phase,
                                                    col(RunStep.index) == index)).scalars().first()
        if row is None:
            row = RunStep(run_id=run_id, phase=phase, index=index, name=name)
        return row
