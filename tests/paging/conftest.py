"""Fixtures for paging: loopback PagerDuty and Opsgenie, a bot paging through both, its HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.chat.delivery import OutboxSender
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.conftest import make_settings
from tests.support.fake_pagers import FakeOpsgenie, FakePagerDuty

ROUTING_KEY = "R0UT1NGKEY0123456789ABCDEFGHIJKL"
PD_SECRET = "pd-webhook-secret-for-tests"
GENIE_KEY = "eb243592-faa2-4ba2-a551q-1afdf565c889"
OG_TOKEN = "og-webhook-token-for-tests"
PEOPLE = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}


@pytest.fixture
def fake_pd() -> Iterator[FakePagerDuty]:
    fake = FakePagerDuty(ROUTING_KEY, PD_SECRET).start()
    yield fake  # type: ignore[misc]
    fake.stop()


@pytest.fixture
def fake_og() -> Iterator[FakeOpsgenie]:
    fake = FakeOpsgenie(GENIE_KEY).start()
    yield fake  # type: ignore[misc]
    fake.stop()


@pytest.fixture
def settings(sqlite_url: str, fake_pd: FakePagerDuty, fake_og: FakeOpsgenie) -> Settings:
    s = make_settings(sqlite_url)
    s.oncall.people = dict(PEOPLE)
    s.paging.pagerduty.routing_key = SecretStr(ROUTING_KEY)
    s.paging.pagerduty.events_url = fake_pd.events_url
    s.paging.pagerduty.webhook_secrets = [SecretStr(PD_SECRET)]
    s.paging.opsgenie.api_key = SecretStr(GENIE_KEY)
    s.paging.opsgenie.api_url = fake_og.url
    s.paging.opsgenie.webhook_token = SecretStr(OG_TOKEN)
    return s


@pytest.fixture
def bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    b = build_bot(settings, clock=clock, extensions=["bot.compose.app.paging"])
    yield b
    b.close()


@pytest.fixture
def chat(bot: Bot) -> MemoryChat:
    """Chat plus every worker (the pager senders and the re-pager) after each line."""
    return MemoryChat(bot.dispatcher, workers=bot.workers)


@pytest.fixture
def client(bot: Bot) -> Iterator[TestClient]:
    with TestClient(build_http_app(bot)) as c:
        yield c


def sender(bot: Bot, channel: str) -> OutboxSender:
    return bot.services.extras[channel]
