"""An in-memory chat adapter for tests: a transcript in, replies and deliveries out."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bot.chat.delivery import OutboxSender
from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.messages import Reply
from bot.chat.render_text import render
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage


@dataclass
class RecordingDeliverer:
    """Records every delivered outbox message (the stored row and its typed message); can refuse for a while."""

    name: str = "memory"
    delivered: list[OutboxMessage] = field(default_factory=list)
    messages: list[Message] = field(default_factory=list)
    refuse: bool = False

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        from bot.chat.delivery import RetryLater

        if self.refuse:
            raise RetryLater("refused by the test")
        self.delivered.append(row)
        self.messages.append(message)
        return {"n": len(self.delivered)}

    def kinds(self) -> list[str]:
        return [m.kind for m in self.delivered]


class MemoryChat:
    """Say lines as people; read replies as text. Used by the chat-transcript tests."""

    def __init__(self, dispatcher: Dispatcher, *, workers: list[Any] | None = None) -> None:
        self.dispatcher = dispatcher
        self.deliverer = RecordingDeliverer()
        self.sender = OutboxSender(dispatcher.services, self.deliverer)
        self.workers = workers or []
        self.replies: list[Reply] = []
        self.current: int | None = None  # like being in the channel of the last incident touched

    def say(self, user: str, line: str, *, incident: int | None = None) -> str:
        where = incident if incident is not None else self.current
        reply = self.dispatcher.handle(ChatContext(user=user, adapter="memory", incident_id=where), line)
        if reply.incident_id is not None and not reply.error:
            self.current = reply.incident_id
        self.replies.append(reply)
        self.pump()
        return render(reply)

    def pump(self) -> int:
        for worker in self.workers:
            worker.tick()
        return self.sender.tick()
