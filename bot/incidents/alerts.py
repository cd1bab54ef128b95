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

Chat is told in summaries, never one message per alert: a new incident gets
the core's announce card and page; later changes of one delivery become one
timeline event per incident and one coalesced notice (``coalesce_key``), so a
storm of 10,000 alerts produces a handful of chat messages.
"""

from __future__ import annotations

import hashlib
import threading
from collections import Counter, OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from sqlalchemy import func, select, text, update
from sqlmodel import Session

from bot.clock import Clock, utc
from bot.config import Settings
from bot.incidents import alert_tally, fleet
from bot.store.messages import Notice
from bot.store.states import ACTIVE_STATES
from bot.store import timeline
from bot.incidents.alert_payload import AlertIn, Notification
from bot.incidents.alert_rules import Classification, classify, more_severe
from bot.incidents.grouping import OpenIncident, candidate_keys, choose, downstream_keys, load_open, upstream_rank
from bot.incidents.service import Incidents, ref_of
from bot.slo import paging, rota
from bot.store import outbox
from bot.store.db import Database
from bot.store.group_commit import GroupCommit
from bot.store.models import Alert, Incident, Participant

SOURCE = "alertmanager"
_CHUNK = 500  # bound on IN (...) lists and insert batches
_EVIDENCE_ALERTS = 20
# an incident may move to the upstream component of a cascade until its cause is recorded
ROOT_MOVABLE_STATES = frozenset({"detected", "notified", "diagnosing"})


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


@dataclass
class _Touched:
    """Per incident, what this delivery did to it (for one event and one notice)."""

    new: list[AlertIn] = field(default_factory=list)
    resolved: list[AlertIn] = field(default_factory=list)
    opened_here: bool = False


def _key_digest(parts: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]


def _instance(alert: AlertIn) -> str:
    return f"{alert.fingerprint}@{alert.starts_at.isoformat()}"


def _brief(alert: AlertIn) -> dict[str, Any]:
    labels = alert.labels
    return {"alertname": alert.alertname, "fingerprint": alert.fingerprint,
            "startsAt": alert.starts_at.isoformat(), "status": alert.status,
            **({"instance": labels["instance"]} if "instance" in labels else {}),
            **({"endsAt": alert.ends_at.isoformat()} if alert.ends_at else {}),
            "summary": alert.summary()[:200]}


def _names(alerts: list[AlertIn], limit: int = 4) -> str:
    counts = Counter(a.alertname for a in alerts).most_common()
    shown = [f"{name} ×{n}" if n > 1 else name for name, n in counts[:limit]]
    if len(counts) > limit:
        shown.append(f"+{len(counts) - limit} more names")
    return ", ".join(shown)


def title_for(alert: AlertIn, cls: Classification) -> str:
    summary = alert.summary()
    title = f"{cls.component}: {alert.alertname}" + (f" — {summary}" if summary != alert.alertname else "")
    return title if len(title) <= 200 else title[:197] + "..."


class _Stored(NamedTuple):
    id: int
    status: str
    incident_id: int | None


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
                stored = self._existing(session, hits)
            hits = [a for a in hits if (row := stored.get(a.key)) is not None and row.status == a.status]
        unchanged = {a.key for a in hits}
        fresh = [a for a in notification.alerts if a.key not in unchanged]
        result.unchanged = len(notification.alerts) - len(fresh)
        return result, fresh

    def ingest_many(self, notifications: list[Notification]) -> list[IngestResult]:
        """Several deliveries in one transaction: one lookup, one insert, one summary per incident."""
        results: list[IngestResult] = []
        incoming: list[_Incoming] = []
        for origin, notification in enumerate(notifications):
            result, fresh = self._fresh(notification)
            results.append(result)
            incoming += [_Incoming(a, classify(a.labels, self.settings.alerting), notification, origin) for a in fresh]
        if not incoming:
            return results  # re-sends of what is stored: no write transaction
        incoming = self._dedupe_payload(incoming)
        with self.db.session() as session:
            self._lock_clusters(session, {i.cls.cluster for i in incoming})
            now = self.clock.now()
            existing = self._existing(session, [i.alert for i in incoming])
            new_firing: list[_Incoming] = []
            new_resolved: list[_Incoming] = []
            transitions: list[tuple[_Stored, _Incoming]] = []
            for item in incoming:
                row = existing.get(item.alert.key)
                if row is None:
                    (new_firing if item.alert.status == "firing" else new_resolved).append(item)
                elif row.status != item.alert.status:
                    transitions.append((row, item))
                else:
                    results[item.origin].unchanged += 1
            if new_firing or new_resolved or transitions:
                touched: dict[int, _Touched] = {}
                tally = alert_tally.Tally()
                rows = self._assign(session, new_firing, new_resolved, now, touched, results)
                self._insert(session, rows, tally, results)
                self._apply_transitions(session, transitions, now, touched, results, tally)
                tally.apply(session, now, sqlite=self.db.is_sqlite)
                self._summarise(session, touched, now)
        self.known.update((i.alert.key, i.alert.status) for i in incoming)  # committed: safe to remember
        return results

    # -- steps ---------------------------------------------------------------------
    @staticmethod
    def _dedupe_payload(items: list[_Incoming]) -> list[_Incoming]:
        """One alert instance may appear once per delivery; keep the last word on it."""
        seen: dict[tuple[str, datetime], _Incoming] = {}
        for item in items:
            seen[item.alert.key] = item
        return list(seen.values())

    def _lock_clusters(self, session: Session, clusters: set[str]) -> None:
        """Serialise deliveries per cluster on PostgreSQL (SQLite's BEGIN IMMEDIATE already does)."""
        if self.db.is_sqlite:
            return
        for cluster in sorted(clusters):
            session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"incident-bot:alerts:{cluster}"})

    @staticmethod
    def _existing(session: Session, alerts: list[AlertIn]) -> dict[tuple[str, datetime], "_Stored"]:
        """The stored instances among ``alerts`` (columns only: a storm re-sends thousands)."""
        fingerprints = sorted({a.fingerprint for a in alerts})
        found: dict[tuple[str, datetime], _Stored] = {}
        for start in range(0, len(fingerprints), _CHUNK):
            chunk = fingerprints[start:start + _CHUNK]
            for row in session.execute(
                select(Alert.id, Alert.fingerprint, Alert.starts_at, Alert.status, Alert.incident_id)
                .where(Alert.fingerprint.in_(chunk))  # type: ignore[attr-defined]
            ):
                found[(row.fingerprint, utc(row.starts_at))] = _Stored(row.id, row.status, row.incident_id)
        return found

    def _assign(self, session: Session, new_firing: list[_Incoming], new_resolved: list[_Incoming],
                now: datetime, touched: dict[int, _Touched],
                results: list[IngestResult]) -> list[tuple[dict[str, Any], int]]:
        """Decide the incident of every new alert, opening incidents where none groups them."""
        alerting = self.settings.alerting
        window = timedelta(seconds=alerting.group_window_seconds)
        keys: set[str] = set()
        for item in new_firing + new_resolved:
            keys.update(candidate_keys(item.cls.cluster, item.cls.component, alerting))
        open_by_key = load_open(session, keys)
        # upstream components first, earliest alerts first: the root opens, the cascade joins
        new_firing.sort(key=lambda i: (upstream_rank(i.cls.component, alerting), i.alert.starts_at))
        pending: dict[str, list[_Incoming]] = {}  # group key -> alerts waiting for a new incident
        pending_fleet: dict[str, str] = {}  # fleet key -> the group key its alerts wait under
        fleet_open: dict[str, OpenIncident | None] = {}
        target: dict[tuple[str, datetime], int | str] = {}
        for item in new_firing:
            keys_for = candidate_keys(item.cls.cluster, item.cls.component, alerting)
            found = choose(open_by_key, keys_for, item.alert.starts_at, window,
                           downstream_keys(item.cls.cluster, item.cls.component, alerting))
            if found is not None:
                target[item.alert.key] = found.incident.id  # type: ignore[assignment]
                self._join(session, found, item, now, touched)
                self._move_to_root(session, found, item, open_by_key, now)
                continue
            other_cluster = self._fleet_join(session, item, now, fleet_open)
            if other_cluster is not None:  # the same fault in another cluster of the fleet
                target[item.alert.key] = other_cluster.incident.id  # type: ignore[assignment]
                self._join(session, other_cluster, item, now, touched)
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
            opened[key] = incident.id  # type: ignore[assignment]
            for origin in sorted({i.origin for i in items}):
                results[origin].opened.append(incident.id)  # type: ignore[arg-type]
            open_by_key.setdefault(key, []).insert(0, OpenIncident(incident, len(items), now))
            touched.setdefault(incident.id, _Touched(opened_here=True)).new.extend(i.alert for i in items)  # type: ignore[arg-type]
        rows = []
        for item in new_firing:
            dest = target[item.alert.key]
            incident_id = opened[dest] if isinstance(dest, str) else dest
            if not touched[incident_id].opened_here:
                joined = results[item.origin].joined
                joined[incident_id] = joined.get(incident_id, 0) + 1
            rows.append((self._row(item, incident_id, now), item.origin))
        for item in new_resolved:  # never seen firing: kept, attached to an open incident of its group if any
            found = choose(open_by_key, candidate_keys(item.cls.cluster, item.cls.component, alerting),
                           item.alert.starts_at, window, downstream_keys(item.cls.cluster, item.cls.component, alerting))
            incident_id = found.incident.id if found else None
            if incident_id is not None:
                touched.setdefault(incident_id, _Touched()).resolved.append(item.alert)
                results[item.origin].resolved += 1
            rows.append((self._row(item, incident_id, now), item.origin))
        return rows

    def _join(self, session: Session, found: OpenIncident, item: _Incoming, now: datetime,
              touched: dict[int, _Touched]) -> None:
        """An alert joins an incident: T0 moves earlier, severity goes up, if the alert says so."""
        row = found.incident
        found.firing += 1
        touched.setdefault(row.id, _Touched()).new.append(item.alert)  # type: ignore[arg-type]
        old_t0, old_severity = row.started_at, row.severity
        if item.alert.starts_at < utc(row.started_at):  # type: ignore[arg-type]
            old = utc(row.started_at)  # type: ignore[arg-type]
            row.started_at = item.alert.starts_at
            timeline.record(session, row.id, "incident.t0_moved",  # type: ignore[arg-type]
                            f"T0 moved from {old:%H:%M:%S} to {item.alert.starts_at:%H:%M:%S}: "
                            f"{item.alert.alertname} started earlier",
                            at=now, actor=SOURCE, source=SOURCE,
                            data={"from": old.isoformat(), "to": item.alert.starts_at.isoformat(),
                                  "alert": _brief(item.alert)},
                            dedupe_key=f"t0:{_instance(item.alert)}", post=False)
        raised = more_severe(row.severity, item.cls.severity)
        if raised != row.severity:
            timeline.record(session, row.id, "incident.severity_raised",  # type: ignore[arg-type]
                            f"severity {row.severity} → {raised}: {item.alert.alertname} is {item.cls.severity}",
                            at=now, actor=SOURCE, source=SOURCE, data={"from": row.severity, "to": raised},
                            dedupe_key=f"sev:{raised}:{_instance(item.alert)}", post=False)
            row.severity = raised
        if row.started_at != old_t0 or row.severity != old_severity:
            row.slo_due_at = now  # its budgets' instants moved: the watcher looks again at its next tick
        row.updated_at = now
        session.add(row)

    def _move_to_root(self, session: Session, found: OpenIncident, item: _Incoming,
                      open_by_key: dict[str, list[OpenIncident]], now: datetime) -> None:
        """An upstream alert joined a young downstream incident: the incident is about the upstream part.

        Deliveries race, so a cascade's apiserver alerts may open the incident a moment
        before the etcd alerts that explain them.  Until a cause is recorded, the
        incident moves to the component it depends on (and its group key with it,
        so later alerts of either part keep joining it); afterwards it keeps what
        people decided.
        """
        row = found.incident
        upstream = self.settings.alerting.depends_on.get(row.component or "", ())
        if item.cls.component not in upstream or item.cls.cluster != row.cluster \
                or row.state not in ROOT_MOVABLE_STATES:
            return
        old_key, new_key = row.group_key, item.cls.group_key
        timeline.record(session, row.id, "incident.component_changed",  # type: ignore[arg-type]
                        f"component {row.component} → {item.cls.component}: {item.alert.alertname} shows the "
                        f"{row.component} alerts are downstream of {item.cls.component}",
                        at=now, actor=SOURCE, source=SOURCE,
                        data={"from": row.component, "to": item.cls.component, "alert": _brief(item.alert)},
                        dedupe_key=f"component:{item.cls.component}", post=False)
        row.component, row.group_key = item.cls.component, new_key
        session.add(row)
        if old_key in open_by_key and found in open_by_key[old_key]:
            open_by_key[old_key].remove(found)
        open_by_key.setdefault(new_key, []).insert(0, found)

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
            "alerts": [_brief(i.alert) for i in items[:_EVIDENCE_ALERTS]],
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
                    cache: dict[str, OpenIncident | None]) -> OpenIncident | None:
        """An open incident of the same fault in other clusters (``alerting.fleet``); this cluster joins it."""
        key = self._fleet_key(item)
        if key is None:
            return None
        if key not in cache:
            row = fleet.find_open(session, key, item.alert.starts_at, self.settings.alerting.fleet)
            cache[key] = OpenIncident(row, int(row.alerts_firing or 0), now) if row is not None else None
        found = cache[key]
        if found is not None:
            fleet.add(session, found.incident, item.cls.cluster, started_at=item.alert.starts_at, now=now,
                      why=f"{item.alert.alertname} ({key})")
        return found

    def _page_rule_users(self, session: Session, incident: Incident, users: set[str], now: datetime) -> None:
        """Users named by an alert rule's ``page`` are paged besides the on-call commander."""
        oncall = rota.primary(self.settings.oncall, now, cluster=incident.cluster, component=incident.component)
        for user in sorted(users - {oncall}):
            paging.page(session, self.settings, incident_id=incident.id, user=user, now=now, notifies=True,  # type: ignore[arg-type]
                        reason=f"{ref_of(incident.id)} {incident.title} ({incident.severity})",
                        dedupe_key=f"page:{incident.id}:rule:{user}")
            timeline.record(session, incident.id, "page.queued", f"paging @{user} (alert rule)", at=now,  # type: ignore[arg-type]
                            actor="system", source="system", data={"user": user, "rule": True}, post=False)

    @staticmethod
    def _row(item: _Incoming, incident_id: int | None, now: datetime) -> dict[str, Any]:
        a = item.alert
        return {"incident_id": incident_id, "fingerprint": a.fingerprint, "alertname": a.alertname,
                "status": a.status, "cluster": item.cls.cluster, "component": item.cls.component,
                "severity": item.cls.severity, "labels": a.labels, "annotations": a.annotations,
                "starts_at": a.starts_at, "ends_at": a.ends_at, "generator_url": a.generator_url,
                "group_key": item.source.group_key or None, "received_at": now, "updated_at": now}

    def _insert(self, session: Session, rows: list[tuple[dict[str, Any], int]], tally: alert_tally.Tally,
                results: list[IngestResult]) -> None:
        """A batch insert that skips instances another delivery stored meanwhile; counts what it stored."""
        if not rows:
            return
        if self.db.is_sqlite:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]
        table = Alert.__table__  # type: ignore[attr-defined]
        for start in range(0, len(rows), _CHUNK):
            chunk = rows[start:start + _CHUNK]
            inserted = {(fp, utc(at)) for fp, at in session.execute(
                insert(table).on_conflict_do_nothing(index_elements=["fingerprint", "starts_at"])
                .returning(table.c.fingerprint, table.c.starts_at), [row for row, _ in chunk])}
            for row, origin in chunk:
                if (row["fingerprint"], utc(row["starts_at"])) in inserted:
                    results[origin].stored += 1
                    if row["incident_id"] is not None:
                        tally.stored(row["incident_id"], row["alertname"], row["status"])

    def _apply_transitions(self, session: Session, transitions: list[tuple["_Stored", _Incoming]], now: datetime,
                           touched: dict[int, _Touched], results: list[IngestResult], tally: alert_tally.Tally) -> None:
        for row, item in transitions:
            session.execute(update(Alert).where(Alert.id == row.id)  # type: ignore[arg-type]
                            .values(status=item.alert.status, ends_at=item.alert.ends_at, updated_at=now))
            if row.incident_id is not None:
                tally.changed(row.incident_id, item.alert.alertname, item.alert.status)
            result = results[item.origin]
            if item.alert.status == "resolved":
                result.resolved += 1
                if row.incident_id is not None:
                    touched.setdefault(row.incident_id, _Touched()).resolved.append(item.alert)
            elif row.incident_id is not None:  # resolved earlier, firing again (same instance)
                touched.setdefault(row.incident_id, _Touched()).new.append(item.alert)
                result.joined[row.incident_id] = result.joined.get(row.incident_id, 0) + 1

    # -- telling people ------------------------------------------------------------
    def _summarise(self, session: Session, touched: dict[int, _Touched], now: datetime) -> None:
        for incident_id, what in sorted(touched.items()):
            row = session.get(Incident, incident_id)
            if row is None:
                continue
            joined = [] if what.opened_here else what.new
            if joined:
                timeline.record(
                    session, incident_id, "alerts.firing",
                    f"{len(joined)} more alert{'s' if len(joined) != 1 else ''} firing: {_names(joined)}",
                    at=now, actor=SOURCE, source=SOURCE,
                    data={"count": len(joined), "alerts": [_brief(a) for a in joined[:_EVIDENCE_ALERTS]]},
                    dedupe_key="firing:" + _key_digest([_instance(a) for a in joined]), post=False)
            if what.resolved:
                only = what.resolved[0]
                text = (f"alert {only.alertname} resolved" + (f" ({only.labels['instance']})" if "instance" in only.labels else "")
                        if len(what.resolved) == 1 else f"{len(what.resolved)} alerts resolved: {_names(what.resolved)}")
                timeline.record(
                    session, incident_id, "alert.resolved", text,
                    at=now, actor=SOURCE, source=SOURCE,
                    data={"count": len(what.resolved), "alerts": [_brief(a) for a in what.resolved[:_EVIDENCE_ALERTS]]},
                    dedupe_key="resolved:" + _key_digest([_instance(a) for a in what.resolved]), post=False)
            counts = alert_tally.read(session, incident_id)
            firing = sum(n for (status, _), n in counts.items() if status == "firing")
            total = sum(counts.values())
            if joined or what.resolved:
                outbox.enqueue(session, Notice(text=self._status_line(row, counts), incident_id=incident_id),
                               incident_id=incident_id, now=now, coalesce_key=f"alerts:{incident_id}")
            if what.resolved and firing == 0 and total > 0 and row.state in ACTIVE_STATES:
                self._offer_resolve(session, row, total, now)
            session.add(row)

    @staticmethod
    def _status_line(row: Incident, counts: dict[tuple[str, str], int]) -> str:
        firing = Counter({name: n for (status, name), n in counts.items() if status == "firing"})
        resolved = sum(n for (status, _), n in counts.items() if status == "resolved")
        top = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in firing.most_common(4))
        more = len(firing) - 4
        return (f"{ref_of(row.id)} alerts: {sum(firing.values())} firing, {resolved} resolved"
                + (f" — {top}" + (f" (+{more} more names)" if more > 0 else "") if top else ""))

    def _offer_resolve(self, session: Session, row: Incident, total: int, now: datetime) -> None:
        """All alerts resolved: offer the commander to resolve (never resolve on our own)."""
        commander = session.execute(
            select(Participant.user).where(Participant.incident_id == row.id, Participant.role == "commander",
                                           Participant.active)  # type: ignore[arg-type]
        ).scalars().first() or rota.primary(self.settings.oncall, now, cluster=row.cluster, component=row.component)
        last_end = session.execute(select(func.max(Alert.ends_at)).where(Alert.incident_id == row.id)).scalar()
        key = f"all-resolved:{total}:{utc(last_end).isoformat() if last_end else 'none'}"
        ref = ref_of(row.id)
        text = (f"All {total} alert{'s' if total != 1 else ''} of {ref} have resolved"
                + (f", @{commander}" if commander else "") + ". "
                "A resolved alert is not proof of recovery (an alert also resolves when its series disappears, "
                f"e.g. a dead member's metrics): check the component, then `/incident resolve {ref}`.")
        event = timeline.record(session, row.id, "alerts.all_resolved", f"all {total} alerts resolved; "  # type: ignore[arg-type]
                                "resolution offered to the commander", at=now, actor=SOURCE, source=SOURCE,
                                data={"alerts": total, "commander": commander}, dedupe_key=key, post=False)
        if event is not None:
            outbox.enqueue(session, Notice(text=text, incident_id=row.id, offer="resolve", user=commander or None),
                           incident_id=row.id, now=now, dedupe_key=f"{key}:{row.id}")


def alert_counts(db: Database) -> dict[str, int]:
    """Stored alerts by status, for /metrics."""
    with db.reading() as session:
        return {status: n for status, n in session.execute(
            select(Alert.status, func.count()).group_by(Alert.status))}
