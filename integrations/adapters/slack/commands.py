"""What the Slack listeners do, kept apart from bolt so that it reads as the bot's behaviour.

A listener's request becomes a chat context (who, where, which incident that channel or thread
belongs to) and a command line; the answer is queued in the outbox (ephemeral when only the
caller needs it), so a Slack outage delays answers but loses none.
"""

from __future__ import annotations

from collections.abc import Callable

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.messages import Reply
from bot.core.store import outbox
from bot.core.store.messages import SlackReply
from integrations.adapters.slack import homes
from integrations.adapters.slack.blockkit import message_of
from integrations.adapters.slack.identity import Directory

REPLY_CHANNEL = "slack"  # the outbox channel of answers to people (chat messages use "chat")


class SlackCommands:
    """What the listeners do, kept apart from bolt so that it reads as the bot's behaviour."""

    def __init__(self, dispatcher: Dispatcher, directory: Directory, wake: Callable[[], None] | None = None) -> None:
        self.dispatcher = dispatcher
        self.services = dispatcher.services
        self.directory = directory
        self.wake = wake or (lambda: None)

    def context(self, user_id: str, channel: str | None, *, thread_ts: str | None = None,
                message_ts: str | None = None) -> ChatContext:
        incident = homes.incident_at(self.services.db, channel, thread_ts=thread_ts, message_ts=message_ts)
        return ChatContext(user=self.directory.name_of(user_id), adapter="slack", channel=channel, incident_id=incident)

    def run(self, ctx: ChatContext, line: str) -> Reply:
        return self.dispatcher.handle(ctx, self.directory.command_text(line))

    def answer(self, reply: Reply, *, user_id: str, channel: str | None, response_url: str | None = None,
               thread_ts: str | None = None) -> None:
        """Queue the answer: ephemeral when only the caller needs it, in the channel otherwise."""
        message = message_of(reply, self.directory.id_of)
        with self.services.db.session() as session:
            answer = SlackReply(message=message, ephemeral=reply.ephemeral or reply.error, user=user_id,
                                channel=channel, response_url=response_url, thread_ts=thread_ts)
            outbox.enqueue(session, answer, channel=REPLY_CHANNEL, now=self.services.clock.now())
        self.wake()  # the person is waiting: deliver now, not at the senders' next tick
