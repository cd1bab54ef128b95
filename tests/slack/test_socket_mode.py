"""Socket Mode smoke test: the bot connects out, Slack pushes a slash command, the bot acks it."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from integrations.adapters.slack.extension import start_socket_mode
from tests.slack.conftest import APP_TOKEN, slack_settings
from tests.support.fake_slack import FakeSlack, FakeSocketMode


@pytest.fixture
def socket_server() -> Iterator[FakeSocketMode]:
    server = FakeSocketMode()
    yield server
    server.stop()


def test_a_slash_command_over_socket_mode_is_acked_and_answered(sqlite_url: str, fake_slack: FakeSlack,
                                                                socket_server: FakeSocketMode) -> None:
    fake_slack.ws_url = socket_server.url
    settings = slack_settings(sqlite_url, fake_slack, signing_secret=None, app_token=SecretStr(APP_TOKEN))
    bot = build_bot(settings, clock=FakeClock())
    assert bot.routes == [] or all(getattr(r, "path", "") != "/slack/events" for r in bot.routes)
    stop = start_socket_mode(bot)
    try:
        opened = fake_slack.wait_for("apps.connections.open")
        assert opened[0]["token_kind"] == "xapp"  # the app-level token, not the bot token
        socket_server.to_send.put({
            "envelope_id": "env-1", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"token": "x", "team_id": "T0001", "team_domain": "example", "channel_id": "C0GENERAL",
                        "channel_name": "general", "user_id": "U0BOB", "user_name": "bob", "command": "/incident",
                        "text": "declare etcd alarm NOSPACE --severity sev1", "api_app_id": "A0APP",
                        "response_url": fake_slack.response_url("socket"), "trigger_id": "1.2.3"},
        })
        deadline = time.monotonic() + 10
        while not any(m.get("envelope_id") == "env-1" for m in socket_server.received):
            assert time.monotonic() < deadline, "no ack over the socket"
            time.sleep(0.02)
        senders = bot.services.extras["slack"].senders
        while not fake_slack.answered("response_url"):
            assert time.monotonic() < deadline, "no answer"
            for sender in senders:
                sender.tick()
            time.sleep(0.02)
        assert fake_slack.answered("response_url")[0]["body"]["text"] == \
            "Declared INC-1: etcd alarm NOSPACE (sev1, cluster default)."
        assert bot.services.incidents.timeline(1)[1][0].actor == "bob"
    finally:
        stop()
        bot.close()
