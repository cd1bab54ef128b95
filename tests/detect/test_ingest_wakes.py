"""What a stored delivery wakes: the outbox senders (the notice leaves now), nothing else.

Other workers keep a ``wake`` event for their own triggers (diagnosis when an
incident is announced, a change watcher on demand).  Woken by every delivery,
each re-ran its queries once per request during a storm.
"""

from __future__ import annotations

import threading
from typing import Any

from starlette.testclient import TestClient

from bot.chat.delivery import OutboxSender
from bot.compose.app.bot import Bot
from bot.core.store.messages import Message
from bot.core.store.models import OutboxMessage
from tests.conftest import T0
from tests.detect.payloads import alert, webhook


class Recorder:
    name = "recorder"

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        return {}


class OtherWorker:
    """A worker with a wake event of its own (like diagnosis): only its own trigger sets it."""

    name = "other"
    interval = 60.0

    def __init__(self) -> None:
        self.wake = threading.Event()

    def tick(self) -> int:
        return 0


def test_a_stored_delivery_wakes_the_senders_and_no_other_worker(client: TestClient, bot: Bot) -> None:
    sender = OutboxSender(bot.services, Recorder())
    other = OtherWorker()
    bot.workers += [sender, other]
    answer = client.post("/webhooks/alertmanager", json=webhook(alert("etcdNoLeader", T0, instance="m1", job="etcd")))
    assert answer.json()["opened"] == ["INC-1"]
    assert sender.wake.is_set()
    assert not other.wake.is_set()

    sender.wake.clear()
    joined = client.post("/webhooks/alertmanager", json=webhook(alert("etcdNoLeader", T0, instance="m2", job="etcd")))
    assert joined.json()["joined"] == {"INC-1": 1}
    assert sender.wake.is_set()  # the coalesced "alerts: N firing" notice leaves now
    assert not other.wake.is_set()
