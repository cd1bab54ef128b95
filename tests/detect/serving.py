"""The bot as ``serve`` runs it, inside a test: uvicorn on a free loopback port, workers in threads.

Used by the end-to-end detection test.
Chat delivery is a recording deliverer that notes when each message went
out, so a test can read "delivered" the way ``notified_at`` means it.
"""

from __future__ import annotations

import socket
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.compose.app.workers import WorkerRunner
from bot.chat.delivery import OutboxSender
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage


@dataclass
class TimedDeliverer:
    """Records every delivered outbox message with the wall-clock time it was delivered."""

    name: str = "recorder"
    delivered: list[tuple[float, OutboxMessage]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        with self.lock:
            self.delivered.append((time.time(), row))
            return {"n": len(self.delivered)}

    def messages(self, kind: str | None = None) -> list[OutboxMessage]:
        with self.lock:
            return [m for _, m in self.delivered if kind is None or m.kind == kind]


class RecordingASGI:
    """Keeps the raw bodies of webhook deliveries (to re-send exactly what Alertmanager sent)."""

    def __init__(self, app: Any, path: str = "/webhooks/alertmanager") -> None:
        self.app = app
        self.path = path
        self.bodies: list[bytes] = []

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        if scope["type"] != "http" or scope["path"] != self.path:
            await self.app(scope, receive, send)
            return
        chunks, more = [], True
        while more:
            message = await receive()
            chunks.append(message.get("body", b""))
            more = message.get("more_body", False)
        body = b"".join(chunks)
        self.bodies.append(body)
        replayed = False

        async def replay() -> Any:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


class BotServer:
    """``serve`` in a thread: the HTTP app under uvicorn, the bot's workers plus a chat sender."""

    def __init__(self, bot: Bot, *, record_bodies: bool = False, wrap: Any = None, chat_sender: bool = True) -> None:
        self.bot = bot
        self.deliverer = TimedDeliverer()
        self.sender = OutboxSender(bot.services, self.deliverer)
        if chat_sender:  # without: the bot's own chat adapter (Slack) drains the outbox
            bot.workers.append(self.sender)  # in bot.workers, so webhooks wake it like any sender
        app: Any = build_http_app(bot)
        self.recorder = RecordingASGI(app) if record_bodies else None
        served = self.recorder or app
        if wrap is not None:  # e.g. a timing middleware (benchmarks)
            served = wrap(served)
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self.port = self._sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        config = uvicorn.Config(served, log_level="warning", lifespan="off", access_log=False)
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self._sock]}, daemon=True)
        self.runner = WorkerRunner(bot.workers)

    @property
    def webhook_url(self) -> str:
        return self.url + "/webhooks/alertmanager"

    def start(self) -> "BotServer":
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("uvicorn did not start")
            time.sleep(0.01)
        self.runner.start()
        return self

    def stop(self) -> None:
        self.runner.stop()
        self.server.should_exit = True
        self.thread.join(10)
        self._sock.close()

    def __enter__(self) -> "BotServer":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
