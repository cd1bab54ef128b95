"""Which incident an alert (or a failed probe) belongs to.

A control-plane fault rarely raises one alert: a dead etcd member raises
"member down", "insufficient members", "no leader" on the survivors, and
then the apiservers in front of it start failing.  Grouping turns that
cascade into one incident:

* alerts of the same cluster and component share a group key
  (``prod-1/etcd``) and join the open incident of that key;
* an alert of a component that depends on another (``alerting.depends_on``:
  apiserver -> etcd, scheduler -> apiserver, etcd) joins an open incident of
  the component it depends on, because that is where the fault most likely is;
  and the other way round while the cascade is young (deliveries race);
* "open" means the incident is active and either still has firing alerts or
  saw alert activity within ``alerting.group_window_seconds``; after a quiet
  window a new fault gets a new incident even if the old one was never closed.

Components are handled upstream first (etcd before apiserver before the
rest), so a payload holding a whole cascade opens the etcd incident and the
others join it.
"""

from __future__ import annotations

from collections.abc import Sequence, Set
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bot.core.clock import utc
from bot.core.config.detection import Alerting
from bot.core.store.models import Incident
from bot.core.store.raw import RawSql, Statement, marks
from bot.core.store.states import ACTIVE_STATES
from bot.domain.incidents.alert_rules import group_key


@dataclass
class OpenIncident:
    """An active incident as grouping sees it: the columns that decide, read without the ORM.

    Every delivery reads the open incidents of its group keys; as ORM rows that read
    cost a quarter of a PostgreSQL writer's time (``docs/performance.md``).  A join
    changes this snapshot and writes the few columns it changed (``alert_joining``).
    """

    id: int
    group_key: str
    cluster: str
    component: str | None
    state: str
    severity: str
    started_at: datetime
    firing: int
    last_activity: datetime

    def accepts(self, at: datetime, window: timedelta) -> bool:
        return self.firing > 0 or at <= self.last_activity + window

    @classmethod
    def of(cls, row: Incident, firing: int, last_activity: datetime) -> OpenIncident:
        """The snapshot of an ORM row this transaction holds (one it opened, a fleet's)."""
        assert row.id is not None
        return cls(row.id, row.group_key or "", row.cluster, row.component, row.state, row.severity,
                   utc(row.started_at), firing, last_activity)


def upstream_rank(component: str, alerting: Alerting) -> int:
    """etcd (depends on nothing) sorts before apiserver (1 dependency) before the rest."""
    return len(alerting.depends_on.get(component, ()))


def candidate_keys(cluster: str, component: str, alerting: Alerting) -> list[str]:
    """The group keys an alert may join: its own, those it depends on, then those depending on it."""
    upstream = list(alerting.depends_on.get(component, ()))
    downstream = sorted(c for c, deps in alerting.depends_on.items() if component in deps and c not in upstream)
    return [group_key(cluster, c) for c in [component, *upstream, *downstream]]


def downstream_keys(cluster: str, component: str, alerting: Alerting) -> set[str]:
    """Keys of components that depend on ``component``: joined only by a cascade in progress."""
    return {group_key(cluster, c) for c, deps in alerting.depends_on.items() if component in deps}


class GroupKeys:
    """``candidate_keys`` and ``downstream_keys`` per (cluster, component), each worked out once.

    A storm's batch holds thousands of alerts of a handful of components; one per
    alert was a tenth of the writer's time on SQLite.  Made per batch, so a
    settings change is seen by the next one.
    """

    def __init__(self, alerting: Alerting) -> None:
        self.alerting = alerting
        self._memo: dict[tuple[str, str], tuple[list[str], set[str]]] = {}

    def of(self, cluster: str, component: str) -> tuple[list[str], set[str]]:
        """(the keys it may join, in order; those of them only a cascade in progress joins)."""
        found = self._memo.get((cluster, component))
        if found is None:
            found = (candidate_keys(cluster, component, self.alerting),
                     downstream_keys(cluster, component, self.alerting))
            self._memo[(cluster, component)] = found
        return found


_OPEN = ("SELECT id, group_key, cluster, component, state, severity, started_at, detected_at, last_alert_at, "
         "alerts_firing FROM incidents WHERE group_key IN ({}) AND state IN ({}) ORDER BY id DESC")
_ACTIVE = sorted(ACTIVE_STATES)


def load_open(raw: RawSql, keys: set[str]) -> dict[str, list[OpenIncident]]:
    """Active incidents with these group keys, newest first, with their alert activity.

    The activity (firing alerts, last stored alert) is kept on the incident row
    by the ingestion, so this is one indexed read however many alerts the
    incidents hold.  A hand-written read sees what the transaction has flushed:
    run it before changing incidents through the ORM.
    """
    return read_open(raw, raw.batch(open_statements(keys)))


def open_statements(keys: set[str]) -> list[Statement]:
    """``load_open`` as statements (none without keys), to travel with others; ``read_open`` reads them."""
    if not keys:
        return []
    ordered = sorted(keys)
    return [(_OPEN.format(marks(len(ordered)), marks(len(_ACTIVE))), [*ordered, *_ACTIVE])]


def read_open(raw: RawSql, answers: Sequence[Sequence[tuple[Any, ...]]]) -> dict[str, list[OpenIncident]]:
    out: dict[str, list[OpenIncident]] = {}
    for rows in answers:
        for (id_, key, cluster, component, state, severity, started, detected, last_alert, firing) in rows:
            started_at: datetime = raw.read_time(started)  # type: ignore[assignment]  # started_at is NOT NULL
            last_activity = max(t for t in (raw.read_time(detected), started_at, raw.read_time(last_alert))
                                if t is not None)
            out.setdefault(key or "", []).append(OpenIncident(
                id_, key or "", cluster, component, state, severity, started_at, int(firing or 0), last_activity))
    return out


def choose(open_by_key: dict[str, list[OpenIncident]], keys: list[str], at: datetime,
           window: timedelta, downstream: Set[str] = frozenset()) -> OpenIncident | None:
    """The newest open incident of the first key (own, upstream, downstream) that still groups.

    Alertmanager delivers groups in parallel, so the apiserver's alerts may
    open an incident a moment before the etcd alerts that caused them arrive;
    an upstream alert therefore joins a downstream incident too, but only one
    that began within the window of it (a cascade in progress, not an old
    unrelated incident).
    """
    for key in keys:
        for candidate in open_by_key.get(key, ()):
            if not candidate.accepts(at, window):
                continue
            if key in downstream and abs(candidate.started_at - at) > window:
                continue
            return candidate
    return None
