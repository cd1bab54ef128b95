"""Evidence frozen at T0: what the control plane looked like when the fault began.

Diagnosis gathers evidence when it runs, and range queries end at "now"; a
post-mortem written the next day needs the state at T0.  The
``EvidenceWorker`` stores, once per incident and never updated
(``EvidenceSection`` rows, one per section, unique per incident):

* at once: the control plane's recent Events, etcd leader/term/members,
  every apiserver's ``/readyz?verbose``, the APF state (FlowSchemas,
  priority levels, rejection counts) and the changes before T0;
* once ``[T0 - before, T0 + after]`` is complete: the Prometheus series the
  incident's procedure names over that window.

It runs in its own worker, never in the incident's path: a source that is
down becomes a recorded gap ("evidence unavailable: ..."), and every section
is cut to its share of ``evidence.max_bytes`` with the truncation recorded.
"""

from __future__ import annotations

import json
import logging
import math
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Mapping

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock, utc
from bot.core.config import Settings
from bot.domain.diagnosis import changes as change_log
from bot.domain.diagnosis.ports import Backends, ClusterAccess
from bot.core.store.chunks import chunked
from bot.core.store.db import Database, insert_once
from bot.core.store.models import EvidenceSection, Incident
from bot.core.store.refs import ref_of

log = logging.getLogger(__name__)

# share of evidence.max_bytes each section may take (together below 1: the cap holds for the incident)
SHARES: dict[str, float] = {"prometheus": 0.45, "events": 0.15, "etcd": 0.05, "readyz": 0.1, "apf": 0.15,
                            "changes": 0.1}
SNAPSHOT = ("changes", "events", "etcd", "readyz", "apf")  # taken at once; prometheus waits for its window
OPEN_STATES = ("detected", "notified", "diagnosing", "diagnosed", "mitigating", "mitigated")
_REJECTED = re.compile(r'^apiserver_flowcontrol_rejected_requests_total\{([^}]*)\}\s+(\S+)', re.M)


class Unavailable(Exception):
    """A section could not be gathered; the message becomes the recorded gap."""


@dataclass(frozen=True)
class Captured:
    section: str
    status: str  # ok | truncated | unavailable
    data: dict[str, Any]
    error: str | None = None
    window: tuple[datetime, datetime] | None = None


def fit(data: dict[str, Any], limit: int) -> tuple[dict[str, Any], bool]:
    """``data`` cut to at most ``limit`` bytes of JSON: its longest lists lose their tail, the cut recorded."""
    def size(d: Any) -> int:
        return len(json.dumps(d, default=str))

    if size(data) <= limit:
        return data, False
    data = json.loads(json.dumps(data, default=str))
    dropped: dict[str, int] = {}
    while size(data) > limit:
        lists = [(k, v) for k, v in data.items() if isinstance(v, list) and v]
        if not lists:
            return {"truncated": {"reason": f"over the cap of {limit} bytes even without its lists"}}, True
        key, longest = max(lists, key=lambda kv: size(kv[1]))
        keep = len(longest) // 2
        dropped[key] = dropped.get(key, 0) + len(longest) - keep
        data[key] = longest[:keep]
        data["truncated"] = {"cap_bytes": limit, "dropped": dict(dropped)}
    return data, True


# kept when the incident's procedure names no series: the control plane's vital signs
DEFAULT_QUERIES = ("sum by (job) (up)",
                   "sum by (code) (rate(apiserver_request_total[1m]))",
                   "sum by (priority_level) (rate(apiserver_flowcontrol_rejected_requests_total[1m]))")


def _promql_queries(queries: list[str]) -> list[str]:
    named = [q for q in queries if q and "{{" not in q and "{%" not in q]
    return list(dict.fromkeys(named)) or list(DEFAULT_QUERIES)


def _number(text: str) -> float | None:
    try:
        value = float(text)
    except ValueError:
        return None
    return None if math.isnan(value) else value


