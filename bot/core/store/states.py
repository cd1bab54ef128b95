"""The incident's states and their groups, named once.

The stored ``Incident.state`` column holds one of these names.  The moves
between them are the lifecycle table (``bot/domain/incidents/lifecycle.py``); the
groups live here, below every domain package, because the 1-5-10 watcher,
the re-pager, the clocks and the admission guard ask "is this incident still
active?" without depending on the incident service that moves it.
"""

from __future__ import annotations

STATES: tuple[str, ...] = (
    "detected",
    "notified",
    "diagnosing",
    "diagnosed",
    "mitigating",
    "mitigated",
    "resolved",
    "closed",
    "cancelled",
)
# Over: the clocks stop, nobody is paged, the guard no longer freezes changes for it.
FINISHED_STATES: frozenset[str] = frozenset({"resolved", "closed", "cancelled"})
# Still being worked on (the complement of FINISHED_STATES).
ACTIVE_STATES: frozenset[str] = frozenset(STATES) - FINISHED_STATES
# Before mitigation started: a false positive may still be cancelled from here.
EARLY_STATES: tuple[str, ...] = ("detected", "notified", "diagnosing", "diagnosed")

__all__ = ["ACTIVE_STATES", "EARLY_STATES", "FINISHED_STATES", "STATES"]
