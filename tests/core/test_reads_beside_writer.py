"""On SQLite, people's reads answer while another writer holds the database (WAL snapshot reads)."""

from __future__ import annotations

import sqlite3

from bot.compose.app.bot import Bot
from bot.chat.dispatcher import ChatContext
from bot.chat.memory import MemoryChat


def test_status_and_list_answer_while_another_process_holds_the_write_lock(bot: Bot, chat: MemoryChat) -> None:
    chat.say("alice", "/incident declare etcd slow --severity sev1")
    path = bot.settings.database_url.removeprefix("sqlite:///")
    writer = sqlite3.connect(path, isolation_level=None)
    try:
        writer.execute("BEGIN IMMEDIATE")  # e.g. a console beside `serve`, in the middle of a command
        writer.execute("UPDATE incidents SET title = 'renamed, not committed' WHERE id = 1")
        # a read that asked for the write lock would wait here for the busy timeout, then fail
        assert [i.title for i in bot.services.incidents.list()] == ["etcd slow"]
        assert bot.services.incidents.view("INC-1").incident.severity == "sev1"
        reply = bot.dispatcher.handle(ChatContext(user="bob", adapter="memory"), "/incident status INC-1")
        assert "etcd slow" in reply.text  # what a slash command runs (the chat's workers are not pumped)
        writer.execute("COMMIT")
    finally:
        writer.close()
    assert bot.services.incidents.get("INC-1").title == "renamed, not committed"
