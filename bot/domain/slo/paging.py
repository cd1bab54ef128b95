"""Paging a person: the chat page, and the pager webhook when one is configured.

Every page (the on-call commander of a new incident, an escalation after a
breached budget, people an alert rule names) goes through ``page`` so that it
reaches every configured channel: the chat adapter (a mention in the
incident's home) and, with ``oncall.pager_webhook_url``, the ``pager``
outbox channel drained by its own sender (a phone does not read Slack at
3 a.m.).  Each channel is queued in the caller's transaction and delivered
independently; the first page that gets through stamps ``notified_at`` when
it ``notifies``.

With ``paging.pagerduty.routing_key`` a page is also a PagerDuty Events API
v2 trigger, with ``paging.opsgenie.api_key`` an Opsgenie alert (their own
outbox channels, drained by bot/compose/app/paging.py); ``close`` resolves them when
the incident is over.  Both are keyed by the incident (``dedup_key`` /
``alias`` ``INC-<id>``), so repeated pages add to one pager incident.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session

from bot.core.config import Settings
from bot.core.store import outbox
from bot.core.store.messages import Page, PageClose
from bot.core.store.refs import ref_of

CHAT_CHANNEL = "chat"
PAGER_CHANNEL = "pager"
PAGERDUTY_CHANNEL = "pagerduty"
OPSGENIE_CHANNEL = "opsgenie"


def channels(settings: Settings) -> tuple[str, ...]:
    return (CHAT_CHANNEL, *([PAGER_CHANNEL] if settings.oncall.pager_webhook_url else []), *pager_channels(settings))


def pager_channels(settings: Settings) -> tuple[str, ...]:
    """The paging services configured besides chat and the generic webhook (they keep an incident open)."""
    found = []
    if settings.paging.pagerduty.routing_key is not None:
        found.append(PAGERDUTY_CHANNEL)
    if settings.paging.opsgenie.api_key is not None:
        found.append(OPSGENIE_CHANNEL)
    return tuple(found)


def pager_key(incident_id: int) -> str:
    """The PagerDuty ``dedup_key`` and Opsgenie ``alias`` of an incident: one pager incident per incident."""
    return ref_of(incident_id)


def close(session: Session, settings: Settings, *, incident_id: int, now: datetime, reason: str) -> None:
    """The incident is over: resolve its PagerDuty incident and close its Opsgenie alert."""
    for channel in pager_channels(settings):
        outbox.enqueue(session, PageClose(reason=reason), incident_id=incident_id, now=now,
                       channel=channel, dedupe_key=f"close:{incident_id}:{now.isoformat()}")


def page(session: Session, settings: Settings, *, incident_id: int, user: str, reason: str, now: datetime,
         dedupe_key: str, level: int = 0, notifies: bool = False) -> None:
    """Queue a page of ``user`` on every configured channel (idempotent per channel with ``dedupe_key``)."""
    message = Page(user=user, reason=reason, level=level, notifies=notifies)
    for channel in channels(settings):
        outbox.enqueue(session, message, incident_id=incident_id, now=now, channel=channel, dedupe_key=dedupe_key)
