"""The mass-deletion circuit breaker, counted in memory on the admission path.

A delete of a breaker kind (Pods by default) is counted per client and cluster-wide in a sliding
window, once per object: the apiserver reviews one Pod deletion more than once (the graceful
delete, then the final one), and a second review of an object already let through is allowed. The delete that would exceed a threshold trips the breaker: it and every later delete by
that client (or by anyone, for the cluster-wide breaker) are denied until the incident commander
lifts it from chat. The trip remembers the window's first delete: the burst began there, which is
the incident's T0. Nothing here touches the database: the worker persists new trips and tells the
breaker which were lifted (``sync``), so a slow database never slows an admission review.

The counts that decide are this replica's plus the other replicas' last published ones
(``bot.domain.guard.shared_counts``): the worker publishes ``take_counts()`` and hands back the others'
with ``sync``, so the thresholds hold across replicas up to one publish interval of staleness.
"""

from __future__ import annotations

import threading
from collections import Counter, deque
from dataclasses import dataclass
from datetime import datetime, timedelta

from bot.core.config.guard import GuardBreakerSettings
from bot.domain.guard.shared_counts import EVERYONE, BucketCount, OwnBuckets, PeerCounts

__all__ = ["EVERYONE", "DeleteBreaker", "StoredTrip", "Trip"]


@dataclass
class Trip:
    """A tripped breaker; ``row_id`` is set once the worker stored it, ``incident_id`` once one is open."""

    cluster: str
    resource: str
    client: str  # the user stopped, or EVERYONE
    culprit: str  # who deleted most in the window (the client itself for a per-client trip)
    first_at: datetime
    tripped_at: datetime
    threshold: int
    window_seconds: float
    denied: int = 0
    row_id: int | None = None
    incident_id: int | None = None


@dataclass(frozen=True)
class StoredTrip:
    """A breaker row not lifted, as the database has it (from this replica or another)."""

    row_id: int
    cluster: str
    resource: str
    client: str
    first_at: datetime
    tripped_at: datetime
    threshold: int
    incident_id: int | None


