"""Deliveries that arrive together are stored together, and each still gets its own answer."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.domain.incidents.alert_payload import parse_notification
from bot.core.store.group_commit import GroupCommit, Slot, run_batch
from tests.conftest import T0, make_settings
from tests.detect.held_writer import HeldFirstBatch
from tests.detect.payloads import alert, webhook


def test_requests_queued_behind_a_batch_are_written_in_one_and_answered_each() -> None:
    held = HeldFirstBatch()
    group: GroupCommit[int, int] = GroupCommit(held.process)
    with ThreadPoolExecutor(6) as pool:
        first = pool.submit(group.submit, 0)
        assert held.entered.wait(10)
        others = [pool.submit(group.submit, n) for n in range(1, 6)]
        while len(group._pending) < 5:  # all five queued behind the first batch
            threading.Event().wait(0.001)
        held.release.set()
        answers = [first.result(10)] + [f.result(10) for f in others]
    assert answers == [0, 10, 20, 30, 40, 50]
    assert held.batches == [[0], [1, 2, 3, 4, 5]]


def test_one_failing_request_does_not_fail_the_others_of_its_batch() -> None:
    def process(items: list[int]) -> list[int]:
        if 3 in items:
            raise ValueError("bad delivery 3")
        return items

    batch = [Slot(1), Slot(3), Slot(5)]  # three requests that queued together
    run_batch(process, batch)
    assert [s.result for s in batch] == [1, None, 5]
    assert isinstance(batch[1].error, ValueError) and batch[0].error is None


def test_concurrent_deliveries_each_get_their_own_counts(sqlite_url: str) -> None:
    bot = build_bot(make_settings(sqlite_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        ingest = bot.services.extras["alerts"].ingest
        bodies = [webhook(*[alert("KubeNodeNotReady", T0 + timedelta(seconds=n), severity="warning",
                                  node=f"n{n}-{i}") for i in range(n + 1)]) for n in range(8)]
        with ThreadPoolExecutor(8) as pool:
            results = list(pool.map(lambda b: ingest(parse_notification(b)), bodies))
        assert [r.stored for r in results] == [n + 1 for n in range(8)]  # each answer counts its own alerts
        assert sum(len(r.opened) for r in results) == 1  # one incident, reported to whoever opened it
        assert all(r.opened or r.joined == {1: n + 1} for n, r in enumerate(results))
    finally:
        bot.close()


def test_a_lone_delivery_is_written_at_once(sqlite_url: str) -> None:
    bot = build_bot(make_settings(sqlite_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        ingestor = bot.services.extras["alerts"]
        result = ingestor.ingest(parse_notification(webhook(alert("EtcdMemberDown", T0, job="etcd", instance="m1"))))
        assert result.stored == 1 and result.opened == [1]
        assert (ingestor._batches.batches, ingestor._batches.requests) == (1, 1)
    finally:
        bot.close()


def test_a_batch_stops_at_its_weight_but_always_takes_one() -> None:
    seen: list[list[int]] = []

    def process(items: list[int]) -> list[int]:
        seen.append(list(items))
        return items

    group: GroupCommit[int, int] = GroupCommit(process, weight=lambda n: n, max_weight=10)
    group._pending = [Slot(7), Slot(2), Slot(5), Slot(30)]  # deliveries queued behind a busy writer
    assert group.submit(1) == 1
    assert seen == [[7, 2], [5], [30], [1]]  # in order; a heavy one alone; never an empty batch
