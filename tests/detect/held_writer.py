"""A batch process that holds its first batch until released, so requests queue behind a busy writer."""

from __future__ import annotations

import threading


class HeldFirstBatch:
    """``process`` records each batch and answers ``item * 10``; the first batch waits for ``release``."""

    def __init__(self) -> None:
        self.release, self.entered = threading.Event(), threading.Event()
        self.batches: list[list[int]] = []

    def process(self, items: list[int]) -> list[int]:
        self.batches.append(list(items))
        if len(self.batches) == 1:  # hold the writer while the others queue
            self.entered.set()
            self.release.wait(10)
        return [item * 10 for item in items]
