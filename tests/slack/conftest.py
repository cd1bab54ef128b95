"""The bot driven exactly as Slack drives it: signed requests to a real uvicorn server,
Web API calls captured by a loopback fake (tests/support/fake_slack.py)."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
import uvicorn
from pydantic import SecretStr

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.store.models import OutboxMessage
from tests.conftest import make_settings
from tests.support import slack_signing
from tests.support.fake_slack import FakeSlack

BOT_TOKEN = "xoxb-0000-test-bot-token-do-not-log"
APP_TOKEN = "xapp-1-test-app-token-do-not-log"
USERS = {"alice": "U0ALICE", "bob": "U0BOB", "carol": "U0CAROL", "dave": "U0DAVE"}


@pytest.fixture
def fake_slack() -> Iterator[FakeSlack]:
    fake = FakeSlack().start()
    yield fake
    fake.stop()


def slack_settings(url: str, fake: FakeSlack, **slack: Any) -> Settings:
    settings = make_settings(url)
    settings.slack.bot_token = SecretStr(BOT_TOKEN)
    settings.slack.signing_secret = SecretStr(slack_signing.SECRET)
    settings.slack.api_url = fake.api_url
    settings.slack.users = dict(USERS)
    settings.slack.invite = ["carol"]
    settings.slack.card_min_interval_seconds = 0
    settings.slack.request_timeout_seconds = 1
    for key, value in slack.items():
        setattr(settings.slack, key, value)
    return settings


@pytest.fixture
def settings(sqlite_url: str, fake_slack: FakeSlack) -> Settings:
    return slack_settings(sqlite_url, fake_slack)


@pytest.fixture
def slack_bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    bot = build_bot(settings, clock=clock)
    yield bot
    bot.close()


class SlackServer:
    """``serve``'s ASGI app under uvicorn on a free loopback port; the outbox is ticked by the test."""

    def __init__(self, bot: Bot, fake: FakeSlack) -> None:
        self.bot = bot
        self.fake = fake
        config = uvicorn.Config(build_http_app(bot), host="127.0.0.1", port=0, log_level="warning", lifespan="off")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)
        self.http = httpx.Client(timeout=10)

    def start(self) -> "SlackServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        port = self.server.servers[0].sockets[0].getsockname()[1]
        self.url = f"http://127.0.0.1:{port}/slack/events"
        return self

    def stop(self) -> None:
        self.http.close()
        self.server.should_exit = True
        self.thread.join(10)

    def post(self, signed: tuple[str, dict[str, str]]) -> httpx.Response:
        body, headers = signed
        return self.http.post(self.url, content=body.encode(), headers=headers)

    def command(self, text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL") -> httpx.Response:
        name = f"cmd-{len(self.fake.calls)}-{time.monotonic_ns()}"
        response = self.post(slack_signing.slash_command(text, user=user, channel=channel,
                                                         response_url=self.fake.response_url(name)))
        response.response_url_name = name  # type: ignore[attr-defined]
        return response

    def tick(self) -> int:
        return sum(sender.tick() for sender in self.bot.services.extras["slack"].senders)

    def until(self, check: Callable[[], Any], timeout: float = 10.0) -> Any:
        """Tick the outbox until ``check()`` is truthy (listeners finish on bolt's threads after the ack)."""
        deadline = time.monotonic() + timeout
        while True:
            self.tick()
            result = check()
            if result:
                return result
            if time.monotonic() > deadline:
                raise AssertionError(f"condition not met within {timeout}s; calls: {[c['method'] for c in self.fake.calls]}")
            time.sleep(0.02)

    def answer_to(self, response: httpx.Response) -> dict[str, Any]:
        """The reply that went to a command's response_url."""
        path = f"/response/{response.response_url_name}"  # type: ignore[attr-defined]
        return self.until(lambda: next((c["body"] for c in self.fake.answered("response_url") if c["path"] == path),
                                       None))

    def pending(self) -> int:
        with self.bot.db.session() as session:
            return session.query(OutboxMessage).filter(OutboxMessage.status == "pending").count()


@pytest.fixture
def slack(slack_bot: Bot, fake_slack: FakeSlack) -> Iterator[SlackServer]:
    server = SlackServer(slack_bot, fake_slack).start()
    yield server
    server.stop()
