"""The webhook's writer thread: deliveries queued while it writes go in its next transaction, each answered."""

from __future__ import annotations

import asyncio

import pytest

from bot.core.store.batch_writer import BatchWriter
from tests.detect.held_writer import HeldFirstBatch


def test_requests_queued_behind_a_batch_are_written_together_and_answered_each() -> None:
    held = HeldFirstBatch()
    writer: BatchWriter[int, int] = BatchWriter(held.process, name="test-writer")

    async def scenario() -> list[int]:
        first = asyncio.ensure_future(writer.submit(0))
        while not held.entered.is_set():
            await asyncio.sleep(0)
            held.entered.wait(0.01)
        others = [asyncio.ensure_future(writer.submit(n)) for n in range(1, 6)]
        while len(writer._pending) < 5:
            await asyncio.sleep(0)
        held.release.set()
        return list(await asyncio.gather(first, *others))

    try:
        assert asyncio.run(scenario()) == [0, 10, 20, 30, 40, 50]
    finally:
        writer.stop()
    assert held.batches == [[0], [1, 2, 3, 4, 5]]
    assert (writer.batches, writer.requests) == (2, 6)


def test_a_failing_request_fails_alone_and_the_writer_goes_on() -> None:
    def process(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("bad delivery 3")
        return items

    writer: BatchWriter[int, int] = BatchWriter(process, name="test-writer")

    async def scenario() -> list[object]:
        return list(await asyncio.gather(*(writer.submit(n) for n in (1, 3, 5)), return_exceptions=True))

    try:
        first = asyncio.run(scenario())
        assert first[0] == 1 and first[2] == 5
        assert isinstance(first[1], ValueError) and "bad delivery 3" in str(first[1])
        assert asyncio.run(scenario())[0] == 1  # still writing afterwards
    finally:
        writer.stop()


def test_a_stopped_writer_refuses_new_requests_with_a_sentence() -> None:
    writer: BatchWriter[int, int] = BatchWriter(lambda items: items, name="alert-ingest")
    assert asyncio.run(writer.submit(7)) == 7
    writer.stop()
    with pytest.raises(RuntimeError, match="alert-ingest is stopping"):
        asyncio.run(writer.submit(8))
