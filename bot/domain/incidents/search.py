"""Finding incidents: by state, cluster, age and free text (``/incident list --all --since 7d …``).

``since`` reads like people say it (``7d``, ``24h``, ``90m``, ``2w``) or is a
date (``2026-11-01``); the text matches titles, root causes and everything
written on the timeline (notes, review entries), case-insensitively.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta

from sqlalchemy import exists, func, or_, select
from sqlmodel import Session, col

from bot.core.errors import BadInput
from bot.core.store.states import ACTIVE_STATES, STATES
from bot.core.store.models import Incident, TimelineEvent

_AGO = re.compile(r"^(\d+)\s*([mhdw])$", re.IGNORECASE)
_UNIT = {"m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_since(text: str, now: datetime, *, field: str = "since") -> datetime:
    """``7d`` → now minus seven days; ``2026-11-01`` → that day's start in UTC."""
    value = text.strip()
    match = _AGO.match(value)
    if match:
        return now - timedelta(seconds=int(match.group(1)) * _UNIT[match.group(2).lower()])
    try:
        return datetime.combine(date.fromisoformat(value), time(0), tzinfo=UTC)
    except ValueError:
        raise BadInput(f"--{field} `{text}` is neither an age (30m, 24h, 7d, 2w) nor a date (YYYY-MM-DD).",
                       field=field) from None


@dataclass(frozen=True)
class Query:
    include_finished: bool = False
    since: datetime | None = None
    cluster: str | None = None
    state: str | None = None
    text: str | None = None
    limit: int = 50

    def check(self) -> Query:
        if self.state is not None and self.state not in STATES:
            raise BadInput(f"--state must be one of {', '.join(STATES)}, not `{self.state}`.", field="state")
        return self


def find(session: Session, query: Query) -> list[Incident]:
    """Newest first; a state filter implies finished incidents are wanted when it names one."""
    query.check()
    stmt = select(Incident).order_by(col(Incident.id).desc()).limit(query.limit)
    if query.state:
        stmt = stmt.where(col(Incident.state) == query.state)
    elif not query.include_finished:
        stmt = stmt.where(col(Incident.state).in_(sorted(ACTIVE_STATES)))
    if query.since is not None:
        stmt = stmt.where(col(Incident.started_at) >= query.since)
    if query.cluster:
        stmt = stmt.where(col(Incident.cluster) == query.cluster)
    if query.text:
        needle = f"%{query.text.lower()}%"
        on_timeline = exists().where(col(TimelineEvent.incident_id) == col(Incident.id),
                                     func.lower(col(TimelineEvent.text)).like(needle))
        stmt = stmt.where(or_(func.lower(col(Incident.title)).like(needle),
                              func.lower(func.coalesce(col(Incident.root_cause), "")).like(needle), on_timeline))
    return list(session.execute(stmt).scalars())
