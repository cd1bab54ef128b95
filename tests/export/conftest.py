"""Fixtures for the export tests: a bot with the export extension, and the schema validator."""

from __future__ import annotations

import json
from collections.abc import Iterator

import jsonschema
import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.domain.export import SCHEMA_PATH


@pytest.fixture
def bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    b = build_bot(settings, clock=clock, extensions=["bot.compose.app.export"])
    yield b
    b.close()


@pytest.fixture
def chat(bot: Bot) -> MemoryChat:
    return MemoryChat(bot.dispatcher, workers=bot.workers)


@pytest.fixture(scope="session")
def schema_validator() -> jsonschema.protocols.Validator:
    schema = json.loads(SCHEMA_PATH.read_text())
    cls = jsonschema.validators.validator_for(schema)
    cls.check_schema(schema)
    return cls(schema, format_checker=cls.FORMAT_CHECKER)
