"""``GET /metrics``: the bot's own state in the Prometheus text format, built with prometheus_client.

Two kinds of series, on purpose:

* **state**, collected from the database on each scrape (incidents, breaches,
  the outbox, the 1-5-10 stage durations): every replica reports the same
  truth and nothing is lost on a restart.  Capabilities add theirs through
  ``bot.metric_sources`` (functions returning metric families);
* **this process**: build info, CPU/memory/file descriptors, and the requests
  this replica answered (webhook and Slack deliveries by outcome).  Those
  live in prometheus_client's process-wide registry; sum them over replicas.

Stage durations are one histogram, ``incident_bot_stage_seconds`` (labels
``stage``, ``severity``, ``cluster``), whose buckets include the default
budgets (60, 300, 600 s) so "within budget" is one bucket read.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Info, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.registry import Collector
from sqlalchemy import func, select
from sqlmodel import col
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot.domain.slo.clocks import STAGES
from bot.core.store.models import Incident, OutboxMessage, TimelineEvent
from bot.core.plugins import Extra

STAGE_BUCKETS = (10.0, 30.0, 60.0, 120.0, 180.0, 300.0, 450.0, 600.0, 900.0, 1800.0, 3600.0)
STAGE_NAMES = {attr: label for attr, label in STAGES.values()}  # notified_at -> notified
BREACH_STAGE = {stage: label for stage, (_attr, label) in STAGES.items()}  # notify -> notified

# -- this process ------------------------------------------------------------------------------
BUILD = Info("incident_bot_build", "Version of the running incident-bot and its Python.")
WEBHOOK_REQUESTS = Counter("incident_bot_webhook_requests", "Alertmanager webhook deliveries answered, by outcome.",
                           ["outcome"])
SLACK_EVENTS = Counter("incident_bot_slack_events", "Slack requests (commands, buttons, events) answered, by outcome.",
                       ["outcome"])
COUNTED_PATHS = {"/webhooks/alertmanager": WEBHOOK_REQUESTS, "/slack/events": SLACK_EVENTS}

METRICS: Extra[CollectorRegistry] = Extra("metrics", "bot.compose.app.metrics")  # the state registry, made on first use



def outcome_of(status: int) -> str:
    """HTTP status -> outcome: what an operator asks ("are senders being refused?")."""
    if status < 400:
        return "accepted"
    if status in (401, 403):
        return "unauthorized"
    return "rejected" if status < 500 else "error"


class RequestCounter:
    """ASGI middleware: counts webhook and Slack requests by the outcome of the answer."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        counter = COUNTED_PATHS.get(scope["path"]) if scope["type"] == "http" else None
        if counter is None:
            await self.app(scope, receive, send)
            return
        status = 500

        async def observe(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, observe)
        finally:
            counter.labels(outcome=outcome_of(status)).inc()


def _build_info() -> None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        ours = version("incident-bot")
    except PackageNotFoundError:
        ours = "unknown"
    BUILD.info({"version": ours, "python": ".".join(map(str, sys.version_info[:3]))})


_build_info()


# -- state, from the database ------------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    """SQLite hands timestamps back naive; they were stored as UTC."""
    return value.replace(tzinfo=timezone.utc) if value.tzinfo is None else value


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (_aware(end) - _aware(start)).total_seconds())


def stage_histogram(rows: Iterable[Any]) -> HistogramMetricFamily:
    """Seconds from T0 to each stage reached, one observation per incident and stage."""
    observed: dict[tuple[str, str, str], list[float]] = defaultdict(list)
    for row in rows:
        for attr, stage in STAGE_NAMES.items():
            seconds = _seconds(row.started_at, getattr(row, attr))
            if seconds is not None:
                observed[(stage, str(row.severity), str(row.cluster))].append(seconds)
    family = HistogramMetricFamily("incident_bot_stage_seconds",
                                   "Seconds from the fault (T0) to notified, diagnosed and mitigated.",
                                   labels=["stage", "severity", "cluster"])
    for labels, values in sorted(observed.items()):
        buckets = [(repr(b), sum(1 for v in values if v <= b)) for b in STAGE_BUCKETS] + [("+Inf", len(values))]
        family.add_metric(list(labels), buckets, sum_value=sum(values))
    return family


