"""Fleet incidents: one fault across many clusters is one incident, with facts per cluster.

A regional fault (a storage class under etcd, a bad rollout, DNS) fires the
same alert in many clusters at once.  Alerts agreeing on
``alerting.fleet.match_labels`` (by default the alert name and the ``region``
label) within ``alerting.fleet.window_seconds`` join one incident, whose
``fleet_key`` says what it gathers.  Each cluster keeps its own 1-5-10 facts
in ``incident_clusters`` (T0, detected, notified, diagnosed, mitigated,
state): stages recorded for the whole incident are copied to every cluster
that has not reached them by itself (``sync``), and a cluster can be
diagnosed or mitigated on its own.  The verdict is given per cluster and
overall (the worst), and a cluster can be split out into its own incident.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from types import SimpleNamespace
from typing import Any

from sqlalchemy import select, update
from sqlmodel import Session, col

from bot.core.config.budgets import Budgets
from bot.core.config.detection import FleetGrouping
from bot.core.errors import BadInput, NotFound
from bot.domain.incidents import lifecycle
from bot.core.store.states import ACTIVE_STATES
from bot.core.store import timeline
from bot.domain.slo.clocks import StageClock, stage_clock
from bot.core.store import outbox
from bot.core.store.db import Database, insert_once
from bot.core.store.messages import IncidentCard
from bot.core.store.models import Alert, Incident, IncidentCluster, IncidentLink
from bot.core.store.refs import ref_of

# worst first: the overall verdict of a fleet incident is the worst of its clusters'
VERDICT_ORDER = ("breached", "warning", "running", "stopped", "met")
STAGE_STATE = (("mitigated_at", "mitigated"), ("diagnosed_at", "diagnosed"), ("notified_at", "notified"))


def fleet_key(labels: dict[str, str], config: FleetGrouping) -> str | None:
    """What alerts of one fault share across clusters (None: the alert lacks a label, or fleets are off)."""
    if not config.enabled:
        return None
    values = []
    for name in config.match_labels:
        value = labels.get(name)
        if not value:
            return None
        values.append(f"{name}={value}")
    return ",".join(values)


def find_open(session: Session, key: str, starts_at: datetime, config: FleetGrouping) -> Incident | None:
    """The newest active incident of this fleet key whose T0 is within the window of ``starts_at``."""
    window = timedelta(seconds=config.window_seconds)
    for row in session.execute(
        select(Incident).where(col(Incident.fleet_key) == key,
                               col(Incident.state).in_(sorted(ACTIVE_STATES)))
        .order_by(col(Incident.id).desc())
    ).scalars():
        if abs(row.started_at - starts_at) <= window:
            return row
    return None


def clusters(session: Session, incident_id: int) -> list[IncidentCluster]:
    return list(session.execute(
        select(IncidentCluster).where(col(IncidentCluster.incident_id) == incident_id)
        .order_by(col(IncidentCluster.started_at), col(IncidentCluster.cluster))
    ).scalars())


def _state_of(row: IncidentCluster, incident: Incident) -> str:
    if incident.state not in ACTIVE_STATES:
        return incident.state
    return next((state for attr, state in STAGE_STATE if getattr(row, attr) is not None), "detected")


def add(session: Session, incident: Incident, cluster: str, *, started_at: datetime, now: datetime,
        why: str | None = None) -> IncidentCluster | None:
    """A cluster joins the incident (once); an earlier T0 for a cluster already in it moves that cluster's T0."""
    assert incident.id is not None
    existing = session.execute(select(IncidentCluster).where(
        col(IncidentCluster.incident_id) == incident.id, col(IncidentCluster.cluster) == cluster)).scalars().first()
    if existing is not None:
        if started_at < existing.started_at:
            existing.started_at = started_at
            session.add(existing)
        return None
    # joining an announced incident, a cluster is notified when a card showing it is delivered
    # (``card_delivered``), not when it joins: a chat outage must show as a late notification
    row = IncidentCluster(incident_id=incident.id, cluster=cluster, started_at=started_at, detected_at=now)
    row.state = _state_of(row, incident)
    if not insert_once(session, row):
        return None
    if incident.notified_at is not None:
        outbox.enqueue(session, IncidentCard(incident_id=incident.id), incident_id=incident.id, now=now)
    if cluster != incident.cluster:
        timeline.record(session, incident.id, "fleet.cluster_joined",
                        f"cluster {cluster} joined {ref_of(incident.id)}" + (f": {why}" if why else ""),
                        at=now, actor="alertmanager", source="alertmanager",
                        data={"cluster": cluster, "started_at": started_at.isoformat()},
                        dedupe_key=f"fleet:{cluster}:{started_at.isoformat()}", post=False)
    return row


