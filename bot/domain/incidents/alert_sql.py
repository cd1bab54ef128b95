"""The statements a webhook delivery runs on ``alerts``, hand-written (why: ``bot/core/store/raw.py``).

Each is one round trip whatever the incident's size: a lookup of the
delivery's instances by fingerprint, one multi-row insert that skips instances
stored meanwhile, and the running counts (``alert_tally``) added by upsert and
increment.  Rows cross as ``RawSql`` converts them, so the ORM reads them back
as it reads its own.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy.exc import IntegrityError

from bot.core.store.chunks import chunked
from bot.core.store.raw import RawSql, Statement, marks

COLUMNS = ("incident_id", "fingerprint", "alertname", "status", "cluster", "component", "severity", "labels",
           "annotations", "starts_at", "ends_at", "generator_url", "group_key", "received_at", "updated_at")
_JSON = {"labels", "annotations"}
_TIMES = {"starts_at", "ends_at", "received_at", "updated_at"}

_LOOKUP = "SELECT id, fingerprint, starts_at, status, incident_id FROM alerts WHERE fingerprint IN ({})"
_INSERT = f"INSERT INTO alerts ({', '.join(COLUMNS)}) VALUES {{}}"
INSTANCE_CONSTRAINT = "uq_alert_instance"  # (fingerprint, starts_at): an instance is stored once
# PostgreSQL: the batch as one JSON document, so the statement's text never changes with its size
# (psycopg parses placeholders in Python and caches only short statements) and no parameter is an
# array (psycopg escapes array elements in Python): one json.dumps, parsed by the server
_PG_LOOKUP = "SELECT id, fingerprint, starts_at, status, incident_id FROM alerts WHERE fingerprint = ANY(?)"
_PG_TYPES = ("int", "text", "text", "text", "text", "text", "text", "json", "json", "timestamptz", "timestamptz",
             "text", "text", "timestamptz", "timestamptz")
_PG_INSERT = (f"INSERT INTO alerts ({', '.join(COLUMNS)}) SELECT {', '.join(COLUMNS)} FROM json_to_recordset(?::json) "
              "AS r(" + ", ".join(f"{c} {t}" for c, t in zip(COLUMNS, _PG_TYPES)) + ")")
_ADD_COUNTS = ("INSERT INTO incident_alert_counts (incident_id, alertname, firing, resolved) VALUES (?, ?, ?, ?) "
               "ON CONFLICT (incident_id, alertname) DO UPDATE SET "
               "firing = incident_alert_counts.firing + excluded.firing, "
               "resolved = incident_alert_counts.resolved + excluded.resolved")
_ADD_FIRING = "UPDATE incidents SET alerts_firing = alerts_firing + ? WHERE id = ?"
_ADD_FIRING_ACTIVE = "UPDATE incidents SET alerts_firing = alerts_firing + ?, last_alert_at = ?, updated_at = ? WHERE id = ?"
# PostgreSQL: both in one statement and one round trip, the changes as JSON documents (a data-modifying
# CTE runs once whether or not the outer statement reads it), answering the incidents' counts after it:
# the names it changed as RETURNING gives them, the others as they were (the outer SELECT's snapshot
# does not see its own CTEs' writes, so a name appears once, from one side or the other)
_PG_ADD = ("WITH counts AS (INSERT INTO incident_alert_counts (incident_id, alertname, firing, resolved) "
           "SELECT incident_id, alertname, firing, resolved FROM json_to_recordset(?::json) "
           "AS c(incident_id int, alertname text, firing int, resolved int) "
           "ON CONFLICT (incident_id, alertname) DO UPDATE SET "
           "firing = incident_alert_counts.firing + excluded.firing, "
           "resolved = incident_alert_counts.resolved + excluded.resolved "
           "RETURNING incident_id, alertname, firing, resolved), "
           "bumped AS (UPDATE incidents SET alerts_firing = alerts_firing + i.add, "
           "last_alert_at = CASE WHEN i.active THEN ?::timestamptz ELSE last_alert_at END, "
           "updated_at = CASE WHEN i.active THEN ?::timestamptz ELSE updated_at END "
           "FROM json_to_recordset(?::json) AS i(id int, add int, active boolean) WHERE incidents.id = i.id "
           "RETURNING incidents.id) "
           "SELECT incident_id, alertname, firing, resolved FROM counts UNION ALL "
           "SELECT c.incident_id, c.alertname, c.firing, c.resolved FROM incident_alert_counts c "
           "WHERE c.incident_id IN (SELECT id FROM bumped) AND NOT EXISTS "
           "(SELECT 1 FROM counts n WHERE n.incident_id = c.incident_id AND n.alertname = c.alertname)")
_READ_COUNTS = "SELECT alertname, firing, resolved FROM incident_alert_counts WHERE incident_id = ?"
_SET_STATUS = "UPDATE alerts SET status = ?, ends_at = ?, updated_at = ? WHERE id = ?"
_SET_ONSET = "UPDATE incidents SET started_at = ?, severity = ?, slo_due_at = ?, updated_at = ? WHERE id = ?"
_SET_COMPONENT = "UPDATE incidents SET component = ?, group_key = ?, updated_at = ? WHERE id = ?"

Key = tuple[str, datetime]  # an alert instance: fingerprint, startsAt
Counts = dict[tuple[str, str], int]  # (status, alertname) -> alerts


class Stored(NamedTuple):
    """What a delivery needs of a stored instance."""

    id: int
    status: str
    incident_id: int | None


def lock_clusters(raw: RawSql, clusters: set[str]) -> None:
    """Serialise deliveries per cluster on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
    raw.batch(lock_statements(raw, clusters))


