"""serve's worker runner: a worker that drains (the Slack chat senders) ticks again at once while it finds work."""

from __future__ import annotations

import threading

from bot.compose.app.workers import WorkerRunner


class Counting:
    """A worker whose ticks find ``found`` items each, then nothing; it records every tick."""

    name = "counting"
    interval = 3600.0  # a pause would outlast the test: only ticks without a pause can happen

    def __init__(self, found: list[int], *, drains: bool) -> None:
        self.found = list(found)
        self.drains = drains
        self.ticks = 0
        self.idle = threading.Event()  # set at the first tick that finds nothing

    def tick(self) -> int:
        self.ticks += 1
        n = self.found.pop(0) if self.found else 0
        if n == 0:
            self.idle.set()
        return n


def run_until_idle(worker: Counting) -> int:
    runner = WorkerRunner([worker])
    runner.start()
    try:
        worker.idle.wait(30)
    finally:
        runner.stop()
    return worker.ticks


def test_a_draining_worker_ticks_again_at_once_until_a_tick_finds_nothing() -> None:
    assert run_until_idle(Counting([20, 20, 5], drains=True)) == 4  # three batches, then the empty tick, then its pause


def test_any_other_worker_pauses_its_interval_after_every_tick() -> None:
    worker = Counting([20, 20, 5], drains=False)
    runner = WorkerRunner([worker])
    runner.start()
    try:
        assert not worker.idle.wait(0.5)  # still in the pause after its first tick
    finally:
        runner.stop()
    assert worker.ticks == 1
