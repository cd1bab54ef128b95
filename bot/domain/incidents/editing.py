"""Editing incidents from chat: severity, title, merging two incidents, linking related ones.

A regional fault often opens two incidents before anyone sees they are one:
``merge`` folds one into the other.  The merged incident's timeline is copied
into the survivor (each event keeps its time and says where it came from), its
alerts and clusters move over so later deliveries land in the survivor, T0
becomes the earlier of the two, and the merged incident is closed with a
``merged`` link pointing at the survivor.  ``link`` only records that two
incidents are related, in both timelines.  Every edit is a timeline event.
"""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import or_, select, update
from sqlmodel import Session, col

from bot.core.config.base import SEVERITIES
from bot.core.errors import BadInput, PermissionDenied
from bot.core.store import timeline
from bot.domain.incidents.roles import commander_of
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import parse_ref, ref_of
from bot.core.store.models import Alert, Incident, IncidentCluster, IncidentLink

TITLE_MAX = 200


def set_severity(incidents: Incidents, ref: str | int, severity: str, *, actor: str, source: str) -> tuple[Incident, str]:
    """Change the severity (the budgets of the 1-5-10 clocks follow it); returns the row and the old severity."""
    severity = (severity or "").strip().lower()
    if severity not in SEVERITIES:
        raise BadInput(f"severity must be one of {', '.join(SEVERITIES)}, not `{severity}`.", field="severity")
    with incidents.transaction(ref) as (session, row):
        old = row.severity
        if old == severity:
            raise BadInput(f"{ref_of(row.id)} already is {severity}.", field="severity")
        now = incidents.clock.now()
        row.severity = severity
        timeline.record(session, row.id, "incident.edited", f"severity {old} → {severity} by {actor}", at=now,
                        actor=actor, source=source, data={"field": "severity", "from": old, "to": severity})
        incidents.after_move(session, row, now)  # clocks, the watcher's next instant and the card follow
        return row, old


def set_title(incidents: Incidents, ref: str | int, title: str, *, actor: str, source: str) -> Incident:
    title = (title or "").strip()
    if not title:
        raise BadInput("say the new title, e.g. `/incident title etcd quorum lost in eu-west`.", field="title")
    if len(title) > TITLE_MAX:
        raise BadInput(f"the title is {len(title)} characters; keep it under {TITLE_MAX}.", field="title")
    with incidents.transaction(ref) as (session, row):
        old = row.title
        if old == title:
            raise BadInput(f"{ref_of(row.id)} already has that title.", field="title")
        now = incidents.clock.now()
        row.title = title
        timeline.record(session, row.id, "incident.edited", f"title changed by {actor}: {old} → {title}", at=now,
                        actor=actor, source=source, data={"field": "title", "from": old, "to": title})
        incidents.after_move(session, row, now)
        return row


def _pair(incidents: Incidents, session: Session, first: str | int, second: str | int) -> tuple[Incident, Incident]:
    """Both rows locked, in id order (two merges crossing each other must not deadlock)."""
    a, b = parse_ref(first), parse_ref(second)
    if a == b:
        raise BadInput(f"{ref_of(a)} is the same incident; name another one.", field="incident")
    rows = {i: incidents.load(session, i, lock=True) for i in sorted((a, b))}
    return rows[a], rows[b]


