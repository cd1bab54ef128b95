"""Slack is on only when configured, and a half configuration says what is missing."""

from __future__ import annotations

import pytest

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.errors import ConfigError
from integrations.adapters.slack.extension import start_socket_mode
from tests.conftest import make_settings


def test_without_tokens_there_is_no_slack_endpoint_and_no_slack_sender(sqlite_url: str, clock: FakeClock) -> None:
    bot = build_bot(make_settings(sqlite_url), clock=clock)
    try:
        assert "slack" not in bot.services.extras
        assert all(getattr(r, "path", "") != "/slack/events" for r in bot.routes)
        assert not any(getattr(w, "name", "").startswith("slack-") for w in bot.workers)
        with pytest.raises(ConfigError, match="SLACK_BOT_TOKEN and SLACK_APP_TOKEN"):
            start_socket_mode(bot)
    finally:
        bot.close()


def test_with_tokens_slack_events_is_served(settings: Settings, clock: FakeClock) -> None:
    bot = build_bot(settings, clock=clock)
    try:
        assert any(getattr(r, "path", "") == "/slack/events" for r in bot.routes)
        with pytest.raises(ConfigError, match="SLACK_APP_TOKEN: required for --socket-mode"):
            start_socket_mode(bot)  # HTTP mode is configured, Socket Mode is not
    finally:
        bot.close()


def test_a_thread_home_needs_the_incidents_channel(settings: Settings, clock: FakeClock) -> None:
    settings.slack.home = "thread"
    with pytest.raises(ConfigError, match="slack.incidents_channel: required when slack.home is `thread`"):
        build_bot(settings, clock=clock)
