"""What a plugin that adds chat verbs or uses the incident service may use of the bot.

``bot.core.plugins.Host`` is the bot as every plugin sees it; the plugins of the chat layer and above
also reach the dispatcher (to register their verbs) and the incident service, whose types live in
this layer and the domain, so their Protocol lives here.  ``bot.compose.app.bot.Bot`` is one.
"""

from __future__ import annotations

from typing import Protocol

from bot.chat.dispatcher import Dispatcher, Services
from bot.core.plugins import Host


class ChatHost(Host, Protocol):
    """The bot as a chat-level plugin's ``register(bot)`` sees it."""

    @property
    def services(self) -> Services: ...

    @property
    def dispatcher(self) -> Dispatcher: ...


__all__ = ["ChatHost"]
