"""Scheduled fault drills in ``serve`` (settings ``drills``): the next scenario, every interval.

A drill nobody schedules is a drill nobody runs.  The worker keeps the
schedule in the database (the lease ``drills:schedule``: when the last drill
ran and which scenario is next), so several replicas run each drill once and a
restart does not run one early.  Each drill runs in its own fresh sandbox
(``bot.compose.sandbox.drill``), writes its reports under ``drills.out_dir``, and its
verdict is posted to chat as a notice.

The drill target is checked when ``serve`` starts: a cluster not marked
``drill_target: true`` is refused with the reason, before anything runs.
"""

from __future__ import annotations

import logging
from datetime import datetime, timedelta
from pathlib import Path
from collections.abc import Callable
from typing import TYPE_CHECKING

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock, utc
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.core.store import outbox
from bot.core.store.db import Database
from bot.core.store.messages import Notice
from bot.core.store.models import Lease
from bot.core.plugins import Host

if TYPE_CHECKING:  # a drill is imported only when one runs (start-up loads what the command uses)
    from bot.compose.sandbox.drill import DrillResult

# (scenario, out_dir) -> its result; tests pass a fake, serve runs a real drill in a fresh sandbox
DrillRunner = Callable[[str, Path], "DrillResult"]

log = logging.getLogger(__name__)
SCHEDULE = "drills:schedule"
SANDBOX = "sandbox"


def check_schedule(settings: Settings) -> None:
    """Refuse a schedule that names an unknown scenario or a cluster that is not a drill target."""
    from bot.compose.sandbox.drill import check_drill_target, check_scenarios

    drills = settings.drills
    try:
        check_scenarios(list(drills.scenarios))
    except Exception as exc:
        raise ConfigError(f"bad setting drills.scenarios: {exc}") from None
    if drills.cluster != SANDBOX:
        check_drill_target(settings, drills.cluster)
        raise ConfigError(f"bad setting drills.cluster: `{drills.cluster}` is a drill target, but this build injects "
                          f"faults only into the local sandbox (drills.cluster: sandbox).")


class DrillScheduler:
    """A worker: every ``drills.interval_seconds`` one drill, the scenarios in turn."""

    name = "drill-scheduler"

    def __init__(self, db: Database, settings: Settings, clock: Clock, *, holder: str = "drill-scheduler",
                 runner: DrillRunner | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.holder = holder
        self.runner = runner  # (scenario, out_dir) -> DrillResult; default: a real drill in a fresh sandbox
        self.interval = min(30.0, settings.drills.interval_seconds / 4)

    def tick(self) -> str | None:
        """Run the drill that is due, if any; returns its scenario name."""
        now = self.clock.now()
        due = self._claim(now)
        if due is None:
            return None
        out_dir = Path(self.settings.drills.out_dir) / f"{now.strftime('%Y%m%dT%H%M%SZ')}-{due}"
        try:
            result = (self.runner or _real_drill)(due, out_dir)
            verdict = "PASSED" if result.passed else "FAILED"
            text = (f"Scheduled drill {due}: {verdict}. " + "; ".join(
                f"{s.name} {'n/a' if not s.applicable else ('-' if s.elapsed is None else f'{s.elapsed:.1f}s')}"
                f" ({s.verdict})" for s in result.scorecard.stages)
                + (f". Failures: {'; '.join(result.scorecard.failures)}" if result.scorecard.failures else "")
                + f". Reports: {out_dir}")
        except Exception as exc:  # the sandbox itself failed: say so, keep the schedule
            log.exception("scheduled drill %s failed to run", due)
            text = f"Scheduled drill {due}: could not run ({exc}). Reports: {out_dir}"
        with self.db.session() as session:
            outbox.enqueue(session, Notice(text=text), now=self.clock.now(),
                           dedupe_key=f"drill:{due}:{now.isoformat()}")
        return due

    def _claim(self, now: datetime) -> str | None:
        """Take the schedule if a drill is due; advance it to the next scenario."""
        drills = self.settings.drills
        with self.db.session() as session:
            lease = session.execute(
                select(Lease).where(col(Lease.name) == SCHEDULE).with_for_update()).scalars().first()
            if lease is None:
                lease = Lease(name=SCHEDULE, holder=self.holder, acquired_at=now, expires_at=now, data={})
            data = dict(lease.data or {})
            last = data.get("last_at")
            if last is not None and now < utc(datetime.fromisoformat(last)) + timedelta(seconds=drills.interval_seconds):
                return None
            index = int(data.get("next", 0)) % len(drills.scenarios)
            lease.holder, lease.acquired_at = self.holder, now
            lease.expires_at = now + timedelta(seconds=drills.interval_seconds)
            lease.data = {"last_at": now.isoformat(), "next": index + 1, "scenario": drills.scenarios[index]}
            session.add(lease)
            return drills.scenarios[index]


def _real_drill(name: str, out_dir: Path) -> DrillResult:
    from bot.compose.sandbox.drill import Drill

    return Drill(name, out_dir=out_dir, echo=lambda line: log.info("%s", line)).run()


def register(bot: Host) -> None:
    """Extension hook: the scheduler, when ``drills.enabled`` (the schedule is checked first)."""
    if not bot.settings.drills.enabled:
        return
    check_schedule(bot.settings)
    bot.workers.append(DrillScheduler(bot.db, bot.settings, bot.clock))