def gather(session: Session, incident: Incident, starts: dict[str, datetime], now: datetime, why: str) -> None:
    """A new incident opened by alerts of several clusters: each cluster with its own T0."""
    for cluster, started_at in sorted(starts.items(), key=lambda kv: kv[1]):
        if cluster == incident.cluster:
            row = _one(session, incident, cluster)
            row.started_at = started_at
            session.add(row)
        else:
            add(session, incident, cluster, started_at=started_at, now=now, why=why)


def sync(session: Session, incident: Incident, now: datetime) -> None:
    """Stages reached by the whole incident reach every cluster that has not reached them on its own.

    The incident's primary cluster always has a row (incidents opened before
    fleets existed get theirs here); an announcement reaches a cluster no
    earlier than the cluster was detected.
    """
    rows = clusters(session, incident.id)
    if not any(r.cluster == incident.cluster for r in rows):
        made = add(session, incident, incident.cluster, started_at=incident.started_at, now=incident.detected_at)
        rows = clusters(session, incident.id) if made is not None else rows
    for row in rows:
        changed = False
        for attr, _ in STAGE_STATE:
            stamp = getattr(incident, attr)
            if stamp is not None and row.detected_at > stamp:
                # joined after the incident reached the stage: the announcement never showed it, the
                # cause was found and the mitigation verified without it; it reaches them on its own
                # (a delivered card, a diagnosis or a run aimed at it, `/incident cause` stated again)
                continue
            if stamp is not None and getattr(row, attr) is None:
                setattr(row, attr, max(stamp, row.detected_at))
                changed = True
        state = _state_of(row, incident)
        if changed or state != row.state:
            row.state = state
            session.add(row)


def mark(session: Session, incident: Incident, cluster: str, stage: str, *, actor: str, source: str,
         now: datetime, text: str | None = None) -> IncidentCluster:
    """One cluster reached ``diagnosed`` or ``mitigated`` on its own (per-cluster diagnosis or playbook)."""
    attr = {"diagnosed": "diagnosed_at", "mitigated": "mitigated_at"}.get(stage)
    if attr is None:
        raise BadInput(f"a cluster can be marked diagnosed or mitigated, not `{stage}`.", field="stage")
    row = _one(session, incident, cluster)
    if getattr(row, attr) is not None:
        raise BadInput(f"cluster {cluster} of {ref_of(incident.id)} is already {stage}.", field="cluster")
    setattr(row, attr, now)
    if stage == "diagnosed" and text:
        row.root_cause = text
    row.state = _state_of(row, incident)
    session.add(row)
    timeline.record(session, incident.id, f"fleet.cluster_{stage}",
                    f"cluster {cluster} {stage}" + (f": {text}" if text else "") + f" (by {actor})",
                    at=now, actor=actor, source=source, data={"cluster": cluster, "stage": stage})
    return row


def reach(session: Session, incidents: Any, incident: Incident, cluster: str, stage: str, *, actor: str,
          source: str, text: str | None = None, data: dict[str, Any] | None = None, again: bool = True) -> bool:
    """One cluster reached ``diagnosed`` or ``mitigated`` by an action aimed at it (a run, a diagnosis with
    ``--cluster``, ``/incident cluster``); the incident as a whole reaches the stage once every cluster has.

    A run changes one cluster and a targeted diagnosis looks at one, so only that
    cluster's 1-5-10 clock may stop; claiming the others would hide clusters still
    failing behind a green verdict.  Returns whether the whole incident moved.
    The caller holds the incident's row lock (``Incidents.transaction``).  With
    ``again=False`` (a person saying it in chat) a cluster already at the stage is refused.
    """
    now = incidents.clock.now()
    attr = {"diagnosed": "diagnosed_at", "mitigated": "mitigated_at"}.get(stage)
    if attr is None:
        raise BadInput(f"a cluster can be marked diagnosed or mitigated, not `{stage}`.", field="stage")
    trigger = "record_cause" if stage == "diagnosed" else "mark_mitigated"
    row = _one(session, incident, cluster)
    if not again and getattr(row, attr) is not None:
        raise BadInput(f"cluster {cluster} of {ref_of(incident.id)} is already {stage}.", field="cluster")
    alone = len(clusters(session, incident.id)) == 1
    note = text
    if not alone:
        if getattr(row, attr) is None:
            mark(session, incident, cluster, stage, actor=actor, source=source, now=now, text=text)
        elif stage == "diagnosed" and text:
            row.root_cause = text
            session.add(row)
        session.flush()
        waiting = [r.cluster for r in clusters(session, incident.id) if getattr(r, attr) is None]
        if waiting:
            incidents.after_move(session, incident, now)  # the card and the watcher see the cluster
            return False
        note = f"every cluster is {stage} (the last: {cluster})" + (f"; {text}" if text else "")
    if incident.state == stage or not lifecycle.can(incident, trigger):
        incidents.after_move(session, incident, now)
        return False
    if stage == "diagnosed" and text:
        incident.root_cause = text
    incidents.move(session, incident, trigger, actor=actor, source=source, data=data, note=note)
    return True


