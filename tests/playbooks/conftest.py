"""Fixtures: a bot with the playbook engine (file test playbooks + the shipped ones), a chat transcript."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat import handlers_playbooks
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from playbooks.engine import Engine
from tests.playbooks.file_playbook import arm_hung_steps, release_hung_steps
from tests.playbooks.file_playbook import registry_for_tests as make_registry


@pytest.fixture
def pb_bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    settings.approvers.users = ["dave"]
    settings.approvers.groups = {"sre-leads": ["erin"]}
    settings.approvers.allow_rota = True  # rota: alice, bob, carol
    arm_hung_steps()
    b = build_bot(settings, clock=clock, extensions=[])
    handlers_playbooks.install(b, registry=make_registry())
    yield b
    release_hung_steps()
    b.close()


@pytest.fixture
def engine(pb_bot: Bot) -> Engine:
    return pb_bot.services.extras["playbook_engine"]


@pytest.fixture
def pchat(pb_bot: Bot) -> MemoryChat:
    return MemoryChat(pb_bot.dispatcher, workers=pb_bot.workers)


@pytest.fixture
def target(tmp_path: Path) -> Path:
    return tmp_path / "changes.txt"


def diagnosed_incident(chat: MemoryChat, commander: str = "alice", *, title: str = "apiserver overloaded") -> int:
    """INC with a commander and a recorded cause: ready for a playbook."""
    chat.say(commander, f"/incident declare {title}")
    chat.say(commander, "/incident ack")
    chat.say(commander, "/incident cause one client floods the apiserver")
    assert chat.current is not None
    return chat.current
