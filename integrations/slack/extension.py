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
from slack_sdk.signature import SignatureVerifier
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.chat.delivery import OutboxSender
from bot.chat.dispatcher import Dispatcher
from bot.config import secret
from bot.errors import ConfigError
from integrations.slack.app import REPLY_CHANNEL, build_slack_app
from integrations.slack.dedupe import Pruner
from integrations.slack.deliverer import SlackDeliverer
from integrations.slack.identity import Directory
from integrations.slack.web import SlackWeb

log = logging.getLogger(__name__)
PATH = "/slack/events"


class SlackRuntime:
    """The pieces of the Slack adapter of one bot process."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        settings = dispatcher.services.settings.slack
        if settings.home == "thread" and not settings.incidents_channel:
            raise ConfigError("slack.incidents_channel: required when slack.home is `thread` (the channel to thread in)")
        self.settings = settings
        signing = secret(settings.signing_secret)
        self.verifier = SignatureVerifier(signing) if signing else None
        self.directory = Directory(settings)
        self.web = SlackWeb(settings)
        self.executor = ThreadPoolExecutor(max_workers=16, thread_name_prefix="slack-listener")
        self.app: App = build_slack_app(dispatcher, self.directory, self.web, wake=self.wake, executor=self.executor)
        self.deliverer = SlackDeliverer(dispatcher, self.web, self.directory)
        self.senders = [OutboxSender(dispatcher.services, self.deliverer, channel="chat"),
                        OutboxSender(dispatcher.services, self.deliverer, channel=REPLY_CHANNEL)]
        for sender in self.senders:
            sender.name = f"slack-outbox-{sender.channel}"  # type: ignore[misc]

    def close(self) -> None:
        """Let listeners still running finish on their own; take no new ones."""
        self.executor.shutdown(wait=False, cancel_futures=True)

    def wake(self) -> None:
        """Senders with a ``wake`` event (see bot/app/workers.py) deliver at once."""
        for sender in self.senders:
            event = getattr(sender, "wake", None)
            if event is not None:
                event.set()

    async def endpoint(self, request: Request) -> Response:
        """Slack's one Request URL: commands, interactivity and events.

        The signature and timestamp are checked before anything is parsed (bad or stale: 401);
        a signed body that is not Slack's shape gets 400, never a 500.
        """
        body = await request.body()
        text = body.decode("utf-8", errors="replace")
        if self.verifier is not None and not self.verifier.is_valid(
                text, request.headers.get("x-slack-request-timestamp", "0"),
                request.headers.get("x-slack-signature", "")):
            return JSONResponse({"error": "invalid request"}, status_code=401)
        try:
            bolt_request = BoltRequest(body=text, query=request.url.query, headers=dict(request.headers))
        except Exception as exc:  # malformed form data or JSON, even though signed
            return JSONResponse({"error": f"not a Slack request body ({type(exc).__name__})"}, status_code=400)
        answer = await run_in_threadpool(self.app.dispatch, bolt_request)
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


def register(bot: Any) -> None:
    if not configured(bot):
        return
    runtime = SlackRuntime(bot.dispatcher)
    bot.services.extras["slack"] = runtime
    if bot.settings.slack.signing_secret:
        bot.routes.append(Route(PATH, runtime.endpoint, methods=["POST"]))
    bot.workers.extend(runtime.senders)
    bot.workers.append(Pruner(bot.db, bot.clock))
    bot.on_stop.append(runtime.close)


def start_socket_mode(bot: Any) -> Callable[[], None]:
    """For ``serve --socket-mode``: connect, and return how to disconnect."""
    runtime: SlackRuntime | None = bot.services.extras.get("slack")
    if runtime is None:
        raise ConfigError("SLACK_BOT_TOKEN and SLACK_APP_TOKEN: both are required for --socket-mode")
    return runtime.start_socket_mode()
