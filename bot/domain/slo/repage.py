"""Re-paging: a page nobody acknowledges is repeated, then escalated along the rota.

The schedule is a pure function of stored facts: the first page of the
incident (its ``page.queued`` timeline event), ``paging.repage_after_seconds``,
``paging.repeats`` and ``paging.max_escalations``.  Step k is due at
first page + k x delay: the first ``repeats`` steps page the same person again,
the later ones page the next person of the incident's rota (one further
along per step).  Each step is a timeline event with the dedupe key
``repage:<k>``, so a restart or a second replica pages once.  An
acknowledgement (bot/domain/incidents/acks.py) or the end of the incident stops it.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.clock import human_duration
from bot.core.config import Settings
from bot.core.config.people import Paging
from bot.core.store.messages import IncidentCard
from bot.core.store.chunks import chunked
from bot.core.store.states import ACTIVE_STATES
from bot.core.store import timeline
from bot.domain.slo import paging, rota
from bot.domain.slo.worker import ClockWorker
from bot.core.store import outbox
from bot.core.store.models import Incident, TimelineEvent
from bot.core.store.refs import ref_of


def steps_due(first_page_at: datetime, now: datetime, config: Paging) -> int:
    """How many re-page steps are due by ``now`` (capped at repeats + escalations)."""
    if now < first_page_at:
        return 0
    steps = int((now - first_page_at).total_seconds() // config.repage_after_seconds)
    return min(steps, config.repeats + config.max_escalations)


def first_page(session: Session, incident_id: int) -> tuple[str, datetime] | None:
    """Whom the incident paged first (the on-call commander), and when."""
    for event in session.execute(
        select(TimelineEvent)
        .where(col(TimelineEvent.incident_id) == incident_id, col(TimelineEvent.kind) == "page.queued")
        .order_by(col(TimelineEvent.at), col(TimelineEvent.id))
    ).scalars():
        if event.data.get("user") and not event.data.get("rule"):
            return str(event.data["user"]), event.at
    return None


def evaluate(session: Session, incident: Incident, settings: Settings, now: datetime) -> list[str]:
    """Page whatever step is due and not yet done; returns the timeline kinds recorded."""
    if incident.acknowledged_at is not None or incident.state not in ACTIVE_STATES:
        return []
    first = first_page(session, incident.id)
    if first is None:
        return []
    user, first_at = first
    config = settings.paging
    done = set(session.execute(
        select(col(TimelineEvent.dedupe_key)).where(col(TimelineEvent.incident_id) == incident.id,
                                                    col(TimelineEvent.dedupe_key).like("repage:%"))
    ).scalars())
    recorded: list[str] = []
    waited = human_duration((now - first_at).total_seconds())
    for step in range(1, steps_due(first_at, now, config) + 1):
        key = f"repage:{step}"
        if key in done:
            continue
        if step <= config.repeats:
            target, level, kind = user, 0, "page.repeated"
            text = f"page to @{user} not acknowledged after {waited}: paging again ({step}/{config.repeats})"
        else:
            level = step - config.repeats
            found = rota.escalation_target(settings.oncall, now, level, exclude={user},
                                           cluster=incident.cluster, component=incident.component)
            if found is None:
                continue
            target, kind = found, "page.escalated"
            text = f"page not acknowledged after {waited}: escalating to @{found} (level {level})"
        event = timeline.record(session, incident.id, kind, text, at=now, actor="watcher", source="watcher",
                                data={"user": target, "level": level, "step": step}, dedupe_key=key)
        if event is None:
            continue
        paging.page(session, settings, incident_id=incident.id, user=target, level=level, now=now,
                    reason=f"{ref_of(incident.id)} {incident.title} ({incident.severity}): not acknowledged after {waited}",
                    dedupe_key=f"page:{incident.id}:{key}")
        recorded.append(kind)
    if recorded:
        outbox.enqueue(session, IncidentCard(incident_id=incident.id), incident_id=incident.id, now=now)
    return recorded


def due_ids(session: Session, candidates: list, settings: Settings, now: datetime) -> list[int]:
    """Of (id, cluster, component) rows, the incidents with a step due and not done, in a few bulk reads.

    A storm leaves thousands of unacknowledged incidents open; looking at each
    in its own transaction every tick would cost seconds while nothing is due.
    """
    config = settings.paging
    firsts: dict[int, tuple[str, datetime]] = {}
    done: dict[int, set[str]] = {}
    ids = [row[0] for row in candidates]
    for chunk in chunked(ids):
        for incident_id, at, data in session.execute(
            select(col(TimelineEvent.incident_id), col(TimelineEvent.at), col(TimelineEvent.data))
            .where(col(TimelineEvent.incident_id).in_(chunk), col(TimelineEvent.kind) == "page.queued")
            .order_by(col(TimelineEvent.incident_id), col(TimelineEvent.at), col(TimelineEvent.id))
        ):
            if incident_id not in firsts and data.get("user") and not data.get("rule"):
                firsts[incident_id] = (str(data["user"]), at)
        for incident_id, key in session.execute(
            select(col(TimelineEvent.incident_id), col(TimelineEvent.dedupe_key))
            .where(col(TimelineEvent.incident_id).in_(chunk), col(TimelineEvent.dedupe_key).like("repage:%"))
        ):
            done.setdefault(incident_id, set()).add(key)
    due = []
    for incident_id, cluster, component in candidates:
        if incident_id not in firsts:
            continue
        user, first_at = firsts[incident_id]
        for step in range(1, steps_due(first_at, now, config) + 1):
            if f"repage:{step}" in done.get(incident_id, ()):
                continue
            if step > config.repeats and rota.escalation_target(
                    settings.oncall, now, step - config.repeats, exclude={user},
                    cluster=cluster, component=component) is None:
                continue  # nobody further along the rota: evaluate would record nothing
            due.append(incident_id)
            break
    return due


class RePager(ClockWorker):
    """The background worker: one ``tick`` looks at active incidents whose page is unanswered."""

    name = "re-pager"

    def tick(self) -> int:
        now = self.clock.now()
        oldest = now - timedelta(seconds=self.settings.paging.repage_after_seconds)
        with self.db.reading() as session:  # a read: the write lock only where something is due
            candidates = session.execute(
                select(col(Incident.id), col(Incident.cluster), col(Incident.component))
                .where(col(Incident.state).in_(sorted(ACTIVE_STATES)),
                       col(Incident.acknowledged_at).is_(None),
                       col(Incident.detected_at) <= oldest)
            ).all()
            ids = due_ids(session, candidates, self.settings, now)
        count = 0
        for incident_id in ids:
            with self.db.session() as session:
                incident = session.get(Incident, incident_id)
                if incident is not None:
                    count += len(evaluate(session, incident, self.settings, now))
        return count
