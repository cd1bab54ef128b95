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

from collections.abc import Set
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import bindparam, select
from sqlmodel import Session, col

from bot.core.clock import utc
from bot.core.config.detection import Alerting
from bot.core.store.states import ACTIVE_STATES
from bot.domain.incidents.alert_rules import group_key
from bot.core.store.models import Incident


@dataclass
class OpenIncident:
    """An active incident with the alert activity that decides whether it still groups."""

    incident: Incident
    firing: int
    last_activity: datetime

    def accepts(self, at: datetime, window: timedelta) -> bool:
        return self.firing > 0 or at <= self.last_activity + window


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


# built once (every delivery runs it): active incidents of some group keys, newest first
_OPEN = (select(Incident)
         .where(col(Incident.group_key).in_(bindparam("keys", expanding=True)),
                col(Incident.state).in_(sorted(ACTIVE_STATES)))
         .order_by(col(Incident.id).desc()))


def load_open(session: Session, keys: set[str]) -> dict[str, list[OpenIncident]]:
    """Active incidents with these group keys, newest first, with their alert activity.

    The activity (firing alerts, last stored alert) is kept on the incident row
    by the ingestion, so this is one indexed read however many alerts the
    incidents hold.
    """
    if not keys:
        return {}
    rows = list(session.execute(_OPEN, {"keys": sorted(keys)}).scalars())
    out: dict[str, list[OpenIncident]] = {}
    for row in rows:
        last_activity = max(t for t in (row.detected_at, row.started_at, _aware(row.last_alert_at)) if t is not None)
        out.setdefault(row.group_key or "", []).append(OpenIncident(row, int(row.alerts_firing or 0), last_activity))
    return out


def _aware(value: datetime | None) -> datetime | None:
    return None if value is None else utc(value)


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
            if key in downstream and abs(utc(candidate.incident.started_at) - at) > window:
                continue
            return candidate
    return None
