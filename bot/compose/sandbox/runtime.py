"""The bot inside the sandbox: ``serve``'s HTTP app and workers, in this process.

The same ``build_bot`` and ``build_http_app`` as ``incident-bot serve``, so a
drill exercises the real webhook, the real workers and the real engine.  The
HTTP app runs under uvicorn in a thread on a port chosen beforehand (the
Alertmanager config needs the webhook URL before the bot starts); workers run
in ``WorkerRunner`` threads.  Chat goes to a ``Deliverer`` the caller picks:
the terminal for ``incident-bot sandbox``, a transcript file for a drill.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import uvicorn

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.compose.app.workers import WorkerRunner
from bot.chat.delivery import Deliverer, OutboxSender
from bot.core.config import Settings
from bot.compose.sandbox.processes import wait_until

# who reads the sandbox bot's chat (the console, a test's recorder): given the live bot, its deliverer
DelivererFactory = Callable[[Bot], Deliverer]

# what the sandbox always runs besides ``serve``'s extensions: the etcd snapshot schedule (restore needs a backup)
SANDBOX_EXTENSIONS = ("playbooks.backups",)


class BotRuntime:
    """Start with ``start()``; ``bot`` is the live Bot; ``close()`` stops the server and the workers."""

    def __init__(self, settings: Settings, *, host: str, port: int, deliverer_factory: DelivererFactory | None = None,
                 tools: dict[str, Any] | None = None) -> None:
        self.settings = settings
        self.tools = tools or {}  # playbook toolbox factories: kind -> (cluster) -> client
        self.host = host
        self.port = port
        self.deliverer_factory = deliverer_factory  # (bot) -> Deliverer; None: nobody reads chat
        self.bot: Bot | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._runner: WorkerRunner | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> "BotRuntime":
        bot = self.bot = self._build()
        if self.deliverer_factory is not None:
            deliverer: Deliverer = self.deliverer_factory(bot)
            bot.workers.append(OutboxSender(bot.services, deliverer))
        config = uvicorn.Config(build_http_app(bot), host=self.host, port=self.port, log_level="warning",
                                lifespan="off")
        self._server = uvicorn.Server(config)
        # the sandbox owns signals: uvicorn installs its handlers only when it runs in the main thread
        self._thread = threading.Thread(target=self._server.run, name="sandbox-http", daemon=True)
        self._thread.start()
        wait_until(lambda: self._server is not None and self._server.started, timeout=15,
                   what=f"the bot's HTTP server on {self.url}")
        for hook in bot.on_start:
            hook()
        self._runner = WorkerRunner(bot.workers)
        self._runner.start()
        return self

    def _build(self) -> Bot:
        """``build_bot``, with the playbook engine given the sandbox's own clients (its etcd controller)."""
        from bot.compose.app import bot as app_bot

        engine_ext = "bot.chat.handlers_playbooks"
        extensions = list(app_bot.EXTENSIONS) + [e for e in SANDBOX_EXTENSIONS if e not in app_bot.EXTENSIONS]
        if not self.tools or engine_ext not in extensions:
            return build_bot(self.settings, extensions=extensions)
        bot = build_bot(self.settings, extensions=[e for e in extensions if e != engine_ext])
        from bot.chat.handlers_playbooks import install
        from playbooks.engine import Toolbox

        install(bot, tools=Toolbox(self.settings, **self.tools))
        return bot

    def close(self) -> None:
        if self._runner is not None:
            self._runner.stop()
            self._runner = None
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(10)
            self._thread = None
        if self.bot is not None:
            self.bot.close()
            self.bot = None
