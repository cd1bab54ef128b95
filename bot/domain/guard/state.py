"""What the guard needs from the database, read as one snapshot by the worker, never per review.

The admission path reads only the last snapshot. When the database is slow or down the snapshot
ages; past ``stale_after_seconds`` the guard answers allow (and counts it), because the bot's own
outage must never block the cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.core.config.guard import GuardSettings
from bot.domain.guard.breaker import StoredTrip
from bot.domain.guard.count_store import read_peer_counts
from bot.domain.guard.shared_counts import PeerCounts
from bot.core.store.models import Flag, GuardBreaker, GuardException, Incident
from bot.core.store.states import FINISHED_STATES
from bot.core.store.refs import ref_of

# the playbook engine's global freeze (playbooks.engine.freeze.FREEZE); the guard honours it too
FREEZE_FLAG = "playbooks.freeze"


@dataclass(frozen=True)
class OpenIncident:
    id: int
    severity: str
    title: str

    @property
    def ref(self) -> str:
        return ref_of(self.id)


@dataclass(frozen=True)
class ActiveException:
    id: int
    user: str
    rule: str  # a rule name or "*"
    until: datetime


@dataclass(frozen=True)
class GuardState:
    loaded_at: datetime
    freeze: str | None = None  # who set the global freeze and why, when it is on
    incidents: dict[str, tuple[OpenIncident, ...]] = field(default_factory=dict)  # by cluster, worst first
    exceptions: dict[str, tuple[ActiveException, ...]] = field(default_factory=dict)  # by cluster
    breakers: tuple[StoredTrip, ...] = ()
    peers: PeerCounts = field(default_factory=PeerCounts)  # the other replicas' deletes in the breaker's window

    def exception_for(self, cluster: str, user: str, rule: str, now: datetime) -> ActiveException | None:
        for exc in self.exceptions.get(cluster, ()):
            if exc.user == user and exc.rule in (rule, "*") and exc.until > now:
                return exc
        return None


def load_state(session: Session, settings: GuardSettings, now: datetime, replica: str = "") -> GuardState:
    flag = session.get(Flag, FREEZE_FLAG)
    freeze = None
    if flag is not None and flag.value:
        freeze = f"the change freeze set by @{flag.set_by}" + (f" ({flag.reason})" if flag.reason else "")
    incidents: dict[str, list[OpenIncident]] = {}
    rows = session.execute(select(
        col(Incident.id), col(Incident.cluster), col(Incident.severity), col(Incident.title)).where(
        col(Incident.severity).in_(settings.freeze_severities),
        col(Incident.state).not_in(sorted(FINISHED_STATES)),
    ).order_by(col(Incident.severity), col(Incident.id))).all()
    for id_, cluster, severity, title in rows:
        incidents.setdefault(cluster, []).append(OpenIncident(id_, severity, title))
    exceptions: dict[str, list[ActiveException]] = {}
    active = select(GuardException).where(col(GuardException.until) > now,
                                          col(GuardException.approved_at).is_not(None))
    for exc in session.execute(active).scalars():
        assert exc.until is not None  # the query asked for until > now
        exceptions.setdefault(exc.cluster, []).append(ActiveException(exc.id, exc.user, exc.rule, exc.until))
    breakers = tuple(StoredTrip(b.id, b.cluster, b.resource, b.client, b.first_delete_at, b.tripped_at,
                                b.threshold, b.incident_id)
                     for b in session.execute(
                         select(GuardBreaker).where(col(GuardBreaker.lifted_at).is_(None))).scalars())
    peers = read_peer_counts(session, replica, now, settings.breaker.window_seconds)
    return GuardState(now, freeze, {k: tuple(v) for k, v in incidents.items()},
                      {k: tuple(v) for k, v in exceptions.items()}, breakers, peers)
