"""A Slack 429 holds that Web API method for every message and every replica until Retry-After ends."""

from __future__ import annotations

from bot.compose.app.bot import Bot
from bot.chat.delivery import OutboxSender
from bot.core.clock import FakeClock
from bot.core.store.models import OutboxMessage
from bot.core.store.ratelimits import RateLimits
from integrations.adapters.slack.deliverer import SlackDeliverer
from integrations.adapters.slack.web import SlackWeb
from tests.support.fake_slack import FakeSlack


def replica(bot: Bot, name: str) -> OutboxSender:
    """A second process: its own Web API client and limits object, the same database."""
    runtime = bot.services.extras["slack"]
    web = SlackWeb(bot.settings.slack, limits=RateLimits(bot.db, bot.clock))
    sender = OutboxSender(bot.services, SlackDeliverer(bot.dispatcher, web, runtime.directory), channel="chat")
    sender.worker = f"{name}:slack"
    return sender


def test_a_30_second_rate_limit_costs_one_call_per_method_across_two_replicas(
        slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock) -> None:
    for i in range(10):
        slack_bot.services.incidents.declare(f"fault {i}", actor="alice")
    fake_slack.fail(429, retry_after=30, methods=["chat.postMessage"])
    a, b = replica(slack_bot, "a"), replica(slack_bot, "b")
    for _ in range(29):  # 29 seconds inside the limit, both replicas ticking every second
        a.tick()
        b.tick()
        clock.advance(1)
    tried = [c for c in fake_slack.calls if c["method"] == "chat.postMessage"]
    assert len(tried) == 1  # the call that got the 429; nobody asked again before Retry-After ended

    fake_slack.heal()
    clock.advance(2)
    for _ in range(5):
        a.tick()
        b.tick()
        clock.advance(1)
    with slack_bot.db.session() as s:
        assert s.query(OutboxMessage).filter(OutboxMessage.status == "pending").count() == 0
    assert len(fake_slack.answered("chat.postMessage")) >= 10  # every card delivered after the limit
