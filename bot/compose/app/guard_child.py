"""``incident-bot guard-process``: the admission webhook alone, as ``serve`` runs it (``guard_process``).

It builds only what the guard needs (the store, the alert ingestor that opens a breaker's incident,
the guard with its TLS listener and worker) and runs nothing else: the interpreter lock is shared
by the listener's event loop and the guard's own worker only. Everything it decides reaches the
rest of the bot through the database, as another replica's would: trips open incidents (whose
announcements ``serve``'s senders deliver), lifts and freezes are read back every refresh.
"""

from __future__ import annotations

import ctypes
import logging
import os
import pickle
import signal
import threading
from types import FrameType
from typing import IO

from bot.compose.app.admission import GUARD_LISTENER, GuardWorker
from bot.compose.app.bot import build_bot
from bot.compose.app.guard_process import report_of
from bot.compose.app.serve import settle_interpreter
from bot.compose.app.workers import WorkerRunner
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.domain.guard.decide import GUARD

log = logging.getLogger(__name__)
EXTENSIONS = ["bot.compose.app.webhooks", "bot.compose.app.admission"]  # the ingestor, then the guard
PR_SET_PDEATHSIG = 1  # linux/prctl.h


def die_with_parent(parent_pid: int) -> None:
    """SIGTERM when the parent dies (Linux); a parent already gone ends this process now."""
    try:
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
    except (OSError, AttributeError):  # not Linux: the parent pid is checked every refresh instead
        pass
    if os.getppid() != parent_pid:
        raise ConfigError(f"guard-process: its parent {parent_pid} is gone; serve starts this process itself")


def read_settings(stdin: IO[bytes]) -> Settings:
    """The settings ``serve`` wrote on our stdin (pickled by the parent that started us, nobody else)."""
    try:
        settings = pickle.load(stdin)
    except (pickle.UnpicklingError, EOFError, AttributeError, ImportError) as exc:
        raise ConfigError(f"guard-process: expected serve's settings on stdin ({type(exc).__name__}); "
                          "it is started by `incident-bot serve` with guard.own_process") from exc
    if not isinstance(settings, Settings):
        raise ConfigError("guard-process: stdin did not hold the bot's settings; serve starts this process itself")
    return settings


def run(parent_pid: int, stdin: IO[bytes], stdout: IO[str]) -> int:
    stop = threading.Event()

    def on_term(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_term)
    signal.signal(signal.SIGINT, on_term)
    die_with_parent(parent_pid)
    settings = read_settings(stdin)
    bot = build_bot(settings, extensions=EXTENSIONS)
    guard = bot.services.extras.need(GUARD)
    listener = bot.services.extras.need(GUARD_LISTENER)
    runner = WorkerRunner([w for w in bot.workers if isinstance(w, GuardWorker)])
    settle_interpreter()  # as serve does: the worker's refresh keeps an answer waiting 1 ms at most
    try:
        listener.start()
        runner.start()
        while not stop.wait(settings.guard.refresh_seconds):
            if os.getppid() != parent_pid:
                log.warning("admission guard: serve (pid %d) is gone; stopping", parent_pid)
                break
            if listener.thread is not None and not listener.thread.is_alive():  # e.g. its port is taken
                log.error("admission guard: its TLS listener on %s:%d stopped; exiting so serve starts it again",
                          settings.guard.host, settings.guard.port)
                return 1
            try:
                stdout.write(report_of(guard, listening=listener.started).line())
                stdout.flush()
            except (BrokenPipeError, ValueError):  # serve closed its end: it is gone or stopping
                break
    finally:
        runner.stop()
        listener.stop()
        bot.close()
    return 0
