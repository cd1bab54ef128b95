"""The incident and what hangs off it: alerts, people, the timeline, action items, fleets and links."""

from __future__ import annotations

from datetime import date, datetime
from typing import Optional

from sqlalchemy import Column, Index, String, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.core.store.models.columns import json_column, ts_column


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: int = Field(default=None, primary_key=True)
    title: str
    severity: str = Field(default="sev2", index=True)
    cluster: str = Field(default="default", index=True)
    component: Optional[str] = Field(default=None, index=True)
    state: str = Field(default="detected", index=True)
    source: str = "chat"
    group_key: Optional[str] = Field(default=None, index=True)
    root_cause: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    mitigation: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    is_drill: bool = False
    created_at: datetime = ts_column(nullable=False)
    started_at: datetime = ts_column(nullable=False)
    detected_at: datetime = ts_column(nullable=False)
    notified_at: Optional[datetime] = ts_column()
    diagnosed_at: Optional[datetime] = ts_column()
    mitigated_at: Optional[datetime] = ts_column()
    resolved_at: Optional[datetime] = ts_column()
    closed_at: Optional[datetime] = ts_column()
    cancelled_at: Optional[datetime] = ts_column()
    acknowledged_at: Optional[datetime] = ts_column()  # a person answered a page (pager webhook or /incident ack)
    acknowledged_by: Optional[str] = None
    fleet_key: Optional[str] = Field(default=None, index=True)  # alerts of other clusters with this key join
    updated_at: datetime = ts_column(nullable=False)
    extra: dict = json_column()
    # kept by the alert ingestion so a delivery never re-counts the incident's alerts
    alerts_firing: int = 0
    last_alert_at: Optional[datetime] = ts_column()  # when the last new alert of the incident was stored
    # the next instant the 1-5-10 watcher has something to record (None: nothing will be due)
    slo_due_at: Optional[datetime] = ts_column(index=True)


class IncidentAlertCount(SQLModel, table=True):
    """How many of an incident's alerts of one name fire and have resolved (the status line's numbers).

    Updated with the alerts in the same transaction, by atomic increments, so a
    delivery costs the same whether the incident holds ten alerts or fifty thousand.
    """

    __tablename__ = "incident_alert_counts"

    incident_id: int = Field(foreign_key="incidents.id", primary_key=True)
    alertname: str = Field(primary_key=True)
    firing: int = 0
    resolved: int = 0


class Participant(SQLModel, table=True):
    """A person in an incident and the role they hold (commander, scribe, responder)."""

    __tablename__ = "participants"
    __table_args__ = (UniqueConstraint("incident_id", "user", "role", name="uq_participant_role"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    user: str
    role: str
    active: bool = True
    assigned_by: Optional[str] = None
    assigned_at: datetime = ts_column(nullable=False)


class TimelineEvent(SQLModel, table=True):
    """Append-only record of everything that happened; the post-mortem is rendered from it.

    ``dedupe_key`` makes deliveries idempotent: an Alertmanager re-send, a Slack
    retry or a second watcher replica inserts the same key and is refused by the
    unique constraint instead of writing the fact twice.
    """

    __tablename__ = "timeline_events"
    __table_args__ = (
        UniqueConstraint("incident_id", "dedupe_key", name="uq_timeline_dedupe"),
        Index("ix_timeline_incident_at", "incident_id", "at", "id"),
    )

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    at: datetime = ts_column(nullable=False)
    kind: str = Field(index=True)
    actor: str = "system"
    source: str = "system"
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    data: dict = json_column()
    dedupe_key: Optional[str] = None


class Alert(SQLModel, table=True):
    """One alert instance (fingerprint + startsAt) as Alertmanager reported it."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at", name="uq_alert_instance"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    fingerprint: str  # looked up through uq_alert_instance (its first column)
    alertname: str
    status: str = "firing"
    cluster: Optional[str] = None
    component: Optional[str] = None
    severity: Optional[str] = None
    labels: dict = json_column()
    annotations: dict = json_column()
    starts_at: datetime = ts_column(nullable=False)
    ends_at: Optional[datetime] = ts_column()
    generator_url: Optional[str] = None
    group_key: Optional[str] = None
    received_at: datetime = ts_column(nullable=False)
    updated_at: datetime = ts_column(nullable=False)


class ActionItem(SQLModel, table=True):
    """A post-incident action item, tracked to closure (here, and in GitHub or Jira when configured)."""

    __tablename__ = "action_items"
    __table_args__ = (Index("ix_action_items_open_due", "done", "due_on"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    owner: Optional[str] = None
    created_by: str = "system"
    created_at: datetime = ts_column(nullable=False)
    done: bool = False
    done_at: Optional[datetime] = ts_column()
    done_by: Optional[str] = None
    priority: str = Field(default="p2", sa_column=Column(String, nullable=False, server_default="p2"))
    due_on: Optional[date] = None
    reminded_on: Optional[date] = None  # the last day an overdue reminder was queued (one a day at most)
    tracker: Optional[str] = None  # github | jira, once mirrored to an issue tracker
    tracker_key: Optional[str] = None  # "42" on GitHub, "OPS-7" on Jira
    tracker_url: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    tracker_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class IncidentCluster(SQLModel, table=True):
    """One cluster of a fleet incident: its own 1-5-10 facts (an incident may span many clusters).

    The incident's own timestamps are the earliest over its clusters; the
    verdict per cluster is computed from these rows, the overall one is the worst.
    """

    __tablename__ = "incident_clusters"
    __table_args__ = (UniqueConstraint("incident_id", "cluster", name="uq_incident_cluster"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    cluster: str = Field(index=True)
    state: str = "detected"
    started_at: datetime = ts_column(nullable=False)
    detected_at: datetime = ts_column(nullable=False)
    notified_at: Optional[datetime] = ts_column()
    diagnosed_at: Optional[datetime] = ts_column()
    mitigated_at: Optional[datetime] = ts_column()
    root_cause: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class IncidentLink(SQLModel, table=True):
    """Two incidents that belong together: ``related``, or ``merged`` (incident_id was merged into other_id)."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "other_id", "kind", name="uq_incident_link"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    other_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str = "related"
    created_by: str = "system"
    created_at: datetime = ts_column(nullable=False)
