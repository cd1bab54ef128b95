"""A bot with the follow-ups (reminders, trackers, report) and export extensions, on a fake clock."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings


@pytest.fixture
def bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    b = build_bot(settings, clock=clock, extensions=["bot.compose.app.export", "bot.compose.app.followups"])
    yield b
    b.close()


@pytest.fixture
def chat(bot: Bot) -> MemoryChat:
    return MemoryChat(bot.dispatcher, workers=bot.workers)
