"""Freezing and unfreezing from a chat context that names an incident which does not exist."""

from __future__ import annotations

from bot.compose.app.bot import Bot
from bot.chat.dispatcher import ChatContext


def test_unfreeze_from_a_context_naming_a_missing_incident_still_unfreezes(bot: Bot) -> None:
    bot.services.incidents.declare("a known incident", actor="alice")
    said = bot.dispatcher.handle(ChatContext(user="alice", adapter="memory", incident_id=10**12), "/incident freeze")
    assert said.text.startswith("Playbooks frozen by @alice")
    said = bot.dispatcher.handle(ChatContext(user="alice", adapter="memory", incident_id=10**12), "/incident unfreeze")
    assert said.text == "Playbooks unfrozen by @alice."
    assert bot.dispatcher.handle(ChatContext(user="alice", adapter="memory", incident_id=1),
                                 "/incident unfreeze").text == "Playbooks are not frozen."
