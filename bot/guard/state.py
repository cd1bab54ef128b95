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

from bot.config import GuardSettings
from bot.guard.breaker import StoredTrip
from bot.store.models import Flag, GuardBreaker, GuardException, Incident

# the playbook engine's global freeze (playbooks.engine.freeze.FREEZE); the guard honours it too
FREEZE_FLAG = "playbooks.freeze"
FINISHED_STATES = ("resolved", "closed", "cancelled")


@dataclass(frozen=True)
class OpenIncident:
    id: int
    severity: str
    title: str

    @property
    def ref(self) -> str:
        return f"INC-{self.id}"


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

    def exception_for(self, cluster: str, user: str, rule: str, now: datetime) -> ActiveException | None:
        for exc in self.exceptions.get(cluster, ()):
            if exc.user == user and exc.rule in (rule, "*") and exc.until > now:
                return exc
        return None


def load_state(session: Session, settings: GuardSettings, now: datetime) -> GuardState:
    flag = session.get(Flag, FREEZE_FLAG)
    freeze = None
    if flag is not None and flag.value:
        freeze = f"the change freeze set by @{flag.set_by}" + (f" ({flag.reason})" if flag.reason else "")
    incidents: dict[str, list[OpenIncident]] = {}
    rows = session.execute(select(Incident.id, Incident.cluster, Incident.severity, Incident.title).where(  # type: ignore[call-overload]
        Incident.severity.in_(settings.freeze_severities),  # type: ignore[attr-defined]
        Incident.state.not_in(FINISHED_STATES),  # type: ignore[attr-defined]
    ).order_by(Incident.severity, Incident.id)).all()
    for id_, cluster, severity, title in rows:
        incidents.setdefault(cluster, []).append(OpenIncident(id_, severity, title))
    exceptions: dict[str, list[ActiveException]] = {}
    active = select(GuardException).where(GuardException.until > now,  # type: ignore[arg-type,operator]
                                          GuardException.approved_at.is_not(None))  # type: ignore[union-attr]
    for exc in session.execute(active).scalars():
        exceptions.setdefault(exc.cluster, []).append(ActiveException(exc.id, exc.user, exc.rule, exc.until))  # type: ignore[arg-type]
    breakers = tuple(StoredTrip(b.id, b.cluster, b.resource, b.client, b.first_delete_at, b.tripped_at,  # type: ignore[arg-type]
                                b.threshold, b.incident_id)
                     for b in session.execute(select(GuardBreaker).where(GuardBreaker.lifted_at.is_(None))).scalars())  # type: ignore[union-attr]
    return GuardState(now, freeze, {k: tuple(v) for k, v in incidents.items()},
                      {k: tuple(v) for k, v in exceptions.items()}, breakers)
