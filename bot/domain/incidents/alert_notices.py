"""Telling people about alerts: in summaries, never one message per alert, and never resolving on its own.

A new incident gets the core's announce card and page; later changes of one delivery become one
timeline event per incident and one coalesced notice (``coalesce_key``), so a storm of 10,000
alerts produces a handful of chat messages.  When the last firing alert of an incident
resolves, the commander is *offered* to resolve it: an alert also resolves when its series
disappears (a dead etcd member's ``etcdNoLeader``), so a resolved alert is not proof of recovery.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlmodel import Session, col

from bot.core.clock import utc
from bot.core.config import Settings
from bot.domain.incidents import alert_tally
from bot.domain.incidents.alert_sql import Counts
from bot.domain.incidents.alert_payload import SOURCE, AlertIn
from bot.domain.slo import rota
from bot.core.store import outbox, outbox_many, timeline
from bot.core.store.messages import Notice
from bot.core.store.models import Alert, Incident, Participant
from bot.core.store.raw import RawSql, Statement
from bot.core.store.refs import ref_of
from bot.core.store.states import ACTIVE_STATES

EVIDENCE_ALERTS = 20  # alerts kept in an event's data (the rest are counted)


class IncidentView(Protocol):
    """What a summary needs of an incident: an ORM row, or grouping's ``OpenIncident`` snapshot."""

    @property
    def state(self) -> str: ...
    @property
    def cluster(self) -> str: ...
    @property
    def component(self) -> str | None: ...


@dataclass
class Touched:
    """Per incident, what this delivery did to it (for one event and one notice)."""

    new: list[AlertIn] = field(default_factory=list)
    resolved: list[AlertIn] = field(default_factory=list)
    opened_here: bool = False
    # the incident as this delivery loaded it (an ORM row it opened, or grouping's snapshot of one it
    # joined): without it ``summarise`` would read the row again
    row: IncidentView | None = None


def key_digest(parts: list[str]) -> str:
    """A short stable digest of alert instances: the dedupe key of a summary event (re-sends add none)."""
    return hashlib.sha256("\n".join(sorted(parts)).encode()).hexdigest()[:20]


def instance_key(alert: AlertIn) -> str:
    """``fingerprint@startsAt``: one firing of one alert, as Alertmanager identifies it."""
    return alert.instance


def brief(alert: AlertIn) -> dict[str, Any]:
    """What the timeline and the evidence keep of an alert (its summary cut short)."""
    labels = alert.labels
    return {"alertname": alert.alertname, "fingerprint": alert.fingerprint,
            "startsAt": alert.starts_at.isoformat(), "status": alert.status,
            **({"instance": labels["instance"]} if "instance" in labels else {}),
            **({"endsAt": alert.ends_at.isoformat()} if alert.ends_at else {}),
            "summary": alert.summary()[:200]}


def alert_names(alerts: list[AlertIn], limit: int = 4) -> str:
    """``KubeAPIErrors ×9, etcdNoLeader``: names by count, so a storm reads as one line."""
    counts = Counter(a.alertname for a in alerts).most_common()
    shown = [f"{name} ×{n}" if n > 1 else name for name, n in counts[:limit]]
    if len(counts) > limit:
        shown.append(f"+{len(counts) - limit} more names")
    return ", ".join(shown)