def may_mitigate(session: Session, incident: Incident, cluster: str) -> bool:
    """Whether a playbook may start on ``cluster``: the incident has its cause (diagnosed, mitigating), or,
    in a fleet incident still being diagnosed, that cluster has its own (a targeted diagnosis found it),
    so a cluster already understood is repaired without waiting for the others."""
    if incident.state in ("diagnosed", "mitigating"):
        return True
    if incident.state not in ("notified", "diagnosing"):
        return False
    row = session.execute(select(IncidentCluster).where(
        col(IncidentCluster.incident_id) == incident.id, col(IncidentCluster.cluster) == cluster)).scalars().first()
    return row is not None and row.diagnosed_at is not None


def unannounced(db: Database, incident_id: int) -> list[str]:
    """Clusters of an announced incident that no delivered card has shown yet.

    Read by the chat sender just before it delivers a card: a cluster row committed
    before this read is on the card rendered after it, so the delivery notifies it.
    """
    with db.reading() as session:
        incident = session.get(Incident, incident_id)
        if incident is None or incident.notified_at is None:
            return []
        return [r.cluster for r in clusters(session, incident_id) if r.notified_at is None]


def card_delivered(db: Database, incident_id: int, names: list[str], *, at: datetime, via: str) -> list[str]:
    """A card showing ``names`` reached people at ``at``: those clusters are notified then (once each).

    This is the join's counterpart of ``Incidents.mark_notified``: the notify clock
    of a cluster that joined after the announcement stops when people could see it.
    A follow-up card shows the stamp; it notifies nobody new, so it ends there.
    """
    if not names:
        return []
    with db.session() as session:
        incident = session.get(Incident, incident_id)
        if incident is None:
            return []
        stamped = []
        for row in clusters(session, incident_id):
            if row.cluster in names and row.notified_at is None:
                row.notified_at = max(at, row.detected_at)
                row.state = _state_of(row, incident)
                session.add(row)
                stamped.append(row.cluster)
                timeline.record(session, incident_id, "fleet.cluster_notified",
                                f"cluster {row.cluster} announced via {via}", at=at, actor="system", source="system",
                                data={"cluster": row.cluster, "via": via}, dedupe_key=f"fleet:{row.cluster}:notified",
                                post=False)
        if stamped:
            outbox.enqueue(session, IncidentCard(incident_id=incident_id), incident_id=incident_id, now=at)
        return stamped


def stamp_every(session: Session, incident: Incident, attr: str, at: datetime) -> None:
    """A stage stated for the whole incident now (``/incident cause``) reaches every cluster still without it,
    including clusters that joined after the incident first reached that stage."""
    for row in clusters(session, incident.id):
        if getattr(row, attr) is None:
            setattr(row, attr, max(at, row.detected_at))
            row.state = _state_of(row, incident)
            session.add(row)


def _one(session: Session, incident: Incident, cluster: str) -> IncidentCluster:
    row = session.execute(select(IncidentCluster).where(
        col(IncidentCluster.incident_id) == incident.id, col(IncidentCluster.cluster) == cluster)).scalars().first()
    if row is None:
        names = ", ".join(r.cluster for r in clusters(session, incident.id)) or "none"
        raise NotFound(f"{ref_of(incident.id)} has no cluster `{cluster}`; its clusters: {names}.")
    return row


@dataclass(frozen=True)
class ClusterFacts:
    """One cluster of an incident as people read it: facts, the three clocks, the worst verdict."""

    name: str
    state: str
    started_at: datetime
    detected_at: datetime
    notified_at: datetime | None
    diagnosed_at: datetime | None
    mitigated_at: datetime | None
    root_cause: str | None
    clocks: list[StageClock]

    @property
    def verdict(self) -> str:
        return worst(c.verdict for c in self.clocks)

    def as_json(self) -> dict[str, Any]:
        def iso(at: datetime | None) -> str | None:
            return at.isoformat() if at else None

        return {"name": self.name, "state": self.state, "started_at": iso(self.started_at),
                "detected_at": iso(self.detected_at), "notified_at": iso(self.notified_at),
                "diagnosed_at": iso(self.diagnosed_at), "mitigated_at": iso(self.mitigated_at),
                "verdict": self.verdict, "clocks": {c.stage: c.verdict for c in self.clocks}}


def worst(verdicts: Any) -> str:
    seen = set(verdicts)
    return next((v for v in VERDICT_ORDER if v in seen), "met")


def facts(session: Session, incident: Incident, budgets: Budgets, now: datetime) -> list[ClusterFacts]:
    """Every cluster of the incident with its clocks (the incident's own cluster when it has no rows yet)."""
    return facts_of(incident, clusters(session, incident.id), budgets, now)


