"""After the incident: overdue reminders, action items mirrored to GitHub or Jira, and GET /api/report.

Listed in ``EXTENSIONS`` (bot/compose/app/bot.py).  The tracker is chosen by the
``tickets`` settings; a half-configured tracker stops the bot at start with
one line naming the missing setting, never at the first sync.
"""

from __future__ import annotations

import logging
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.core.config import Settings, secret
from bot.core.config.surfaces import TicketSettings
from bot.core.errors import ConfigError
from bot.domain.export import report_render
from bot.domain.incidents import action_items, tracking
from integrations.clients.tickets import Tracker
from bot.core.plugins import Extra, Host

log = logging.getLogger(__name__)

TRACKER: Extra[Tracker | None] = Extra("tracker", "bot.compose.app.followups")  # None: no tracker configured



def build_tracker(tickets: TicketSettings) -> Tracker | None:
    """The configured tracker client, or None (``tickets.kind: none``)."""
    if tickets.kind == "none":
        return None
    token = secret(tickets.token)
    if not token:
        raise ConfigError(f"bad setting tickets.token: required when tickets.kind is {tickets.kind} "
                          "(INCIDENT_BOT_TICKETS__TOKEN)")
    if tickets.kind == "github":
        from integrations.clients.tickets.github import GitHubIssues

        if not tickets.repo:
            raise ConfigError("bad setting tickets.repo: required for GitHub, as OWNER/NAME")
        return GitHubIssues(tickets.repo, token, api_url=tickets.url or "https://api.github.com")
    from integrations.clients.tickets.jira import JiraIssues

    if not tickets.url or not tickets.project:
        missing = "tickets.url" if not tickets.url else "tickets.project"
        raise ConfigError(f"bad setting {missing}: required for Jira (the site URL and the project key)")
    return JiraIssues(tickets.url, tickets.project, token, email=tickets.email, issue_type=tickets.issue_type)


class FollowUps:
    """The worker: one tick reminds overdue items (once a day each) and syncs the tracker."""

    name = "follow-ups"

    def __init__(self, db: Any, settings: Settings, clock: Any, tracker: Tracker | None, holder: str = "bot") -> None:
        self.db, self.settings, self.clock, self.tracker, self.holder = db, settings, clock, tracker, holder

    @property
    def interval(self) -> float:
        return self.settings.tickets.sync_interval_seconds

    def tick(self) -> dict[str, int]:
        now = self.clock.now()
        done: dict[str, int] = {"reminded": 0}
        if self.settings.tickets.remind_overdue:
            with self.db.session() as session:
                done["reminded"] = len(action_items.remind_overdue(session, now.date(), now))
        if self.tracker is not None:
            result = tracking.sync(self.db, self.tracker, self.clock, labels=self.settings.tickets.labels,
                                   public_url=self.settings.export.public_url, holder=self.holder,
                                   lease_seconds=max(60.0, self.interval))
            done.update(created=result.created, closed=result.closed, failed=result.failed)
        return done


def report_route(bot: Any) -> Route:
    async def endpoint(request: Request) -> Response:
        # http imports bot.compose.app.bot; import late to keep load order free
        from bot.compose.app.http import error_response

        q = request.query_params

        def run() -> tuple[str, str, dict[str, Any]]:
            with bot.db.session() as session:
                return report_render.build_and_render(session, bot.settings, now=bot.clock.now(),
                                                      since=q.get("since", "30d"), cluster=q.get("cluster"),
                                                      fmt=q.get("format", "json"))
        try:
            content, media_type, _ = await run_in_threadpool(run)
        except Exception as exc:
            return error_response(exc)
        return Response(content, media_type=media_type)

    return Route("/api/report", endpoint, methods=["GET"])


def register(bot: Host) -> None:
    tracker = build_tracker(bot.settings.tickets)
    bot.services.extras.put(TRACKER, tracker)
    bot.workers.append(FollowUps(bot.db, bot.settings, bot.clock, tracker))
    bot.routes.append(report_route(bot))
