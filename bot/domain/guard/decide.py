"""The guard's decision for one admission review: allow, deny, or (audit mode) would deny.

Order, cheapest first: the bot's own users pass; a write outside the risk list and the breaker's
kinds passes at once; with no fresh state (the database slow or down) everything passes; a delete
of a breaker kind is counted and denied past the threshold; a write on the risk list is denied
while a sev1/sev2 incident is open on the cluster or the freeze is on, unless the user holds an
approved exception. Each decision is counted by (cluster, decision, reason); each denial is queued
for the incident's timeline, which the worker writes in batches.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import uuid
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime

from bot.core.clock import Clock
from bot.core.config.guard import GuardSettings
from bot.domain.guard.breaker import EVERYONE, DeleteBreaker, Trip
from bot.domain.guard.policy import is_breaker_kind, matching_rule
from bot.domain.guard.review import AdmissionRequest
from bot.domain.guard.state import GuardState
from bot.core.store.refs import ref_of
from bot.core.plugins import Extra

log = logging.getLogger(__name__)
MAX_QUEUED_DENIALS = 10_000  # a flood of denials while the database is away must not grow without bound


@dataclass(frozen=True)
class Decision:
    allowed: bool
    decision: str  # allow | deny | would-deny
    reason: str  # exempt | outside-lists | state-unavailable | dry-run | no-incident | exception | freeze | breaker
    message: str = ""


@dataclass(frozen=True)
class Denial:
    """One denied write, waiting to go on an incident's timeline (``trip`` for breaker denials)."""

    at: datetime
    cluster: str
    user: str
    what: str
    reason: str
    incident_id: int | None
    trip: Trip | None = None


class Guard:
    def __init__(self, settings: GuardSettings, clock: Clock, replica: str | None = None) -> None:
        self.settings = settings
        self.clock = clock
        # who publishes this replica's delete counts (the pod's name, unique per process)
        self.replica = replica or f"{socket.gethostname()}/{os.getpid()}/{uuid.uuid4().hex[:8]}"
        self.breaker = DeleteBreaker(settings.breaker)
        self.state: GuardState | None = None
        self.counts: Counter[tuple[str, str, str]] = Counter()
        self.denials: deque[Denial] = deque(maxlen=MAX_QUEUED_DENIALS)
        self._lock = threading.Lock()

    def use_state(self, state: GuardState) -> None:
        """A fresh snapshot from the database (the worker calls this each refresh)."""
        self.state = state
        self.breaker.sync(list(state.breakers), state.peers)

    def decide(self, cluster: str, request: AdmissionRequest) -> Decision:
        decision = self._decide(cluster, request)
        with self._lock:
            self.counts[(cluster, decision.decision, decision.reason)] += 1
        if decision.decision == "would-deny":
            log.warning("admission guard (audit mode) would deny %s by %s on %s: %s", request.describe(),
                        request.user, cluster, decision.reason)
        return decision

    def _decide(self, cluster: str, request: AdmissionRequest) -> Decision:
        settings = self.settings
        if request.user in settings.exempt_users:
            return Decision(True, "allow", "exempt")
        rule = matching_rule(settings, request)
        breaker_kind = is_breaker_kind(settings, request)
        if rule is None and not breaker_kind:
            return Decision(True, "allow", "outside-lists")
        now = self.clock.now()
        state = self.state
        if state is None or (now - state.loaded_at).total_seconds() > settings.stale_after_seconds:
            return Decision(True, "allow", "state-unavailable")
        if breaker_kind:
            trip = self.breaker.check(cluster, request.resource_key, request.user, now,
                                      obj=f"{request.namespace}/{request.name}", count=not request.dry_run)
            if trip is not None:
                return self._deny(cluster, request, "breaker", breaker_message(trip, request.user), now,
                                  trip.incident_id, trip)
        if rule is None:
            return Decision(True, "allow", "no-incident")
        incidents = state.incidents.get(cluster, ())
        if not incidents and state.freeze is None:
            return Decision(True, "allow", "no-incident")
        if state.exception_for(cluster, request.user, rule.name, now) is not None:
            return Decision(True, "allow", "exception")
        why = (f"{incidents[0].ref} ({incidents[0].severity}: {incidents[0].title}) is open"
               if incidents else f"{state.freeze} is on")
        ref = incidents[0].ref if incidents else "INC-N"
        approvers = "two approvers (a critical kind)" if rule.critical else "the commander's approval"
        message = (f"incident-bot admission guard: {request.describe()} is on the risk list ({rule.name}) and changes "
                   f"are frozen on cluster {cluster} while {why}. For an exception ask in the incident's channel: "
                   f"`/incident guard allow @{request.user} 30m {rule.name} {ref}` (needs {approvers}).")
        return self._deny(cluster, request, "freeze", message, now, incidents[0].id if incidents else None)

    def _deny(self, cluster: str, request: AdmissionRequest, reason: str, message: str, now: datetime,
              incident_id: int | None, trip: Trip | None = None) -> Decision:
        if self.settings.mode == "audit":
            return Decision(True, "would-deny", reason, message)
        if not request.dry_run:
            self.denials.append(Denial(now, cluster, request.user, request.describe(), reason, incident_id, trip))
        return Decision(False, "deny", reason, message)

    def take_denials(self) -> list[Denial]:
        out = []
        while self.denials:
            out.append(self.denials.popleft())
        return out

    def requeue(self, denials: list[Denial]) -> None:
        """Denials whose incident is not known yet (a breaker's incident opens a moment later)."""
        self.denials.extendleft(reversed(denials))


def breaker_message(trip: Trip, user: str) -> str:
    who = "anyone" if trip.client == EVERYONE else trip.client
    ref = ref_of(trip.incident_id) if trip.incident_id else "the incident"
    return (f"incident-bot admission guard: mass-deletion circuit breaker open on cluster {trip.cluster}: "
            f"{who if trip.client != EVERYONE else 'clients'} deleted {trip.threshold} {trip.resource} within "
            f"{trip.window_seconds:g}s (first at {trip.first_at.isoformat(timespec='seconds')}); deletes of "
            f"{trip.resource} by {who} are denied until the commander of {ref} lifts the breaker "
            f"(`/incident guard lift`).")


GUARD: Extra[Guard] = Extra("guard", "bot.compose.app.admission")  # the running guard, for `/incident guard`
