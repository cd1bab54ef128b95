"""Incident operations: every verb of the grammar that changes an incident.

Each operation is one transaction: it locks the incident row, checks who may
act, moves the lifecycle, stamps timestamps, appends timeline events and
queues the chat side effects (card update, pages) in the outbox.  Callers
(chat, webhooks, the engine) never write these tables themselves.
"""

from __future__ import annotations

import builtins  # the annotations below name the type; inside the class, ``list`` is Incidents.list
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.clock import Clock, utc
from bot.core.config import Settings
from bot.core.config.base import SEVERITIES
from bot.core.errors import BadInput, NotFound, PermissionDenied
from bot.domain.incidents import acks, fleet, lifecycle
from bot.domain.incidents.roles import ROLES, commander_of, require_commander, roles_of, set_role
from bot.core.store.messages import IncidentCard
from bot.core.store.states import ACTIVE_STATES
from bot.core.store import timeline
from bot.domain.slo import paging, rota, watcher
from bot.domain.slo.clocks import StageClock, clocks
from bot.core.store import outbox
from bot.core.store.db import Database
from bot.core.store.models import ActionItem, Incident, Lease
from bot.core.store.refs import parse_ref, ref_of


@dataclass(frozen=True)
class IncidentView:
    """A consistent read of an incident for rendering (no lazy loads later)."""

    incident: Incident
    commander: str | None
    roles: dict[str, list[str]]
    clocks: list[StageClock]
    open_actions: int
    clusters: tuple[fleet.ClusterFacts, ...] = ()  # per-cluster facts and verdicts (a fleet incident has several)


DRILL_LEASE_PREFIX = "drill:"


def drill_in_progress(session: Session, cluster: str, now: datetime) -> bool:
    """A running drill holds the lease ``drill:<cluster>``; incidents opened on that cluster meanwhile are drills.

    So a drill's incident is marked ``is_drill`` however it is detected
    (Alertmanager, prober, chat), and the engine may auto-approve its runs.
    """
    lease = session.get(Lease, DRILL_LEASE_PREFIX + cluster)
    return lease is not None and utc(lease.expires_at) > now


