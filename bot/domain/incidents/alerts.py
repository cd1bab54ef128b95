"""Alertmanager ingestion: store every alert, open or join incidents, summarise for chat.

One webhook delivery is one transaction.  Every alert instance (fingerprint +
startsAt) is stored once, with a batch insert that ignores instances already
stored, so Alertmanager's re-sends (every ``group_interval``, after a restart,
from a second replica) change nothing.  Each alert's *own* status decides:

* a new firing alert opens an incident or joins one (``grouping``); T0 is the
  earliest ``startsAt`` of the incident's alerts;
* a firing alert that comes back resolved is a timeline event; when the last
  firing alert of an incident resolves, the commander is *offered* to resolve
  it (an outbox notice), never resolved automatically: an alert also
  resolves when its series disappears (a dead etcd member's ``etcdNoLeader``),
  so a resolved alert is not proof of recovery.

Chat is told in summaries, never one message per alert (``alert_notices``);
what a joining alert changes of its incident (T0, severity, the root of a
cascade) is in ``alert_joining``.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.domain.incidents import alert_sql, alert_tally, fleet
from bot.core.store import timeline
from bot.domain.incidents.alert_joining import join, move_to_root
from bot.domain.incidents.alert_notices import EVIDENCE_ALERTS, Touched, brief, summarise
from bot.domain.incidents.alert_payload import SOURCE, AlertIn, Notification
from bot.domain.incidents.alert_rules import Classification, classify, more_severe
from bot.domain.incidents.grouping import GroupKeys, OpenIncident, choose, open_statements, read_open, upstream_rank
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of
from bot.domain.slo import paging, rota
from bot.core.store.db import Database
from bot.core.store.group_commit import GroupCommit
from bot.core.store.models import Alert, Incident
from bot.core.store.raw import RawSql, Statement
from bot.domain.incidents.alert_sql import Counts, Key, Stored


@dataclass
class IngestResult:
    """What one delivery changed (the webhook answers it; the benchmark counts it)."""

    received: int = 0
    stored: int = 0
    resolved: int = 0
    unchanged: int = 0
    opened: list[int] = field(default_factory=list)
    joined: dict[int, int] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.stored or self.resolved)

    def as_json(self) -> dict[str, Any]:
        return {"received": self.received, "stored": self.stored, "resolved": self.resolved,
                "unchanged": self.unchanged, "opened": [ref_of(i) for i in self.opened],
                "joined": {ref_of(i): n for i, n in sorted(self.joined.items())}}


@dataclass
class _Incoming:
    alert: AlertIn
    cls: Classification
    source: Notification  # the delivery it came in (a batch holds several)
    origin: int = 0  # its delivery's index in the batch: whose answer counts it


def title_for(alert: AlertIn, cls: Classification) -> str:
    summary = alert.summary()
    title = f"{cls.component}: {alert.alertname}" + (f" — {summary}" if summary != alert.alertname else "")
    return title if len(title) <= 200 else title[:197] + "..."


class KnownAlerts:
    """The status of alert instances this process has committed, newest kept (bounded).

    Alertmanager re-sends every alert of a group at each ``group_interval``; in
    a storm nearly every alert of a delivery is one already stored with the
    same status.  Those are answered after one column-only read instead of
    the ingest transaction with its cluster locks.  The cache is only a hint:
    another replica may have stored a newer status (firing to A, resolved to
    B, firing again to A), so a hit is confirmed against the stored row, and
    the database stays the judge.
    """

    def __init__(self, capacity: int = 200_000) -> None:
        self.capacity = capacity
        self._items: OrderedDict[tuple[str, datetime], str] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: tuple[str, datetime]) -> str | None:
        with self._lock:
            return self._items.get(key)

    def update(self, pairs: Iterable[tuple[tuple[str, datetime], str]]) -> None:
        with self._lock:
            for key, status in pairs:
                self._items[key] = status
                self._items.move_to_end(key)
            while len(self._items) > self.capacity:
                self._items.popitem(last=False)


class AlertIngestor:
    """Turns Alertmanager deliveries into stored alerts, incidents and summaries."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, incidents: Incidents) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.incidents = incidents
        self.known = KnownAlerts()
        self._batches: GroupCommit[Notification, IngestResult] = GroupCommit(
            self.ingest_many, weight=lambda n: len(n.alerts), max_weight=5_000)

    # -- the one entry point -------------------------------------------------------
    def ingest(self, notification: Notification) -> IngestResult:
        """Store one delivery; deliveries queued meanwhile share its transaction (``group_commit``)."""
        return self._batches.submit(notification)

    def _fresh(self, notification: Notification) -> tuple[IngestResult, list[AlertIn]]:
        """The delivery's alerts not already stored with the same status (no write lock needed for those)."""
        result = IngestResult(received=len(notification.alerts))
        hits = [a for a in notification.alerts if self.known.get(a.key) == a.status]
        if hits:  # another replica may have changed them since: the stored row decides (a column-only read)
            with self.db.reading() as session:
                stored = alert_sql.stored(RawSql.of(session), {a.fingerprint for a in hits})
            hits = [a for a in hits if (row := stored.get(a.key)) is not None and row.status == a.status]
        unchanged = {a.key for a in hits}
        fresh = [a for a in notification.alerts if a.key not in unchanged]
        result.unchanged = len(notification.alerts) - len(fresh)
        return result, fresh

    def ingest_many(self, notifications: list[Notification]) -> list[IngestResult]:
        """Several deliveries in one transaction: one lookup, one insert, one summary per incident."""
        try:
            return self._ingest_many(notifications)
        except StoredMeanwhile:  # once more: the lookup now sees what the other writer stored
            return self._ingest_many(notifications)

    def _ingest_many(self, notifications: list[Notification]) -> list[IngestResult]:
        results: list[IngestResult] = []
        incoming: list[_Incoming] = []
        for origin, notification in enumerate(notifications):
            result, fresh = self._fresh(notification)
            results.append(result)
            incoming += [_Incoming(a, classify(a.labels, self.settings.alerting), notification, origin) for a in fresh]
        if not incoming:
            return results  # re-sends of what is stored: no write transaction
        incoming = self._dedupe_payload(incoming)
        with self.db.session(batches=True) as session:
            raw = RawSql.of(session)
            now = self.clock.now()
            existing, open_by_key = self._look_up(raw, incoming)
            new_firing: list[_Incoming] = []
            new_resolved: list[_Incoming] = []
            transitions: list[tuple[Stored, _Incoming]] = []
            for item in incoming:
                row = existing.get(item.alert.key)
                if row is None:
                    (new_firing if item.alert.status == "firing" else new_resolved).append(item)
                elif row.status != item.alert.status:
                    transitions.append((row, item))
                else:
                    results[item.origin].unchanged += 1
            if new_firing or new_resolved or transitions:
                touched: dict[int, Touched] = {}
                rows = self._assign(session, open_by_key, new_firing, new_resolved, now, touched, results)
                counts = self._write(raw, rows, transitions, now, touched, results)
                last = summarise(session, self.settings, touched, now, counts=counts)
                session.flush()  # what the ORM holds goes first: the summary's statements end the transaction
                raw.batch(last, commit=True)
        self.known.update((i.alert.key, i.alert.status) for i in incoming)  # committed: safe to remember
        return results

    def _look_up(self, raw: RawSql, incoming: list[_Incoming]) -> tuple[dict[Key, Stored],
                                                                          dict[str, list[OpenIncident]]]:
        """Under the delivery's cluster locks: its instances already stored, the open incidents it may join.

        On PostgreSQL the locks and both reads travel together (``RawSql.batch``, with the
        transaction's ``BEGIN``): the server grants the locks before it starts the reads, so each
        read's snapshot holds everything committed before the locks were granted.
        """
        group_keys = GroupKeys(self.settings.alerting)
        keys: set[str] = set()
        for item in incoming:  # every item's: those already stored join nothing, and cost only a wider read
            keys.update(group_keys.of(item.cls.cluster, item.cls.component)[0])
        locks = alert_sql.lock_statements(raw, {i.cls.cluster for i in incoming})
        lookups = alert_sql.lookup_statements(raw, {i.alert.fingerprint for i in incoming})
        answers = raw.batch([*locks, *lookups, *open_statements(keys)])[len(locks):]
        return alert_sql.read_stored(raw, answers[:len(lookups)]), read_open(raw, answers[len(lookups):])

    # -- steps ---------------------------------------------------------------------
    @staticmethod
    def _dedupe_payload(items: list[_Incoming]) -> list[_Incoming]:
        """One alert instance may appear once per delivery; keep the last word on it."""
        seen: dict[tuple[str, datetime], _Incoming] = {}
        for item in items:
            seen[item.alert.key] = item
        return list(seen.values())

    def _assign(self, session: Session, open_by_key: dict[str, list[OpenIncident]], new_firing: list[_Incoming],
                new_resolved: list[_Incoming], now: datetime, touched: dict[int, Touched],
                results: list[IngestResult]) -> list[tuple[dict[str, Any], int]]:
        """Decide the incident of every new alert, opening incidents where none groups them."""
        alerting = self.settings.alerting
        window = timedelta(seconds=alerting.group_window_seconds)
        group_keys = GroupKeys(alerting)
        # upstream components first, earliest alerts first: the root opens, the cascade joins
        new_firing.sort(key=lambda i: (upstream_rank(i.cls.component, alerting), i.alert.starts_at))
        pending: dict[str, list[_Incoming]] = {}  # group key -> alerts waiting for a new incident
        pending_fleet: dict[str, str] = {}  # fleet key -> the group key its alerts wait under
        fleet_open: dict[str, tuple[OpenIncident, Incident] | None] = {}
        target: dict[tuple[str, datetime], int | str] = {}
        for item in new_firing:
            keys_for, downstream = group_keys.of(item.cls.cluster, item.cls.component)
            found = choose(open_by_key, keys_for, item.alert.starts_at, window, downstream)
            if found is not None:
                target[item.alert.key] = found.id
                join(session, found, item.alert, item.cls, now, touched)
                move_to_root(session, alerting.depends_on, found, item.alert, item.cls, open_by_key, now)
                continue
            other_cluster = self._fleet_join(session, item, now, fleet_open)
            if other_cluster is not None:  # the same fault in another cluster of the fleet
                target[item.alert.key] = other_cluster.id
                join(session, other_cluster, item.alert, item.cls, now, touched)
                continue
            waiting = next((k for k in keys_for if k in pending), None)
            fleet_key = self._fleet_key(item)
            if waiting is None and fleet_key is not None:
                waiting = pending_fleet.get(fleet_key)
            if waiting is None:
                waiting = item.cls.group_key
                pending[waiting] = []
                if fleet_key is not None:
                    pending_fleet[fleet_key] = waiting
            pending[waiting].append(item)
            target[item.alert.key] = waiting
        opened: dict[str, int] = {}
        for key, items in pending.items():
            incident = self._open(session, key, items, now)
            opened[key] = incident.id
            for origin in sorted({i.origin for i in items}):
                results[origin].opened.append(incident.id)
            open_by_key.setdefault(key, []).insert(0, OpenIncident.of(incident, len(items), now))
            touched.setdefault(incident.id, Touched(opened_here=True, row=incident)).new.extend(i.alert for i in items)
        rows = []
        for item in new_firing:
            dest = target[item.alert.key]
            incident_id = opened[dest] if isinstance(dest, str) else dest
            if not touched[incident_id].opened_here:
                joined = results[item.origin].joined
                joined[incident_id] = joined.get(incident_id, 0) + 1
            rows.append((self._row(item, incident_id, now), item.origin))
        for item in new_resolved:  # never seen firing: kept, attached to an open incident of its group if any
            keys_for, downstream = group_keys.of(item.cls.cluster, item.cls.component)
            found = choose(open_by_key, keys_for, item.alert.starts_at, window, downstream)
            home = found.id if found else None
            if home is not None:
                touched.setdefault(home, Touched()).resolved.append(item.alert)
                results[item.origin].resolved += 1
            rows.append((self._row(item, home, now), item.origin))
        return rows

    def _open(self, session: Session, key: str, items: list[_Incoming], now: datetime) -> Incident:
        # the incident is about the root component (the key's); T0 is the earliest alert of all
        first = min((i for i in items if i.cls.group_key == key), key=lambda i: i.alert.starts_at)
        t0 = min(i.alert.starts_at for i in items)
        severity = first.cls.severity
        for item in items:
            severity = more_severe(severity, item.cls.severity)
        notification = first.source
        evidence = {
            "alertmanager_group": notification.group_key,
            "alerts": [brief(i.alert) for i in items[:EVIDENCE_ALERTS]],
            "alert_count": len(items),
            **({"generator_url": first.alert.generator_url} if first.alert.generator_url else {}),
        }
        incident = self.incidents.declare(
            title_for(first.alert, first.cls), actor=SOURCE, source=SOURCE, severity=severity,
            cluster=first.cls.cluster, component=first.cls.component, started_at=t0,
            group_key=key, evidence=evidence, extra={"detected_by": SOURCE}, session=session,
        )
        incident.fleet_key = self._fleet_key(first)
        starts: dict[str, datetime] = {}
        for item in items:
            starts[item.cls.cluster] = min(item.alert.starts_at, starts.get(item.cls.cluster, item.alert.starts_at))
        fleet.gather(session, incident, starts, now, why=f"{first.alert.alertname} ({incident.fleet_key})")
        self._page_rule_users(session, incident, {u for i in items for u in i.cls.page}, now)
        return incident

    def _fleet_key(self, item: _Incoming) -> str | None:
        return fleet.fleet_key({**item.alert.labels, "alertname": item.alert.alertname}, self.settings.alerting.fleet)

    def _fleet_join(self, session: Session, item: _Incoming, now: datetime,
                    cache: dict[str, tuple[OpenIncident, Incident] | None]) -> OpenIncident | None:
        """An open incident of the same fault in other clusters (``alerting.fleet``); this cluster joins it."""
        key = self._fleet_key(item)
        if key is None:
            return None
        if key not in cache:
            row = fleet.find_open(session, key, item.alert.starts_at, self.settings.alerting.fleet)
            cache[key] = (OpenIncident.of(row, int(row.alerts_firing or 0), now), row) if row is not None else None
        found = cache[key]
        if found is None:
            return None
        snapshot, row = found
        fleet.add(session, row, item.cls.cluster, started_at=item.alert.starts_at, now=now,
                  why=f"{item.alert.alertname} ({key})")
        return snapshot

    def _page_rule_users(self, session: Session, incident: Incident, users: set[str], now: datetime) -> None:
        """Users named by an alert rule's ``page`` are paged besides the on-call commander."""
        oncall = rota.primary(self.settings.oncall, now, cluster=incident.cluster, component=incident.component)
        for user in sorted(users - {oncall}):
            paging.page(session, self.settings, incident_id=incident.id, user=user, now=now, notifies=True,
                        reason=f"{ref_of(incident.id)} {incident.title} ({incident.severity})",
                        dedupe_key=f"page:{incident.id}:rule:{user}")
            timeline.record(session, incident.id, "page.queued", f"paging @{user} (alert rule)", at=now,
                            actor="system", source="system", data={"user": user, "rule": True}, post=False)

    @staticmethod
    def _row(item: _Incoming, incident_id: int | None, now: datetime) -> dict[str, Any]:
        a = item.alert
        return {"incident_id": incident_id, "fingerprint": a.fingerprint, "alertname": a.alertname,
                "status": a.status, "cluster": item.cls.cluster, "component": item.cls.component,
                "severity": item.cls.severity, "labels": a.labels, "annotations": a.annotations,
                "starts_at": a.starts_at, "ends_at": a.ends_at, "generator_url": a.generator_url,
                "group_key": item.source.group_key or None, "received_at": item.source.arrived_at or now,
                "updated_at": now}

    @staticmethod
    def _write(raw: RawSql, rows: list[tuple[dict[str, Any], int]], transitions: list[tuple[Stored, _Incoming]],
               now: datetime, touched: dict[int, Touched], results: list[IngestResult]) -> dict[int, Counts] | None:
        """The new rows, the status changes and the counts they make; the incidents' counts after them.

        Under the cluster locks no other writer stores these instances, so every row the lookup did
        not find is inserted, and on PostgreSQL the counts travel with the insert (one round trip).
        The unique index still checks it: an instance stored meanwhile by a writer that skipped the
        lock fails the insert with ``StoredMeanwhile``, and the transaction rolls back before
        anything is counted twice.
        """
        tally = alert_tally.Tally()
        for row, origin in rows:
            results[origin].stored += 1
            if row["incident_id"] is not None:
                tally.stored(row["incident_id"], row["alertname"], row["status"])
        statuses = [_transition(row, item, now, touched, results, tally, raw) for row, item in transitions]
        counting = [] if raw.sqlite else [tally.statement(raw, now)]
        try:
            answers = raw.batch([*alert_sql.insert_statements(raw, [row for row, _ in rows]), *statuses, *counting])
        except IntegrityError as exc:
            if alert_sql.is_stored_instance(exc):
                raise StoredMeanwhile("an alert instance was stored by another writer inside this delivery's "
                                      "cluster lock") from exc
            raise
        return tally.apply(raw, now) if raw.sqlite else tally.read(answers[-1])