def lock_statements(raw: RawSql, clusters: set[str]) -> list[Statement]:
    """``lock_clusters`` as statements, in one order for every writer (two never wait on each other)."""
    if raw.sqlite:
        return []
    return [("SELECT pg_advisory_xact_lock(hashtext(?))", [f"incident-bot:alerts:{cluster}"])
            for cluster in sorted(clusters)]


def stored(raw: RawSql, fingerprints: set[str]) -> dict[Key, Stored]:
    """The stored instances of these fingerprints (columns only: a storm re-sends thousands)."""
    return read_stored(raw, raw.batch(lookup_statements(raw, fingerprints)))


def lookup_statements(raw: RawSql, fingerprints: set[str]) -> list[Statement]:
    """``stored`` as statements, to travel with others (``RawSql.batch``); ``read_stored`` reads their rows."""
    ordered = sorted(fingerprints)
    return [(_LOOKUP.format(marks(len(chunk))), chunk) if raw.sqlite else (_PG_LOOKUP, [chunk])
            for chunk in chunked(ordered)]


def read_stored(raw: RawSql, answers: Sequence[Sequence[tuple[Any, ...]]]) -> dict[Key, Stored]:
    found: dict[Key, Stored] = {}
    for rows in answers:
        for row_id, fingerprint, starts_at, status, incident_id in rows:
            found[(fingerprint, raw.read_time(starts_at))] = Stored(row_id, status, incident_id)  # type: ignore[index]  # starts_at is NOT NULL
    return found


def insert(raw: RawSql, rows: Sequence[dict[str, Any]]) -> None:
    """Insert alert rows (``COLUMNS``); an instance already stored fails the statement (``is_stored_instance``)."""
    raw.batch(insert_statements(raw, rows))


def insert_statements(raw: RawSql, rows: Sequence[dict[str, Any]]) -> list[Statement]:
    """``insert`` as statements, to travel with others (``RawSql.batch``).

    No ``ON CONFLICT``: the ingestion inserts only instances its lookup did not find, under the
    cluster's lock, so a conflict means a writer that skipped the lock stored one meanwhile. The
    unique index says so, and the transaction rolls back before anything is counted twice; the
    server skips the speculative insertion and the rows it would return.
    """
    statements: list[Statement] = []
    for chunk in chunked(rows):
        if raw.sqlite:
            values = [raw.time(row[c]) if c in _TIMES else raw.json(row[c]) if c in _JSON else row[c]
                      for row in chunk for c in COLUMNS]
            statements.append((_INSERT.format(marks(len(chunk), len(COLUMNS))), values))
        else:
            # the rows as they are (json_to_recordset takes the columns it names); instants as ISO 8601
            statements.append((_PG_INSERT, [json.dumps(chunk, default=raw.json_time)]))
    return statements