class Incidents:
    """The incident service; one per process, shared by every adapter."""

    def __init__(self, db: Database, settings: Settings, clock: Clock) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        # called with the incident id after its first notification is committed (diagnosis wakes on it)
        self.on_notified: list[Callable[[int], None]] = []

    # -- reading ------------------------------------------------------------
    def get(self, ref: str | int) -> Incident:
        with self.db.reading() as session:
            return self.load(session, ref)

    def list(self, *, include_closed: bool = False, limit: int = 50) -> list[Incident]:
        with self.db.reading() as session:
            query = select(Incident).order_by(col(Incident.id).desc()).limit(limit)
            if not include_closed:
                query = query.where(col(Incident.state).in_(sorted(ACTIVE_STATES)))
            return list(session.execute(query).scalars())

    def view(self, ref: str | int) -> IncidentView:
        with self.db.reading() as session:
            row = self.load(session, ref)
            return self._view(session, row)

    def _view(self, session: Session, row: Incident) -> IncidentView:
        roles = roles_of(session, row.id)
        commander = roles.get("commander", [None])[0]
        open_actions = len(
            session.execute(
                select(col(ActionItem.id)).where(col(ActionItem.incident_id) == row.id, col(ActionItem.done).is_(False))
            ).all()
        )
        now = self.clock.now()
        return IncidentView(row, commander, roles, clocks(row, self.settings.budgets, now), open_actions,
                            tuple(fleet.facts(session, row, self.settings.budgets, now)))

    def timeline(self, ref: str | int) -> tuple[Incident, builtins.list[Any]]:
        with self.db.reading() as session:
            row = self.load(session, ref)
            return row, timeline.events(session, row.id)

    def actions(self, ref: str | int) -> builtins.list[ActionItem]:
        with self.db.reading() as session:
            row = self.load(session, ref)
            return list(
                session.execute(select(ActionItem).where(col(ActionItem.incident_id) == row.id)
                                .order_by(col(ActionItem.id))).scalars()
            )

    # -- writing ------------------------------------------------------------
    @contextmanager
    def transaction(self, ref: str | int) -> Iterator[tuple[Session, Incident]]:
        """Lock the incident row for a read-modify-write (FOR UPDATE on PostgreSQL)."""
        with self.db.session() as session:
            yield session, self.load(session, ref, lock=True)

    def declare(
        self,
        title: str,
        *,
        actor: str,
        source: str = "chat",
        severity: str | None = None,
        cluster: str | None = None,
        component: str | None = None,
        started_at: datetime | None = None,
        is_drill: bool = False,
        group_key: str | None = None,
        extra: dict[str, Any] | None = None,
        evidence: dict[str, Any] | None = None,
        session: Session | None = None,
    ) -> Incident:
        """Open an incident, page the on-call commander and announce it."""
        title = (title or "").strip()
        if not title:
            raise BadInput("an incident needs a title, e.g. `/incident declare apiserver 5xx in prod-1`.", field="title")
        if len(title) > 200:
            raise BadInput(f"the title is {len(title)} characters; keep it under 200.", field="title")
        severity = (severity or self.settings.alerting.default_severity).lower()
        if severity not in SEVERITIES:
            raise BadInput(f"--severity must be one of {', '.join(SEVERITIES)}, not `{severity}`.", field="severity")
        now = self.clock.now()
        t0 = utc(started_at) if started_at else now
        if t0 > now:
            t0 = now
        if session is None:
            with self.db.session() as own:
                return self.declare(title, actor=actor, source=source, severity=severity, cluster=cluster,
                                    component=component, started_at=t0, is_drill=is_drill, group_key=group_key,
                                    extra=extra, evidence=evidence, session=own)
        is_drill = is_drill or drill_in_progress(session, cluster or self.settings.default_cluster, now)
        row = Incident(
            title=title,
            severity=severity,
            cluster=cluster or self.settings.default_cluster,
            component=component,
            state="detected",
            source=source,
            group_key=group_key,
            is_drill=is_drill,
            created_at=now,
            started_at=t0,
            detected_at=now,
            updated_at=now,
            extra=extra or {},
        )
        session.add(row)
        session.flush()
        assert row.id is not None
        fleet.sync(session, row, now)  # the incident's first cluster and its facts
        lag = (now - t0).total_seconds()
        timeline.record(
            session, row.id, "incident.declared" if source == "chat" else "incident.detected",
            f"{ref_of(row.id)} opened by {actor}: {title} ({severity}, cluster {row.cluster})"
            + (f"; fault began {lag:.0f}s before detection" if lag >= 1 else ""),
            at=now, actor=actor, source=source,
            data={"severity": severity, "cluster": row.cluster, "component": component,
                  "started_at": t0.isoformat(), **({"evidence": evidence} if evidence else {})},
            post=False,
        )
        self.queue_card(session, row, now, announce=True)
        row.slo_due_at = watcher.next_due(row, self.settings, now)
        oncall = rota.primary(self.settings.oncall, now, cluster=row.cluster, component=component)
        if oncall:
            paging.page(session, self.settings, incident_id=row.id, user=oncall, now=now, notifies=True,
                        reason=f"{ref_of(row.id)} {title} ({severity})", dedupe_key=f"page:{row.id}:primary")
            timeline.record(session, row.id, "page.queued", f"paging on-call commander @{oncall}", at=now,
                            actor="system", source="system", data={"user": oncall}, post=False)
        return row

    def mark_notified(self, incident_id: int, *, at: datetime, via: str) -> bool:
        """The first notification was delivered: stamp ``notified_at`` (once), then tell ``on_notified``."""
        stamped = self._stamp_notified(incident_id, at=at, via=via)
        if stamped:
            for hook in self.on_notified:
                hook(incident_id)
        return stamped

    def _stamp_notified(self, incident_id: int, *, at: datetime, via: str) -> bool:
        with self.transaction(incident_id) as (session, row):
            if row.notified_at is not None:
                return False
            if row.state == "detected":
                lifecycle.fire(row, "notify", now=at)
            else:
                row.notified_at = at
            timeline.record(session, row.id, "incident.notified", f"announced via {via}", at=at,
                            actor="system", source="system", data={"via": via}, dedupe_key="notified",
                            post=False)
            self.after_move(session, row, at)
            return True

    def ack(self, ref: str | int, *, actor: str, source: str = "chat") -> Incident:
        with self.transaction(ref) as (session, row):
            current = commander_of(session, row.id)
            if current == actor:
                if acks.stamp(session, row, user=actor, via=source, now=self.clock.now()):
                    return row  # the commander answering their page
                raise BadInput(f"you are already the commander of {ref_of(row.id)}.")
            if current is not None:
                raise PermissionDenied(
                    f"{ref_of(row.id)} already has a commander, @{current}; they can hand over with "
                    f"`/incident assign commander @{actor}`."
                )
            now = self.clock.now()
            set_role(session, row, "commander", actor, by=actor, source=source, now=now)
            self.queue_card(session, row, now)
            acks.stamp(session, row, user=actor, via=source, now=self.clock.now())
            return row

    def assign(self, ref: str | int, role: str, user: str, *, actor: str, source: str = "chat") -> Incident:
        role = role.lower()
        if role not in ROLES:
            raise BadInput(f"role must be one of {', '.join(ROLES)}, not `{role}`.", field="role")
        user = user.lstrip("@")
        if not user:
            raise BadInput("name the person to assign, e.g. `@alice`.", field="user")
        with self.transaction(ref) as (session, row):
            commander = commander_of(session, row.id)
            if commander is not None and actor != commander and role == "commander":
                raise PermissionDenied(f"only the commander @{commander} can hand over {ref_of(row.id)}.")
            now = self.clock.now()
            set_role(session, row, role, user, by=actor, source=source, now=now)
            self.queue_card(session, row, now)
            return row

    def note(self, ref: str | int, text: str, *, actor: str, source: str = "chat") -> Incident:
        text = (text or "").strip()
        if not text:
            raise BadInput("a note needs text, e.g. `/incident note etcd fsync latency is high`.", field="text")
        with self.transaction(ref) as (session, row):
            now = self.clock.now()
            timeline.record(session, row.id, "note", text, at=now, actor=actor, source=source)
            return row

    def cause(self, ref: str | int, text: str, *, actor: str, source: str = "chat",
              data: dict[str, Any] | None = None) -> Incident:
        """Record the root cause; the first one stamps ``diagnosed_at``."""
        text = (text or "").strip()
        if not text:
            raise BadInput("say what the cause is, e.g. `/incident cause etcd member 2 disk full`.", field="text")
        with self.transaction(ref) as (session, row):
            now = self.clock.now()
            if row.state != "diagnosed":
                self._move(session, row, "record_cause", actor=actor, source=source, now=now)
            row.root_cause = text
            timeline.record(session, row.id, "cause", f"root cause: {text}", at=now, actor=actor,
                            source=source, data=data or {})
            fleet.stamp_every(session, row, "diagnosed_at", now)  # the cause stated for the whole incident
            self.after_move(session, row, now)
            return row

    def mitigated(self, ref: str | int, *, actor: str, source: str = "chat", text: str | None = None) -> Incident:
        with self.transaction(ref) as (session, row):
            require_commander(session, row, actor, "mitigated")
            now = self.clock.now()
            if text:
                row.mitigation = text
            self._move(session, row, "mark_mitigated", actor=actor, source=source, now=now, note=text)
            return row

    def resolve(self, ref: str | int, *, actor: str, source: str = "chat") -> Incident:
        return self._simple(ref, "resolve", actor=actor, source=source)

    def close(self, ref: str | int, *, actor: str, source: str = "chat") -> Incident:
        return self._simple(ref, "close", actor=actor, source=source)

    def reopen(self, ref: str | int, *, actor: str, source: str = "chat", reason: str | None = None) -> Incident:
        return self._simple(ref, "reopen", actor=actor, source=source, note=reason)

    def cancel(self, ref: str | int, *, actor: str, source: str = "chat", reason: str | None = None) -> Incident:
        return self._simple(ref, "cancel", actor=actor, source=source, note=reason)

    def add_action(self, ref: str | int, text: str, *, actor: str, source: str = "chat") -> ActionItem:
        text = (text or "").strip()
        if not text:
            raise BadInput("an action item needs text, e.g. `/incident action add an alert on etcd fsync`.", field="text")
        with self.transaction(ref) as (session, row):
            now = self.clock.now()
            item = ActionItem(incident_id=row.id, text=text, created_by=actor, created_at=now)
            session.add(item)
            session.flush()
            timeline.record(session, row.id, "action.added", f"action item #{item.id}: {text}", at=now,
                            actor=actor, source=source, data={"action_id": item.id})
            return item

    def complete_action(self, ref: str | int, item_id: int, *, actor: str, source: str = "chat") -> ActionItem:
        with self.transaction(ref) as (session, row):
            item = session.get(ActionItem, item_id)
            if item is None or item.incident_id != row.id:
                raise NotFound(f"{ref_of(row.id)} has no action item #{item_id}.")
            if item.done:
                raise BadInput(f"action item #{item_id} is already done.")
            now = self.clock.now()
            item.done, item.done_at, item.done_by = True, now, actor
            session.add(item)
            timeline.record(session, row.id, "action.done", f"action item #{item_id} done: {item.text}", at=now,
                            actor=actor, source=source, data={"action_id": item_id})
            return item

    def move(self, session: Session, row: Incident, trigger: str, *, actor: str, source: str,
             note: str | None = None, facts: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        """Fire a lifecycle trigger inside the caller's transaction (engine, diagnosis)."""
        self._move(session, row, trigger, actor=actor, source=source, now=self.clock.now(), note=note,
                   facts=facts, data=data)

    # -- internals ----------------------------------------------------------
    def _simple(self, ref: str | int, trigger: str, *, actor: str, source: str, note: str | None = None) -> Incident:
        with self.transaction(ref) as (session, row):
            verb = lifecycle.VERB_OF_TRIGGER[trigger]
            require_commander(session, row, actor, verb)
            self._move(session, row, trigger, actor=actor, source=source, now=self.clock.now(), note=note)
            return row

    def _move(self, session: Session, row: Incident, trigger: str, *, actor: str, source: str, now: datetime,
              note: str | None = None, facts: dict[str, Any] | None = None, data: dict[str, Any] | None = None) -> None:
        old = lifecycle.fire(row, trigger, now=now, facts=facts)
        if row.state in {"resolved", "cancelled"} or (row.state == "closed" and old != "resolved"):
            paging.close(session, self.settings, incident_id=row.id, now=now, reason=f"{old} → {row.state}")
        session.add(row)
        text = f"{old} → {row.state} by {actor}" + (f": {note}" if note else "")
        timeline.record(session, row.id, "state.changed", text, at=now, actor=actor, source=source,
                        data={"from": old, "to": row.state, "trigger": trigger, **({"reason": note} if note else {}),
                              **(data or {})})
        self.after_move(session, row, now)

    def after_move(self, session: Session, row: Incident, now: datetime) -> None:
        """What follows any change of an incident's facts (a move, an edit, a merge, a fleet cluster's stage):
        the fleet rows, the watcher's next instant and the card.  Public because editing and fleet change
        incidents in their own transactions and must not forget one of these."""
        session.add(row)
        session.flush()
        fleet.sync(session, row, now)  # every cluster of the incident reaches the stages it reached
        watcher.evaluate(session, row, self.settings, now)
        self.queue_card(session, row, now)

    def queue_card(self, session: Session, row: Incident, now: datetime, announce: bool = False) -> None:
        """Queue the card's update (or its first announcement) in the caller's transaction."""
        assert row.id is not None  # flushed by the caller
        card = IncidentCard(incident_id=row.id, announce=announce, notifies=announce)
        outbox.enqueue(session, card, incident_id=row.id, now=now)

    def load(self, session: Session, ref: str | int, *, lock: bool = False) -> Incident:
        """The incident a reference names, in the caller's session (locked for update with ``lock`` on
        PostgreSQL); NotFound with the reference when there is none."""
        incident_id = parse_ref(ref)
        query = select(Incident).where(col(Incident.id) == incident_id)
        if lock and not self.db.is_sqlite:
            query = query.with_for_update()
        row = session.execute(query).scalars().first()
        if row is None:
            raise NotFound(f"there is no incident {ref_of(incident_id)}.")
        return row
