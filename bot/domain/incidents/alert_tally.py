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
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.core.store.raw import RawSql, Statement
from bot.domain.incidents import alert_sql
from bot.domain.incidents.alert_sql import Counts


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

    def apply(self, raw: RawSql, now: datetime) -> dict[int, Counts] | None:
        """Add the changes to the stored counts (upsert per name, increment per incident).

        The counts after it, per incident, where the store answers them in the same round trip
        (PostgreSQL); None where reading them costs less than carrying them (SQLite).
        """
        by_name, firing = self._changes()
        return alert_sql.add_counts(raw, by_name, firing, self._stored, now)

    def statement(self, raw: RawSql, now: datetime) -> Statement:
        """``apply`` on PostgreSQL as one statement, to travel with the delivery's inserts; ``read`` its rows."""
        by_name, firing = self._changes()
        return alert_sql.counts_statement(raw, by_name, firing, self._stored, now)

    def read(self, rows: Sequence[tuple[Any, ...]]) -> dict[int, Counts]:
        """The incidents' counts after ``statement`` ran."""
        return alert_sql.read_counts_after(sorted({i for i, _ in self._by_name} | self._stored), rows)

    def _changes(self) -> tuple[list[tuple[int, str, int, int]], dict[int, int]]:
        by_name = [(i, name, f, r) for (i, name), (f, r) in sorted(self._by_name.items()) if f or r]
        firing: defaultdict[int, int] = defaultdict(int)
        for (incident_id, _), (f, _r) in self._by_name.items():
            firing[incident_id] += f
        return by_name, dict(firing)


def read(session: Session, incident_id: int) -> Counts:
    """The incident's alerts by status and name (one row per name, never a scan of its alerts)."""
    return alert_sql.read_counts(RawSql.of(session), incident_id)
