"""The persistent schema: everything the bot knows lives in these tables.

The bot's own state never depends on the cluster it repairs, so every fact
(stage timestamps, who approved what, which step of a run is done, which chat
message is still to be sent) is a row here.  Tables are plain sqlmodel rows;
behaviour lives in the domain modules that read and write them.

Times are stored as timezone-aware UTC.  Free-form evidence and parameters go
into JSON columns so that later capabilities add behaviour, not tables.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Optional

from sqlalchemy import JSON, Column, DateTime, Index, String, Text, UniqueConstraint, text
from sqlalchemy.types import TypeDecorator
from sqlmodel import Field, SQLModel

from bot.clock import utc


class UTCDateTime(TypeDecorator):
    """Aware UTC in, aware UTC out, on SQLite (which keeps no zone) as on PostgreSQL."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        value = utc(value)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else utc(value)


def _ts(nullable: bool = True, index: bool = False) -> Any:
    return Field(default=None, sa_column=Column(UTCDateTime(), nullable=nullable, index=index))


def _json() -> Any:
    return Field(default_factory=dict, sa_column=Column(JSON, nullable=False))


class Incident(SQLModel, table=True):
    __tablename__ = "incidents"

    id: Optional[int] = Field(default=None, primary_key=True)
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
    created_at: Optional[datetime] = _ts(nullable=False)
    started_at: Optional[datetime] = _ts(nullable=False)
    detected_at: Optional[datetime] = _ts(nullable=False)
    notified_at: Optional[datetime] = _ts()
    diagnosed_at: Optional[datetime] = _ts()
    mitigated_at: Optional[datetime] = _ts()
    resolved_at: Optional[datetime] = _ts()
    closed_at: Optional[datetime] = _ts()
    cancelled_at: Optional[datetime] = _ts()
    acknowledged_at: Optional[datetime] = _ts()  # a person answered a page (pager webhook or /incident ack)
    acknowledged_by: Optional[str] = None
    fleet_key: Optional[str] = Field(default=None, index=True)  # alerts of other clusters with this key join
    updated_at: Optional[datetime] = _ts(nullable=False)
    extra: dict = _json()
    # kept by the alert ingestion so a delivery never re-counts the incident's alerts
    alerts_firing: int = 0
    last_alert_at: Optional[datetime] = _ts()  # when the last new alert of the incident was stored
    # the next instant the 1-5-10 watcher has something to record (None: nothing will be due)
    slo_due_at: Optional[datetime] = _ts(index=True)


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

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    user: str
    role: str
    active: bool = True
    assigned_by: Optional[str] = None
    assigned_at: Optional[datetime] = _ts(nullable=False)


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

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id")
    at: Optional[datetime] = _ts(nullable=False)
    kind: str = Field(index=True)
    actor: str = "system"
    source: str = "system"
    text: str = Field(default="", sa_column=Column(Text, nullable=False))
    data: dict = _json()
    dedupe_key: Optional[str] = None


