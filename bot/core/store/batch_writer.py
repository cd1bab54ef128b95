"""Group commit for asyncio callers: one writer thread takes everything queued since its last transaction.

``GroupCommit`` serves threads: each HTTP request borrowed a thread of the
server's pool, and the requests' threads took turns as the writer.  Under a
storm that is four or more Python threads handing the GIL to each other for
every request, and the benchmark measured serve spending twice the CPU a batch
costs alone (``benchmarks/bench_ingest.py``).  Here the event loop queues the
request and awaits a future; one thread writes, batch after batch, and
answers a whole batch with one wake-up of the event loop.

An answer still means "committed": a future is resolved only after its
batch's transaction, and a failed batch is retried request by request
(``run_batch``) so one bad delivery cannot fail the others.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

from bot.core.store.group_commit import Slot, run_batch, take_batch

T = TypeVar("T")
R = TypeVar("R")


class _Waiting(Slot[T, R]):
    def __init__(self, item: T, loop: asyncio.AbstractEventLoop, future: asyncio.Future[R]) -> None:
        super().__init__(item)
        self.loop = loop
        self.future = future


class BatchWriter(Generic[T, R]):
    """``await submit(item)``: ``process([...items queued meanwhile])`` in the writer thread, the item's result."""

    def __init__(self, process: Callable[[list[T]], list[R]], *, name: str, max_batch: int = 64,
                 weight: Callable[[T], int] = lambda _item: 1, max_weight: int = 5_000) -> None:
        self._process = process
        self._name = name
        self.max_batch = max_batch
        self._weight = weight
        self.max_weight = max_weight
        self._pending: list[Slot[T, R]] = []
        self._changed = threading.Condition()
        self._thread: threading.Thread | None = None
        self._stopping = False
        self.batches = 0  # how many transactions served how many requests
        self.requests = 0

    async def submit(self, item: T) -> R:
        loop = asyncio.get_running_loop()
        future: asyncio.Future[R] = loop.create_future()
        with self._changed:
            if self._stopping:
                raise RuntimeError(f"{self._name} is stopping")
            self._pending.append(_Waiting(item, loop, future))
            if self._thread is None:  # started on first use: a bot without webhooks has no such thread
                self._thread = threading.Thread(target=self._write, name=self._name, daemon=True)
                self._thread.start()
            self._changed.notify()
        return await future

    def stop(self, timeout: float = 10.0) -> None:
        """Write what is queued, then end the thread."""
        with self._changed:
            self._stopping = True
            self._changed.notify()
            thread = self._thread
        if thread is not None:
            thread.join(timeout)

    def _write(self) -> None:
        while True:
            with self._changed:
                while not self._pending and not self._stopping:
                    self._changed.wait()
                if not self._pending:
                    return
                batch = take_batch(self._pending, self.max_batch, self._weight, self.max_weight)
            self.batches += 1
            self.requests += len(batch)
            run_batch(self._process, batch)
            by_loop: dict[asyncio.AbstractEventLoop, list[_Waiting[T, R]]] = {}
            for slot in batch:
                assert isinstance(slot, _Waiting)
                by_loop.setdefault(slot.loop, []).append(slot)
            for loop, slots in by_loop.items():
                try:
                    loop.call_soon_threadsafe(_answer, slots)  # one wake-up of the loop per batch
                except RuntimeError:  # that loop has closed: nobody is waiting any more
                    pass


def _answer(slots: list[_Waiting[T, R]]) -> None:
    for slot in slots:
        if slot.future.done():  # the caller went away (client disconnected)
            continue
        if slot.error is not None:
            slot.future.set_exception(slot.error)
        else:
            slot.future.set_result(slot.result)