class DeleteBreaker:
    def __init__(self, settings: GuardBreakerSettings) -> None:
        self.settings = settings
        self._window = timedelta(seconds=settings.window_seconds)
        self._by_client: dict[tuple[str, str, str], deque[datetime]] = {}
        self._by_cluster: dict[tuple[str, str], deque[tuple[datetime, str]]] = {}
        self._counted: dict[tuple[str, str], dict[str, datetime]] = {}  # objects let through, per window
        self._tripped: dict[tuple[str, str, str], Trip] = {}
        self._new: list[Trip] = []
        self._own = OwnBuckets(settings.window_seconds)  # what this replica publishes
        self._peers = PeerCounts()  # what the other replicas published
        self._lock = threading.Lock()

    def check(self, cluster: str, resource: str, client: str, now: datetime, *, obj: str = "",
              count: bool = True) -> Trip | None:
        """The trip that denies this delete of ``obj``, or None (then the delete is counted once)."""
        with self._lock:
            counted = self._counted.setdefault((cluster, resource), {})
            if obj and obj in counted and now - counted[obj] < self._window:
                return None  # the same deletion reviewed again: already counted and let through
            trip = self._tripped.get((cluster, resource, client)) or self._tripped.get((cluster, resource, EVERYONE))
            if trip is None:
                trip = self._maybe_trip(cluster, resource, client, now)
            if trip is not None:
                trip.denied += 1
                return trip
            if count:
                if obj:
                    if len(counted) > 4 * max(self.settings.per_client, self.settings.cluster_wide):
                        horizon = now - self._window
                        for key in [k for k, at in counted.items() if at <= horizon]:
                            del counted[key]
                    counted[obj] = now
                self._by_client.setdefault((cluster, resource, client), deque()).append(now)
                self._by_cluster.setdefault((cluster, resource), deque()).append((now, client))
                self._own.add((cluster, resource, client), now)
            return None

    def _maybe_trip(self, cluster: str, resource: str, client: str, now: datetime) -> Trip | None:
        mine = self._by_client.get((cluster, resource, client), deque())
        everyone = self._by_cluster.get((cluster, resource), deque())
        horizon = now - self._window
        while mine and mine[0] <= horizon:
            mine.popleft()
        while everyone and everyone[0][0] <= horizon:
            everyone.popleft()
        window = self.settings.window_seconds
        peers = self._peers
        if len(mine) + peers.client_count(cluster, resource, client, horizon) >= self.settings.per_client:
            first = min(filter(None, (mine[0] if mine else None, peers.first_at(cluster, resource, client, horizon))),
                        default=now)
            trip = Trip(cluster, resource, client, client, first, now, self.settings.per_client, window)
        elif len(everyone) + peers.cluster_count(cluster, resource, horizon) >= self.settings.cluster_wide:
            who = Counter(user for _, user in everyone) + peers.by_client(cluster, resource, horizon)
            culprit = who.most_common(1)[0][0] if who else client
            first = min(filter(None, (everyone[0][0] if everyone else None,
                                      peers.first_at(cluster, resource, EVERYONE, horizon))), default=now)
            trip = Trip(cluster, resource, EVERYONE, culprit, first, now, self.settings.cluster_wide, window)
        else:
            return None
        self._tripped[(cluster, resource, trip.client)] = trip
        self._new.append(trip)
        return trip

    def take_new(self) -> list[Trip]:
        """Trips not yet handed to the worker (each is handed over once)."""
        with self._lock:
            new, self._new = self._new, []
            return new

    def retry(self, trip: Trip) -> None:
        """Hand a trip over again (the worker could not store it, or must finish it); once in the queue."""
        with self._lock:
            if all(t is not trip for t in self._new):
                self._new.append(trip)

    def take_counts(self, now: datetime) -> list[BucketCount]:
        """This replica's delete counts changed since the last call, for the worker to publish."""
        with self._lock:
            return self._own.take_dirty(now)

    def recount(self, counts: list[BucketCount]) -> None:
        """Publish these again next time (the database did not take them)."""
        with self._lock:
            self._own.mark_dirty(counts)

    def sync(self, stored: list[StoredTrip], peers: PeerCounts | None = None) -> None:
        """Adopt the database's open breakers and the other replicas' counts; forget lifted trips."""
        with self._lock:
            if peers is not None:
                self._peers = peers
            open_keys = {(s.cluster, s.resource, s.client): s for s in stored}
            for key, trip in list(self._tripped.items()):
                if trip.row_id is not None and key not in open_keys:
                    self._forget(key)
            for key, s in open_keys.items():
                known = self._tripped.get(key)
                if known is None:
                    self._tripped[key] = Trip(s.cluster, s.resource, s.client, s.client, s.first_at, s.tripped_at,
                                              s.threshold, self.settings.window_seconds, row_id=s.row_id,
                                              incident_id=s.incident_id)
                else:  # the stored trip wins (another replica's, when both tripped at once)
                    known.row_id, known.incident_id = s.row_id, s.incident_id or known.incident_id
                    known.first_at, known.threshold = s.first_at, s.threshold

    def lifted(self, cluster: str, resource: str, client: str) -> None:
        """Forget a lifted breaker now (the commander's replica does not wait for the next refresh)."""
        with self._lock:
            self._forget((cluster, resource, client))
            self._peers.forget(cluster, resource, client)

    def _forget(self, key: tuple[str, str, str]) -> None:
        cluster, resource, client = key
        self._tripped.pop(key, None)
        self._own.forget(cluster, resource, client)
        if client == EVERYONE:
            self._by_cluster.pop((cluster, resource), None)
            for k in [k for k in self._by_client if k[:2] == (cluster, resource)]:
                self._by_client.pop(k)
        else:
            self._by_client.pop(key, None)
            everyone = self._by_cluster.get((cluster, resource))
            if everyone:
                self._by_cluster[(cluster, resource)] = deque(e for e in everyone if e[1] != client)

    def tripped(self) -> list[Trip]:
        with self._lock:
            return list(self._tripped.values())
