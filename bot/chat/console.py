"""The console adapter: the bot with a terminal chat instead of Slack.

Like Hubot's shell adapter or ``errbot -T``: one person at a keyboard (or a
script piping a transcript).  ``/as <user>`` switches who is speaking, so two
people can approve.  The console keeps a *current incident* (the last one
declared or named), which plays the role of being inside that incident's
channel.  Messages the bot sends on its own (announcements, pages, watcher
warnings, alert events) are printed as they are delivered from the outbox,
by a background ticker, without waiting for a typed line.  A console opened
on a database that Slack delivers from only follows the outbox: it never
takes (and so never swallows) Slack's messages.
"""

from __future__ import annotations

import logging
import re
import sys
import threading
from collections.abc import Callable, Iterable
from typing import Any, TextIO

from sqlalchemy import func, select
from sqlmodel import col

from bot.chat.cards import event_line
from bot.chat.dispatcher import ChatContext, Dispatcher, Services
from bot.chat.delivery import OutboxSender
from bot.chat.render_text import render
from bot.chat.surface import Surface, handle, not_here
from bot.domain.incidents import fleet
from bot.core.store.refs import ref_of
from bot.core.store.messages import (IncidentCard, MalformedMessage, Message, Notice, Page, PageClose, SlackReply,
                                TimelinePost, decode)
from bot.core.store.timeline import AUTONOMOUS_SOURCES
from bot.core.store.models import OutboxMessage, TimelineEvent

log = logging.getLogger(__name__)
AS_RE = re.compile(r"^/as\s+@?([\w.\-]+)\s*$")
USE_RE = re.compile(r"^/use\s+(INC-\d+)\s*$", re.IGNORECASE)


class ConsoleDeliverer:
    """Prints what the bot says on its own to the terminal."""

    name = "console"

    def __init__(self, dispatcher: Dispatcher, out: TextIO) -> None:
        self.dispatcher = dispatcher
        self.out = out
        self.surface = Surface("console", [
            handle(IncidentCard, self._card),
            handle(Page, self._page),
            handle(Notice, self._notice),
            handle(TimelinePost, self._timeline),
            not_here(PageClose, "closing a page concerns the paging services only"),
            not_here(SlackReply, "answers to Slack commands are Slack's (the console prints its answers at once)"),
        ])

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        self.surface.deliver(row, message)
        return {"printed": True}  # chat_is_ours reads this: the console took the message

    def _card(self, row: OutboxMessage, card: IncidentCard) -> dict[str, Any]:
        # later updates are seen as timeline lines, except one showing a cluster that joined since the
        # announcement: its delivery is that cluster's notification (bot/domain/incidents/fleet.py), so it is printed
        if card.announce or fleet.unannounced(self.dispatcher.services.db, card.incident_id):
            from bot.chat.handlers_core import card_for

            self._print("📣 " + render(card_for(self.dispatcher, card.incident_id)).replace("\n", "\n   "))
        return {}

    def _page(self, row: OutboxMessage, page: Page) -> dict[str, Any]:
        self._print(f"📟 page @{page.user}: {page.reason}")
        return {}

    def _notice(self, row: OutboxMessage, notice: Notice) -> dict[str, Any]:
        self._print(f"🔔 {notice.text}")
        return {}

    def _timeline(self, row: OutboxMessage, post: TimelinePost) -> dict[str, Any]:
        with self.dispatcher.services.db.session() as session:
            event = session.get(TimelineEvent, post.event_id)
            if event is not None and event.source in AUTONOMOUS_SOURCES:
                self._print(f"   · {ref_of(event.incident_id)} {event_line(event)}")
        return {}

    def _print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def chat_is_ours(services: Services) -> bool:
    """May this console deliver (take) the database's chat messages?

    Only when nothing else delivers them: Slack is not configured here, and no
    other surface (a ``serve`` with Slack, on this same database) has ever
    delivered a chat message — console deliveries are recorded as printed.
    """
    if services.settings.slack.bot_token:
        return False
    with services.db.reading() as session:
        results = session.execute(
            select(col(OutboxMessage.result))
            .where(col(OutboxMessage.channel) == "chat", col(OutboxMessage.status) == "sent")
            .order_by(col(OutboxMessage.id).desc()).limit(200)
        ).scalars().all()
    return all((r or {}).get("printed") for r in results)


