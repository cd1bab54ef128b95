"""Paging services: PagerDuty and Opsgenie pages out, their acknowledgements in, re-paging.

- Outbox channels ``pagerduty`` and ``opsgenie`` (queued by bot/domain/slo/paging.py)
  are drained by their own senders: a ``page`` becomes an Events API v2
  ``trigger`` / an Opsgenie alert for the paged person, ``page.close`` a
  ``resolve`` / a close.  A delivered page that ``notifies`` stamps
  ``notified_at``, like any other channel.
- ``POST /webhooks/pagerduty`` takes webhooks v3; the ``X-PagerDuty-Signature``
  must match one of ``paging.pagerduty.webhook_secrets``.
  ``incident.acknowledged`` for an incident of ours (``incident_key`` =
  ``INC-<id>``) stamps ``acknowledged_at``.
- ``POST /webhooks/opsgenie`` takes the Webhook integration's alert actions
  with ``Authorization: Bearer <paging.opsgenie.webhook_token>``; ``Acknowledge``
  of alias ``INC-<id>`` stamps ``acknowledged_at``.
- The re-pager (bot/domain/slo/repage.py) runs always: chat pages are repeated too.

Both endpoints are closed (401) until their secret is configured, answer 400
naming the field for a payload they cannot read, and 2xx for events they do
not act on (so the sender does not retry them).
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.compose.app.bot import Bot
from bot.compose.app.http import error_response
from bot.compose.app.webhooks import authorized, wake_senders
from bot.chat.delivery import OutboxSender, RetryLater
from bot.chat.surface import Surface, handle, not_here
from bot.core.config import Settings, secret
from bot.core.errors import BadInput, NotFound
from bot.domain.incidents import acks
from bot.domain.slo import paging
from bot.domain.slo.repage import RePager
from bot.core.store.messages import IncidentCard, Message, Notice, Page, PageClose, SlackReply, TimelinePost
from bot.core.store.models import Incident, OutboxMessage
from integrations.clients.opsgenie import webhooks as opsgenie_webhooks
from integrations.clients.opsgenie.alerts import OpsgenieAlerts
from integrations.clients.pagerduty import webhooks as pagerduty_webhooks
from integrations.clients.pagerduty.events import Event, PagerDutyEvents
from integrations.clients.pagers import PagerError, PagerRetry
from bot.core.store.refs import ref_of
from bot.core.plugins import Extra

GIVE_UP_AFTER = 8
KEY_RE = re.compile(r"^INC-(\d+)$")
PD_SEVERITY = {"sev1": "critical", "sev2": "error", "sev3": "warning"}
OG_PRIORITY = {"sev1": "P1", "sev2": "P2", "sev3": "P3"}
MAX_BODY_BYTES = 1024 * 1024


def email_of(settings: Settings, user: str) -> str | None:
    """A person's e-mail: ``oncall.people`` (or the name itself when it is an address)."""
    return settings.oncall.people.get(user) or (user if "@" in user else None)


def person_of_email(settings: Settings, email: str | None) -> str | None:
    if not email:
        return None
    for name, address in settings.oncall.people.items():
        if address.lower() == email.lower():
            return name
    return email


class _PagerDeliverer(ABC):
    """Shared by both services: load the incident, call the service, sort its failures for the outbox."""

    name = "pager-service"

    def __init__(self, bot: Bot) -> None:
        self.bot = bot
        self.surface = Surface(self.name, [
            handle(Page, self._page),
            handle(PageClose, self._close),
            *(not_here(kind, "a chat message; paging services get pages and their closing")
              for kind in (IncidentCard, TimelinePost, Notice, SlackReply)),
        ])

    def incident(self, row: OutboxMessage) -> Incident | None:
        if row.incident_id is None:
            return None
        try:
            return self.bot.services.incidents.get(row.incident_id)
        except NotFound:
            return None

    def deliver(self, row: OutboxMessage, message: Message) -> dict[str, Any]:
        try:
            return self.surface.deliver(row, message)
        except PagerRetry as exc:
            raise RetryLater(str(exc), exc.retry_after) from None
        except PagerError as exc:  # refused: retried a few times (a key being fixed), then left failed
            raise RetryLater(str(exc)) from None

    def _page(self, row: OutboxMessage, page: Page) -> dict[str, Any]:
        incident = self.incident(row)
        return {"skipped": "no incident"} if incident is None else self.page(page, incident)

    def _close(self, row: OutboxMessage, close: PageClose) -> dict[str, Any]:
        incident = self.incident(row)
        return {"skipped": "no incident"} if incident is None else self.close(close, incident)

    @abstractmethod
    def page(self, page: Page, incident: Incident) -> dict[str, Any]:
        """Deliver a page to the service."""

    @abstractmethod
    def close(self, close: PageClose, incident: Incident) -> dict[str, Any]:
        """Tell the service the incident is over."""


class PagerDutyDeliverer(_PagerDeliverer):
    name = "pagerduty"

    def __init__(self, bot: Bot, client: PagerDutyEvents) -> None:
        super().__init__(bot)
        self.client = client

    def page(self, page: Page, incident: Incident) -> dict[str, Any]:
        return self.client.send(Event(
            "trigger", paging.pager_key(incident.id), summary=page.reason or incident.title,
            severity=PD_SEVERITY.get(incident.severity, "critical"), component=incident.component,
            group=incident.cluster, details={"incident": ref_of(incident.id), "paged": page.user,
                                             "level": page.level, "state": incident.state}))

    def close(self, close: PageClose, incident: Incident) -> dict[str, Any]:
        return self.client.send(Event("resolve", paging.pager_key(incident.id)))


