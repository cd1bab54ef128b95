"""Asking again until the cluster has caught up: one loop for every step that waits on something.

Steps wait on things they set in motion but do not control: the apiserver's APF controller
adopting a new FlowSchema, a Lease expiring and a new leader taking it, restored etcd members
electing a leader. Each waits a bounded time, and never past its step's own deadline (a second
before it, so the step still says what it last saw instead of being cut off by the executor).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")

STEP_MARGIN_SECONDS = 1.0


def poll_until(ask: Callable[[], T], done: Callable[[T], bool], *, seconds: float, every: float,
               step_deadline: float | None = None, between: Callable[[], None] | None = None) -> tuple[bool, T]:
    """Call ``ask`` until ``done`` holds of its answer or the wait is over: (done?, the last answer).

    ``step_deadline`` is the step's ``time.monotonic()`` deadline, if it has one; ``between`` runs
    after each answer that is not yet done (e.g. renewing the run's lease, which raises if lost).
    """
    end = time.monotonic() + seconds
    if step_deadline is not None:
        end = min(end, step_deadline - STEP_MARGIN_SECONDS)
    while True:
        answer = ask()
        if done(answer):
            return True, answer
        if between is not None:
            between()
        if time.monotonic() >= end:
            return False, answer
        time.sleep(every)  # waiting for the cluster to move, not timing anything
