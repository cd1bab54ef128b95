"""The playbook worker: what ``serve`` runs every ``settings.playbooks.worker_interval_seconds``.

One tick: expire unapproved requests, turn throttles whose TTL passed into
undo runs, resume runs orphaned by a dead process (stale heartbeat), then
start approved runs.  While playbooks are frozen only the first happens.
"""

from __future__ import annotations

import logging

from playbooks.engine import freeze
from playbooks.engine.execution import Executor

log = logging.getLogger(__name__)


class PlaybookWorker:
    name = "playbooks"

    def __init__(self, executor: Executor) -> None:
        self.executor = executor

    @property
    def interval(self) -> float:
        return self.executor.settings.playbooks.worker_interval_seconds

    def tick(self) -> int:
        ex = self.executor
        work = ex.expire_requests()
        with ex.db.reading() as session:  # every second: a read, never SQLite's write lock
            if freeze.current(session) is not None:
                return work
        work += ex.start_ttl_expiries()
        work += ex.resume_orphans()
        work += ex.start_approved()
        return work