def is_stored_instance(exc: IntegrityError) -> bool:
    """Whether the insert failed because an alert instance was already stored (and nothing else)."""
    diag = getattr(exc.orig, "diag", None)
    if diag is not None:  # psycopg names the constraint
        return getattr(diag, "constraint_name", None) == INSTANCE_CONSTRAINT
    return "UNIQUE constraint failed: alerts.fingerprint, alerts.starts_at" in str(exc.orig)


def status_statement(raw: RawSql, alert_id: int, status: str, ends_at: datetime | None, now: datetime) -> Statement:
    """A stored instance's new status (firing again, or resolved with its end)."""
    return _SET_STATUS, [status, raw.time(ends_at), raw.time(now), alert_id]


def set_onset(raw: RawSql, incident_id: int, started_at: datetime, severity: str, now: datetime) -> None:
    """A joining alert moved the incident's T0 or raised its severity: the SLO watcher looks again now."""
    raw.rows(_SET_ONSET, [raw.time(started_at), severity, raw.time(now), raw.time(now), incident_id])


def set_component(raw: RawSql, incident_id: int, component: str, group_key: str, now: datetime) -> None:
    """A cascade's incident moves to its upstream component (and group key)."""
    raw.rows(_SET_COMPONENT, [component, group_key, raw.time(now), incident_id])


def add_counts(raw: RawSql, by_name: Sequence[tuple[int, str, int, int]],
               firing: dict[int, int], active: set[int], now: datetime) -> dict[int, Counts] | None:
    """Add (incident, alertname, firing, resolved) changes; move ``active`` incidents' activity to ``now``.

    On PostgreSQL the same round trip answers the incidents' counts after the change (what the
    delivery's summary shows); on SQLite, where a statement costs microseconds, None: read them.
    """
    incident_ids = sorted(set(firing) | active)
    if not raw.sqlite:
        return read_counts_after(incident_ids, raw.rows(*counts_statement(raw, by_name, firing, active, now)))
    if by_name:
        raw.run_many(_ADD_COUNTS, by_name)
    for incident_id in incident_ids:
        if incident_id in active:  # a new alert is activity: updated_at moves with it
            raw.rows(_ADD_FIRING_ACTIVE, [firing.get(incident_id, 0), raw.time(now), raw.time(now), incident_id])
        else:
            raw.rows(_ADD_FIRING, [firing.get(incident_id, 0), incident_id])
    return None


def counts_statement(raw: RawSql, by_name: Sequence[tuple[int, str, int, int]], firing: dict[int, int],
                     active: set[int], now: datetime) -> Statement:
    """``add_counts`` on PostgreSQL as one statement; ``read_counts_after`` reads its rows."""
    names = [{"incident_id": i, "alertname": n, "firing": f, "resolved": r} for i, n, f, r in by_name]
    incidents = [{"id": i, "add": firing.get(i, 0), "active": i in active} for i in sorted(set(firing) | active)]
    return _PG_ADD, [json.dumps(names), raw.time(now), raw.time(now), json.dumps(incidents)]


def read_counts_after(incident_ids: Sequence[int], rows: Sequence[tuple[Any, ...]]) -> dict[int, Counts]:
    after: dict[int, Counts] = {i: {} for i in incident_ids}
    for incident_id, name, f, r in rows:
        _count(after.setdefault(incident_id, {}), name, f, r)
    return after


def _count(counts: Counts, name: str, firing: int, resolved: int) -> None:
    if firing:
        counts[("firing", name)] = firing
    if resolved:
        counts[("resolved", name)] = resolved


def read_counts(raw: RawSql, incident_id: int) -> Counts:
    """The incident's alerts by status and name (one row per name, never a scan of its alerts)."""
    counts: Counts = {}
    for name, f, r in raw.rows(_READ_COUNTS, [incident_id]):
        _count(counts, name, f, r)
    return counts
