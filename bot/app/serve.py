"""``incident-bot serve``: the HTTP app, background workers, and Slack (HTTP or Socket Mode)."""

from __future__ import annotations

import logging

import uvicorn

from bot.app.bot import build_bot
from bot.app.http import build_http_app
from bot.app.workers import WorkerRunner
from bot.config import Settings

log = logging.getLogger(__name__)


def serve(settings: Settings, *, host: str, port: int, socket_mode: bool = False) -> int:
    bot = build_bot(settings)
    if "slack" not in bot.services.extras and not settings.oncall.pager_webhook_url:
        # Nothing would deliver announcements or pages: incidents would open but nobody would be
        # told, and notified_at would stay empty (the 1-minute clock would breach, truthfully).
        log.warning("no chat or pager configured (SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET or SLACK_APP_TOKEN, "
                    "or oncall.pager_webhook_url): incidents will be recorded but nobody will be notified")
    app = build_http_app(bot)
    runner = WorkerRunner(bot.workers)
    for hook in bot.on_start:
        hook()
    runner.start()
    try:
        if socket_mode:  # Slack over an outbound WebSocket instead of POST /slack/events
            from integrations.slack.extension import start_socket_mode

            bot.on_stop.append(start_socket_mode(bot))
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off")
    finally:
        runner.stop()
        bot.close()
    return 0
