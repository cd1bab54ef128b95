"""The pager webhook: pages from the ``pager`` outbox channel, POSTed as JSON with httpx.

Configured with ``oncall.pager_webhook_url`` (``INCIDENT_BOT_ONCALL__PAGER_WEBHOOK_URL``):
a PagerDuty/Opsgenie bridge, an SMS gateway, anything that takes one JSON
document per page::

    {"user": "alice", "incident": "INC-7", "reason": "INC-7 etcd: ... (sev1)",
     "level": 0, "source": "incident-bot", "dedupe_key": "page:7:primary"}

2xx is delivered (and, for a page that notifies, stamps ``notified_at``);
429 and 5xx are retried after ``Retry-After`` or with backoff; a refused
connection or timeout is retried; another 4xx is retried a few times and
then marked failed (the message stays in the outbox for inspection).
"""

from __future__ import annotations

from typing import Any

import httpx

from bot.compose.app.bot import Bot
from bot.chat.delivery import OutboxSender, RetryLater
from bot.chat.surface import Surface, handle, not_here
from bot.domain.slo.paging import PAGER_CHANNEL
from bot.core.store.messages import IncidentCard, Message, Notice, Page, PageClose, SlackReply, TimelinePost
from bot.core.store.models import OutboxMessage
from bot.core.store.refs import ref_of
from bot.core.plugins import Extra

GIVE_UP_AFTER = 8

PAGER: Extra[OutboxSender] = Extra("pager", "bot.compose.app.pager")  # the generic pager webhook's sender



def _retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


class PagerDeliverer:
    name = "pager"

    def __init__(self, url: str, *, timeout: float = 5.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url
        self.client = httpx.Client(timeout=timeout, transport=transport, trust_env=False)
        self.surface = Surface("pager webhook", [
            handle(Page, self._page),
            not_here(PageClose, "the webhook has no way to close a page"),
            *(not_here(kind, "a chat message; the webhook only pages")
              for kind in (IncidentCard, TimelinePost, Notice, SlackReply)),
        ])

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        return self.surface.deliver(row, message)

    def _page(self, row: OutboxMessage, page: Page) -> dict[str, Any]:
        body = {"user": page.user, "incident": ref_of(row.incident_id) if row.incident_id else None,
                "reason": page.reason, "level": page.level, "source": "incident-bot",
                "dedupe_key": row.dedupe_key or f"outbox:{row.id}"}
        try:
            response = self.client.post(self.url, json=body)
        except httpx.HTTPError as exc:
            raise RetryLater(f"pager webhook unreachable: {exc.__class__.__name__}: {exc}") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"pager webhook answered HTTP {response.status_code}", _retry_after(response))
        if response.status_code >= 300:
            raise RetryLater(f"pager webhook refused the page: HTTP {response.status_code} {response.text[:200]}")
        return {"status": response.status_code}

    def close(self) -> None:
        self.client.close()


def register(bot: Bot) -> None:
    url = bot.settings.oncall.pager_webhook_url
    if not url:
        return
    deliverer = PagerDeliverer(url)
    sender = OutboxSender(bot.services, deliverer, channel=PAGER_CHANNEL, give_up_after=GIVE_UP_AFTER)
    sender.name = "pager-sender"
    bot.workers.append(sender)
    bot.services.extras.put(PAGER, sender)
    bot.on_stop.append(deliverer.close)