class Alert(SQLModel, table=True):
    """One alert instance (fingerprint + startsAt) as Alertmanager reported it."""

    __tablename__ = "alerts"
    __table_args__ = (UniqueConstraint("fingerprint", "starts_at", name="uq_alert_instance"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    fingerprint: str = Field(index=True)
    alertname: str = Field(index=True)
    status: str = "firing"
    cluster: Optional[str] = None
    component: Optional[str] = None
    severity: Optional[str] = None
    labels: dict = _json()
    annotations: dict = _json()
    starts_at: Optional[datetime] = _ts(nullable=False)
    ends_at: Optional[datetime] = _ts()
    generator_url: Optional[str] = None
    group_key: Optional[str] = None
    received_at: Optional[datetime] = _ts(nullable=False)
    updated_at: Optional[datetime] = _ts(nullable=False)


class ActionItem(SQLModel, table=True):
    """A post-incident action item, tracked to closure (here, and in GitHub or Jira when configured)."""

    __tablename__ = "action_items"
    __table_args__ = (Index("ix_action_items_open_due", "done", "due_on"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    text: str = Field(sa_column=Column(Text, nullable=False))
    owner: Optional[str] = None
    created_by: str = "system"
    created_at: Optional[datetime] = _ts(nullable=False)
    done: bool = False
    done_at: Optional[datetime] = _ts()
    done_by: Optional[str] = None
    priority: str = Field(default="p2", sa_column=Column(String, nullable=False, server_default="p2"))
    due_on: Optional[date] = None
    reminded_on: Optional[date] = None  # the last day an overdue reminder was queued (one a day at most)
    tracker: Optional[str] = None  # github | jira, once mirrored to an issue tracker
    tracker_key: Optional[str] = None  # "42" on GitHub, "OPS-7" on Jira
    tracker_url: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    tracker_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class PlaybookRun(SQLModel, table=True):
    """A planned (and maybe approved, executed) playbook run.

    ``plan`` holds the exact changes computed by the dry run; ``plan_hash`` is
    what approvals bind to.  ``checkpoint`` is the index of the next step to
    execute, so a restart resumes exactly there.
    """

    __tablename__ = "playbook_runs"

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    playbook: str = Field(index=True)
    cluster: str = Field(default="default", index=True)
    risk: str = "low"
    params: dict = _json()
    plan: dict = _json()
    plan_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    plan_hash: str = ""
    state: str = Field(default="planned", index=True)
    requested_by: str = "system"
    requested_at: Optional[datetime] = _ts(nullable=False)
    started_at: Optional[datetime] = _ts()
    finished_at: Optional[datetime] = _ts()
    checkpoint: int = 0
    phase: str = "execute"
    owner: Optional[str] = None
    owner_heartbeat_at: Optional[datetime] = _ts()
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    context: dict = _json()
    auto_approved: bool = False


class RunStep(SQLModel, table=True):
    """The record of one step of a run: what it did, when, with which result."""

    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("run_id", "phase", "index", name="uq_run_step"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True)
    index: int
    phase: str = "execute"
    name: str
    state: str = "pending"
    started_at: Optional[datetime] = _ts()
    finished_at: Optional[datetime] = _ts()
    attempts: int = 0
    result: dict = _json()
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class Approval(SQLModel, table=True):
    """A decision on a run, bound to the plan hash it was made for."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("run_id", "user", "plan_hash", name="uq_approval_once"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True)
    user: str
    decision: str = "approve"
    plan_hash: str
    reason: Optional[str] = None
    at: Optional[datetime] = _ts(nullable=False)
    expires_at: Optional[datetime] = _ts()
    source: str = "chat"


class OutboxMessage(SQLModel, table=True):
    """A side effect towards a person (chat post, card update, page) not yet delivered.

    Written in the same transaction as the fact that caused it; a sender
    delivers it later, retrying, honouring rate limits, and coalescing messages
    with the same ``coalesce_key`` that are still pending.
    """

    __tablename__ = "outbox"
    __table_args__ = (
        Index("ix_outbox_pending", "status", "not_before", "id"),
        UniqueConstraint("channel", "dedupe_key", name="uq_outbox_dedupe"),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    channel: str = "chat"
    kind: str
    payload: dict = _json()
    coalesce_key: Optional[str] = Field(default=None, index=True)
    dedupe_key: Optional[str] = None
    status: str = "pending"
    attempts: int = 0
    not_before: Optional[datetime] = _ts()
    created_at: Optional[datetime] = _ts(nullable=False)
    sent_at: Optional[datetime] = _ts()
    claimed_by: Optional[str] = None
    claimed_until: Optional[datetime] = _ts()
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    result: dict = _json()


class Lease(SQLModel, table=True):
    """A named lease with an expiry: one mitigation per cluster, one leader per worker."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: Optional[datetime] = _ts(nullable=False)
    expires_at: Optional[datetime] = _ts(nullable=False)
    data: dict = _json()


class Flag(SQLModel, table=True):
    """A global switch (the playbook freeze) with who set it and why."""

    __tablename__ = "flags"

    name: str = Field(primary_key=True)
    value: bool = False
    set_by: Optional[str] = None
    set_at: Optional[datetime] = _ts()
    reason: Optional[str] = None


class ProcessedDelivery(SQLModel, table=True):
    """An inbound delivery already handled (Slack event id, webhook digest)."""

    __tablename__ = "processed_deliveries"

    key: str = Field(primary_key=True)
    source: str
    at: Optional[datetime] = _ts(nullable=False)
    result: dict = _json()


class RateLimit(SQLModel, table=True):
    """An outside API told us to wait (HTTP 429 + Retry-After): every replica waits until ``until``.

    Keyed per API method (``slack:chat.postMessage``), because Slack limits each
    method separately: a 429 on one method holds that method, not the others.
    """

    __tablename__ = "rate_limits"

    key: str = Field(primary_key=True)
    until: Optional[datetime] = _ts(nullable=False)


class ChatBinding(SQLModel, table=True):
    """Where an incident lives in a chat system: its channel/thread and card message."""

    __tablename__ = "chat_bindings"
    __table_args__ = (UniqueConstraint("incident_id", "adapter", name="uq_chat_binding"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    adapter: str
    channel_id: Optional[str] = Field(default=None, index=True)
    thread_ts: Optional[str] = None
    card_ts: Optional[str] = None
    data: dict = _json()


class Snapshot(SQLModel, table=True):
    """An etcd snapshot in the backup catalogue."""

    __tablename__ = "etcd_snapshots"

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    path: str
    taken_at: Optional[datetime] = _ts(nullable=False)
    revision: int = 0
    size_bytes: int = 0
    sha256: str = ""
    total_keys: int = 0
    source_member: Optional[str] = None
    run_id: Optional[int] = None
    data: dict = _json()


class ProbeResult(SQLModel, table=True):
    """The last outcome of a black-box probe target, for /metrics and confirmation."""

    __tablename__ = "probe_results"
    __table_args__ = (UniqueConstraint("cluster", "target", name="uq_probe_target"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str
    target: str
    ok: bool = True
    latency_ms: float = 0.0
    consecutive_failures: int = 0
    checked_at: Optional[datetime] = _ts()
    failing_since: Optional[datetime] = _ts()  # the first failed probe of the current failure: T0
    detail: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    incident_id: Optional[int] = None
    # counters since the target was first probed (Prometheus computes rates and burn from them)
    runs_total: int = 0
    failures_total: int = 0
    slow_total: int = 0  # answered correctly but slower than probes.slow_seconds for its kind


class ProbeTally(SQLModel, table=True):
    """Probe outcomes of one target in one hour: the error budgets' windows (``/incident slo``)."""

    __tablename__ = "probe_tallies"
    __table_args__ = (UniqueConstraint("cluster", "target", "hour", name="uq_probe_tally"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    target: str
    hour: datetime = _ts(nullable=False, index=True)  # the start of the hour (UTC)
    runs: int = 0
    failures: int = 0
    slow: int = 0
    latency_ms_sum: float = 0.0


class IncidentCluster(SQLModel, table=True):
    """One cluster of a fleet incident: its own 1-5-10 facts (an incident may span many clusters).

    The incident's own timestamps are the earliest over its clusters; the
    verdict per cluster is computed from these rows, the overall one is the worst.
    """

    __tablename__ = "incident_clusters"
    __table_args__ = (UniqueConstraint("incident_id", "cluster", name="uq_incident_cluster"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    cluster: str = Field(index=True)
    state: str = "detected"
    started_at: Optional[datetime] = _ts(nullable=False)
    detected_at: Optional[datetime] = _ts(nullable=False)
    notified_at: Optional[datetime] = _ts()
    diagnosed_at: Optional[datetime] = _ts()
    mitigated_at: Optional[datetime] = _ts()
    root_cause: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class IncidentLink(SQLModel, table=True):
    """Two incidents that belong together: ``related``, or ``merged`` (incident_id was merged into other_id)."""

    __tablename__ = "incident_links"
    __table_args__ = (UniqueConstraint("incident_id", "other_id", "kind", name="uq_incident_link"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    other_id: int = Field(foreign_key="incidents.id", index=True)
    kind: str = "related"
    created_by: str = "system"
    created_at: Optional[datetime] = _ts(nullable=False)


class GuardBreaker(SQLModel, table=True):
    """A tripped mass-deletion circuit breaker: deletes by ``client`` (``*``: everyone) are denied until lifted."""

    __tablename__ = "guard_breakers"
    __table_args__ = (
        Index("ix_guard_breakers_open", "cluster", "lifted_at"),
        # one open breaker per key across replicas: the database decides which replica's trip opens the incident
        Index("uq_guard_breakers_open_key", "cluster", "resource", "client", unique=True,
              postgresql_where=text("lifted_at IS NULL"), sqlite_where=text("lifted_at IS NULL")),
    )

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str
    client: str  # the user the breaker stops, or "*" for the cluster-wide breaker
    resource: str
    first_delete_at: Optional[datetime] = _ts(nullable=False)  # the burst's first delete: the incident's T0
    tripped_at: Optional[datetime] = _ts(nullable=False)
    threshold: int
    incident_id: Optional[int] = Field(default=None, index=True)
    lifted_at: Optional[datetime] = _ts()
    lifted_by: Optional[str] = None


class GuardDeleteCount(SQLModel, table=True):
    """One replica's deletes of one key in one time bucket, published so every replica counts them all.

    ``count`` is the replica's total for the bucket (an upsert sets it, so publishing twice is harmless);
    ``first_at``/``last_at`` bound the bucket's deletes: the window uses ``last_at``, a trip's T0 ``first_at``.
    """

    __tablename__ = "guard_delete_counts"
    __table_args__ = (UniqueConstraint("replica", "cluster", "resource", "client", "bucket_start",
                                       name="uq_guard_delete_count"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    replica: str
    cluster: str
    resource: str
    client: str
    bucket_start: Optional[datetime] = _ts(nullable=False)
    count: int
    first_at: Optional[datetime] = _ts(nullable=False)
    last_at: Optional[datetime] = _ts(nullable=False, index=True)


class GuardException(SQLModel, table=True):
    """An exception to the change freeze: one user, one cluster, a time window, approved in chat."""

    __tablename__ = "guard_exceptions"

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    user: str
    rule: str  # a risk-list rule name, or "*" for every rule
    minutes: int
    reason: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    incident_id: Optional[int] = Field(default=None, index=True)
    requested_by: str
    requested_at: Optional[datetime] = _ts(nullable=False)
    needed: int = 1  # approvals needed: two for critical rules
    approvers: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    approved_at: Optional[datetime] = _ts()
    until: Optional[datetime] = _ts()


class EvidenceSection(SQLModel, table=True):
    """One part of what the control plane looked like at an incident's T0 (frozen: written once, never updated).

    ``section`` is e.g. ``prometheus``, ``events``, ``etcd``, ``readyz``, ``apf``;
    ``status`` is ``ok``, ``truncated`` (kept up to the size cap) or ``unavailable``
    (``error`` says why: the gap is recorded, the incident never waits for it).
    """

    __tablename__ = "evidence_sections"
    __table_args__ = (UniqueConstraint("incident_id", "section", name="uq_evidence_section"),)

    id: Optional[int] = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    section: str
    status: str = "ok"
    captured_at: Optional[datetime] = _ts(nullable=False)
    window_start: Optional[datetime] = _ts()
    window_end: Optional[datetime] = _ts()
    size_bytes: int = 0
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict = _json()


class ClusterChange(SQLModel, table=True):
    """A change of a watched object (webhooks, APF, RBAC, CRDs, control-plane workloads, nodes) in a cluster.

    Written by the change watcher; ``key`` makes a change seen twice (two
    replicas, a restart re-listing) one row.  ``source``: ``watch``,
    ``managedFields`` (changed before the bot looked) or ``audit``.
    """

    __tablename__ = "cluster_changes"
    __table_args__ = (UniqueConstraint("cluster", "key", name="uq_cluster_change"),
                      Index("ix_cluster_changes_at", "cluster", "at"))

    id: Optional[int] = Field(default=None, primary_key=True)
    cluster: str
    key: str
    at: Optional[datetime] = _ts(nullable=False)
    kind: str
    namespace: Optional[str] = None
    name: str
    change: str  # created | updated | deleted | image | cordoned
    source: str = "watch"
    detail: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict = _json()


ALL_TABLES = SQLModel.metadata
