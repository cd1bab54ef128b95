"""Shared fixtures: a bot on a temporary database, a fake clock, a chat transcript."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from datetime import datetime, timezone
from pathlib import Path

import freezegun
import pytest
from sqlalchemy import create_engine, text

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings, load_settings
from tests.support.postgres_server import PostgresServer

# freezegun scans every loaded module; the kubernetes client builds pydantic models lazily on
# attribute access, which must not happen while time is frozen.
freezegun.configure(extend_ignore_list=["kubernetes", "kmock", "pydantic"])

T0 = datetime(2026, 11, 25, 3, 0, 0, tzinfo=timezone.utc)

pytest_plugins = ["tests.support.fixtures_components", "tests.support.fixtures_kubernetes",
                  "tests.support.kube_apiserver"]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock(T0)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'incident-bot.db'}"


@pytest.fixture(scope="session")
def postgres_admin_url() -> Iterator[str]:
    """The test session's PostgreSQL: ``INCIDENT_BOT_TEST_PG`` when set, else a throwaway server."""
    configured = os.environ.get("INCIDENT_BOT_TEST_PG")
    if configured:
        yield configured
        return
    server = PostgresServer.start()
    try:
        yield server.admin_url
    finally:
        server.stop()


@pytest.fixture
def postgres_url(postgres_admin_url: str) -> Iterator[str]:
    """A fresh PostgreSQL database on the test session's server, dropped afterwards."""
    name = f"ib_test_{uuid.uuid4().hex[:10]}"
    admin = create_engine(postgres_admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    base = postgres_admin_url.rsplit("/", 1)[0]
    try:
        yield f"{base}/{name}"
    finally:
        with admin.connect() as conn:
            conn.execute(text(f"SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '{name}'"))
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        admin.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    """Runs a store test on SQLite and on the test session's PostgreSQL."""
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


def make_settings(url: str, **overrides: object) -> Settings:
    settings = load_settings(environ={})
    settings.database_url = url
    settings.oncall.rota = ["alice", "bob", "carol"]
    settings.oncall.rotation_start = datetime(2026, 11, 23, 0, 0, tzinfo=timezone.utc)
    for key, value in overrides.items():
        setattr(settings, key, value)
    return settings


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    return make_settings(sqlite_url)


@pytest.fixture
def bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    b = build_bot(settings, clock=clock)
    yield b
    b.close()


@pytest.fixture
def chat(bot: Bot) -> MemoryChat:
    return MemoryChat(bot.dispatcher, workers=bot.workers)
