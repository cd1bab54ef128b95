"""An alert joins an open incident: T0 moves earlier, severity goes up, a cascade moves to its root.

Facts about the incident that a later alert can change, each recorded on the timeline once
(a dedupe key per alert instance) so a re-sent delivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from bot.core.clock import utc
from bot.domain.incidents.alert_notices import Touched, brief, instance_key
from bot.domain.incidents.alert_payload import SOURCE, AlertIn
from bot.domain.incidents.alert_rules import Classification, more_severe
from bot.domain.incidents.grouping import OpenIncident
from bot.core.store import timeline

# an incident may move to the upstream component of a cascade until its cause is recorded
ROOT_MOVABLE_STATES = frozenset({"detected", "notified", "diagnosing"})


def join(session: Session, found: OpenIncident, alert: AlertIn, cls: Classification, now: datetime,
         touched: dict[int, Touched]) -> None:
    """An alert joins an incident: T0 moves earlier, severity goes up, if the alert says so."""
    row = found.incident
    found.firing += 1
    mark = touched.setdefault(row.id, Touched())
    mark.new.append(alert)
    mark.row = row
    old_t0, old_severity = row.started_at, row.severity
    if alert.starts_at < utc(row.started_at):
        old = utc(row.started_at)
        row.started_at = alert.starts_at
        timeline.record(session, row.id, "incident.t0_moved",
                        f"T0 moved from {old:%H:%M:%S} to {alert.starts_at:%H:%M:%S}: "
                        f"{alert.alertname} started earlier",
                        at=now, actor=SOURCE, source=SOURCE,
                        data={"from": old.isoformat(), "to": alert.starts_at.isoformat(),
                              "alert": brief(alert)},
                        dedupe_key=f"t0:{instance_key(alert)}", post=False)
    raised = more_severe(row.severity, cls.severity)
    if raised != row.severity:
        timeline.record(session, row.id, "incident.severity_raised",
                        f"severity {row.severity} → {raised}: {alert.alertname} is {cls.severity}",
                        at=now, actor=SOURCE, source=SOURCE, data={"from": row.severity, "to": raised},
                        dedupe_key=f"sev:{raised}:{instance_key(alert)}", post=False)
        row.severity = raised
    if row.started_at != old_t0 or row.severity != old_severity:
        row.slo_due_at = now  # its budgets' instants moved: the watcher looks again at its next tick
        row.updated_at = now
        session.add(row)
    # otherwise the row is left clean: ``alert_tally`` moves updated_at with the counts, in the one
    # UPDATE of the incident that every delivery makes anyway (no ORM flush per delivery)

def move_to_root(session: Session, depends_on: Mapping[str, list[str]], found: OpenIncident, alert: AlertIn,
                 cls: Classification, open_by_key: dict[str, list[OpenIncident]], now: datetime) -> None:
    """An upstream alert joined a young downstream incident: the incident is about the upstream part.

    Deliveries race, so a cascade's apiserver alerts may open the incident a moment
    before the etcd alerts that explain them.  Until a cause is recorded, the
    incident moves to the component it depends on (and its group key with it,
    so later alerts of either part keep joining it); afterwards it keeps what
    people decided.
    """
    row = found.incident
    upstream = depends_on.get(row.component or "", ())
    if cls.component not in upstream or cls.cluster != row.cluster \
            or row.state not in ROOT_MOVABLE_STATES:
        return
    old_key, new_key = row.group_key, cls.group_key
    timeline.record(session, row.id, "incident.component_changed",
                    f"component {row.component} → {cls.component}: {alert.alertname} shows the "
                    f"{row.component} alerts are downstream of {cls.component}",
                    at=now, actor=SOURCE, source=SOURCE,
                    data={"from": row.component, "to": cls.component, "alert": brief(alert)},
                    dedupe_key=f"component:{cls.component}", post=False)
    row.component, row.group_key = cls.component, new_key
    session.add(row)
    if old_key in open_by_key and found in open_by_key[old_key]:
        open_by_key[old_key].remove(found)
    open_by_key.setdefault(new_key, []).insert(0, found)