class StateCollector(Collector):
    """Everything read from the database, plus the capabilities' ``metric_sources``."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot

    def collect(self) -> Iterator[Metric]:
        bot = self.bot
        now = bot.clock.now()
        with bot.db.session() as session:
            incidents = GaugeMetricFamily("incident_bot_incidents", "Incidents by state and severity.",
                                          labels=["state", "severity"])
            for state, severity, count in session.execute(
                    select(col(Incident.state), col(Incident.severity), func.count())
                    .group_by(col(Incident.state), col(Incident.severity))):
                incidents.add_metric([str(state), str(severity)], count)
            yield incidents

            breaches = CounterMetricFamily("incident_bot_slo_breaches",
                                           "Recorded 1-5-10 breaches (each stage of each incident at most once).",
                                           labels=["stage", "severity", "cluster"])
            # every stage of every (severity, cluster) that has incidents starts at 0, so that the first
            # breach is an increase() an alert sees, not a series appearing at 1
            counts: dict[tuple[str, str, str], int] = {
                (stage, str(severity), str(cluster)): 0 for severity, cluster in
                session.execute(select(col(Incident.severity), col(Incident.cluster)).distinct())
                for stage in BREACH_STAGE.values()}
            for key, severity, cluster, count in session.execute(
                    select(col(TimelineEvent.dedupe_key), col(Incident.severity), col(Incident.cluster), func.count())
                    .join(Incident, col(Incident.id) == col(TimelineEvent.incident_id))
                    .where(col(TimelineEvent.kind) == "slo.breach")
                    .group_by(col(TimelineEvent.dedupe_key), col(Incident.severity), col(Incident.cluster))):
                stage = str(key or "").rpartition(":")[2]
                counts[(BREACH_STAGE.get(stage, stage or "unknown"), str(severity), str(cluster))] = count
            for labels, count in sorted(counts.items()):
                breaches.add_metric(list(labels), count)
            yield breaches

            yield stage_histogram(session.execute(select(
                col(Incident.severity), col(Incident.cluster), col(Incident.started_at),
                col(Incident.notified_at), col(Incident.diagnosed_at), col(Incident.mitigated_at))))

            outbox = GaugeMetricFamily("incident_bot_outbox_messages", "Outbox messages by channel and status.",
                                       labels=["channel", "status"])
            for channel, status, count in session.execute(
                    select(col(OutboxMessage.channel), col(OutboxMessage.status), func.count())
                    .group_by(col(OutboxMessage.channel), col(OutboxMessage.status))):
                outbox.add_metric([str(channel), str(status)], count)
            yield outbox

            backlog = GaugeMetricFamily("incident_bot_outbox_backlog", "Messages waiting to be delivered, by channel.",
                                        labels=["channel"])
            oldest = GaugeMetricFamily("incident_bot_outbox_oldest_pending_age_seconds",
                                       "Age of the oldest message waiting to be delivered (0 when none waits).",
                                       labels=["channel"])
            for channel, count, first in session.execute(
                    select(col(OutboxMessage.channel), func.count(), func.min(col(OutboxMessage.created_at)))
                    .where(col(OutboxMessage.status) == "pending").group_by(col(OutboxMessage.channel))):
                backlog.add_metric([str(channel)], count)
                oldest.add_metric([str(channel)], _seconds(first, now) or 0.0)
            yield backlog
            yield oldest
        for source in bot.metric_sources:
            yield from source(bot)


def registry_of(bot: Any) -> CollectorRegistry:
    """The bot's state registry, made on first use (one per bot: tests run several in one process)."""
    registry = bot.services.extras.find(METRICS)
    if registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(StateCollector(bot))
        bot.services.extras.put(METRICS, registry)
    return registry


def render_metrics(bot: Any) -> str:
    """The exposition text: this process's series, then the state read from the database."""
    return (generate_latest(REGISTRY) + generate_latest(registry_of(bot))).decode()
