"""The HTTP side of ``serve``: one ASGI app for every endpoint of design.md.

Routes from capabilities (Slack, webhooks, export) are added by their
extensions through ``bot.routes``.  Handlers call the synchronous domain in a
thread pool; every error becomes a 4xx with a sentence, never a 5xx page with
a traceback.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.exc import InterfaceError, OperationalError
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from bot.compose.app.api_auth import ApiTokenMiddleware
from bot.compose.app.bot import Bot
from bot.compose.app.metrics import RequestCounter, render_metrics
from bot.core.config import secret
from bot.domain.export import redactor_for
from bot.domain.export.redact import Redactor
from bot.core.errors import IncidentBotError, NotFound, UserError
from bot.domain.incidents import acks, editing, fleet
from bot.core.store.refs import ref_of
from bot.domain.slo.clocks import clocks
from bot.core.plugins import Extra

log = logging.getLogger(__name__)

REDACTOR: Extra[Redactor] = Extra("redactor", "bot.compose.app.http")  # built on first use



def error_response(exc: Exception) -> JSONResponse:
    if isinstance(exc, UserError):
        return JSONResponse({"error": exc.message}, status_code=exc.http_status)
    if isinstance(exc, IncidentBotError):
        return JSONResponse({"error": exc.message}, status_code=503)
    if isinstance(exc, (OperationalError, InterfaceError)) or getattr(exc, "connection_invalidated", False):
        # the database is down or restarting: 503 is what senders (Alertmanager, Slack) retry
        log.warning("HTTP handler: database unavailable (%s)", type(exc).__name__)
        return JSONResponse({"error": "the database is unavailable; retry shortly"}, status_code=503)
    ref = uuid.uuid4().hex[:8]
    log.exception("HTTP handler failed (ref %s)", ref)
    return JSONResponse({"error": f"internal error, logged as {ref}"}, status_code=500)


def redactor(bot: Bot) -> Redactor:
    """The export's redactor, built once per bot: the API shows free text exactly as the export does."""
    found = bot.services.extras.find(REDACTOR)
    if found is None:
        found = redactor_for(bot.settings)
        bot.services.extras.put(REDACTOR, found)
    return found


def incidents_json(bot: Bot, incidents: Sequence[Any]) -> list[dict[str, Any]]:
    """Incidents for ``/api/incidents*``; titles and causes are free text, so they are redacted.

    A page is read in two queries (the links, the clusters of all its incidents)
    from one read snapshot, not five per incident: at 10,000 open incidents
    the list must answer while the watcher writes a mass deadline.
    """
    now = bot.clock.now()
    ids = [i.id for i in incidents]
    with bot.db.reading() as session:
        links = editing.related_many(session, ids)
        clusters = fleet.clusters_of(session, ids)
    return [_incident_json(bot, i, links.get(i.id, {}), fleet.facts_of(i, clusters.get(i.id, []), bot.settings.budgets,
                                                                       now), now)
            for i in incidents]


def _incident_json(bot: Bot, incident: Any, links: dict[int, str], cluster_facts: list[fleet.ClusterFacts],
                   now: datetime) -> dict[str, Any]:
    doc = {
        "id": ref_of(incident.id),
        "title": incident.title,
        "state": incident.state,
        "severity": incident.severity,
        "cluster": incident.cluster,
        "component": incident.component,
        "root_cause": incident.root_cause,
        "started_at": incident.started_at.isoformat() if incident.started_at else None,
        "detected_at": incident.detected_at.isoformat() if incident.detected_at else None,
        "notified_at": incident.notified_at.isoformat() if incident.notified_at else None,
        "diagnosed_at": incident.diagnosed_at.isoformat() if incident.diagnosed_at else None,
        "mitigated_at": incident.mitigated_at.isoformat() if incident.mitigated_at else None,
        "resolved_at": incident.resolved_at.isoformat() if incident.resolved_at else None,
        "acknowledged_at": incident.acknowledged_at.isoformat() if incident.acknowledged_at else None,
        "acknowledged_by": incident.acknowledged_by,
        "time_to_acknowledge_seconds": acks.time_to_acknowledge(incident),
        "links": [{"incident": ref_of(other), "relation": kind} for other, kind in links.items()],
        "clusters": [c.as_json() for c in cluster_facts],
        "clocks": [
            {"stage": c.stage, "verdict": c.verdict, "budget_seconds": c.budget_seconds,
             "elapsed_seconds": round(c.elapsed_seconds, 3), "deadline": c.deadline.isoformat()}
            for c in clocks(incident, bot.settings.budgets, now)
        ],
    }
    return redactor(bot).value(doc, check=True)  # one scan of its JSON text; walked only when it may hold one


def build_http_app(bot: Bot) -> Starlette:
    async def healthz(request: Request) -> Response:
        return PlainTextResponse("ok")

    async def readyz(request: Request) -> Response:
        try:
            await run_in_threadpool(bot.db.check)
        except IncidentBotError as exc:
            return PlainTextResponse(f"database: {exc.message}", status_code=503)
        return PlainTextResponse("ok")

    async def metrics(request: Request) -> Response:
        text = await run_in_threadpool(render_metrics, bot)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")

    async def list_incidents(request: Request) -> Response:
        include_closed = request.query_params.get("all") in {"1", "true", "yes"}
        try:
            def page() -> list[dict[str, Any]]:  # off the event loop: its reads must not stall other requests
                return incidents_json(bot, bot.services.incidents.list(include_closed=include_closed))

            return JSONResponse({"incidents": await run_in_threadpool(page)})
        except Exception as exc:
            return error_response(exc)

    async def get_incident(request: Request) -> Response:
        try:
            def one() -> dict[str, Any]:
                return incidents_json(bot, [bot.services.incidents.get(request.path_params["ref"])])[0]

            return JSONResponse(await run_in_threadpool(one))
        except Exception as exc:
            return error_response(exc)

    async def not_found(request: Request, exc: Exception) -> Response:
        return error_response(NotFound(f"no such endpoint: {request.method} {request.url.path}"))

    routes = [
        Route("/healthz", healthz),
        Route("/readyz", readyz),
        Route("/metrics", metrics),
        Route("/api/incidents", list_incidents),
        Route("/api/incidents/{ref}", get_incident),
        *bot.routes,
    ]
    api_access = Middleware(ApiTokenMiddleware, token=secret(bot.settings.api_token))
    return Starlette(routes=routes, exception_handlers={404: not_found}, middleware=[Middleware(RequestCounter), api_access])
