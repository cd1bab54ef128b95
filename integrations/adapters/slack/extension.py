"""Plugging Slack into the bot: ``POST /slack/events``, the outbox senders, Socket Mode.

Active only when Slack is configured: ``SLACK_BOT_TOKEN`` plus
``SLACK_SIGNING_SECRET`` (HTTP mode) or ``SLACK_APP_TOKEN`` (Socket Mode).
Everything is built here, when the bot is composed, never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltRequest
from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.chat.delivery import OutboxSender
from bot.chat.dispatcher import Dispatcher
from bot.core.config import secret
from bot.core.errors import ConfigError
from bot.core.store.ratelimits import RateLimits
from integrations.adapters.slack.app import build_slack_app
from integrations.adapters.slack.commands import REPLY_CHANNEL
from integrations.adapters.slack import dedupe, inbound
from integrations.adapters.slack.dedupe import Pruner
from integrations.adapters.slack.deliverer import SlackDeliverer
from integrations.adapters.slack import people
from integrations.adapters.slack.identity import Directory
from integrations.adapters.slack.web import SlackWeb
from bot.chat.plugin import ChatHost
from bot.core.plugins import Extra

log = logging.getLogger(__name__)
PATH = "/slack/events"
CHAT_SENDERS = 4  # chat senders per process
CHAT_BATCH = 20  # messages one chat sender claims at a time


class SlackRuntime:
    """The pieces of the Slack adapter of one bot process."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        settings = dispatcher.services.settings.slack
        if settings.home == "thread" and not settings.incidents_channel:
            raise ConfigError("slack.incidents_channel: required when slack.home is `thread` (the channel to thread in)")
        self.settings = settings
        self.signing = secret(settings.signing_secret) or None
        self.dispatcher = dispatcher
        self.web = SlackWeb(settings, limits=RateLimits(dispatcher.services.db, dispatcher.services.clock))
        self.directory = Directory(settings, people=dispatcher.services.settings.oncall.people,
                                   by_email=people.by_email(self.web), email_of_id=people.email_of_id(self.web),
                                   now=dispatcher.services.clock.now)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="slack-listener")
        self.app: App = build_slack_app(dispatcher, self.directory, self.web, wake=self.wake, executor=self.executor)
        self.deliverer = SlackDeliverer(dispatcher, self.web, self.directory)
        # Several chat senders, each claiming a small batch: the claims keep each incident's messages
        # in order and never give one message to two senders (as between replicas), while the cards of
        # a storm's new incidents go out side by side instead of one after another behind a single
        # sender's Slack and database round trips.
        self.senders = [*(OutboxSender(dispatcher.services, self.deliverer, channel="chat", batch=CHAT_BATCH)
                          for _ in range(CHAT_SENDERS)),
                        OutboxSender(dispatcher.services, self.deliverer, channel=REPLY_CHANNEL)]
        for n, sender in enumerate(self.senders):
            sender.name = f"slack-outbox-{sender.channel}" + (f"-{n + 1}" if sender.channel == "chat" else "")
            sender.worker = f"{sender.worker}:{sender.name}"  # each its own claims
            sender.drains = True  # type: ignore[attr-defined]  # the runner ticks again at once while it finds work

    def close(self) -> None:
        """Let listeners still running finish on their own; take no new ones."""
        self.executor.shutdown(wait=False, cancel_futures=True)
        self.web.close()

    def wake(self) -> None:
        """Senders with a ``wake`` event (see bot/compose/app/workers.py) deliver at once."""
        for sender in self.senders:
            event = getattr(sender, "wake", None)
            if event is not None:
                event.set()

    async def endpoint(self, request: Request) -> Response:
        """Slack's one Request URL: commands, interactivity and events.

        Size, signature and replay are checked before anything is parsed (``inbound``): too
        big 413, bad or stale 401, a replay 200 with nothing run; a signed body that is not
        Slack's shape gets 400, never a 500.
        """
        try:
            body = await inbound.read_capped(request.headers.get("content-length"), request.stream())
        except inbound.BodyTooLarge:
            return JSONResponse({"error": f"body: larger than {inbound.MAX_BODY_BYTES} bytes; "
                                          "Slack never sends that much"}, status_code=413)
        signature = request.headers.get("x-slack-signature", "")
        if self.signing is None or not inbound.signature_valid(
                self.signing, body, request.headers.get("x-slack-request-timestamp"), signature):
            return JSONResponse({"error": "invalid request: X-Slack-Signature and X-Slack-Request-Timestamp must "
                                          "be Slack's v0 signature of this body, made within 5 minutes"},
                                status_code=401)
        services = self.dispatcher.services
        try:
            first = await run_in_threadpool(dedupe.first_time, services.db, inbound.replay_key(signature),
                                            source="slack", now=services.clock.now())
        except Exception as exc:  # the database is away: Slack retries a 503
            log.warning("Slack request refused for now: the replay check failed (%s)", type(exc).__name__)
            return JSONResponse({"error": "the database is unavailable; retry shortly"}, status_code=503)
        if not first:
            log.info("a replayed Slack request (same signature) was acknowledged and not run again")
            return Response(status_code=200)
        try:
            text = body.decode("utf-8")
            bolt_request = BoltRequest(body=text, query=request.url.query, headers=dict(request.headers))
        except Exception as exc:  # malformed form data or JSON (a list, too deep), even though signed
            return JSONResponse({"error": f"body: not a Slack request body ({type(exc).__name__})"}, status_code=400)
        try:
            answer = await run_in_threadpool(self.app.dispatch, bolt_request)
        except Exception as exc:  # a signed body bolt cannot route (a payload without its type, ...)
            log.info("a signed Slack request could not be dispatched: %s", type(exc).__name__)
            return JSONResponse({"error": f"body: not a Slack request bolt can route ({type(exc).__name__})"},
                                status_code=400)
        if answer.status >= 500:  # bolt's own failure page: say it was the request's shape, without internals
            return JSONResponse({"error": "body: not a Slack request this app handles"}, status_code=400)
        return Response(content=answer.body, status_code=answer.status,
                        headers=answer.first_headers_without_set_cookie())

    def start_socket_mode(self) -> Callable[[], None]:
        """Connect out over Socket Mode (``apps.connections.open`` with SLACK_APP_TOKEN); returns the stopper."""
        from slack_bolt.adapter.socket_mode import SocketModeHandler

        token = secret(self.settings.app_token)
        if not token:
            raise ConfigError("SLACK_APP_TOKEN: required for --socket-mode (an xapp- app-level token)")
        handler = SocketModeHandler(self.app, app_token=token)
        handler.connect()
        log.info("Slack Socket Mode connected")
        return handler.close


def configured(bot: Any) -> bool:
    slack = bot.settings.slack
    return bool(slack.bot_token and (slack.signing_secret or slack.app_token))


SLACK: Extra[SlackRuntime] = Extra("slack", "integrations.adapters.slack.extension")  # serve asks whether Slack is on


def register(bot: ChatHost) -> None:
    if not configured(bot):
        return
    runtime = SlackRuntime(bot.dispatcher)
    bot.services.extras.put(SLACK, runtime)
    if bot.settings.slack.signing_secret:
        bot.routes.append(Route(PATH, runtime.endpoint, methods=["POST"]))
    bot.workers.extend(runtime.senders)
    bot.workers.append(Pruner(bot.db, bot.clock))
    bot.on_stop.append(runtime.close)


def start_socket_mode(bot: Any) -> Callable[[], None]:
    """For ``serve --socket-mode``: connect, and return how to disconnect."""
    runtime = bot.services.extras.find(SLACK)
    if runtime is None:
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_APP_TOKEN: both are required for --socket-mode")
    return runtime.start_socket_mode()
