"""Run a step with a deadline, heart-beating while it works.

The step runs in a daemon thread; the caller's thread waits in short slices,
calling ``beat()`` between them (the run's heartbeat and the cluster lease),
and gives up at the deadline with ``StepFailed``.  A thread cannot be killed
in Python, so steps also receive the deadline and pass it to their clients'
timeouts: the engine stops waiting, the step's own I/O stops soon after.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from bot.core.errors import StepFailed


def call_with_timeout(fn: Callable[[], Any], *, timeout: float, what: str,
                      beat: Callable[[], None] | None = None, slice_seconds: float = 0.5) -> Any:
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["value"] = fn()
        except BaseException as exc:  # handed to the caller's thread
            box["error"] = exc

    thread = threading.Thread(target=target, name=f"step:{what}", daemon=True)
    deadline = time.monotonic() + timeout
    thread.start()
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        thread.join(min(slice_seconds, remaining))
        if not thread.is_alive():
            break
        if beat is not None:
            beat()
    if thread.is_alive():
        raise StepFailed(f"{what} timed out after {timeout:g}s")
    if "error" in box:
        raise box["error"]
    return box.get("value")