def summarise(session: Session, settings: Settings, touched: dict[int, Touched], now: datetime, *,
              counts: dict[int, Counts] | None = None) -> list[Statement]:
    """One timeline event per incident and kind, one coalesced notice per incident, for one delivery.

    ``counts``: the incidents' alert counts where the tally's write already answered them.
    On PostgreSQL the facts and notices are returned as statements, for the caller to send with its
    ``COMMIT`` (``RawSql.batch(..., commit=True)``): a storm's batch pays no round trip for them.
    On SQLite they are written here, and nothing is returned.
    """
    raw = RawSql.of(session)
    facts: list[Statement] = []
    notices: list[tuple[int, str, Notice]] = []  # (incident, coalesce key, its notice)
    offers: list[tuple[int, IncidentView, int]] = []
    for incident_id, what in sorted(touched.items()):
        row = what.row if what.row is not None else session.get(Incident, incident_id)
        if row is None:
            continue
        joined = [] if what.opened_here else what.new
        if joined:
            facts.append(timeline.fact_statement(
                raw, incident_id, "alerts.firing",
                f"{len(joined)} more alert{'s' if len(joined) != 1 else ''} firing: {alert_names(joined)}",
                at=now, actor=SOURCE, source=SOURCE,
                data={"count": len(joined), "alerts": [brief(a) for a in joined[:EVIDENCE_ALERTS]]},
                dedupe_key="firing:" + key_digest([instance_key(a) for a in joined])))
        if what.resolved:
            only = what.resolved[0]
            text = (f"alert {only.alertname} resolved" + (f" ({only.labels['instance']})" if "instance" in only.labels else "")
                    if len(what.resolved) == 1 else f"{len(what.resolved)} alerts resolved: {alert_names(what.resolved)}")
            facts.append(timeline.fact_statement(
                raw, incident_id, "alert.resolved", text,
                at=now, actor=SOURCE, source=SOURCE,
                data={"count": len(what.resolved), "alerts": [brief(a) for a in what.resolved[:EVIDENCE_ALERTS]]},
                dedupe_key="resolved:" + key_digest([instance_key(a) for a in what.resolved])))
        known = counts.get(incident_id) if counts is not None else None
        after = known if known is not None else alert_tally.read(session, incident_id)
        firing = sum(n for (status, _), n in after.items() if status == "firing")
        total = sum(after.values())
        if joined or what.resolved:
            notices.append((incident_id, f"alerts:{incident_id}",
                            Notice(text=status_line(incident_id, after), incident_id=incident_id)))
        if what.resolved and firing == 0 and total > 0 and row.state in ACTIVE_STATES:
            offers.append((incident_id, row, total))
    for incident_id, row, total in offers:
        offer_resolve(session, settings, incident_id, row, total, now)
    if not raw.sqlite:
        return [*facts, *outbox_many.coalesce_statements(raw, [outbox_many.Queued(
            notice, incident_id=incident_id, coalesce_key=key) for incident_id, key, notice in notices], now=now)]
    raw.batch(facts)
    for incident_id, key, notice in notices:
        outbox.coalesce(session, notice, now=now, incident_id=incident_id, coalesce_key=key)
    return []

def status_line(incident_id: int, counts: dict[tuple[str, str], int]) -> str:
    firing = Counter({name: n for (status, name), n in counts.items() if status == "firing"})
    resolved = sum(n for (status, _), n in counts.items() if status == "resolved")
    top = ", ".join(f"{name} ×{n}" if n > 1 else name for name, n in firing.most_common(4))
    more = len(firing) - 4
    return (f"{ref_of(incident_id)} alerts: {sum(firing.values())} firing, {resolved} resolved"
            + (f" — {top}" + (f" (+{more} more names)" if more > 0 else "") if top else ""))

def offer_resolve(session: Session, settings: Settings, incident_id: int, row: IncidentView, total: int,
                  now: datetime) -> None:
    """All alerts resolved: offer the commander to resolve (never resolve on our own)."""
    commander = session.execute(
        select(col(Participant.user))
        .where(col(Participant.incident_id) == incident_id, col(Participant.role) == "commander", col(Participant.active))
    ).scalars().first() or rota.primary(settings.oncall, now, cluster=row.cluster, component=row.component)
    last_end = session.execute(select(func.max(col(Alert.ends_at))).where(col(Alert.incident_id) == incident_id)).scalar()
    key = f"all-resolved:{total}:{utc(last_end).isoformat() if last_end else 'none'}"
    ref = ref_of(incident_id)
    text = (f"All {total} alert{'s' if total != 1 else ''} of {ref} have resolved"
            + (f", @{commander}" if commander else "") + ". "
            "A resolved alert is not proof of recovery (an alert also resolves when its series disappears, "
            f"e.g. a dead member's metrics): check the component, then `/incident resolve {ref}`.")
    event = timeline.record(session, incident_id, "alerts.all_resolved", f"all {total} alerts resolved; "
                            "resolution offered to the commander", at=now, actor=SOURCE, source=SOURCE,
                            data={"alerts": total, "commander": commander}, dedupe_key=key, post=False)
    if event is not None:
        outbox.enqueue(session, Notice(text=text, incident_id=incident_id, offer="resolve", user=commander or None),
                       incident_id=incident_id, now=now, dedupe_key=f"{key}:{incident_id}")
