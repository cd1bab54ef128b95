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
