"""The bolt listeners: Slack's requests become command lines for the dispatcher.

Every listener acks first — Slack gives 3 seconds — and does the work afterwards on bolt's
listener threads.  The words are the console's: a slash command's text, a button press
(``/incident approve RUN-7`` as the presser) and a modal submission all become a line for
``Dispatcher.handle`` (through ``SlackCommands``), so the same rules apply everywhere.
"""

from __future__ import annotations

import logging
import re
from typing import Any

from slack_bolt import App, BoltResponse

from bot.chat.messages import Reply
from integrations.adapters.slack import dedupe
from integrations.adapters.slack.commands import SlackCommands
from integrations.adapters.slack.modal import CALLBACK_ID, SHORTCUT_ID, declare_view, submission_line, wants_modal
from integrations.adapters.slack.web import SlackWeb

log = logging.getLogger(__name__)
PRESS_VERBS = {"run_approve": "approve", "run_reject": "reject"}


def register(app: App, commands: SlackCommands, web: SlackWeb) -> None:
    """Every listener the bot has, on ``app``."""
    register_declare(app, commands, web)
    register_buttons(app, commands)
    register_events(app, commands)


def register_declare(app: App, commands: SlackCommands, web: SlackWeb) -> None:
    """``/incident``, the declare shortcut and its modal (``views.open`` is the one call made at once)."""
    services = commands.services

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


def register_buttons(app: App, commands: SlackCommands) -> None:
    """Approve and Reject on a run's card; a double click within the press window counts once."""
    services = commands.services
    settings = services.settings.slack

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


def register_events(app: App, commands: SlackCommands) -> None:
    """Events: retried deliveries dropped, mentions answered, everything else acknowledged."""
    services = commands.services

    @app.middleware
    def drop_redeliveries(body: dict[str, Any], next: Any) -> BoltResponse:  # noqa: A002 (bolt's name)
        """A retried event (same event_id) is acknowledged and not run again."""
        event_id = body.get("event_id") if body.get("type") == "event_callback" else None
        if event_id and not dedupe.first_time(services.db, f"slack:event:{event_id}", source="slack",
                                              now=services.clock.now()):
            return BoltResponse(status=200, body="")
        return next()

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
