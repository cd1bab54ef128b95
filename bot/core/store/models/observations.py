"""What the bot observed of a cluster: probe outcomes, evidence frozen at T0, changes before T0."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.core.store.models.columns import json_column, ts_column


class ProbeResult(SQLModel, table=True):
    """The last outcome of a black-box probe target, for /metrics and confirmation."""

    __tablename__ = "probe_results"
    __table_args__ = (UniqueConstraint("cluster", "target", name="uq_probe_target"),)

    id: int = Field(default=None, primary_key=True)
    cluster: str
    target: str
    ok: bool = True
    latency_ms: float = 0.0
    consecutive_failures: int = 0
    checked_at: Optional[datetime] = ts_column()
    failing_since: Optional[datetime] = ts_column()  # the first failed probe of the current failure: T0
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

    id: int = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    target: str
    hour: datetime = ts_column(nullable=False, index=True)  # the start of the hour (UTC)
    runs: int = 0
    failures: int = 0
    slow: int = 0
    latency_ms_sum: float = 0.0


class EvidenceSection(SQLModel, table=True):
    """One part of what the control plane looked like at an incident's T0 (frozen: written once, never updated).

    ``section`` is e.g. ``prometheus``, ``events``, ``etcd``, ``readyz``, ``apf``;
    ``status`` is ``ok``, ``truncated`` (kept up to the size cap) or ``unavailable``
    (``error`` says why: the gap is recorded, the incident never waits for it).
    """

    __tablename__ = "evidence_sections"
    __table_args__ = (UniqueConstraint("incident_id", "section", name="uq_evidence_section"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    section: str
    status: str = "ok"
    captured_at: datetime = ts_column(nullable=False)
    window_start: Optional[datetime] = ts_column()
    window_end: Optional[datetime] = ts_column()
    size_bytes: int = 0
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict = json_column()


class ClusterChange(SQLModel, table=True):
    """A change of a watched object (webhooks, APF, RBAC, CRDs, control-plane workloads, nodes) in a cluster.

    Written by the change watcher; ``key`` makes a change seen twice (two
    replicas, a restart re-listing) one row.  ``source``: ``watch``,
    ``managedFields`` (changed before the bot looked) or ``audit``.
    """

    __tablename__ = "cluster_changes"
    __table_args__ = (UniqueConstraint("cluster", "key", name="uq_cluster_change"),
                      Index("ix_cluster_changes_at", "cluster", "at"))

    id: int = Field(default=None, primary_key=True)
    cluster: str
    key: str
    at: datetime = ts_column(nullable=False)
    kind: str
    namespace: Optional[str] = None
    name: str
    change: str  # created | updated | deleted | image | cordoned
    source: str = "watch"
    detail: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    data: dict = json_column()
