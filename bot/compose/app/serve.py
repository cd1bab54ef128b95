"""``incident-bot serve``: the HTTP app, background workers, and Slack (HTTP or Socket Mode).

``/api/*`` reveals incidents, so serving on an address other machines can
reach needs ``api_token`` unless the operator says explicitly that the API
may be open (``--allow-unauthenticated-api``, e.g. behind an authenticating
proxy).
"""

from __future__ import annotations

import gc
import logging
import sys

import uvicorn

from bot.compose.app.api_auth import is_loopback
from bot.compose.app.bot import build_bot
from bot.compose.app.http import build_http_app
from bot.compose.app.workers import WorkerRunner
from bot.compose.app.startup import startup_line, unused_slack_settings
from bot.core.config import Settings
from bot.core.errors import ConfigError

log = logging.getLogger(__name__)

GIL_SWITCH_SECONDS = 0.001


def settle_interpreter() -> None:
    """After start-up, before serving: shorter GIL turns, and start-up's objects out of the collector.

    The HTTP loop shares the GIL with the workers. CPython lets a busy thread keep it for 5 ms at a
    stretch; 1 ms bounds how long an answer waits while a worker computes (benchmarks/bench_admission.py).
    What start-up built (settings, procedures, SQLAlchemy's mappers, compiled templates) lives as long
    as the process: frozen out of the collector, a full collection no longer walks it.
    """
    sys.setswitchinterval(GIL_SWITCH_SECONDS)
    gc.collect()
    gc.freeze()


def announce(line: str) -> None:
    """The start line is logged at INFO but shown at the default level too: it is how an operator checks a pod."""
    root_level = logging.getLogger().getEffectiveLevel()
    log.setLevel(min(logging.INFO, root_level))
    log.info(line)
    log.setLevel(logging.NOTSET)


def check_exposure(settings: Settings, host: str, *, allow_unauthenticated_api: bool) -> None:
    """Refuse to open ``/api/*`` without a token to anyone but this machine, unless told to."""
    if settings.api_token or is_loopback(host) or allow_unauthenticated_api:
        return
    raise ConfigError(f"--host {host}: other machines could read every incident through /api/* without a token; "
                      "set api_token (INCIDENT_BOT_API_TOKEN or INCIDENT_BOT_API_TOKEN_FILE), "
                      "or pass --allow-unauthenticated-api if something in front of the bot authenticates")


def serve(settings: Settings, *, host: str | None = None, port: int | None = None, socket_mode: bool = False,
          allow_unauthenticated_api: bool = False) -> int:
    host = host or settings.host
    port = port or settings.port
    check_exposure(settings, host, allow_unauthenticated_api=allow_unauthenticated_api)
    bot = build_bot(settings)
    for problem in unused_slack_settings(settings, socket_mode=socket_mode):
        log.warning(problem)
    if "slack" not in bot.services.extras and not settings.oncall.pager_webhook_url:
        # Nothing would deliver announcements or pages: incidents would open but nobody would be
        # told, and notified_at would stay empty (the 1-minute clock would breach, truthfully).
        log.warning("no chat or pager configured (SLACK_BOT_TOKEN + SLACK_SIGNING_SECRET or SLACK_APP_TOKEN, "
                    "or oncall.pager_webhook_url): incidents will be recorded but nobody will be notified")
    app = build_http_app(bot)
    settle_interpreter()
    runner = WorkerRunner(bot.workers)
    for hook in bot.on_start:
        hook()
    runner.start()
    try:
        if socket_mode:  # Slack over an outbound WebSocket instead of POST /slack/events
            from integrations.adapters.slack.extension import start_socket_mode

            bot.on_stop.append(start_socket_mode(bot))
        announce(startup_line(settings, host=host, port=port, socket_mode=socket_mode,
                              slack_on="slack" in bot.services.extras))
        # log_config=None: uvicorn's records go through the bot's handlers (text or JSON alike)
        # access_log off: kubelet probes and scrapes every few seconds would drown the log (outcomes are in /metrics)
        uvicorn.run(app, host=host, port=port, log_level="warning", lifespan="off", log_config=None,
                    access_log=False)
    finally:
        runner.stop()
        bot.close()
    return 0
