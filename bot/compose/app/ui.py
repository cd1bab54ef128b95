"""The web board under ``/ui/``: open incidents on the 1-5-10 clock, incident pages, the 1-5-10 report.

Served by ``serve`` from the same process and database: server-rendered
Jinja2 templates, one small hand-written script per page (``static/``), no
front-end build and nothing from a CDN.  Read-only by design: every action
stays in chat, where it is approved and recorded.  Everything under ``/ui``
is behind ``UiAuth`` (the API token, or a proxy's identity header), including
the static files; incident texts go through the export's redactor.

Routes: ``/ui/`` (board), ``/ui/board/cards`` (the cards, polled by the board),
``/ui/incidents/{ref}`` and ``…/export?format=md|json|html``, ``/ui/report``.
"""

from __future__ import annotations

import threading
import time
from functools import lru_cache
from pathlib import Path
from typing import Any

import jinja2
from sqlalchemy import func, select
from sqlmodel import col
from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import HTMLResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from bot.compose.app.ui_auth import UiAuth
from bot.compose.app.ui_views import board
from bot.core.config import secret
from bot.core.errors import BadInput
from bot.domain.export import (
    document,
    export_incident,
    redactor_for,
    render,
    report_render,
    timefmt,
)
from bot.core.store.states import ACTIVE_STATES
from bot.core.store.refs import parse_ref, ref_of
from bot.core.store.models import Incident, TimelineEvent
from bot.core.plugins import Extra, Host

HERE = Path(__file__).parent
BASE = "/ui"
FULL_REFRESH_SECONDS = 10
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; "
                               "base-uri 'none'",
    "X-Content-Type-Options": "nosniff", "Referrer-Policy": "no-referrer", "Cache-Control": "no-store",
}


@lru_cache(maxsize=1)
def environment() -> jinja2.Environment:
    """The board's templates, plus the export's (the report body is shared), with the export's filters."""
    export_env = render.environment("html")
    assert export_env.loader is not None  # the export's environment loads its templates from its package
    env = jinja2.Environment(
        loader=jinja2.ChoiceLoader([jinja2.FileSystemLoader(str(HERE / "templates")), export_env.loader]),
        autoescape=True, undefined=jinja2.StrictUndefined, trim_blocks=True, lstrip_blocks=True,
    )
    env.filters.update(export_env.filters)
    return env


def page(name: str, status: int = 200, **context: Any) -> HTMLResponse:
    html = environment().get_template(name).render(base=BASE, **context)
    return HTMLResponse(html, status_code=status, headers=SECURITY_HEADERS)


