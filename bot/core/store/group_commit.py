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
class _Slot(Generic[T, R]):
    item: T
    done: bool = False
    result: Any = None
    error: BaseException | None = None


class GroupCommit(Generic[T, R]):
    """``submit(item)`` runs ``process([...items that queued meanwhile])`` and returns the item's result."""

    def __init__(self, process: Callable[[list[T]], list[R]], *, max_batch: int = 64,
                 weight: Callable[[T], int] = lambda _item: 1, max_weight: int = 5_000) -> None:
        self._process = process
        self.max_batch = max_batch
        self._weight = weight  # e.g. alerts in a delivery: a batch stays one reasonably short transaction
        self.max_weight = max_weight
        self._pending: list[_Slot[T, R]] = []
        self._queue = threading.Lock()
        self._writer = threading.Lock()
        self.batches = 0  # how many transactions served how many requests (for /metrics and benchmarks)
        self.requests = 0

    def submit(self, item: T) -> R:
        slot: _Slot[T, R] = _Slot(item)
        with self._queue:
            self._pending.append(slot)
        while not slot.done:
            with self._writer:
                if slot.done:
                    break
                with self._queue:
                    taken, total = 0, 0
                    for pending in self._pending[:self.max_batch]:
                        total += self._weight(pending.item)
                        if taken and total > self.max_weight:
                            break
                        taken += 1
                    batch, self._pending = self._pending[:taken], self._pending[taken:]
                self._run(batch)
        if slot.error is not None:
            raise slot.error
        return slot.result

    def _run(self, batch: list[_Slot[T, R]]) -> None:
        self.batches += 1
        self.requests += len(batch)
        try:
            results = self._process([s.item for s in batch])
            for slot, result in zip(batch, results):
                slot.result = result
        except BaseException as exc:
            if len(batch) == 1:
                batch[0].error = exc
            else:  # one bad request must not fail the others: each alone
                for slot in batch:
                    try:
                        slot.result = self._process([slot.item])[0]
                    except BaseException as single:
                        slot.error = single
        finally:
            for slot in batch:
                slot.done = True
