"""Fixtures for detection tests: a bot whose webhook demands a token, and its HTTP app."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.core.config import Settings
from tests.conftest import make_settings

TOKEN = "am-webhook-token-for-tests"


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    s = make_settings(sqlite_url)
    s.webhook_token = SecretStr(TOKEN)
    return s


@pytest.fixture
def client(bot: Bot) -> Iterator[TestClient]:
    with TestClient(build_http_app(bot)) as c:
        c.headers["Authorization"] = f"Bearer {TOKEN}"
        yield c
