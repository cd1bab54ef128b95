"""Running background workers (watcher, outbox senders, prober) in ``serve``.

A worker is anything with ``name``, ``interval`` (seconds) and ``tick()`` (``bot.core.plugins.Worker``).
Tests never use this runner: they call ``tick()`` with a fake clock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable

from bot.core.plugins import Worker

log = logging.getLogger(__name__)


class WorkerRunner:
    def __init__(self, workers: Iterable[Worker]) -> None:
        self.workers = list(workers)
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for worker in self.workers:
            thread = threading.Thread(target=self._loop, args=(worker,), name=worker.name, daemon=True)
            thread.start()
            self.threads.append(thread)

    def _loop(self, worker: Worker) -> None:
        while not self.stop_event.is_set():
            done = 0
            try:
                done = worker.tick()
            except Exception:  # a worker must survive one bad tick
                log.exception("worker %s failed a tick", worker.name)
            if done and getattr(worker, "drains", False):
                continue  # it found work and claims in small batches: there may be more waiting now
            self._pause(worker)

    def _pause(self, worker: Worker) -> None:
        """Sleep ``interval``; a worker with a ``wake`` event is woken early when it is set."""
        wake = getattr(worker, "wake", None)
        if wake is None:
            self.stop_event.wait(worker.interval)
            return
        wake.wait(worker.interval)
        wake.clear()

    def stop(self, timeout: float = 5.0) -> None:
        self.stop_event.set()
        for worker in self.workers:
            wake = getattr(worker, "wake", None)
            if wake is not None:
                wake.set()
        for thread in self.threads:
            thread.join(timeout)
