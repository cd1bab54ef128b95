"""The console adapter: the bot with a terminal chat instead of Slack.

Like Hubot's shell adapter or ``errbot -T``: one person at a keyboard (or a
script piping a transcript).  ``/as <user>`` switches who is speaking, so two
people can approve.  The console keeps a *current incident* (the last one
declared or named), which plays the role of being inside that incident's
channel.  Messages the bot sends on its own (announcements, pages, watcher
warnings, alert events) are printed as they are delivered from the outbox.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterable
from typing import Any, TextIO

from bot.chat.cards import event_line
from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.delivery import OutboxSender
from bot.chat.render_text import render
from bot.incidents.service import ref_of
from bot.incidents.timeline import AUTONOMOUS_SOURCES
from bot.store.models import OutboxMessage, TimelineEvent

AS_RE = re.compile(r"^/as\s+@?([\w.\-]+)\s*$")
USE_RE = re.compile(r"^/use\s+(INC-\d+)\s*$", re.IGNORECASE)


class ConsoleDeliverer:
    """Prints what the bot says on its own to the terminal."""

    name = "console"

    def __init__(self, dispatcher: Dispatcher, out: TextIO) -> None:
        self.dispatcher = dispatcher
        self.out = out

    def deliver(self, message: OutboxMessage) -> dict[str, Any]:
        payload = message.payload
        if message.kind == "incident.card" and payload.get("announce"):
            from bot.chat.handlers_core import card_for

            self._print("📣 " + render(card_for(self.dispatcher, message.incident_id)).replace("\n", "\n   "))  # type: ignore[arg-type]
        elif message.kind == "page":
            self._print(f"📟 page @{payload.get('user')}: {payload.get('reason')}")
        elif message.kind == "notice":
            self._print(f"🔔 {payload.get('text')}")
        elif message.kind == "timeline.post":
            with self.dispatcher.services.db.session() as session:
                event = session.get(TimelineEvent, payload.get("event_id"))
                if event is not None and event.source in AUTONOMOUS_SOURCES:
                    self._print(f"   · {ref_of(event.incident_id)} {event_line(event)}")
        return {"printed": True}

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


class Console:
    def __init__(self, dispatcher: Dispatcher, *, user: str, out: TextIO = sys.stdout,
                 deliver: bool = True, workers: Iterable[Any] = ()) -> None:
        self.dispatcher = dispatcher
        self.user = user
        self.out = out
        self.current: int | None = None
        self.sender = OutboxSender(dispatcher.services, ConsoleDeliverer(dispatcher, out)) if deliver else None
        self.workers = list(workers)

    def prompt(self) -> str:
        where = f" {ref_of(self.current)}" if self.current else ""
        return f"{self.user}{where}> "

    def handle_line(self, line: str) -> str | None:
        """Answer one line; returns the text printed (None for blank/comment lines)."""
        line = line.strip()
        if not line or line.startswith("#"):
            return None
        as_match = AS_RE.match(line)
        if as_match:
            self.user = as_match.group(1)
            return self._say(f"(you are now @{self.user})")
        use_match = USE_RE.match(line)
        if use_match:
            try:
                incident = self.dispatcher.services.incidents.get(use_match.group(1))
            except Exception as exc:  # NotFound / BadInput carry the sentence
                return self._say(str(exc))
            self.current = incident.id
            return self._say(f"(current incident: {ref_of(incident.id)})")
        if line.startswith("/") and not line.lower().startswith("/incident"):
            return self._say(f"unknown console command `{line.split()[0]}`; use /incident …, /as <user> or /use INC-N.")
        ctx = ChatContext(user=self.user, adapter="console", incident_id=self.current)
        reply = self.dispatcher.handle(ctx, line)
        if reply.incident_id is not None and not reply.error:
            self.current = reply.incident_id
        text = render(reply)
        self._say(text)
        self.pump()
        return text

    def pump(self) -> None:
        """Run the background work due now (watcher, outbox) so a script sees it."""
        for worker in self.workers:
            worker.tick()
        if self.sender is not None:
            self.sender.tick()

    def _say(self, text: str) -> str:
        print(text, file=self.out, flush=True)
        return text

    def run(self, stdin: TextIO = sys.stdin) -> int:
        interactive = stdin.isatty()
        self.pump()
        while True:
            if interactive:
                try:
                    line = input(self.prompt())
                except (EOFError, KeyboardInterrupt):
                    print(file=self.out)
                    return 0
            else:
                raw = stdin.readline()
                if not raw:
                    return 0
                line = raw.rstrip("\n")
                if line.strip() and not line.strip().startswith("#"):
                    print(f"{self.prompt()}{line.strip()}", file=self.out, flush=True)
            if line.strip() in {"/quit", "/exit"}:
                return 0
            self.handle_line(line)
