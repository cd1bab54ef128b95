"""Running counts of an incident's alerts, kept as alerts are stored and change status.

Every delivery tells the incident's channel "N firing, M resolved — names".
Counting the incident's alerts for that costs a scan that grows with the
incident (50,000 alerts in a storm: 30 ms per delivery, a delivery every few
milliseconds).  Instead the ingestion adds what each delivery changed to
``incident_alert_counts`` (per incident and alert name) and to the incident
row (``alerts_firing``, ``last_alert_at``), in the same transaction, with
atomic increments: a delivery costs the same on a young incident and on a
huge one, and two replicas adding at once both count.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlmodel import Session

from bot.core.store.models import Incident, IncidentAlertCount, table_of

Counts = dict[tuple[str, str], int]  # (status, alertname) -> alerts


class Tally:
    """What one delivery changes in the counts, applied once at its end."""

    def __init__(self) -> None:
        self._by_name: defaultdict[tuple[int, str], list[int]] = defaultdict(lambda: [0, 0])  # [firing, resolved]
        self._stored: set[int] = set()

    def stored(self, incident_id: int, alertname: str, status: str) -> None:
        """A new alert row of ``incident_id`` (its activity moves to now)."""
        self._stored.add(incident_id)
        self._by_name[(incident_id, alertname)][0 if status == "firing" else 1] += 1

    def changed(self, incident_id: int, alertname: str, status: str) -> None:
        """A stored alert of ``incident_id`` now has ``status`` (the other one loses it)."""
        pair = self._by_name[(incident_id, alertname)]
        if status == "firing":
            pair[0] += 1
            pair[1] -= 1
        else:
            pair[0] -= 1
            pair[1] += 1

    def apply(self, session: Session, now: datetime, *, sqlite: bool) -> None:
        """Add the changes to the stored counts (upsert per name, increment per incident)."""
        rows = [{"incident_id": i, "alertname": name, "firing": f, "resolved": r}
                for (i, name), (f, r) in sorted(self._by_name.items()) if f or r]
        if rows:
            session.execute(_add_counts(sqlite), rows)
        firing: defaultdict[int, int] = defaultdict(int)
        for (incident_id, _), (f, _r) in self._by_name.items():
            firing[incident_id] += f
        for incident_id in sorted(set(firing) | self._stored):
            values: dict[str, object] = {"alerts_firing": table_of(Incident).c.alerts_firing + firing[incident_id]}
            if incident_id in self._stored:  # a new alert is activity: updated_at moves with it
                values["last_alert_at"] = now
                values["updated_at"] = now
            incidents = table_of(Incident)  # Core, not the ORM's bulk update: one plain statement per delivery
            session.execute(update(incidents).where(incidents.c.id == incident_id).values(**values))


@cache
def _add_counts(sqlite: bool) -> Any:
    """The upsert adding a delivery's counts, built once per dialect (every delivery runs it)."""
    if sqlite:
        from sqlalchemy.dialects.sqlite import insert
    else:
        from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]  # each dialect's insert() is its own type
    table = table_of(IncidentAlertCount)
    stmt = insert(table)
    return stmt.on_conflict_do_update(index_elements=["incident_id", "alertname"],
                                      set_={"firing": table.c.firing + stmt.excluded.firing,
                                            "resolved": table.c.resolved + stmt.excluded.resolved})


_COUNTS = table_of(IncidentAlertCount)
# built once: every delivery reads its incidents' counts for the chat line
_READ = select(_COUNTS.c.alertname, _COUNTS.c.firing, _COUNTS.c.resolved).where(
    _COUNTS.c.incident_id == bindparam("incident_id"))


def read(session: Session, incident_id: int) -> Counts:
    """The incident's alerts by status and name (one row per name, never a scan of its alerts)."""
    counts: Counts = {}
    for name, f, r in session.execute(_READ, {"incident_id": incident_id}):
        if f:
            counts[("firing", name)] = f
        if r:
            counts[("resolved", name)] = r
    return counts
