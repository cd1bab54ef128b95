"""Paging a person: the chat page, and the pager webhook when one is configured.

Every page (the on-call commander of a new incident, an escalation after a
breached budget, people an alert rule names) goes through ``page`` so that it
reaches every configured channel: the chat adapter (a mention in the
incident's home) and, with ``oncall.pager_webhook_url``, the ``pager``
outbox channel drained by its own sender (a phone does not read Slack at
3 a.m.).  Each channel is queued in the caller's transaction and delivered
independently; the first page that gets through stamps ``notified_at`` when
it ``notifies``.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.config import Settings
from bot.store import outbox

CHAT_CHANNEL = "chat"
PAGER_CHANNEL = "pager"


def channels(settings: Settings) -> tuple[str, ...]:
    return (CHAT_CHANNEL, PAGER_CHANNEL) if settings.oncall.pager_webhook_url else (CHAT_CHANNEL,)


def page(session: Session, settings: Settings, *, incident_id: int, user: str, reason: str, now: datetime,
         dedupe_key: str, level: int = 0, notifies: bool = False) -> None:
    """Queue a page of ``user`` on every configured channel (idempotent per channel with ``dedupe_key``)."""
    payload = {"user": user, "reason": reason, "level": level, **({"notifies": True} if notifies else {})}
    for channel in channels(settings):
        outbox.enqueue(session, kind="page", incident_id=incident_id, payload=dict(payload), now=now,
                       channel=channel, dedupe_key=dedupe_key)
