"""The bolt app: Slack's requests in, the shared dispatcher's answers out.

Built by ``build_slack_app`` (never at import time, never touching the network:
``auth.test`` is asked lazily and its failure does not stop a command).  Answers leave
through the outbox like every other Slack call (``commands``), so a Slack outage delays them
but loses none; the listeners are in ``listeners``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from slack_bolt import App
from slack_bolt.authorization import AuthorizeResult
from slack_sdk import WebClient

from bot.chat.dispatcher import Dispatcher
from bot.core.config import secret
from integrations.adapters.slack import listeners
from integrations.adapters.slack.commands import SlackCommands
from integrations.adapters.slack.identity import Directory
from integrations.adapters.slack.web import SlackWeb

log = logging.getLogger(__name__)


class _NotAWarning(logging.Filter):
    """bolt warns that SLACK_BOT_TOKEN is unused because we hand it a client; that is by design."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "`token` will be unused" not in record.getMessage()


BOLT_LOG = logging.getLogger("integrations.adapters.slack.bolt")
BOLT_LOG.addFilter(_NotAWarning())
IDENTITY_RETRY_SECONDS = 60.0  # while Slack's API is away, ask who we are at most this often


def build_slack_app(dispatcher: Dispatcher, directory: Directory, web: SlackWeb,
                    wake: Callable[[], None] | None = None, executor: ThreadPoolExecutor | None = None) -> App:
    """The bolt App, wired to the dispatcher; no network at construction.

    ``wake`` tells the outbox senders that something was queued for a person who waits.
    """
    settings = dispatcher.services.settings.slack
    commands = SlackCommands(dispatcher, directory, wake)
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

    listeners.register(app, commands, web)
    return app
