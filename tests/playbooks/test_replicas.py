"""Several engine replicas on one database (SQLite file, PostgreSQL): each run executes once."""

from __future__ import annotations

import threading
from pathlib import Path

from bot.compose.app.bot import build_bot
from bot.chat import handlers_playbooks
from bot.core.clock import FakeClock
from tests.conftest import T0, make_settings
from tests.playbooks.file_playbook import registry_for_tests


def test_two_replicas_racing_execute_each_run_once(database_url: str, tmp_path: Path) -> None:
    clock = FakeClock(T0)
    bots = [build_bot(make_settings(database_url), clock=clock, extensions=[]) for _ in range(2)]
    try:
        engines = [handlers_playbooks.install(b, registry=registry_for_tests()) for b in bots]
        incidents, service = bots[0].services.incidents, engines[0].service
        targets = []
        for i in range(3):
            row = incidents.declare(f"incident {i}", actor="alice", cluster=f"c{i % 2}")
            incidents.ack(row.id, actor="alice")
            incidents.cause(row.id, "cause", actor="alice")
            target = tmp_path / f"t{i}.txt"
            targets.append(target)
            run = service.propose(row.id, "write-file", {"path": str(target)}, requested_by="alice")
            service.approve(run.id, user="alice")
        barrier = threading.Barrier(2)
        errors: list[BaseException] = []

        def replica(k: int) -> None:
            try:
                barrier.wait()
                for _ in range(4):
                    engines[k].worker.tick()
            except BaseException as exc:  # reported below
                errors.append(exc)

        threads = [threading.Thread(target=replica, args=(k,)) for k in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert errors == []
        for target in targets:
            assert target.read_text().splitlines() == ["run:step-0", "run:step-1", "run:step-2"]
        assert [r.state for r in service.runs()] == ["succeeded"] * 3
    finally:
        for b in bots:
            b.close()
