"""A chat line that fails inside the bot is logged by its verb, never in full (it may hold a secret)."""

from __future__ import annotations

import logging

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat


def test_a_failed_line_is_logged_without_its_text(bot: Bot, chat: MemoryChat, caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: object) -> None:
        raise RuntimeError("a bug")

    bot.dispatcher.register("note", broken)  # type: ignore[arg-type]
    caplog.set_level(logging.ERROR)
    answer = chat.say("alice", "/incident note the db password=hunter2 was in the paste INC-1")
    assert answer.startswith("Sorry, that failed inside the bot; nothing was changed by it.")
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "verb 'note'" in logged and "hunter2" not in logged
