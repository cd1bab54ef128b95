"""From a chat line to a reply: parse, find the incident, run the handler.

Handlers are registered per verb; verbs that no handler claims answer that
they are not available yet.  This is the one place where errors turn into
chat answers: an ``IncidentBotError`` becomes its one-line message (with the
usage line for bad input), anything else is logged with its traceback and
the person sees a short apology with a reference to the log line.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field

from bot.chat import grammar
from bot.chat.grammar import Command
from bot.chat.messages import Reply
from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import BadInput, IncidentBotError, NotAvailableYet
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of
from bot.core.store.db import Database
from bot.core.plugins import Extras

log = logging.getLogger(__name__)


@dataclass
class Services:
    """Everything handlers may use; built by the composition root (bot/compose/app)."""

    db: Database
    settings: Settings
    clock: Clock
    incidents: Incidents
    extras: Extras = field(default_factory=Extras)  # what plugins offer each other (bot/core/plugins.py)


@dataclass
class ChatContext:
    """Who speaks, where: ``incident_id`` is set inside an incident's channel/thread."""

    user: str
    adapter: str = "console"
    channel: str | None = None
    incident_id: int | None = None

    @property
    def source(self) -> str:
        return f"chat:{self.adapter}"


Handler = Callable[["Dispatcher", ChatContext, Command], Reply]


class Dispatcher:
    def __init__(self, services: Services) -> None:
        self.services = services
        self.handlers: dict[str, Handler] = {}

    def register(self, verb: str, handler: Handler) -> None:
        if verb not in grammar.BY_NAME:
            raise ValueError(f"{verb} is not a verb of the grammar")
        self.handlers[verb] = handler

    def handle(self, ctx: ChatContext, line: str) -> Reply:
        try:
            command = grammar.parse(line)
            return self.run(ctx, command)
        except BadInput as exc:
            usage = f" Usage: {exc.usage}" if exc.usage else ""
            return Reply.failure(f"{exc.message}{usage}")
        except IncidentBotError as exc:
            return Reply.failure(exc.message)
        except Exception:
            ref = uuid.uuid4().hex[:8]
            verb = (line.split() + ["", ""])[1 if line.lstrip().startswith("/") else 0][:32]
            # the verb only: the rest of a chat line is free text and may hold a secret someone pasted
            log.exception("chat command failed (ref %s): verb %r, %d characters", ref, verb, len(line))
            return Reply.failure(f"Sorry, that failed inside the bot; nothing was changed by it. (error ref {ref})")

    def run(self, ctx: ChatContext, command: Command) -> Reply:
        handler = self.handlers.get(command.verb)
        if handler is None:
            raise NotAvailableYet(f"`/incident {command.verb}` is not available yet in this build.")
        return handler(self, ctx, command)

    def incident_ref(self, ctx: ChatContext, command: Command) -> str:
        """The incident a command is about: named, or implicit from where it was said."""
        if command.incident:
            return command.incident
        if ctx.incident_id is not None:
            return ref_of(ctx.incident_id)
        verb = grammar.BY_NAME[command.verb]
        raise BadInput(f"which incident? Name it, e.g. `/incident {command.verb} INC-42`.", field="incident",
                       usage=verb.usage())
