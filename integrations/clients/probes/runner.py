"""Running checks in parallel, each timed and bounded by a deadline.

A dead apiserver usually means a connect timeout; probing targets one after
the other would make one tick as slow as the sum of the timeouts, so checks
run side by side and a tick lasts about as long as the slowest one (at most
``timeout``).  A check that overruns is reported failed ("no answer within
3 s") and left to finish in the background.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor, TimeoutError as FutureTimeout
from dataclasses import dataclass
from typing import Sequence

from integrations.clients.probes.checks import Check


@dataclass(frozen=True)
class ProbeOutcome:
    cluster: str
    target: str
    component: str
    ok: bool
    latency_ms: float
    detail: str


def _one(check: Check) -> ProbeOutcome:
    started = time.monotonic()
    try:
        detail = check.run()
        ok = True
    except Exception as exc:  # any failure of the client is the probe's finding
        detail = str(exc) or exc.__class__.__name__
        ok = False
    return ProbeOutcome(check.cluster, check.target, check.component, ok,
                        round((time.monotonic() - started) * 1000, 3), detail[:1000])


def run_checks(checks: Sequence[Check], *, timeout: float = 3.0, max_workers: int = 16) -> list[ProbeOutcome]:
    """Run every check; a check slower than ``timeout`` seconds counts as failed."""
    if not checks:
        return []
    pool = ThreadPoolExecutor(max_workers=min(max_workers, len(checks)), thread_name_prefix="probe")
    try:
        started = time.monotonic()
        futures = [(check, pool.submit(_one, check)) for check in checks]
        outcomes = []
        for check, future in futures:
            remaining = max(0.0, timeout - (time.monotonic() - started))
            try:
                outcomes.append(future.result(timeout=remaining))
            except FutureTimeout:
                outcomes.append(ProbeOutcome(check.cluster, check.target, check.component, False,
                                             round(timeout * 1000, 3), f"no answer within {timeout:g} s"))
        return outcomes
    finally:
        pool.shutdown(wait=False, cancel_futures=True)
