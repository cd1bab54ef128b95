"""The pager webhook: a new incident pages the on-call commander by JSON POST, retried when refused."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest
from sqlalchemy import select

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.pager import PagerDeliverer
from bot.chat.delivery import OutboxSender
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.store.models import Incident, OutboxMessage
from tests.support.components import WebhookRecorder


@pytest.fixture
def pager_bot(settings: Settings, clock: FakeClock, webhook_recorder: WebhookRecorder) -> Iterator[Bot]:
    settings.oncall.pager_webhook_url = webhook_recorder.url + "/page"
    b = build_bot(settings, clock=clock, extensions=["bot.compose.app.webhooks", "bot.compose.app.pager"])
    yield b
    b.close()


def sender(bot: Bot) -> OutboxSender:
    return bot.services.extras["pager"]


def test_a_new_incident_pages_the_on_call_by_webhook_and_that_delivery_is_the_notification(
        pager_bot: Bot, webhook_recorder: WebhookRecorder, clock: FakeClock) -> None:
    chat = MemoryChat(pager_bot.dispatcher)
    chat.deliverer.refuse = True  # chat is down: the pager alone must notify
    chat.say("carol", "/incident declare etcd quorum lost --severity sev1")
    clock.advance(0.2)
    assert sender(pager_bot).tick() == 1
    (request,) = webhook_recorder.requests
    assert request["path"] == "/page"
    assert request["body"] == {"user": "alice", "incident": "INC-1", "reason": "INC-1 etcd quorum lost (sev1)",
                               "level": 0, "source": "incident-bot", "dedupe_key": "page:1:primary"}
    incident = pager_bot.services.incidents.get("INC-1")
    assert incident.state == "notified" and incident.notified_at == clock.now()
    assert sender(pager_bot).tick() == 0, "a page is sent once"


def test_a_refused_page_is_retried_after_the_servers_retry_after(pager_bot: Bot, clock: FakeClock) -> None:
    answers = iter([httpx.Response(503, headers={"Retry-After": "7"}), httpx.Response(202)])
    seen: list[dict] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(json.loads(request.content))
        return next(answers)

    sender(pager_bot).deliverer = PagerDeliverer("http://pager.invalid/page", transport=httpx.MockTransport(handler))
    pager_bot.services.incidents.declare("apiserver down", actor="carol", severity="sev1")
    assert sender(pager_bot).tick() == 0
    clock.advance(5)
    assert sender(pager_bot).tick() == 0 and len(seen) == 1, "not before Retry-After"
    clock.advance(3)
    assert sender(pager_bot).tick() == 1 and len(seen) == 2
    with pager_bot.db.session() as s:
        (page,) = s.execute(select(OutboxMessage).where(OutboxMessage.channel == "pager")).scalars()
        assert (page.status, page.attempts, page.last_error) == ("sent", 2, "pager webhook answered HTTP 503")
        assert s.execute(select(Incident.notified_at)).scalar_one() == clock.now()


def test_without_a_pager_url_pages_go_to_chat_only(bot: Bot) -> None:
    bot.services.incidents.declare("etcd slow", actor="carol")
    with bot.db.session() as s:
        channels = [m.channel for m in s.execute(select(OutboxMessage).where(OutboxMessage.kind == "page")).scalars()]
    assert channels == ["chat"]
    assert "pager" not in bot.services.extras