class StoredMeanwhile(RuntimeError):
    """Alert instances this transaction found absent were stored before its insert (it is tried again)."""


def _transition(row: Stored, item: _Incoming, now: datetime, touched: dict[int, Touched],
                results: list[IngestResult], tally: alert_tally.Tally, raw: RawSql) -> Statement:
    """A stored instance changes status: what it changes in the answer, the summary and the counts."""
    if row.incident_id is not None:
        tally.changed(row.incident_id, item.alert.alertname, item.alert.status)
    result = results[item.origin]
    if item.alert.status == "resolved":
        result.resolved += 1
        if row.incident_id is not None:
            touched.setdefault(row.incident_id, Touched()).resolved.append(item.alert)
    elif row.incident_id is not None:  # resolved earlier, firing again (same instance)
        touched.setdefault(row.incident_id, Touched()).new.append(item.alert)
        result.joined[row.incident_id] = result.joined.get(row.incident_id, 0) + 1
    return alert_sql.status_statement(raw, row.id, item.alert.status, item.alert.ends_at, now)


def alert_counts(db: Database) -> dict[str, int]:
    """Stored alerts by status, for /metrics."""
    with db.reading() as session:
        return {status: n for status, n in session.execute(
            select(col(Alert.status), func.count()).group_by(col(Alert.status)))}
