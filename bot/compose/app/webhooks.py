"""``POST /webhooks/alertmanager``: the thin HTTP layer over ``bot.domain.incidents.alerts``.

It authenticates (``Authorization: Bearer <INCIDENT_BOT_WEBHOOK_TOKEN>``,
compared in constant time) and queues the body for one writer thread, which
decodes and validates it (400 naming the field) and stores every delivery
queued meanwhile in one transaction (``BatchWriter``).  When a delivery changed something, it wakes the outbox senders
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

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.compose.app.bot import Bot
from bot.compose.app.http import error_response
from bot.chat.delivery import OutboxSender
from bot.core.config import secret
from bot.core.errors import BadInput
from bot.core.store.batch_writer import BatchWriter
from bot.domain.incidents.alert_payload import Notification, parse_notification
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


def decode(body: bytes, arrived_at: datetime) -> Notification:
    """The delivery, validated (``BadInput`` names the field), stamped with its arrival."""
    if len(body) > MAX_BODY_BYTES:
        raise BadInput(f"the payload is {len(body)} bytes; at most {MAX_BODY_BYTES} are accepted.", field="(body)")
    try:
        decoded = json.loads(body)
    except ValueError as exc:
        raise BadInput(f"malformed Alertmanager webhook: (body): not JSON ({exc}).", field="(body)") from None
    except RecursionError:  # JSON nested thousands deep: no Alertmanager sends that
        raise BadInput("malformed Alertmanager webhook: (body): JSON nested too deeply.", field="(body)") from None
    return dataclasses.replace(parse_notification(decoded), arrived_at=arrived_at)


Delivery = tuple[bytes, datetime]  # the body as received, when it arrived
Outcome = IngestResult | BadInput


def make_writer(bot: Bot) -> BatchWriter[Delivery, Outcome]:
    """The webhook's writer thread: it decodes and stores every delivery queued since its last transaction.

    Decoding happens there too: a storm's 5,000-alert delivery takes CPU, and
    the event loop must keep answering. A delivery that does not decode is
    answered with its ``BadInput`` and never enters the transaction.
    """
    ingestor = bot.services.extras.need(ALERTS)

    def store(deliveries: list[Delivery]) -> list[Outcome]:
        decoded: list[Notification | BadInput] = []
        for body, arrived_at in deliveries:
            try:
                decoded.append(decode(body, arrived_at))
            except BadInput as exc:
                decoded.append(exc)
        good = [d for d in decoded if isinstance(d, Notification)]
        stored = iter(ingestor.ingest_many(good) if good else [])
        outcomes: list[Outcome] = [next(stored) if isinstance(d, Notification) else d for d in decoded]
        if any(isinstance(o, IngestResult) and o.changed for o in outcomes):
            wake_senders(bot)  # right after the commit, before the answers go out
        return outcomes

    writer: BatchWriter[Delivery, Outcome] = BatchWriter(
        store, name="alert-ingest", weight=lambda d: 1 + len(d[0]) // 1_000, max_weight=5_000)
    bot.on_stop.append(writer.stop)
    return writer


def make_endpoint(bot: Bot, writer: BatchWriter[Delivery, Outcome]) -> Any:
    async def alertmanager_webhook(request: Request) -> Response:
        arrived_at = bot.clock.now()  # the alerts' received_at: what follows is the bot's own time
        if not authorized(request.headers.get("authorization"), secret(bot.settings.webhook_token)):
            reason = ("the webhook is closed: INCIDENT_BOT_WEBHOOK_TOKEN is not set"
                      if bot.settings.webhook_token is None
                      else "missing or wrong bearer token (Authorization: Bearer <INCIDENT_BOT_WEBHOOK_TOKEN>)")
            return JSONResponse({"error": reason}, status_code=401, headers={"WWW-Authenticate": "Bearer"})
        try:
            outcome = await writer.submit((await request.body(), arrived_at))
            if isinstance(outcome, BadInput):
                raise outcome
        except Exception as exc:
            return error_response(exc)
        return JSONResponse(outcome.as_json())

    return alertmanager_webhook


def alert_metrics(bot: Bot) -> list[Metric]:
    family = GaugeMetricFamily("incident_bot_alerts", "Alerts received from Alertmanager, by current status.",
                               labels=["status"])
    for status, count in sorted(alert_counts(bot.db).items()):
        family.add_metric([status], count)
    return [family]


def writer_metrics(writer: BatchWriter[Delivery, Outcome]) -> list[Metric]:
    """How many deliveries shared how many transactions: the batch size a storm reaches."""
    deliveries = CounterMetricFamily("incident_bot_alert_deliveries", "Alertmanager deliveries stored by this "
                                     "replica's webhook writer.")
    deliveries.add_metric([], writer.requests)
    batches = CounterMetricFamily("incident_bot_alert_delivery_batches", "Transactions the webhook writer stored "
                                  "them in (deliveries queued meanwhile share one).")
    batches.add_metric([], writer.batches)
    return [deliveries, batches]


def register(bot: Bot) -> None:
    bot.services.extras.put(ALERTS, AlertIngestor(bot.db, bot.settings, bot.clock, bot.services.incidents))
    writer = make_writer(bot)
    bot.routes.append(Route(PATH, make_endpoint(bot, writer), methods=["POST"]))
    bot.metric_sources.append(alert_metrics)
    bot.metric_sources.append(lambda _bot: writer_metrics(writer))
