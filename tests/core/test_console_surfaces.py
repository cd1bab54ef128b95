"""Each chat surface gets its own deliveries: a console never takes Slack's messages, and the
bot's own messages reach the console without anyone typing."""

from __future__ import annotations

import io
import threading

from bot.compose.app.bot import Bot
from bot.chat.console import Console
from bot.chat.delivery import OutboxSender
from bot.chat.memory import RecordingDeliverer
from bot.core.clock import FakeClock
from bot.core.store.models import OutboxMessage


class Screen(io.StringIO):
    """A terminal that says when a given text has appeared on it."""

    def __init__(self) -> None:
        super().__init__()
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            n = super().write(text)
            self.changed.notify_all()
            return n

    def wait_for(self, text: str, timeout: float = 20.0) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: text in self.getvalue(), timeout)


def test_a_console_on_a_database_slack_delivers_from_shows_messages_and_takes_none(bot: Bot) -> None:
    slack = RecordingDeliverer(name="slack")
    slack_sender = OutboxSender(bot.services, slack)  # serve's Slack sender, on the same database
    bot.services.incidents.declare("earlier incident", actor="alice")
    slack_sender.tick()  # Slack has been delivering this database's chat messages
    screen = Screen()
    console = Console(bot.dispatcher, user="bob", out=screen)
    assert console.follows

    incident = bot.services.incidents.declare("etcd quorum lost", actor="alertmanager")  # an alert, elsewhere
    console.pump()
    assert "📣" in screen.getvalue() and "etcd quorum lost" in screen.getvalue()  # bob sees the announcement
    with bot.db.session() as s:  # ... and nothing was taken from Slack
        assert s.query(OutboxMessage).filter(OutboxMessage.incident_id == incident.id,
                                             OutboxMessage.status == "sent").count() == 0
    assert bot.services.incidents.get(incident.id).notified_at is None  # not "notified via console"

    slack_sender.tick()  # Slack still gets every message of the new incident, and stamps the notification
    assert any(m.incident_id == incident.id for m in slack.delivered)
    assert bot.services.incidents.get(incident.id).notified_at is not None


def test_on_its_own_database_the_console_is_the_chat_and_delivers(bot: Bot) -> None:
    screen = Screen()
    console = Console(bot.dispatcher, user="alice", out=screen)
    assert not console.follows
    console.handle_line("/incident declare apiserver 5xx")
    assert bot.services.incidents.get(1).notified_at is not None


def test_the_bots_own_messages_reach_the_console_while_nobody_types(bot: Bot, clock: FakeClock) -> None:
    screen = Screen()
    console = Console(bot.dispatcher, user="alice", out=screen, workers=bot.workers)
    console.handle_line("/incident declare etcd slow --severity sev1")
    before = screen.getvalue()
    stop = console.start_background(0.01)
    try:
        clock.advance(4 * 60 + 10)  # past 80% of the 5-minute diagnosis budget
        assert screen.wait_for("warning:", timeout=30), screen.getvalue()[len(before):]
    finally:
        stop()
    assert "warning:" not in before and "warning:" in screen.getvalue()[len(before):]  # without a typed line
