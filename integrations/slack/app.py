"""The bolt app: Slack's requests in, the shared dispatcher's answers out.

Built by ``build_slack_app`` (never at import time, never touching the network:
``auth.test`` is asked lazily and its failure does not stop a command).  Every
listener acks first — Slack gives 3 seconds — and does the work afterwards on
bolt's listener threads; answers leave through the outbox like every other
Slack call, so a Slack outage delays them but loses none.  The one exception
is ``views.open``, which must use its trigger within 3 seconds.

The words are the console's: a slash command's text, a button press
(``/incident approve RUN-7`` as the presser) and a modal submission all become
a line for ``Dispatcher.handle``, so the same rules apply everywhere.
"""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App, BoltResponse
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.chat.dispatcher import ChatContext, Dispatcher
from bot.chat.messages import Reply
from bot.config import secret
from bot.store import outbox
from bot.store.messages import SlackReply
from integrations.slack import dedupe, homes
from integrations.slack.blockkit import message_of
from integrations.slack.identity import Directory
from integrations.slack.modal import CALLBACK_ID, SHORTCUT_ID, declare_view, submission_line, wants_modal
from integrations.slack.web import SlackWeb

log = logging.getLogger(__name__)

class _NotAWarning(logging.Filter):
    """bolt warns that SLACK_BOT_TOKEN is unused because we hand it a client; that is by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOG = logging.getLogger("integrations.slack.bolt")
BOLT_LOG.addFilter(_NotAWarning())
IDENTITY_RETRY_SECONDS = 60.0  # while Slack's API is away, ask who we are at most this often
REPLY_CHANNEL = "slack"  # the outbox channel of answers to people (chat messages use "chat")
PRESS_VERBS = {"run_approve": "approve", "run_reject": "reject"}


class SlackCommands:
    """What the listeners do, kept apart from bolt so that it reads as the bot's behaviour."""

    def __init__(self, dispatcher: Dispatcher, directory: Directory, wake: Callable[[], None] | None = None) -> None:
        self.dispatcher = dispatcher
        self.services = dispatcher.services
        self.directory = directory
        self.wake = wake or (lambda: None)

    def context(self, user_id: str, channel: str | None, *, thread_ts: str | None = None,
                message_ts: str | None = None) -> ChatContext:
        incident = homes.incident_at(self.services.db, channel, thread_ts=thread_ts, message_ts=message_ts)
        return ChatContext(user=self.directory.name_of(user_id), adapter="slack", channel=channel, incident_id=incident)

    def run(self, ctx: ChatContext, line: str) -> Reply:
        return self.dispatcher.handle(ctx, self.directory.command_text(line))

    def answer(self, reply: Reply, *, user_id: str, channel: str | None, response_url: str | None = None,
               thread_ts: str | None = None) -> None:
        """Queue the answer: ephemeral when only the caller needs it, in the channel otherwise."""
        message = message_of(reply, self.directory.id_of)
        with self.services.db.session() as session:
            answer = SlackReply(message=message, ephemeral=reply.ephemeral or reply.error, user=user_id,
                                channel=channel, response_url=response_url, thread_ts=thread_ts)
            outbox.enqueue(session, answer, channel=REPLY_CHANNEL, now=self.services.clock.now())
        self.wake()  # the person is waiting: deliver now, not at the senders' next tick


