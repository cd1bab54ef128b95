"""Group commit: requests that arrive while a batch is being written are written together next.

A webhook delivery is one transaction, and most of its cost is per
transaction, not per alert: the lock, looking up stored instances and open
incidents, one timeline event and one notice per incident touched, the
commit.  Under load (Alertmanager sends groups in parallel, a storm re-sends
every group each ``group_interval``) deliveries queue for the one writer
anyway, so the writer takes *all* that queued while it was busy and stores
them in one transaction: the fixed costs are paid once per batch.

Nobody waits for a batch to fill: an idle writer takes a lone request at
once (leader/follower, no timer, no extra thread).  Each caller still gets
its own answer only after its batch committed, so an answer still means
"stored".  If a batch fails, its requests are retried one by one, so one
request cannot fail the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


@dataclass
class Slot(Generic[T, R]):
    """One request in a batch: its item, then its result or error."""

    item: T
    done: bool = False
    result: Any = None
    error: BaseException | None = None


def take_batch(pending: list[Slot[T, R]], max_batch: int, weight: Callable[[T], int],
               max_weight: int) -> list[Slot[T, R]]:
    """Remove and return the oldest requests that fit one batch (at least one, however heavy)."""
    taken, total = 0, 0
    for slot in pending[:max_batch]:
        total += weight(slot.item)
        if taken and total > max_weight:
            break
        taken += 1
    batch = pending[:taken]
    del pending[:taken]
    return batch


def run_batch(process: Callable[[list[T]], list[R]], batch: list[Slot[T, R]]) -> None:
    """``process`` the batch in one go; if that fails, each request alone, so one cannot fail the others."""
    try:
        results = process([s.item for s in batch])
        for slot, result in zip(batch, results):
            slot.result = result
    except BaseException as exc:
        if len(batch) == 1:
            batch[0].error = exc
        else:
            for slot in batch:
                try:
                    slot.result = process([slot.item])[0]
                except BaseException as single:
                    slot.error = single
    finally:
        for slot in batch:
            slot.done = True


class GroupCommit(Generic[T, R]):
    """``submit(item)`` runs ``process([...items that queued meanwhile])`` and returns the item's result."""

    def __init__(self, process: Callable[[list[T]], list[R]], *, max_batch: int = 64,
                 weight: Callable[[T], int] = lambda _item: 1, max_weight: int = 5_000) -> None:
        self._process = process
        self.max_batch = max_batch
        self._weight = weight  # e.g. alerts in a delivery: a batch stays one reasonably short transaction
        self.max_weight = max_weight
        self._pending: list[Slot[T, R]] = []
        self._queue = threading.Lock()
        self._writer = threading.Lock()
        self.batches = 0  # how many transactions served how many requests (for /metrics and benchmarks)
        self.requests = 0

    def submit(self, item: T) -> R:
        slot: Slot[T, R] = Slot(item)
        with self._queue:
            self._pending.append(slot)
        while not slot.done:
            with self._writer:
                if slot.done:
                    break
                with self._queue:
                    batch = take_batch(self._pending, self.max_batch, self._weight, self.max_weight)
                self.batches += 1
                self.requests += len(batch)
                run_batch(self._process, batch)
        if slot.error is not None:
            raise slot.error
        return slot.result
