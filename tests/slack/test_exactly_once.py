"""Exactly once, as people in Slack see it: lost answers, lapsed claims, a sender dying mid-batch.

Each test counts what exists in the (fake) Slack workspace afterwards: one
channel per incident, one card, one line per timeline event, never two.
"""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from sqlalchemy.exc import OperationalError

from bot.compose.app.bot import Bot
from bot.chat.delivery import OutboxSender
from bot.core.clock import FakeClock
from bot.core.store import outbox
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage
from tests.support.fake_slack import FakeSlack

LEASE = 60.0


def sender(bot: Bot, name: str) -> OutboxSender:
    """Another replica's "chat" sender on the same database (same deliverer code, its own worker id)."""
    runtime = bot.services.extras["slack"]
    s = OutboxSender(bot.services, runtime.deliverer, channel="chat")
    s.worker = f"{name}:slack"
    return s


def drain(bot: Bot, clock: FakeClock, *senders: OutboxSender, rounds: int = 20) -> None:
    for _ in range(rounds):
        for s in senders:
            s.tick()
        clock.advance(LEASE + 1)  # past every backoff and lease


def keys(fake: FakeSlack) -> Counter[str]:
    return Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in fake.posts())


def pending(bot: Bot) -> int:
    with bot.db.session() as s:
        return s.query(OutboxMessage).filter(OutboxMessage.status == "pending").count()


def test_a_lost_conversations_create_answer_reuses_the_channel(slack_bot: Bot, fake_slack: FakeSlack,
                                                               clock: FakeClock) -> None:
    slack_bot.services.incidents.declare("etcd quorum lost", actor="alice", severity="sev1")
    fake_slack.lose_answer("conversations.create")
    drain(slack_bot, clock, sender(slack_bot, "a"))
    assert [c["name"] for c in fake_slack.channels.values()] == ["inc-1-etcd-quorum-lost"]
    cards = [m for m in fake_slack.posts(next(iter(fake_slack.channels))) if m["blocks"]]
    assert len(cards) == 1 and pending(slack_bot) == 0


@pytest.mark.parametrize("lost", [1, 3])
def test_a_post_whose_answer_was_lost_is_not_posted_again(slack_bot: Bot, fake_slack: FakeSlack,
                                                          clock: FakeClock, lost: int) -> None:
    slack_bot.services.incidents.declare("apiserver 5xx", actor="alice")
    slack_bot.services.incidents.note("INC-1", "looking at the LB", actor="alice")
    fake_slack.lose_answer("chat.postMessage", lost)
    drain(slack_bot, clock, sender(slack_bot, "a"))
    assert pending(slack_bot) == 0
    repeated = {k: n for k, n in keys(fake_slack).items() if n > 1}
    assert repeated == {}


def test_a_claim_that_lapses_mid_batch_is_not_delivered_by_both_replicas(slack_bot: Bot, fake_slack: FakeSlack,
                                                                        clock: FakeClock) -> None:
    for i in range(4):
        slack_bot.services.incidents.declare(f"fault {i}", actor="alice")
    a, b = sender(slack_bot, "replica-a"), sender(slack_bot, "replica-b")
    slow = a.deliverer
    calls = {"n": 0}

    class SlowOnce:  # replica A's first delivery takes longer than its lease; B claims what lapsed
        name = "slack"

        def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
            calls["n"] += 1
            result = slow.deliver(row, message)
            if calls["n"] == 1:
                clock.advance(LEASE + 1)
                b.tick()
            return result

    a.deliverer = SlowOnce()  # type: ignore[assignment]
    a.tick()
    drain(slack_bot, clock, a, b)
    assert pending(slack_bot) == 0
    assert {k: n for k, n in keys(fake_slack).items() if n > 1} == {}
    assert len(fake_slack.channels) == 4


def test_a_sender_that_delivered_but_could_not_record_it_never_delivers_it_again(
        slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    slack_bot.services.incidents.declare("etcd slow", actor="alice")
    a = sender(slack_bot, "replica-a")
    real_complete = outbox.complete
    failures = {"left": 1}

    def complete(*args: Any, **kwargs: Any) -> bool:
        if failures["left"]:
            failures["left"] -= 1
            raise OperationalError("UPDATE outbox", {}, Exception("server closed the connection"))
        return real_complete(*args, **kwargs)

    monkeypatch.setattr(outbox, "complete", complete)
    a.tick()  # the card was delivered; recording it failed once (recorded after the next delivery)
    assert failures["left"] == 0 and len(fake_slack.posts()) >= 1
    drain(slack_bot, clock, a)
    assert pending(slack_bot) == 0 and not a.delivered
    assert {k: n for k, n in keys(fake_slack).items() if n > 1} == {}


def killed_after_slack_answered(dead: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    """The sender's replica SIGKILLed right after Slack answered, before the delivery was recorded."""
    def die(*args: Any, **kwargs: Any) -> bool:
        raise SystemExit("killed")

    monkeypatch.setattr(outbox, "complete", die)
    with pytest.raises(SystemExit):
        dead.tick()
    monkeypatch.undo()


def test_a_replica_taking_over_a_dead_senders_claim_finds_the_posts_it_made(
        slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    slack_bot.services.incidents.declare("etcd slow", actor="alice")
    killed_after_slack_answered(sender(slack_bot, "replica-a"), monkeypatch)
    assert len(fake_slack.posts()) >= 1
    clock.advance(LEASE + 1)  # its lease lapses
    drain(slack_bot, clock, sender(slack_bot, "replica-b"))
    assert pending(slack_bot) == 0
    assert {k: n for k, n in keys(fake_slack).items() if n > 1} == {}


def test_a_dead_senders_claim_holds_for_outbox_claim_seconds_and_no_longer(
        slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock, monkeypatch: pytest.MonkeyPatch) -> None:
    """``outbox_claim_seconds`` is how long the messages a dead replica had claimed wait for another."""
    slack_bot.services.settings.outbox_claim_seconds = 5
    slack_bot.services.incidents.declare("etcd slow", actor="alice")
    killed_after_slack_answered(sender(slack_bot, "replica-a"), monkeypatch)
    posted, waiting = len(fake_slack.posts()), pending(slack_bot)
    other = sender(slack_bot, "replica-b")
    clock.advance(4)  # the claim still holds: nobody else touches those messages
    other.tick()
    assert (len(fake_slack.posts()), pending(slack_bot)) == (posted, waiting)
    clock.advance(2)  # past 5 s: replica-b takes them over and delivers each once
    for _ in range(5):
        other.tick()
    assert pending(slack_bot) == 0
    assert {k: n for k, n in keys(fake_slack).items() if n > 1} == {}
