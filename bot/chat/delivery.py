"""Draining the outbox into a chat system.

A ``Deliverer`` knows one chat system (console, Slack, a test recorder) and
delivers one message; ``OutboxSender`` claims pending messages, reads each
back as its typed declaration (``bot/core/store/messages.py``), hands them over in
order, completes or reschedules them, and tells the domain when the first
notification of an incident got through (that moment is ``notified_at``).
A stored message that does not fit its declaration is marked failed with the
reason: retrying it would never help, and it must not hold its incident's
later messages back.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from bot.chat.dispatcher import Services
from bot.core.errors import IncidentBotError
from bot.core.store import outbox
from bot.domain.incidents import fleet
from bot.core.store.messages import IncidentCard, MalformedMessage, Message, decode
from bot.core.store.models import OutboxMessage

log = logging.getLogger(__name__)


@dataclass
class Delivered:
    result: dict[str, Any]


class RetryLater(Exception):
    """The chat system refused for now (rate limit, 5xx, unreachable)."""

    def __init__(self, reason: str, retry_after: float | None = None, *, rate_limited: bool = False) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.rate_limited = rate_limited  # the server said "too many calls" (HTTP 429), not "broken"


class Deliverer(Protocol):
    name: str

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        """Deliver ``message`` (stored as ``row``) or raise RetryLater; the returned dict is stored as the result."""


def worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class OutboxSender:
    """One tick drains what is due; run it in a loop (serve) or after each line (console)."""

    name = "outbox-sender"

    def __init__(self, services: Services, deliverer: Deliverer, *, channel: str = "chat",
                 batch: int = 100, give_up_after: int | None = None) -> None:
        self.services = services
        self.deliverer = deliverer
        self.channel = channel
        self.batch = batch
        self.give_up_after = give_up_after
        self.worker = f"{worker_id()}:{deliverer.name}"
        # set by whoever queued something urgent (a webhook that opened an incident): the
        # runner then ticks at once instead of after ``interval``
        self.wake = threading.Event()
        # delivered, not yet recorded as sent (the database failed in between): id -> (row, message, result, when)
        self.delivered: dict[int, tuple[OutboxMessage, Message, dict[str, Any], datetime]] = {}
        # card id -> clusters not yet notified that the card shows (their notified_at is its delivery)
        self.showing: dict[int, list[str]] = {}

    @property
    def interval(self) -> float:
        return self.services.settings.outbox_interval_seconds

    @property
    def claim_seconds(self) -> float:
        return self.services.settings.outbox_claim_seconds

    def tick(self) -> int:
        db, clock = self.services.db, self.services.clock
        sent = self._finish_delivered()
        with db.reading() as session:  # most ticks find nothing: ask without the write lock
            if not outbox.anything_due(session, channel=self.channel, now=clock.now()):
                return sent
        with db.session() as session:
            messages = outbox.claim(session, channel=self.channel, worker=self.worker, now=clock.now(), limit=self.batch,
                                    lease_seconds=self.claim_seconds)
        failed_incidents: set[int] = set()
        for message in messages:
            if message.incident_id is not None and message.incident_id in failed_incidents:
                with db.session() as session:  # keep per-incident order: release, retry after the earlier one
                    outbox.retry_later(session, message.id, now=clock.now(), error="an earlier message is waiting",
                                       retry_after=0.0, worker=self.worker, attempted=False)
                continue
            try:
                typed = decode(message.kind, message.payload)
            except MalformedMessage as exc:  # it can never be delivered: keep it, failed, with the reason
                log.warning("outbox message %s cannot be delivered: %s", message.id, exc)
                with db.session() as session:
                    outbox.fail(session, message.id, error=str(exc), worker=self.worker)
                continue
            with db.session() as session:  # the claim may have lapsed while earlier messages were slow
                if not outbox.renew(session, message.id, worker=self.worker, now=clock.now(),
                                    lease_seconds=self.claim_seconds):
                    log.info("outbox message %s: claim lost to another sender; not delivering it", message.id)
                    if message.incident_id is not None:  # its successors wait too: order per incident holds
                        failed_incidents.add(message.incident_id)
                    continue
            # clusters that joined after the announcement: read before rendering, so this card shows them
            showing = fleet.unannounced(db, message.incident_id) \
                if isinstance(typed, IncidentCard) and message.incident_id is not None else []
            try:
                result = self.deliverer.deliver(message, typed)
            except RetryLater as exc:
                if message.incident_id is not None:
                    failed_incidents.add(message.incident_id)
                with db.session() as session:
                    outbox.retry_later(session, message.id, now=clock.now(), error=exc.reason,
                                       retry_after=exc.retry_after, give_up_after=self.give_up_after,
                                       worker=self.worker)
                continue
            except Exception as exc:  # a bug in rendering must not lose the message
                log.exception("delivering outbox message %s (%s) failed", message.id, message.kind)
                if message.incident_id is not None:
                    failed_incidents.add(message.incident_id)
                with db.session() as session:
                    outbox.retry_later(session, message.id, now=clock.now(), error=type(exc).__name__,
                                       worker=self.worker)
                continue
            self.delivered[message.id] = (message, typed, result, clock.now())
            if showing and message.id is not None:
                self.showing[message.id] = showing
            sent += self._finish_delivered()
        return sent

    def _finish_delivered(self) -> int:
        """Record deliveries as sent.  One whose record failed (the database went away between
        the delivery and its record) is kept and recorded at the next tick, never delivered again
        by this sender."""
        finished = 0
        for message_id, (message, typed, result, delivered_at) in list(self.delivered.items()):
            try:
                with self.services.db.session() as session:
                    outbox.complete(session, message_id, now=delivered_at, result=result, worker=self.worker)
            except Exception as exc:  # noqa: BLE001 (kept for the next tick; the delivery itself happened)
                log.warning("outbox message %s delivered but not yet recorded (%s); recording it next tick",
                            message_id, type(exc).__name__)
                return finished
            del self.delivered[message_id]
            finished += 1
            if typed.stamps_notified and message.incident_id is not None:
                try:
                    self.services.incidents.mark_notified(message.incident_id, at=delivered_at,
                                                          via=f"{self.deliverer.name} {message.kind}")
                except IncidentBotError:
                    log.warning("could not stamp notified_at for incident %s", message.incident_id)
            showing = self.showing.pop(message_id, [])
            if showing and message.incident_id is not None:
                try:  # lost here, the cluster is stamped by the next card that shows it: later, never early
                    fleet.card_delivered(self.services.db, message.incident_id, showing, at=delivered_at,
                                         via=f"{self.deliverer.name} {message.kind}")
                except Exception:  # noqa: BLE001
                    log.warning("could not stamp notified_at for the clusters %s of incident %s", showing,
                                message.incident_id, exc_info=True)
        return finished
