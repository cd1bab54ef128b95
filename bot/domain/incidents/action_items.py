"""Post-incident action items: who does what by when, reminded when late, mirrored to a tracker.

``/incident action <text> [@owner] [due YYYY-MM-DD] [p1|p2|p3]`` — the owner,
due date and priority are trailing words, so the common case stays one line
of plain text.  Overdue items are reminded in chat once a day (the day is
stored on the row, so a restart or a second replica does not remind twice),
and each reminder is a timeline fact, so the post-mortem shows it.
Mirroring to GitHub or Jira is in ``bot.domain.incidents.tracking``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.errors import BadInput
from bot.core.store import timeline
from bot.domain.incidents.service import Incidents
from bot.core.store.refs import ref_of
from bot.core.store import outbox
from bot.core.store.messages import Notice
from bot.core.store.models import ActionItem, Incident

PRIORITIES = ("p1", "p2", "p3")
USAGE = "/incident action <text> [@owner] [due YYYY-MM-DD] [p1|p2|p3] [INC]"
_OWNER = re.compile(r"^(?:<@([A-Z0-9]+)(?:\|[^>]*)?>|@([\w.\-]+))$")


@dataclass(frozen=True)
class Spec:
    """An action item as written in chat, before it is stored."""

    text: str
    owner: str | None = None
    due_on: date | None = None
    priority: str = "p2"


def parse(line: str) -> Spec:
    """Split trailing ``@owner``, ``due YYYY-MM-DD`` and ``p1..p3`` off the text (in any order)."""
    words = line.split()
    owner: str | None = None
    due: date | None = None
    priority: str | None = None
    while words:
        last = words[-1]
        match = _OWNER.match(last)
        if match and owner is None:
            owner = match.group(1) or match.group(2)
        elif last.lower() in PRIORITIES and priority is None:
            priority = last.lower()
        elif len(words) >= 2 and words[-2].lower() == "due" and due is None:
            try:
                due = date.fromisoformat(last)
            except ValueError:
                raise BadInput(f"due date `{last}` is not a date; write due YYYY-MM-DD, e.g. due 2026-12-15.",
                               field="due", usage=USAGE) from None
            words.pop()
        else:
            break
        words.pop()
    text = " ".join(words).strip()
    if not text:
        raise BadInput("an action item needs text, e.g. `/incident action add an alert on etcd fsync @dave`.",
                       field="text", usage=USAGE)
    return Spec(text, owner, due, priority or "p2")


def add(incidents: Incidents, ref: str | int, spec: Spec, *, actor: str, source: str) -> ActionItem:
    today = incidents.clock.now().date()
    if spec.due_on is not None and spec.due_on < today:
        raise BadInput(f"due date {spec.due_on.isoformat()} is in the past (today is {today.isoformat()}).",
                       field="due", usage=USAGE)
    with incidents.transaction(ref) as (session, row):
        now = incidents.clock.now()
        item = ActionItem(incident_id=row.id, text=spec.text, owner=spec.owner, due_on=spec.due_on,
                          priority=spec.priority, created_by=actor, created_at=now)
        session.add(item)
        session.flush()
        timeline.record(session, row.id, "action.added", f"action item #{item.id}: {describe(item)}", at=now,
                        actor=actor, source=source,
                        data={"action_id": item.id, "owner": spec.owner, "priority": spec.priority,
                              "due_on": spec.due_on.isoformat() if spec.due_on else None})
        session.refresh(item)
        return item


def describe(item: ActionItem) -> str:
    """'add an fsync alert (@dave, due 2026-12-15, p1)'."""
    extra = [f"@{item.owner}"] if item.owner else []
    if item.due_on:
        extra.append(f"due {item.due_on.isoformat()}")
    extra.append(item.priority or "p2")
    return f"{item.text} ({', '.join(extra)})"


def open_items(session: Session, *, cluster: str | None = None) -> list[tuple[ActionItem, Incident]]:
    """Every open action item with its incident, most urgent first (priority, then due date)."""
    query = (select(ActionItem, Incident).join(Incident, col(Incident.id) == col(ActionItem.incident_id))
             .where(col(ActionItem.done).is_(False)))
    if cluster:
        query = query.where(col(Incident.cluster) == cluster)
    rows = [(a, i) for a, i in session.execute(query).all()]
    return sorted(rows, key=lambda r: (r[0].priority or "p2", r[0].due_on or date.max, r[0].id or 0))


def remind_overdue(session: Session, today: date, now: datetime) -> list[ActionItem]:
    """Queue one chat reminder per overdue open item and day; returns the items reminded."""
    overdue = session.execute(
        select(ActionItem).where(col(ActionItem.done).is_(False), col(ActionItem.due_on) < today)
        .order_by(col(ActionItem.id))
    ).scalars().all()
    reminded = []
    for item in overdue:
        if item.reminded_on == today:
            continue
        days = (today - item.due_on).days
        who = f"@{item.owner}" if item.owner else "nobody (give it an owner)"
        where = f" ({item.tracker_url})" if item.tracker_url else ""
        text = (f"Overdue action item #{item.id} of {ref_of(item.incident_id)}: {item.text} — owner {who}, "
                f"due {item.due_on.isoformat()} ({days} day{'s' if days != 1 else ''} late){where}. "
                f"Done? `/incident action done {item.id} {ref_of(item.incident_id)}`")
        outbox.enqueue(session, Notice(text=text, user=item.owner), incident_id=item.incident_id, now=now,
                       dedupe_key=f"action-overdue:{item.id}:{today.isoformat()}")
        timeline.record(session, item.incident_id, "action.overdue", text, at=now, actor="system", source="system",
                        data={"action_id": item.id, "owner": item.owner, "due_on": item.due_on.isoformat(),
                              "days_late": days},
                        dedupe_key=f"action-overdue:{item.id}:{today.isoformat()}", post=False)
        item.reminded_on = today
        session.add(item)
        reminded.append(item)
    return reminded
