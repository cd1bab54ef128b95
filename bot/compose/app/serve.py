"""``incident-bot serve``: the HTTP app, background workers, and Slack (HTTP or Socket Mode).

``/api/*`` reveals incidents, so serving on an address other machines can
reach needs ``api_token`` unless the operator says explicitly that the API
may be open (``--allow-unauthenticated-api``, e.g. behind an authenticating
proxy).
"""

from __future__ import annotations

import contextlib
import gc
import logging
import signal
import sys
from collections.abc import Iterator
from types import FrameType

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


STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def stop_requests_reach(server: uvicorn.Server) -> Iterator[None]:
    """SIGINT and SIGTERM stop the server whenever they come, even before uvicorn listens.

    uvicorn takes the signals only once its loop runs; one that came earlier (a pod deleted
    while starting, an operator's Ctrl-C right after the start line) would raise
    KeyboardInterrupt wherever start-up was, leaving an unawaited coroutine or an unclosed loop
    behind and an exit code that says "crashed". Here it only asks the server to stop, so the
    workers still finish their turn and the process exits 0, like a stop while serving.
    """
    def request_stop(signum: int, frame: FrameType | None) -> None:
        server.should_exit = True

    previous = {sig: signal.signal(sig, request_stop) for sig in STOP_SIGNALS}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


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
    # log_config=None: uvicorn's records go through the bot's handlers (text or JSON alike)
    # access_log off: kubelet probes and scrapes every few seconds would drown the log (outcomes are in /metrics)
    server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="warning", lifespan="off",
                                           log_config=None, access_log=False))
    runner = WorkerRunner(bot.workers)
    with stop_requests_reach(server):
        for hook in bot.on_start:
            hook()
        runner.start()
        try:
            if socket_mode:  # Slack over an outbound WebSocket instead of POST /slack/events
                from integrations.adapters.slack.extension import start_socket_mode

                bot.on_stop.append(start_socket_mode(bot))
            announce(startup_line(settings, host=host, port=port, socket_mode=socket_mode,
                                  slack_on="slack" in bot.services.extras))
            if not server.should_exit:
                server.run()
        finally:
            runner.stop()
            bot.close()
    return 0