def merge(incidents: Incidents, source_ref: str | int, target_ref: str | int, *, actor: str,
          source: str) -> tuple[Incident, Incident]:
    """Fold ``source_ref`` into ``target_ref``; returns (merged, survivor)."""
    with incidents.db.session() as session:
        merged, survivor = _pair(incidents, session, source_ref, target_ref)
        for row in (merged, survivor):
            if row.state in ("closed", "cancelled"):
                raise BadInput(f"{ref_of(row.id)} is {row.state}; only open incidents can be merged.", field="incident")
        commander = commander_of(session, merged.id)
        if commander is not None and commander != actor:
            raise PermissionDenied(f"only the commander @{commander} can merge {ref_of(merged.id)}.")
        now = incidents.clock.now()
        copied = _copy_timeline(session, merged, survivor)
        moved = session.exec(  # exec, not execute: SQLModel types a DML result as a CursorResult (rowcount)
            update(Alert).where(col(Alert.incident_id) == merged.id).values(incident_id=survivor.id)).rowcount
        _move_clusters(session, merged, survivor)
        if merged.started_at < survivor.started_at:
            survivor.started_at = merged.started_at  # the fault began with the earlier evidence
        session.add(IncidentLink(incident_id=merged.id, other_id=survivor.id, kind="merged",
                                 created_by=actor, created_at=now))
        timeline.record(session, survivor.id, "incident.merged",
                        f"{ref_of(merged.id)} ({merged.title}) merged into this incident by {actor}: "
                        f"{copied} events, {moved} alerts", at=now, actor=actor, source=source,
                        data={"merged": merged.id, "events": copied, "alerts": moved})
        incidents.move(session, merged, "merge", actor=actor, source=source, note=f"merged into {ref_of(survivor.id)}",
                       data={"merged_into": survivor.id})
        incidents.after_move(session, survivor, now)
        return merged, survivor


def _copy_timeline(session: Session, merged: Incident, survivor: Incident) -> int:
    count = 0
    for event in timeline.events(session, merged.id):
        copy = timeline.record(session, survivor.id, event.kind, f"[{ref_of(merged.id)}] {event.text}",
                               at=event.at, actor=event.actor, source=event.source,
                               data={**event.data, "merged_from": merged.id, "event_id": event.id},
                               dedupe_key=f"merged:{merged.id}:{event.id}", post=False)
        count += copy is not None
    return count


def _move_clusters(session: Session, merged: Incident, survivor: Incident) -> None:
    """Per-cluster facts of a fleet incident move with it (a cluster already in the survivor keeps its own)."""
    have = set(session.execute(select(col(IncidentCluster.cluster))
                               .where(col(IncidentCluster.incident_id) == survivor.id)).scalars())
    for row in session.execute(select(IncidentCluster).where(col(IncidentCluster.incident_id) == merged.id)).scalars():
        if row.cluster not in have:
            row.incident_id = survivor.id
            session.add(row)


def link(incidents: Incidents, ref: str | int, other_ref: str | int, *, actor: str, source: str) -> tuple[Incident, Incident]:
    """Record that two incidents are related (once), in both timelines."""
    with incidents.db.session() as session:
        row, other = _pair(incidents, session, ref, other_ref)
        if related(session, row.id).get(other.id):
            raise BadInput(f"{ref_of(row.id)} and {ref_of(other.id)} are already linked.", field="incident")
        now = incidents.clock.now()
        session.add(IncidentLink(incident_id=row.id, other_id=other.id, kind="related", created_by=actor,
                                 created_at=now))
        for a, b in ((row, other), (other, row)):
            timeline.record(session, a.id, "incident.linked", f"related to {ref_of(b.id)} ({b.title}), linked by {actor}",
                            at=now, actor=actor, source=source, data={"other": b.id})
            incidents.after_move(session, a, now)
        return row, other


def related(session: Session, incident_id: int) -> dict[int, str]:
    """Other incident id -> how it is related: ``related``, ``merged into`` or ``merged from``."""
    return related_many(session, [incident_id]).get(incident_id, {})


def related_many(session: Session, incident_ids: Sequence[int]) -> dict[int, dict[int, str]]:
    """``related`` for a page of incidents in one read (the API's list), not a query per incident."""
    wanted = set(incident_ids)
    out: dict[int, dict[int, str]] = {}
    for link_row in session.execute(
        select(IncidentLink)
        .where(or_(col(IncidentLink.incident_id).in_(wanted), col(IncidentLink.other_id).in_(wanted)))
        .order_by(col(IncidentLink.id))
    ).scalars():
        for mine, other in ((link_row.incident_id, link_row.other_id), (link_row.other_id, link_row.incident_id)):
            if mine in wanted:
                out.setdefault(mine, {})[other] = ("related" if link_row.kind == "related" else
                                                  ("merged into" if mine == link_row.incident_id else "merged from"))
    return out