def build_slack_app(dispatcher: Dispatcher, directory: Directory, web: SlackWeb,
                    wake: Callable[[], None] | None = None, executor: ThreadPoolExecutor | None = None) -> App:
    """The bolt App, wired to the dispatcher; no network at construction.

    ``wake`` tells the outbox senders that something was queued for a person who waits.
    """
    settings = dispatcher.services.settings.slack
    commands = SlackCommands(dispatcher, directory, wake)
    services = dispatcher.services
    identity: dict[str, Any] = {}
    asked = [float("-inf")]  # when auth.test was last tried (monotonic seconds)
    quick = SlackWeb(settings, timeout=1)  # inside the 3 s before the ack: never wait long

    def authorize(enterprise_id: str | None, team_id: str | None, logger: logging.Logger) -> AuthorizeResult:
        if not identity and time.monotonic() - asked[0] > IDENTITY_RETRY_SECONDS:
            asked[0] = time.monotonic()
            try:
                identity.update(quick.call("auth.test"))
            except Exception as exc:  # Slack unreachable: still take commands (answers wait in the outbox)
                log.warning("auth.test failed (%s); continuing without the bot's identity", type(exc).__name__)
        return AuthorizeResult(enterprise_id=enterprise_id, team_id=team_id or identity.get("team_id"),
                               bot_token=secret(settings.bot_token), bot_user_id=identity.get("user_id"),
                               bot_id=identity.get("bot_id"))

    signing = secret(settings.signing_secret)
    app = App(
        client=WebClient(base_url=settings.api_url, timeout=int(max(1, settings.request_timeout_seconds)),
                         retry_handlers=[]),
        authorize=authorize,
        signing_secret=signing or "",
        request_verification_enabled=bool(signing),
        process_before_response=False,
        listener_executor=executor or ThreadPoolExecutor(max_workers=16, thread_name_prefix="slack-listener"),
        name="incident-bot",
        logger=BOLT_LOG,
    )

    @app.middleware
    def drop_redeliveries(body: dict[str, Any], next: Any) -> BoltResponse:  # noqa: A002 (bolt's name)
        """A retried event (same event_id) is acknowledged and not run again."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not dedupe.first_time(services.db, f"slack:event:{event_id}", source="slack",
                                              now=services.clock.now()):
            return BoltResponse(status=200, body="")
        return next()

    def open_modal(trigger_id: str, view: dict[str, Any], user_id: str, channel: str | None,
                   response_url: str | None) -> None:
        try:
            web.call("views.open", trigger_id=trigger_id, view=view)
        except Exception as exc:  # the trigger is valid 3 s only: say so rather than retry
            log.warning("views.open failed: %s", exc)
            commands.answer(Reply.failure("Could not open the declare form; type `/incident declare <title>`."),
                            user_id=user_id, channel=channel, response_url=response_url)

    @app.command("/incident")
    def on_command(ack: Any, body: dict[str, Any]) -> None:
        ack()
        user_id, channel = body.get("user_id", ""), body.get("channel_id")
        text = body.get("text") or ""
        prefill = wants_modal(text)
        if prefill is not None and body.get("trigger_id"):
            view = declare_view(severity=prefill.get("severity") or services.settings.alerting.default_severity,
                                cluster=prefill.get("cluster"), channel=channel)
            open_modal(body["trigger_id"], view, user_id, channel, body.get("response_url"))
            return
        ctx = commands.context(user_id, channel)
        reply = commands.run(ctx, text)
        commands.answer(reply, user_id=user_id, channel=channel, response_url=body.get("response_url"))

    def on_press(ack: Any, body: dict[str, Any], action: dict[str, Any]) -> None:
        ack()
        user_id = (body.get("user") or {}).get("id", "")
        container = body.get("container") or {}
        channel = container.get("channel_id") or (body.get("channel") or {}).get("id")
        verb = PRESS_VERBS[action["action_id"]]
        key = f"slack:press:{user_id}:{action['action_id']}:{action.get('value')}"
        if not dedupe.first_time(services.db, key, source="slack", now=services.clock.now(),
                                 window_seconds=settings.press_window_seconds):
            log.info("double click of %s by %s ignored", action["action_id"], user_id)
            return
        ctx = commands.context(user_id, channel, message_ts=container.get("message_ts"),
                               thread_ts=container.get("thread_ts"))
        run_id, _, plan = str(action.get("value", "")).partition(":")  # Approve carries the plan it showed
        line = f"{verb} RUN-{run_id}" + (f" --plan {plan}" if plan and verb == "approve" else "")
        reply = commands.run(ctx, line)
        commands.answer(reply, user_id=user_id, channel=channel, response_url=body.get("response_url"))

    app.action("run_approve")(on_press)
    app.action("run_reject")(on_press)

    @app.shortcut(SHORTCUT_ID)
    def on_shortcut(ack: Any, body: dict[str, Any]) -> None:
        ack()
        view = declare_view(severity=services.settings.alerting.default_severity)
        open_modal(body["trigger_id"], view, (body.get("user") or {}).get("id", ""), None, None)

    @app.view(CALLBACK_ID)
    def on_submit(ack: Any, body: dict[str, Any], view: dict[str, Any]) -> None:
        line, errors = submission_line(view)
        if errors:
            ack(response_action="errors", errors=errors)
            return
        ack()
        user_id = (body.get("user") or {}).get("id", "")
        channel = view.get("private_metadata") or None
        reply = commands.run(commands.context(user_id, None), line or "")
        # a modal has no response_url: answer where it was opened, or in a DM
        commands.answer(reply, user_id=user_id, channel=channel)

    @app.event("app_mention")
    def on_mention(ack: Any, event: dict[str, Any]) -> None:
        ack()
        text = (event.get("text") or "").strip()
        if text.startswith("<@") and ">" in text:  # the mention that addressed the bot
            text = text.split(">", 1)[1].strip()
        thread = event.get("thread_ts") or event.get("ts")
        channel = event.get("channel")
        ctx = commands.context(event.get("user", ""), channel, thread_ts=event.get("thread_ts"))
        reply = commands.run(ctx, text or "help")
        commands.answer(reply, user_id=event.get("user", ""), channel=channel, thread_ts=thread)

    @app.event(re.compile(".*"))
    def on_other_event(ack: Any) -> None:
        """Events the bot does not act on are acknowledged, so Slack neither retries nor disables them."""
        ack()

    return app