class Capturer:
    """Gathers one section from one cluster; each method raises ``Unavailable`` with the reason."""

    def __init__(self, access: ClusterAccess, settings: Settings) -> None:
        self.access = access
        self.settings = settings.evidence

    def prometheus(self, t0: datetime, queries: list[str]) -> dict[str, Any]:
        if self.access.metrics is None:
            raise Unavailable(f"no Prometheus is configured for cluster {self.access.name}")
        start = t0 - timedelta(seconds=self.settings.before_seconds)
        end = t0 + timedelta(seconds=self.settings.after_seconds)
        series_out, errors = [], []
        for query in queries:
            try:
                matrix = self.access.metrics.query_range(query, start, end, self.settings.step_seconds,
                                                         timeout=self.settings.timeout_seconds)
            except Exception as exc:
                errors.append(f"{query}: {exc}")
                continue
            for s in getattr(matrix, "series", ()):
                points = [[round(float(t), 3), v] for t, v in s.values if _number(str(v)) is not None]
                series_out.append({"query": query, "labels": dict(s.labels),
                                   "points": [[t, float(v)] for t, v in points]})
        if errors and not series_out and len(errors) == len(queries):
            raise Unavailable("; ".join(errors)[:500])
        return {"start": start.isoformat(), "end": end.isoformat(), "step_seconds": self.settings.step_seconds,
                "queries": queries, "series": series_out, "errors": errors}

    def _kube(self) -> Any:
        if self.access.kubernetes is None:
            raise Unavailable(f"no Kubernetes API is configured for cluster {self.access.name}")
        return self.access.kubernetes

    def events(self) -> dict[str, Any]:
        kube = self._kube()
        try:
            items = kube.list_objects("v1", "Event", "kube-system") + kube.list_objects("v1", "Event", "default")
        except Exception as exc:
            raise Unavailable(f"Kubernetes Events: {exc}") from exc

        def when(e: Mapping[str, Any]) -> str:
            return str(e.get("lastTimestamp") or e.get("eventTime") or (e.get("metadata") or {}).get("creationTimestamp") or "")

        items.sort(key=when, reverse=True)
        rows = [{"time": when(e), "type": e.get("type"), "reason": e.get("reason"),
                 "object": f"{(e.get('involvedObject') or {}).get('kind')}/{(e.get('involvedObject') or {}).get('name')}",
                 "namespace": (e.get("metadata") or {}).get("namespace"), "count": e.get("count"),
                 "message": str(e.get("message") or "")[:300]} for e in items[: self.settings.events_limit]]
        return {"events": rows, "total": len(items)}

    def etcd(self) -> dict[str, Any]:
        members = list((self.access.config.get("etcd") or {}).get("members") or [])
        if not members or self.access.etcd is None:
            raise Unavailable(f"no etcd members are configured for cluster {self.access.name}")
        client = self.access.etcd(members)
        try:
            s = client.cluster_summary()
        except Exception as exc:
            raise Unavailable(f"etcd: {exc}") from exc
        finally:
            closer = getattr(client, "close", None)
            if callable(closer):
                closer()
        rows = [{"endpoint": m.endpoint, "healthy": m.healthy, "error": m.error,
                 "member_id": format(m.status.member_id, "x") if m.status else None,
                 "leader": format(m.status.leader_id, "x") if m.status else None,
                 "raft_term": m.status.raft_term if m.status else None,
                 "revision": m.status.revision if m.status else None} for m in s.members]
        terms = [r["raft_term"] for r in rows if r["raft_term"] is not None]
        if not any(m.healthy for m in s.members):
            raise Unavailable("etcd: no member answered: " + "; ".join(f"{r['endpoint']} {r['error']}" for r in rows))
        return {"leader": format(s.leader_id, "x") if s.leader_id else None, "term": max(terms) if terms else None,
                "has_quorum": s.has_quorum, "members": rows, "summary": s.sentence()}

    def readyz(self) -> dict[str, Any]:
        groups = self.access.config.get("apiservers") or {}
        urls = [(g, u) for g in ("main", "bypass") for u in groups.get(g) or []]
        answers: list[dict[str, Any]] = []
        ca = groups.get("ca_cert")
        for group, url in urls:
            a = self.access.http.get(url.rstrip("/") + "/readyz?verbose", timeout=self.settings.timeout_seconds,
                                     verify=str(ca) if ca else True)
            answers.append({"apiserver": url, "group": group, "status": a.status, "error": a.error,
                            "body": a.body[:2000]})
        if not urls and self.access.kubernetes is not None:
            try:
                h = self.access.kubernetes.health("readyz", verbose=True)
                answers.append({"apiserver": getattr(self.access.kubernetes, "host", ""), "group": "kubeconfig",
                                "status": h.status, "error": None, "body": (h.body or "")[:2000]})
            except Exception as exc:
                raise Unavailable(f"/readyz?verbose: {exc}") from exc
        if not answers:
            raise Unavailable(f"no apiserver is configured for cluster {self.access.name}")
        if all(a["status"] is None for a in answers):
            raise Unavailable("/readyz?verbose: no apiserver answered: "
                              + "; ".join(f"{a['apiserver']} {a['error']}" for a in answers))
        return {"apiservers": answers}

    def apf(self) -> dict[str, Any]:
        kube = self._kube()
        try:
            schemas = kube.list_flow_schemas()
            levels = kube.list_priority_levels()
        except Exception as exc:
            raise Unavailable(f"APF objects: {exc}") from exc
        rejected: dict[str, Any] = {}  # requests rejected per priority level, or why they are unknown
        try:
            for labels, value in _REJECTED.findall(kube.metrics_text()):
                pl = re.search(r'priority_level="([^"]*)"', labels)
                key = pl.group(1) if pl else "?"
                rejected[key] = rejected.get(key, 0.0) + (_number(value) or 0.0)
        except Exception as exc:  # the objects are worth keeping without the counters
            rejected = {"unavailable": str(exc)[:200]}
        return {
            "flow_schemas": sorted(({"name": fs["metadata"]["name"],
                                     "precedence": (fs.get("spec") or {}).get("matchingPrecedence"),
                                     "priority_level": ((fs.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name")}
                                    for fs in schemas), key=lambda f: (f["precedence"] or 0, f["name"])),
            "priority_levels": [{"name": pl["metadata"]["name"], "type": (pl.get("spec") or {}).get("type"),
                                 "shares": ((pl.get("spec") or {}).get("limited") or {}).get("nominalConcurrencyShares")}
                                for pl in levels],
            "rejected_total": rejected,
        }


class EvidenceKeeper:
    """Decides which sections of which incidents are due, gathers them, stores them once."""

    def __init__(self, db: Database, settings: Settings, clock: Clock, backends: Backends, *,
                 queries: Callable[[Incident], list[str]] = lambda _: [],
                 on_changes: Callable[[int, list[dict[str, Any]]], None] | None = None) -> None:
        self.db, self.settings, self.clock, self.backends = db, settings, clock, backends
        self.queries = queries
        self.on_changes = on_changes

    def due(self) -> list[tuple[Incident, list[str]]]:
        """Open incidents of the last day with sections still to take, and which.

        Read as plain columns first; only incidents of clusters the bot can look
        at, with something missing, are loaded as rows. It used to load every
        open incident of the day on every tick: at 10,000 open incidents (a
        storm, a mass deadline) that was a quarter of serve's CPU, and the API
        waited on it (``benchmarks/bench_watcher.py``).
        """
        now = self.clock.now()
        after = timedelta(seconds=self.settings.evidence.after_seconds)
        settle = timedelta(seconds=self.settings.evidence.watch_interval_seconds + 1)
        open_today = (col(Incident.state).in_(OPEN_STATES), col(Incident.detected_at) >= now - timedelta(days=1))
        with self.db.reading() as session:
            candidates = session.execute(select(col(Incident.id), col(Incident.cluster), col(Incident.started_at))
                                         .where(*open_today).order_by(col(Incident.id))).all()
            reachable: dict[str, bool] = {}
            for _, cluster, _ in candidates:
                if cluster not in reachable:  # one question per cluster, not per incident
                    reachable[cluster] = self.backends(cluster).configured
            have: dict[int, set[str]] = {}
            for incident_id, section in session.execute(
                    select(col(EvidenceSection.incident_id), col(EvidenceSection.section))
                    .join(Incident, col(Incident.id) == col(EvidenceSection.incident_id)).where(*open_today)).all():
                have.setdefault(incident_id, set()).add(section)
            missing_by_id: dict[int, list[str]] = {}
            for incident_id, cluster, started_at in candidates:
                if not reachable[cluster]:
                    continue  # nothing to look at there: capture would take nothing
                taken = have.get(incident_id, set())
                missing = [s for s in SNAPSHOT if s not in taken]
                if "changes" in missing and now < utc(started_at) + settle:
                    missing.remove("changes")  # the change watch has not listed since T0 yet
                if "prometheus" not in taken and now >= utc(started_at) + after:
                    missing.append("prometheus")
                if missing:
                    missing_by_id[incident_id] = missing
            ids = sorted(missing_by_id)
            rows = [row for chunk in chunked(ids) for row in session.execute(
                select(Incident).where(col(Incident.id).in_(chunk)).order_by(col(Incident.id))).scalars()]
        return [(row, missing_by_id[row.id]) for row in rows]

    def capture(self, incident: Incident, sections: list[str]) -> list[Captured]:
        access = self.backends(incident.cluster)
        if not access.configured:  # nothing to look at (a console drill, a cluster without endpoints)
            return []
        capturer = Capturer(access, self.settings)
        t0 = utc(incident.started_at)
        cap = self.settings.evidence.max_bytes
        done: list[Captured] = []
        for section in sections:
            window = None
            try:
                if section == "changes":
                    items = change_log.before_t0(self.db, incident.cluster, t0,
                                                 window_seconds=self.settings.evidence.changes_window_seconds,
                                                 component=incident.component)
                    data: dict[str, Any] = {"changes": items,
                                            "window_seconds": self.settings.evidence.changes_window_seconds}
                elif section == "prometheus":
                    data = capturer.prometheus(t0, _promql_queries(self.queries(incident)))
                    window = (t0 - timedelta(seconds=self.settings.evidence.before_seconds),
                              t0 + timedelta(seconds=self.settings.evidence.after_seconds))
                else:
                    data = getattr(capturer, section)()
                data, cut = fit(data, int(cap * SHARES[section]))
                captured = Captured(section, "truncated" if cut else "ok", data, window=window)
            except Unavailable as exc:
                captured = Captured(section, "unavailable", {}, f"evidence unavailable: {exc}")
            except Exception as exc:  # any other failure is a gap too, never a lost incident
                log.exception("evidence %s of %s", section, ref_of(incident.id))
                captured = Captured(section, "unavailable", {}, f"evidence unavailable: {type(exc).__name__}: {exc}")
            if self.store(incident.id, captured):
                done.append(captured)
                if section == "changes" and self.on_changes and captured.data.get("changes"):
                    self.on_changes(incident.id, captured.data["changes"])
        return done

    def store(self, incident_id: int, c: Captured) -> bool:
        size = len(json.dumps(c.data, default=str))
        with self.db.session() as session:
            return insert_once(session, EvidenceSection(
                incident_id=incident_id, section=c.section, status=c.status, captured_at=self.clock.now(),
                window_start=c.window[0] if c.window else None, window_end=c.window[1] if c.window else None,
                size_bytes=size, error=c.error, data=c.data))


def sections_of(db: Database, incident_id: int) -> list[EvidenceSection]:
    """An incident's frozen evidence, in a stable order."""
    order = {s: i for i, s in enumerate(("changes", "readyz", "etcd", "apf", "events", "prometheus"))}
    with db.reading() as session:
        rows = list(session.execute(
            select(EvidenceSection).where(col(EvidenceSection.incident_id) == incident_id)).scalars())
    return sorted(rows, key=lambda r: (order.get(r.section, 99), r.section))


def for_procedures(db: Database, incident_id: int) -> dict[str, Any]:
    """What diagnosis templates see as ``incident.evidence``: each section's data, or its gap."""
    return {r.section: (dict(r.data) if r.status != "unavailable" else {"unavailable": r.error})
            for r in sections_of(db, incident_id)}


class EvidenceWorker:
    """Takes each incident's evidence in the background (``serve``); the incident never waits for it."""

    name = "evidence"

    def __init__(self, keeper: EvidenceKeeper, *, interval: float) -> None:
        self.keeper = keeper
        self.interval = interval

    def tick(self) -> int:
        if not self.keeper.settings.evidence.enabled:
            return 0
        stored = 0
        for incident, sections in self.keeper.due():
            stored += len(self.keeper.capture(incident, sections))
        return stored
