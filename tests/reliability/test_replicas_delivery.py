"""Three replicas on PostgreSQL deliver every message exactly once to a slow, failing, answer-losing Slack."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.store import outbox
from tests.reliability.replicas import count, drain, open_incidents, replica_bots
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def unreliable_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    fake.delay_seconds = 0.02
    fake.flaky(seed=14, fail=0.1, lose=0.1)
    yield fake
    fake.stop()


def test_three_replicas_deliver_everything_once(postgres_url: str, unreliable_slack: FakeSlack,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # exactly-once is what is tested, not the backoff: a card that needs several calls, each failing
    # one time in five, would otherwise back off for minutes (up to 300 s) before its last try
    monkeypatch.setattr(outbox, "MAX_BACKOFF_SECONDS", 2.0)
    bots = replica_bots(postgres_url, unreliable_slack, 3)
    try:
        incidents = open_incidents(bots[0], count=6, notes=2)
        seconds = drain(bots, timeout=240)
        figures = count(bots, unreliable_slack, len(incidents), seconds)
        print(figures.line())
        assert figures.by_status[500] + figures.by_status[504] > 0  # Slack really failed and lost answers
        assert (figures.lost, figures.duplicated, figures.extra_channels) == (0, 0, 0), figures.line()
    finally:
        for bot in bots:
            bot.close()
