"""The breaker's counts shared between replicas, in memory on both sides of the database.

With several ``serve`` replicas behind the Service each sees only the reviews routed to it; counting
alone, N replicas would let N x the threshold through. So each replica keeps its own deletes in small
time buckets (``OwnBuckets``) that its worker publishes every refresh, and reads what the others
published into ``PeerCounts``. A decision adds the others' counts to its own, in memory: the
database is never on the admission path, and when it is slow or down a replica goes on with its
own count plus what it last read (those deletes leave the window by their own timestamps).

Staleness: the others' deletes since their last publish are not seen, so a client may overshoot a
threshold by what the other replicas admit within one publish interval plus one read interval.
Buckets carry their first and last delete: the window keeps a bucket while its last delete is in
it (at the window's far edge a bucket counts whole, erring towards denying), and a trip's T0 is
the earliest first delete of the buckets it counted.
"""

from __future__ import annotations

import math
from bisect import bisect_right
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import accumulate

BUCKETS_PER_WINDOW = 60  # a 60 s window counts in 1 s buckets
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)

EVERYONE = "*"  # the cluster-wide breaker's client
Key = tuple[str, str, str]  # (cluster, resource, client)


@dataclass(frozen=True, slots=True)
class BucketCount:
    """Deletes of one key by one replica in one bucket (the row ``guard_delete_counts`` holds)."""

    cluster: str
    resource: str
    client: str
    bucket_start: datetime
    count: int
    first_at: datetime
    last_at: datetime

    @property
    def key(self) -> Key:
        return (self.cluster, self.resource, self.client)


class OwnBuckets:
    """This replica's deletes by key and bucket; the buckets changed since the last publish are dirty.

    Not thread-safe on its own: the breaker calls it under its lock.
    """

    def __init__(self, window_seconds: float) -> None:
        self.window = timedelta(seconds=window_seconds)
        self.width = window_seconds / BUCKETS_PER_WINDOW
        self._buckets: dict[tuple[Key, int], list] = {}  # by bucket number: [count, first_at, last_at]
        self._dirty: set[tuple[Key, int]] = set()

    def add(self, key: Key, at: datetime) -> None:
        slot = (key, math.floor(at.timestamp() / self.width))  # a number, not a datetime: this is the hot path
        bucket = self._buckets.get(slot)
        if bucket is None:
            self._buckets[slot] = [1, at, at]
        else:
            bucket[0] += 1
            bucket[1] = min(bucket[1], at)
            bucket[2] = max(bucket[2], at)
        self._dirty.add(slot)

    def take_dirty(self, now: datetime) -> list[BucketCount]:
        """The buckets to publish (their totals: publishing one twice sets the same row again)."""
        out = [BucketCount(*key, EPOCH + timedelta(seconds=n * self.width), *self._buckets[(key, n)])
               for key, n in sorted(self._dirty)]
        self._dirty.clear()
        horizon = now - self.window - timedelta(seconds=self.width)
        for slot in [s for s, b in self._buckets.items() if b[2] < horizon]:
            del self._buckets[slot]
        return out

    def forget(self, cluster: str, resource: str, client: str) -> None:
        """A lift: deletes after it start fresh buckets (their upsert replaces the rows of before)."""
        for slot in [s for s in self._buckets if s[0][:2] == (cluster, resource)
                     and (client == EVERYONE or s[0][2] == client)]:
            del self._buckets[slot]
            self._dirty.discard(slot)

    def mark_dirty(self, counts: list[BucketCount]) -> None:
        """Publish these again next time (the database did not take them)."""
        for c in counts:
            slot = (c.key, round((c.bucket_start - EPOCH).total_seconds() / self.width))
            if slot in self._buckets:
                self._dirty.add(slot)


class PeerCounts:
    """The other replicas' published deletes, queried in O(log n) per key on the admission path."""

    def __init__(self, counts: Sequence[BucketCount] = (), *, lifted: dict[Key, datetime] | None = None,
                 loaded_at: datetime | None = None) -> None:
        self.loaded_at = loaded_at
        self._lifted = dict(lifted or {})
        self._all = [c for c in counts if not self._before_lift(c)]
        self._index()

    def _before_lift(self, c: BucketCount) -> bool:
        """Deletes before a lift of their key (or of the cluster-wide key) no longer count."""
        since = max((at for k in (c.key, (c.cluster, c.resource, EVERYONE)) if (at := self._lifted.get(k)) is not None),
                    default=None)
        return since is not None and c.last_at <= since

    def _index(self) -> None:
        by_client: dict[Key, list[BucketCount]] = {}
        by_cluster: dict[tuple[str, str], list[BucketCount]] = {}
        for c in self._all:
            by_client.setdefault(c.key, []).append(c)
            by_cluster.setdefault((c.cluster, c.resource), []).append(c)
        self._by_client = {k: _Series(v) for k, v in by_client.items()}
        self._by_cluster = {k: _Series(v) for k, v in by_cluster.items()}

    def client_count(self, cluster: str, resource: str, client: str, horizon: datetime) -> int:
        series = self._by_client.get((cluster, resource, client))
        return series.since(horizon) if series else 0

    def cluster_count(self, cluster: str, resource: str, horizon: datetime) -> int:
        series = self._by_cluster.get((cluster, resource))
        return series.since(horizon) if series else 0

    def first_at(self, cluster: str, resource: str, client: str, horizon: datetime) -> datetime | None:
        """The earliest delete the others counted in the window (for the trip's T0); EVERYONE: any client."""
        firsts = [c.first_at for c in self._all if c.last_at > horizon and (c.cluster, c.resource) == (cluster, resource)
                  and client in (EVERYONE, c.client)]
        return min(firsts, default=None)

    def by_client(self, cluster: str, resource: str, horizon: datetime) -> Counter[str]:
        """Deletes per client in the window (who deleted most, for a cluster-wide trip)."""
        out: Counter[str] = Counter()
        for c in self._all:
            if c.last_at > horizon and (c.cluster, c.resource) == (cluster, resource):
                out[c.client] += c.count
        return out

    def forget(self, cluster: str, resource: str, client: str) -> None:
        """A lift on this replica: what the others published before it no longer counts."""
        self._all = [c for c in self._all if (c.cluster, c.resource) != (cluster, resource)
                     or (client != EVERYONE and c.client != client)]
        self._index()


class _Series:
    """Counts sorted by their last delete, with suffix sums: the count in a window is one bisect."""

    def __init__(self, counts: list[BucketCount]) -> None:
        ordered = sorted(counts, key=lambda c: c.last_at)
        self.lasts = [c.last_at for c in ordered]
        self.tail = list(accumulate(reversed([c.count for c in ordered])))[::-1] + [0]

    def since(self, horizon: datetime) -> int:
        return self.tail[bisect_right(self.lasts, horizon)]