class OpsgenieDeliverer(_PagerDeliverer):
    name = "opsgenie"

    def __init__(self, bot: Bot, client: OpsgenieAlerts) -> None:
        super().__init__(bot)
        self.client = client

    def page(self, page: Page, incident: Incident) -> dict[str, Any]:
        user = page.user
        email = email_of(self.bot.settings, user)
        result = self.client.create(
            alias=paging.pager_key(incident.id), message=page.reason or incident.title,
            responders=[email] if email else [], priority=OG_PRIORITY.get(incident.severity, "P1"),
            entity=incident.cluster, tags=["incident-bot", incident.severity],
            details={"incident": ref_of(incident.id), "paged": user, "level": str(page.level)})
        return {**result, **({} if email else {"note": f"no e-mail for {user}; add it to oncall.people"})}

    def close(self, close: PageClose, incident: Incident) -> dict[str, Any]:
        return self.client.close_alert(paging.pager_key(incident.id), note=close.reason)


def acknowledge(bot: Bot, key: str | None, *, user: str, via: str) -> dict[str, Any]:
    """Stamp the acknowledgement of the incident a pager key names (an unknown key is reported, not an error)."""
    match = KEY_RE.match(key or "")
    if not match:
        return {"ignored": f"{key!r} is not an incident of this bot"}
    incidents = bot.services.incidents
    try:
        with incidents.transaction(int(match.group(1))) as (session, row):
            stamped = acks.stamp(session, row, user=user, via=via, now=bot.clock.now())
    except NotFound:
        return {"ignored": f"there is no incident {key}"}
    if stamped:
        wake_senders(bot)
    return {"incident": key, "acknowledged": stamped}


def _json_body(body: bytes) -> Any:
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"the payload is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted.", field="(body)")
    try:
        return json.loads(body)
    except ValueError as exc:
        raise BadInput(f"(body): not JSON ({exc}).", field="(body)") from None


def pagerduty_endpoint(bot: Bot) -> Any:
    def handle(body: bytes) -> dict[str, Any]:
        try:
            event = pagerduty_webhooks.parse(_json_body(body))
        except ValueError as exc:
            raise BadInput(f"malformed PagerDuty webhook: {exc}.", field=str(exc).split(":")[0]) from None
        if event.event_type != "incident.acknowledged":
            return {"ignored": event.event_type}
        return acknowledge(bot, event.incident_key, user=event.agent or "someone", via="pagerduty")

    async def endpoint(request: Request) -> Response:
        secrets = [s.get_secret_value() for s in bot.settings.paging.pagerduty.webhook_secrets]
        body = await request.body()
        if not secrets:
            return JSONResponse({"error": "the webhook is closed: paging.pagerduty.webhook_secrets is not set"},
                                status_code=401)
        if not pagerduty_webhooks.verify(body, request.headers.get(pagerduty_webhooks.SIGNATURE_HEADER), secrets):
            return JSONResponse({"error": "missing or wrong X-PagerDuty-Signature (v1=<hex HMAC-SHA256 of the body>)"},
                                status_code=401)
        try:
            return JSONResponse(await run_in_threadpool(handle, body))
        except Exception as exc:
            return error_response(exc)

    return endpoint


def opsgenie_endpoint(bot: Bot) -> Any:
    def handle(body: bytes) -> dict[str, Any]:
        try:
            action = opsgenie_webhooks.parse(_json_body(body))
        except ValueError as exc:
            raise BadInput(f"malformed Opsgenie webhook: {exc}.", field=str(exc).split(":")[0]) from None
        if action.action != "Acknowledge":
            return {"ignored": action.action}
        user = person_of_email(bot.settings, action.username) or "someone"
        return acknowledge(bot, action.alias, user=user, via="opsgenie")

    async def endpoint(request: Request) -> Response:
        token = secret(bot.settings.paging.opsgenie.webhook_token)
        if not authorized(request.headers.get("authorization"), token):
            reason = ("the webhook is closed: paging.opsgenie.webhook_token is not set" if token is None
                      else "missing or wrong bearer token (Authorization: Bearer <paging.opsgenie.webhook_token>)")
            return JSONResponse({"error": reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            return JSONResponse(await run_in_threadpool(handle, await request.body()))
        except Exception as exc:
            return error_response(exc)

    return endpoint


def _sender(bot: Bot, deliverer: Any, channel: str) -> OutboxSender:
    sender = OutboxSender(bot.services, deliverer, channel=channel, give_up_after=GIVE_UP_AFTER)
    sender.name = f"{channel}-sender"
    bot.workers.append(sender)
    bot.services.extras.put(Extra[OutboxSender](channel, "bot.compose.app.paging"), sender)  # one per paging service
    return sender


def register(bot: Bot) -> None:
    config = bot.settings.paging
    routing_key = secret(config.pagerduty.routing_key)
    if routing_key:
        client = PagerDutyEvents(routing_key, config.pagerduty.events_url, timeout=config.pagerduty.timeout_seconds)
        _sender(bot, PagerDutyDeliverer(bot, client), paging.PAGERDUTY_CHANNEL)
        bot.on_stop.append(client.close)
    api_key = secret(config.opsgenie.api_key)
    if api_key:
        alerts = OpsgenieAlerts(api_key, config.opsgenie.api_url, timeout=config.opsgenie.timeout_seconds)
        _sender(bot, OpsgenieDeliverer(bot, alerts), paging.OPSGENIE_CHANNEL)
        bot.on_stop.append(alerts.close)
    bot.routes.append(Route("/webhooks/pagerduty", pagerduty_endpoint(bot), methods=["POST"]))
    bot.routes.append(Route("/webhooks/opsgenie", opsgenie_endpoint(bot), methods=["POST"]))
    bot.workers.append(RePager(bot.db, bot.settings, bot.clock))
