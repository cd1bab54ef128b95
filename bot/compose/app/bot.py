"""The composition root: settings + store + clock -> services, chat dispatcher, workers.

Capabilities plug in through ``EXTENSIONS``: each module listed there has a
``register(bot)`` that adds chat handlers, HTTP routes or workers.  Nothing is
built at import time, so importing any module never touches the network.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from prometheus_client.core import Metric

from bot.chat import handlers_core, handlers_editing
from bot.chat.dispatcher import Dispatcher, Services
from bot.core.clock import Clock, SystemClock
from bot.core.config import Settings
from bot.domain.incidents.service import Incidents
from bot.domain.slo.worker import Watcher
from bot.core.store import migrate
from bot.core.store.db import Database
from bot.core.plugins import Worker

# module paths with a ``register(bot: Bot) -> None``; later capabilities add theirs here
EXTENSIONS: list[str] = [
    "bot.compose.app.export",
    "bot.compose.app.openapi",
    "bot.compose.app.webhooks",
    "bot.compose.app.probing",
    "bot.compose.app.pager",
    "bot.compose.app.paging",
    "integrations.adapters.slack.extension",
    "bot.compose.app.diagnosis",
    "bot.compose.app.evidence",
    "bot.chat.handlers_playbooks",
    "bot.compose.sandbox.scheduled",
    "playbooks.backups",
    "bot.compose.app.followups",
    "bot.compose.app.ui",
    "bot.compose.app.admission",
]


@dataclass
class Bot:
    settings: Settings
    db: Database
    clock: Clock
    services: Services
    dispatcher: Dispatcher
    workers: list[Worker] = field(default_factory=list)  # what the worker runner drives (bot/core/plugins.py)
    routes: list[Any] = field(default_factory=list)
    metric_sources: list[Callable[["Bot"], list[Metric]]] = field(default_factory=list)  # families for /metrics
    on_start: list[Callable[[], None]] = field(default_factory=list)
    on_stop: list[Callable[[], None]] = field(default_factory=list)

    def close(self) -> None:
        for hook in reversed(self.on_stop):
            hook()
        self.db.dispose()


def build_bot(settings: Settings, *, clock: Clock | None = None, db: Database | None = None,
              extensions: list[str] | None = None) -> Bot:
    clock = clock or SystemClock()
    db = db or Database(settings.database_url)
    db.check()
    if settings.auto_migrate:
        migrate.upgrade(db)
    incidents = Incidents(db, settings, clock)
    services = Services(db=db, settings=settings, clock=clock, incidents=incidents)
    dispatcher = Dispatcher(services)
    handlers_core.register(dispatcher)
    handlers_editing.register(dispatcher)
    bot = Bot(settings=settings, db=db, clock=clock, services=services, dispatcher=dispatcher)
    bot.workers.append(Watcher(db, settings, clock))
    for path in EXTENSIONS if extensions is None else extensions:
        importlib.import_module(path).register(bot)
    return bot
