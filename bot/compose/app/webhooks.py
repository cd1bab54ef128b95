"""``POST /webhooks/alertmanager``: the thin HTTP layer over ``bot.domain.incidents.alerts``.

It authenticates (``Authorization: Bearer <INCIDENT_BOT_WEBHOOK_TOKEN>``,
compared in constant time), decodes JSON, validates the payload (400 naming
the field), and hands it to the ingestor in a worker thread: one transaction
per delivery.  When a delivery changed something, it wakes the outbox senders
so the announcement leaves at once instead of at the next polling tick.

Status codes follow Alertmanager's retry rules: 2xx done, 4xx never retried
(bad token, bad payload), 503 (database busy or down) retried.
"""

from __future__ import annotations

import dataclasses
import hmac
import json
import logging
from datetime import datetime
from typing import Any

from prometheus_client.core import GaugeMetricFamily, Metric
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.compose.app.bot import Bot
from bot.compose.app.http import error_response
from bot.chat.delivery import OutboxSender
from bot.core.config import secret
from bot.core.errors import BadInput
from bot.domain.incidents.alert_payload import parse_notification
from bot.domain.incidents.alerts import AlertIngestor, IngestResult, alert_counts
from bot.core.plugins import Extra

log = logging.getLogger(__name__)
PATH = "/webhooks/alertmanager"
MAX_BODY_BYTES = 32 * 1024 * 1024  # 10,000 alerts of ~1 kB fit comfortably

ALERTS: Extra[AlertIngestor] = Extra("alerts", "bot.compose.app.webhooks")  # the guard ingests its trips through it too



def authorized(header: str | None, token: str | None) -> bool:
    """``Bearer <token>`` with the configured token; constant-time; no token configured -> closed."""
    if not token or not header:
        return False
    scheme, _, presented = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(presented.strip().encode(), token.encode())


def wake_senders(bot: Bot) -> None:
    """Outbox senders deliver now rather than at their next tick.

    Only senders: other workers have a ``wake`` event for their own reasons
    (diagnosis when an incident is announced, a change watcher on demand), and
    waking them on every delivery made each one re-run its queries once per
    request during a storm (a third of serve's CPU in the ingest benchmark).
    """
    for worker in bot.workers:
        if isinstance(worker, OutboxSender):
            worker.wake.set()


def make_endpoint(bot: Bot) -> Any:
    ingestor = bot.services.extras.need(ALERTS)

    def handle(body: bytes, arrived_at: datetime) -> IngestResult:
        if len(body) > MAX_BODY_BYTES:
            raise BadInput(f"the payload is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted.", field="(body)")
        try:
            decoded = json.loads(body)
        except ValueError as exc:
            raise BadInput(f"malformed Alertmanager webhook: (body): not JSON ({exc}).", field="(body)") from None
        except RecursionError:  # JSON nested thousands deep: no Alertmanager sends that
            raise BadInput("malformed Alertmanager webhook: (body): JSON nested too deeply.", field="(body)") from None
        result = ingestor.ingest(dataclasses.replace(parse_notification(decoded), arrived_at=arrived_at))
        if result.changed:
            wake_senders(bot)  # right after the commit, before the response goes out
        return result

    async def alertmanager_webhook(request: Request) -> Response:
        arrived_at = bot.clock.now()  # the alerts' received_at: what follows is the bot's own time
        if not authorized(request.headers.get("authorization"), secret(bot.settings.webhook_token)):
            reason = ("the webhook is closed: INCIDENT_BOT_WEBHOOK_TOKEN is not set"
                      if bot.settings.webhook_token is None
                      else "missing or wrong bearer token (Authorization: Bearer <INCIDENT_BOT_WEBHOOK_TOKEN>)")
            return JSONResponse({"error": reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            body = await request.body()
            # decoding a storm's 5,000-alert delivery takes CPU: off the event loop, like the ingestion
            result = await run_in_threadpool(handle, body, arrived_at)
        except Exception as exc:
            return error_response(exc)
        return JSONResponse(result.as_json())

    return alertmanager_webhook


def alert_metrics(bot: Bot) -> list[Metric]:
    family = GaugeMetricFamily("incident_bot_alerts", "Alerts received from Alertmanager, by current status.",
                               labels=["status"])
    for status, count in sorted(alert_counts(bot.db).items()):
        family.add_metric([status], count)
    return [family]


def register(bot: Bot) -> None:
    bot.services.extras.put(ALERTS, AlertIngestor(bot.db, bot.settings, bot.clock, bot.services.incidents))
    bot.routes.append(Route(PATH, make_endpoint(bot), methods=["POST"]))
    bot.metric_sources.append(alert_metrics)