def clusters_of(session: Session, incident_ids: Sequence[int]) -> dict[int, list[IncidentCluster]]:
    """``clusters`` of a page of incidents in one read (the API's list), not a query per incident."""
    out: dict[int, list[IncidentCluster]] = {}
    for row in session.execute(
        select(IncidentCluster).where(col(IncidentCluster.incident_id).in_(list(incident_ids)))
        .order_by(col(IncidentCluster.started_at), col(IncidentCluster.cluster))
    ).scalars():
        out.setdefault(row.incident_id, []).append(row)
    return out


def facts_of(incident: Incident, rows: list[IncidentCluster], budgets: Budgets, now: datetime) -> list[ClusterFacts]:
    """``facts`` from cluster rows already read."""
    if not rows:  # the incident's own cluster, as a plain view: a transient ORM row cost more than the page's reads
        rows = [SimpleNamespace(incident_id=incident.id, cluster=incident.cluster, started_at=incident.started_at,  # type: ignore[list-item]  # read like a row, never stored
                                detected_at=incident.detected_at, notified_at=incident.notified_at,
                                diagnosed_at=incident.diagnosed_at, mitigated_at=incident.mitigated_at,
                                state=incident.state, root_cause=None)]
    stage_budgets = budgets.for_severity(incident.severity)
    out = []
    for row in rows:
        view = SimpleNamespace(started_at=row.started_at, notified_at=row.notified_at, diagnosed_at=row.diagnosed_at,
                               mitigated_at=row.mitigated_at, state=incident.state,
                               cancelled_at=incident.cancelled_at, resolved_at=incident.resolved_at)
        cluster_clocks = [stage_clock(view, stage, stage_budgets, now, budgets.warn_ratio)
                          for stage in ("notify", "diagnose", "mitigate")]
        out.append(ClusterFacts(row.cluster, _state_of(row, incident), row.started_at, row.detected_at,
                                row.notified_at, row.diagnosed_at, row.mitigated_at, row.root_cause, cluster_clocks))
    return out


def split(session: Session, incidents: Any, incident: Incident, cluster: str, *, actor: str, source: str) -> Incident:
    """Move one cluster (its facts and its alerts) out of ``incident`` into a new incident of its own."""
    rows = clusters(session, incident.id)
    row = _one(session, incident, cluster)
    if len(rows) < 2:
        raise BadInput(f"{ref_of(incident.id)} has only cluster {cluster}; there is nothing to split it from.",
                       field="cluster")
    now = incidents.clock.now()
    new = incidents.declare(f"{incident.title} ({cluster})", actor=actor, source=source, severity=incident.severity,
                            cluster=cluster, component=incident.component, started_at=row.started_at,
                            group_key=f"{cluster}/{incident.component}" if incident.component else None,
                            is_drill=incident.is_drill, session=session)
    moved = session.exec(update(Alert).where(col(Alert.incident_id) == incident.id, col(Alert.cluster) == cluster)
                         .values(incident_id=new.id)).rowcount  # exec: typed as a CursorResult (rowcount)
    carried = _one(session, new, cluster)  # the cluster's own facts go with it: what people knew, and when
    for attr in ("detected_at", "notified_at", "diagnosed_at", "mitigated_at"):
        if getattr(row, attr) is not None:
            setattr(carried, attr, getattr(row, attr))
    carried.root_cause = row.root_cause
    carried.state = _state_of(carried, new)
    session.add(carried)
    session.delete(row)
    if incident.cluster == cluster:  # the incident keeps the earliest of its remaining clusters
        incident.cluster = next(r.cluster for r in rows if r.cluster != cluster)
        session.add(incident)
    session.add(IncidentLink(incident_id=new.id, other_id=incident.id, kind="related", created_by=actor,
                             created_at=now))
    timeline.record(session, incident.id, "fleet.cluster_split",
                    f"cluster {cluster} split out into {ref_of(new.id)} by {actor} ({moved} alerts moved)",
                    at=now, actor=actor, source=source, data={"cluster": cluster, "incident": new.id, "alerts": moved})
    timeline.record(session, new.id, "fleet.cluster_split",
                    f"split out of {ref_of(incident.id)} by {actor}", at=now, actor=actor, source=source,
                    data={"cluster": cluster, "from": incident.id})
    return new


def require_cluster(incidents: Any, ref: str | int, cluster: str | None) -> str | None:
    """A cluster named for a diagnosis or a run must be one of the incident's (None: its own cluster)."""
    if cluster is None:
        return None
    names = [c.name for c in incidents.view(ref).clusters]
    if cluster not in names:
        raise BadInput(f"`--cluster {cluster}` is not a cluster of this incident; its clusters: {', '.join(names)}.",
                       field="cluster")
    return cluster
