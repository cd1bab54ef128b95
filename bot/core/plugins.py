"""The extension seam, typed: what a capability's ``register(bot)`` may use, and what capabilities share.

The composition root (``bot.compose.app.bot.build_bot``) imports each module of ``EXTENSIONS`` and calls
its ``register(bot)``; Slack, paging, diagnosis, the playbook engine, the guard and the rest plug
in that way.  Those modules live in several layers (``playbooks.backups`` sits below the chat
layer, ``integrations.adapters.slack`` above it), so the description of what they may touch lives here, at
the bottom, where every layer may import it:

* ``Host`` — the bot as every plugin sees it: settings, store, clock, the worker list, HTTP
  routes, start/stop hooks, metric sources, and ``services.extras``;
* ``Worker`` — what the worker runner drives (``name``, ``interval``, ``tick``);
* ``Extras`` with ``Extra[T]`` keys — the capabilities one plugin offers others (the diagnoser,
  the playbook service, the alert ingestor...).  A key is declared once, beside the type of what it
  names, so ``extras.need(DIAGNOSER)`` is a ``Diagnoser`` to the type checker and a missing
  capability is a clear error naming it instead of a ``KeyError``.

Plugins that also use the chat dispatcher or the incident service take ``bot.chat.plugin.ChatHost``
(the same bot, with the chat layer's types).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar, cast, overload

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import IncidentBotError
from bot.core.store.db import Database

T = TypeVar("T")


class MissingCapability(IncidentBotError):
    """A plugin needed a capability no registered extension offers (the message names both)."""


@dataclass(frozen=True)
class Extra(Generic[T]):
    """The typed name of one shared capability: ``DIAGNOSER: Extra[Diagnoser] = Extra("diagnoser", "...")``."""

    name: str
    provided_by: str  # the extension module that puts it, for the error when it is missing

    def __str__(self) -> str:
        return self.name


class Extras(dict[str, object]):
    """The capabilities plugins share, by name; read and written through ``Extra`` keys.

    It stays a mapping (tests and the start-up code look names up, ``"slack" in extras``), but its
    values are ``object`` to the type checker: code reaches them through ``find``/``need`` with a
    typed key, which is what makes a plugin's use of another checked.
    """

    def put(self, key: Extra[T], value: T) -> None:
        """Offer ``value`` as ``key`` (a later registration replaces an earlier one, as in tests)."""
        self[key.name] = value

    @overload
    def find(self, key: Extra[T]) -> T | None: ...

    @overload
    def find(self, key: Extra[T], default: T) -> T: ...

    def find(self, key: Extra[T], default: T | None = None) -> T | None:
        """The capability, or ``default`` when no extension offers it (an optional capability)."""
        return cast("T | None", self.get(key.name, default))  # put() is the only writer through a key of T

    def need(self, key: Extra[T]) -> T:
        """The capability; MissingCapability names it and the extension that provides it when absent."""
        if key.name not in self:
            raise MissingCapability(f"the {key.name} capability is not registered: {key.provided_by} is not among "
                                    f"the bot's extensions.")
        return cast("T", self[key.name])  # put() is the only writer through a key of T


class Worker(Protocol):
    """A background worker: the runner calls ``tick`` every ``interval`` seconds (bot/compose/app/workers.py)."""

    @property
    def name(self) -> str: ...

    @property
    def interval(self) -> float: ...

    def tick(self) -> Any: ...  # what it did (a count, a list), for logs and tests; the runner reads it only
    # of a worker with ``drains = True`` (work found: tick again at once, no pause)


class SharedServices(Protocol):
    """The part of ``bot.chat.dispatcher.Services`` every plugin may use."""

    @property
    def extras(self) -> Extras: ...


class Host(Protocol):
    """The bot as a plugin's ``register(bot)`` sees it (``bot.compose.app.bot.Bot`` is one)."""

    @property
    def settings(self) -> Settings: ...

    @property
    def db(self) -> Database: ...

    @property
    def clock(self) -> Clock: ...

    @property
    def services(self) -> SharedServices: ...

    @property
    def workers(self) -> list[Worker]: ...

    @property
    def routes(self) -> list[Any]: ...  # starlette routes, served by bot.compose.app.http

    @property
    def on_start(self) -> list[Callable[[], None]]: ...

    @property
    def on_stop(self) -> list[Callable[[], None]]: ...

    @property
    def metric_sources(self) -> list[Callable[[Any], list[Any]]]: ...  # the bot in, Prometheus families out


__all__ = ["Extra", "Extras", "Host", "MissingCapability", "SharedServices", "Worker"]