class OutboxFollower:
    """Shows the bot's chat messages as they are queued, taking none of them.

    A console opened against a database that another surface (Slack) delivers
    from must not claim, complete or stamp anything: it reads the chat outbox by
    id from where it started and prints, like ``tail -f``.
    """

    name = "console-follower"

    def __init__(self, services: Services, deliverer: "ConsoleDeliverer", channel: str = "chat") -> None:
        self.services = services
        self.deliverer = deliverer
        self.channel = channel
        with services.db.reading() as session:
            self.cursor = session.execute(select(func.max(col(OutboxMessage.id)))).scalar() or 0

    def tick(self) -> int:
        with self.services.db.reading() as session:
            rows = session.execute(
                select(OutboxMessage)
                .where(col(OutboxMessage.channel) == self.channel, col(OutboxMessage.id) > self.cursor)
                .order_by(col(OutboxMessage.id)).limit(500)
            ).scalars().all()
        for row in rows:
            try:
                self.deliverer.deliver(row, decode(row.kind, row.payload))
            except MalformedMessage as exc:  # the sender that owns it marks it failed; here it is only not shown
                log.warning("outbox message %s not shown: %s", row.id, exc)
            self.cursor = row.id
        return len(rows)


class Console:
    def __init__(self, dispatcher: Dispatcher, *, user: str, out: TextIO = sys.stdout,
                 deliver: bool = True, workers: Iterable[Any] = ()) -> None:
        self.dispatcher = dispatcher
        self.user = user
        self.out = out
        self.current: int | None = None
        self.sender: OutboxSender | OutboxFollower | None = None
        self.follows = False  # True: another surface delivers; this console only shows
        if deliver:
            printer = ConsoleDeliverer(dispatcher, out)
            self.follows = not chat_is_ours(dispatcher.services)
            self.sender = (OutboxFollower(dispatcher.services, printer) if self.follows
                           else OutboxSender(dispatcher.services, printer))
        self.workers = list(workers)
        self._pumping = threading.RLock()  # a line (answer, then pump) and the background ticker take turns

    def prompt(self) -> str:
        where = f" {ref_of(self.current)}" if self.current else ""
        return f"{self.user}{where}> "

    def handle_line(self, line: str) -> str | None:
        """Answer one line; returns the text printed (None for blank/comment lines)."""
        with self._pumping:  # the answer is printed before anything the line caused
            return self._handle_line(line)

    def _handle_line(self, line: str) -> str | None:
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
        with self._pumping:
            for worker in self.workers:
                worker.tick()
            if self.sender is not None:
                self.sender.tick()

    def start_background(self, interval: float) -> Callable[[], None]:
        """Pump every ``interval`` seconds while waiting for a line: the bot's own messages (an
        alert's announcement, a clock warning) appear without anyone typing.  Returns the stopper."""
        stop = threading.Event()

        def loop() -> None:
            while not stop.wait(interval):
                try:
                    self.pump()
                except Exception:  # one bad tick must not end the console
                    log.exception("console background tick failed")

        thread = threading.Thread(target=loop, name="console-ticker", daemon=True)
        thread.start()

        def stopper() -> None:
            stop.set()
            thread.join(5)

        return stopper

    def _say(self, text: str) -> str:
        print(text, file=self.out, flush=True)
        return text

    def run(self, stdin: TextIO = sys.stdin, *, tick_seconds: float | None = None) -> int:
        """Read lines until EOF; with ``tick_seconds``, the bot's own messages arrive in between."""
        stop = self.start_background(tick_seconds) if tick_seconds else None
        try:
            return self._read(stdin)
        finally:
            if stop is not None:
                stop()

    def _read(self, stdin: TextIO) -> int:
        interactive = stdin.isatty()
        self.pump()
        if self.follows:
            self._say("(another surface delivers this database's messages; this console shows them and takes none)")
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