class WebBoard:
    """The views; one per bot.  ``render_*`` are synchronous (the benchmark times them directly)."""

    def __init__(self, bot: Any) -> None:
        self.bot = bot
        self.redactor = redactor_for(bot.settings)
        self._cached: tuple[str, str] | None = None  # (version, cards html): every screen in the room shares one render
        self._lock = threading.Lock()

    def cards_context(self) -> dict[str, Any]:
        now = self.bot.clock.now()
        with self.bot.db.session() as session:
            cards = board(session, self.bot.settings, now, self.redactor)
        return {"cards": cards, "now_ms": int(now.timestamp() * 1000)}

    def render_board(self) -> str:
        return environment().get_template("ui/board.html.j2").render(
            base=BASE, page="board", refresh_ms=int(self.bot.settings.ui.refresh_seconds * 1000), **self.cards_context())

    def version(self) -> str:
        """Changes whenever the board would: every change to an incident writes a timeline event.

        Also every ``FULL_REFRESH_SECONDS``, so verdicts the script computes on
        its own are re-checked against the server's now and then.
        """
        with self.bot.db.session() as session:
            last_event, = session.execute(select(func.max(col(TimelineEvent.id)))).one()
            open_count, = session.execute(select(func.count()).select_from(Incident).where(
                col(Incident.state).in_(sorted(ACTIVE_STATES)))).one()
        slot = int(self.bot.clock.now().timestamp() // FULL_REFRESH_SECONDS)
        return f'W/"{last_event or 0}-{open_count}-{slot}"'

    def render_cards(self) -> str:
        return environment().get_template("ui/_cards.html.j2").render(base=BASE, **self.cards_context())

    def cards_for(self, version: str) -> str:
        """The cards of ``version``, rendered once however many boards ask (the clocks run in the browser)."""
        with self._lock:
            if self._cached is not None and self._cached[0] == version:
                return self._cached[1]
        html = self.render_cards()
        with self._lock:
            self._cached = (version, html)
        return html

    def incident_doc(self, ref: str) -> dict[str, Any]:
        incident_id = parse_ref(ref)
        tz_name, tz = timefmt.zone(self.bot.settings.export.default_timezone)
        with self.bot.db.session() as session:
            incident = session.get(Incident, incident_id)
            if incident is None:
                from bot.core.errors import NotFound

                raise NotFound(f"there is no incident {ref_of(incident_id)}.")
            return document.build(session, incident, self.bot.settings,
                                  document.Options(tz_name, tz, as_of=self.bot.clock.now()), self.redactor)

    def render_report(self, since: str, cluster: str | None) -> str:
        with self.bot.db.session() as session:
            _, _, tree = report_render.build_and_render(session, self.bot.settings, now=self.bot.clock.now(),
                                                        since=since, cluster=cluster, fmt="json")
        return environment().get_template("ui/report.html.j2").render(
            base=BASE, page="report", report=tree, since=since, cluster=cluster)


def routes(ui: WebBoard) -> list[Any]:
    # http imports bot.compose.app.bot; import late to keep load order free
    from bot.compose.app.http import error_response

    def failed(exc: Exception) -> Response:
        """The API's answer for the error (4xx with a sentence, never a traceback), with the board's headers."""
        response = error_response(exc)
        response.headers.update(SECURITY_HEADERS)
        return response

    async def board_page(request: Request) -> Response:
        html = await run_in_threadpool(ui.render_board)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    async def cards(request: Request) -> Response:
        """The cards, or 304 when nothing changed since the board's last answer (a cheap poll twice a second)."""
        started = time.perf_counter()
        version = await run_in_threadpool(ui.version)
        if request.headers.get("if-none-match") == version:
            return Response(status_code=304, headers={**SECURITY_HEADERS, "ETag": version})
        html = await run_in_threadpool(ui.cards_for, version)
        headers = {**SECURITY_HEADERS, "ETag": version, "X-Board-Now": str(int(ui.bot.clock.now().timestamp() * 1000)),
                   "Server-Timing": f"render;dur={(time.perf_counter() - started) * 1000:.1f}"}
        return HTMLResponse(html, headers=headers)

    async def incident(request: Request) -> Response:
        ref = request.path_params["ref"]
        try:
            doc = await run_in_threadpool(ui.incident_doc, ref)
        except Exception as exc:
            return failed(exc)
        sources = sorted({e["source"] for e in doc["timeline"]})
        return page("ui/incident.html.j2", doc=doc, sources=sources, page="incident")

    async def export(request: Request) -> Response:
        try:
            result = await run_in_threadpool(export_incident, ui.bot.db, ui.bot.settings, request.path_params["ref"],
                                             fmt=request.query_params.get("format", "html"))
        except Exception as exc:
            return failed(exc)
        return Response(result.content, media_type=result.media_type, headers={
            **SECURITY_HEADERS, "Content-Disposition": f'inline; filename="{result.filename}"'})

    async def report_page(request: Request) -> Response:
        since = request.query_params.get("since") or "30d"
        cluster = request.query_params.get("cluster") or None
        try:
            html = await run_in_threadpool(ui.render_report, since, cluster)
        except BadInput as exc:
            return failed(exc)
        return HTMLResponse(html, headers=SECURITY_HEADERS)

    return [
        Route("/", board_page), Route("/board/cards", cards),
        Route("/incidents/{ref}", incident), Route("/incidents/{ref}/export", export),
        Route("/report", report_page),
        Mount("/static", app=StaticFiles(directory=str(HERE / "static")), name="static"),
    ]


WEB_BOARD: Extra["WebBoard"] = Extra("web_board", "bot.compose.app.ui")


def build_ui_app(bot: Any) -> Starlette:
    ui = WebBoard(bot)
    bot.services.extras.put(WEB_BOARD, ui)
    auth = Middleware(UiAuth, token=secret(bot.settings.api_token), identity_header=bot.settings.ui.identity_header)
    return Starlette(routes=routes(ui), middleware=[auth])


def register(bot: Host) -> None:
    bot.routes.append(Mount(BASE, app=build_ui_app(bot)))
