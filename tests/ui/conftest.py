"""The web board served for real: uvicorn on a loopback port, the bot on a fake clock, Chromium to look at it."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import uvicorn
from pydantic import SecretStr

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.support.browser import browser  # noqa: F401 (fixture)

TOKEN = "board-token-7f3a9c0e5b2d"
EXTENSIONS = ["bot.compose.app.export", "bot.compose.app.followups", "bot.compose.app.ui"]


@dataclass
class Served:
    url: str
    bot: Bot
    server: uvicorn.Server
    thread: threading.Thread


def serve(bot: Bot) -> Served:
    """Serve ``bot`` on 127.0.0.1; the socket listens before the call returns, so no waiting is needed."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    config = uvicorn.Config(build_http_app(bot), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    return Served(f"http://127.0.0.1:{sock.getsockname()[1]}", bot, server, thread)


@pytest.fixture
def bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    settings.api_token = SecretStr(TOKEN)
    b = build_bot(settings, clock=clock, extensions=EXTENSIONS)
    yield b
    b.close()


@pytest.fixture
def chat(bot: Bot) -> MemoryChat:
    return MemoryChat(bot.dispatcher, workers=bot.workers)


@pytest.fixture
def live(bot: Bot) -> Iterator[Served]:
    served = serve(bot)
    yield served
    served.server.should_exit = True
    served.thread.join(10)


@pytest.fixture
def page(browser: Any, live: Served) -> Iterator[Any]:  # noqa: F811
    context = browser.new_context(viewport={"width": 1920, "height": 1080})
    p = context.new_page()
    yield p
    context.close()
