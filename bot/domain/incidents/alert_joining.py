"""An alert joins an open incident: T0 moves earlier, severity goes up, a cascade moves to its root.

Facts about the incident that a later alert can change, each recorded on the timeline once
(a dedupe key per alert instance) so a re-sent delivery changes nothing.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session

from bot.core.store import timeline
from bot.core.store.raw import RawSql
from bot.domain.incidents import alert_sql
from bot.domain.incidents.alert_notices import Touched, brief, instance_key
from bot.domain.incidents.alert_payload import SOURCE, AlertIn
from bot.domain.incidents.alert_rules import Classification, more_severe
from bot.domain.incidents.grouping import OpenIncident

# an incident may move to the upstream component of a cascade until its cause is recorded
ROOT_MOVABLE_STATES = frozenset({"detected", "notified", "diagnosing"})


def join(session: Session, found: OpenIncident, alert: AlertIn, cls: Classification, now: datetime,
         touched: dict[int, Touched]) -> None:
    """An alert joins an incident: T0 moves earlier, severity goes up, if the alert says so."""
    found.firing += 1
    mark = touched.setdefault(found.id, Touched())
    mark.new.append(alert)
    mark.row = found
    changed = False
    if alert.starts_at < found.started_at:
        old = found.started_at
        timeline.record(session, found.id, "incident.t0_moved",
                        f"T0 moved from {old:%H:%M:%S} to {alert.starts_at:%H:%M:%S}: "
                        f"{alert.alertname} started earlier",
                        at=now, actor=SOURCE, source=SOURCE,
                        data={"from": old.isoformat(), "to": alert.starts_at.isoformat(),
                              "alert": brief(alert)},
                        dedupe_key=f"t0:{instance_key(alert)}", post=False)
        found.started_at, changed = alert.starts_at, True
    raised = more_severe(found.severity, cls.severity)
    if raised != found.severity:
        timeline.record(session, found.id, "incident.severity_raised",
                        f"severity {found.severity} → {raised}: {alert.alertname} is {cls.severity}",
                        at=now, actor=SOURCE, source=SOURCE, data={"from": found.severity, "to": raised},
                        dedupe_key=f"sev:{raised}:{instance_key(alert)}", post=False)
        found.severity, changed = raised, True
    if changed:  # its budgets' instants moved: the watcher looks again at its next tick
        alert_sql.set_onset(RawSql.of(session), found.id, found.started_at, found.severity, now)
    # otherwise nothing is written here: ``alert_tally`` moves updated_at with the counts, in the one
    # UPDATE of the incident that every delivery makes anyway


def move_to_root(session: Session, depends_on: Mapping[str, list[str]], found: OpenIncident, alert: AlertIn,
                 cls: Classification, open_by_key: dict[str, list[OpenIncident]], now: datetime) -> None:
    """An upstream alert joined a young downstream incident: the incident is about the upstream part.

    Deliveries race, so a cascade's apiserver alerts may open the incident a moment
    before the etcd alerts that explain them.  Until a cause is recorded, the
    incident moves to the component it depends on (and its group key with it,
    so later alerts of either part keep joining it); afterwards it keeps what
    people decided.
    """
    upstream = depends_on.get(found.component or "", ())
    if cls.component not in upstream or cls.cluster != found.cluster \
            or found.state not in ROOT_MOVABLE_STATES:
        return
    old_key, new_key = found.group_key, cls.group_key
    timeline.record(session, found.id, "incident.component_changed",
                    f"component {found.component} → {cls.component}: {alert.alertname} shows the "
                    f"{found.component} alerts are downstream of {cls.component}",
                    at=now, actor=SOURCE, source=SOURCE,
                    data={"from": found.component, "to": cls.component, "alert": brief(alert)},
                    dedupe_key=f"component:{cls.component}", post=False)
    found.component, found.group_key = cls.component, new_key
    alert_sql.set_component(RawSql.of(session), found.id, cls.component, new_key, now)
    if old_key in open_by_key and found in open_by_key[old_key]:
        open_by_key[old_key].remove(found)
    open_by_key.setdefault(new_key, []).insert(0, found)
