"""Which handler delivers each declared outbox kind on one surface.

A surface (Slack, the console, the pager webhook, PagerDuty, Opsgenie) names a
handler for every kind it shows, and says in a sentence why each other kind is
not for it.  The list is checked when the surface is built, that is at start-up:
a kind declared in ``bot/core/store/messages.py`` that a surface neither handles nor
turns away is a bug found before the first message, not a message silently
skipped at 3 a.m.  Handlers receive the typed message, so none of them reads a
payload dict.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from bot.core.store.messages import KINDS, Message
from bot.core.store.models import OutboxMessage

M = TypeVar("M", bound=Message)

Result = dict[str, Any]


@dataclass(frozen=True)
class Route(Generic[M]):
    """One kind on one surface: its handler, or why the surface does not show it."""

    kind: type[M]
    handler: Callable[[OutboxMessage, M], Result] | None = None
    elsewhere: str | None = None


def handle(kind: type[M], handler: Callable[[OutboxMessage, M], Result]) -> Route[M]:
    """``handler(row, message)`` delivers ``kind``; ``row`` is the stored message (id, incident, attempts)."""
    return Route(kind, handler=handler)


def not_here(kind: type[M], why: str) -> Route[M]:
    """``kind`` is not for this surface; delivering it records ``why`` as skipped (it never blocks the queue)."""
    return Route(kind, elsewhere=why)


class Surface:
    """The routes of one surface, complete for every declared kind (checked here, at construction)."""

    def __init__(self, name: str, routes: Iterable[Route[Any]]) -> None:
        self.name = name
        self.routes: dict[type[Message], Route[Any]] = {}
        for route in routes:
            if route.kind in self.routes:
                raise TypeError(f"surface {name}: {route.kind.kind} is routed twice")
            self.routes[route.kind] = route
        missing = sorted(cls.kind for cls in KINDS.values() if cls not in self.routes)
        if missing:
            raise TypeError(f"surface {name}: no handler for {', '.join(missing)} and no reason why it is not for "
                            "this surface (add handle(...) or not_here(...))")

    def deliver(self, row: OutboxMessage, message: Message) -> Result:
        route = self.routes[type(message)]
        if route.handler is None:
            return {"skipped": f"{message.kind}: {route.elsewhere}"}
        return route.handler(row, message)

    def handled(self) -> set[str]:
        """The kinds this surface shows (for its documentation and tests)."""
        return {cls.kind for cls, route in self.routes.items() if route.handler is not None}
