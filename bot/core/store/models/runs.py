"""Playbook runs and what makes them safe: steps as checkpoints, approvals, leases, the freeze, snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.core.store.models.columns import json_column, ts_column


class PlaybookRun(SQLModel, table=True):
    """A planned (and maybe approved, executed) playbook run.

    ``plan`` holds the exact changes computed by the dry run; ``plan_hash`` is
    what approvals bind to.  ``checkpoint`` is the index of the next step to
    execute, so a restart resumes exactly there.
    """

    __tablename__ = "playbook_runs"

    id: int = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    playbook: str = Field(index=True)
    cluster: str = Field(default="default", index=True)
    risk: str = "low"
    params: dict = json_column()
    plan: dict = json_column()
    plan_text: str = Field(default="", sa_column=Column(Text, nullable=False))
    plan_hash: str = ""
    state: str = Field(default="planned", index=True)
    requested_by: str = "system"
    requested_at: datetime = ts_column(nullable=False)
    started_at: Optional[datetime] = ts_column()
    finished_at: Optional[datetime] = ts_column()
    checkpoint: int = 0
    phase: str = "execute"
    owner: Optional[str] = None
    owner_heartbeat_at: Optional[datetime] = ts_column()
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    context: dict = json_column()
    auto_approved: bool = False


class RunStep(SQLModel, table=True):
    """The record of one step of a run: what it did, when, with which result."""

    __tablename__ = "run_steps"
    __table_args__ = (UniqueConstraint("run_id", "phase", "index", name="uq_run_step"),)

    id: int = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True)
    index: int
    phase: str = "execute"
    name: str
    state: str = "pending"
    started_at: Optional[datetime] = ts_column()
    finished_at: Optional[datetime] = ts_column()
    attempts: int = 0
    result: dict = json_column()
    error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))


class Approval(SQLModel, table=True):
    """A decision on a run, bound to the plan hash it was made for."""

    __tablename__ = "approvals"
    __table_args__ = (UniqueConstraint("run_id", "user", "plan_hash", name="uq_approval_once"),)

    id: int = Field(default=None, primary_key=True)
    run_id: int = Field(foreign_key="playbook_runs.id", index=True)
    user: str
    decision: str = "approve"
    plan_hash: str
    reason: Optional[str] = None
    at: datetime = ts_column(nullable=False)
    expires_at: Optional[datetime] = ts_column()
    source: str = "chat"


class Lease(SQLModel, table=True):
    """A named lease with an expiry: one mitigation per cluster, one leader per worker."""

    __tablename__ = "leases"

    name: str = Field(primary_key=True)
    holder: str
    acquired_at: datetime = ts_column(nullable=False)
    expires_at: datetime = ts_column(nullable=False)
    data: dict = json_column()


class Flag(SQLModel, table=True):
    """A global switch (the playbook freeze) with who set it and why."""

    __tablename__ = "flags"

    name: str = Field(primary_key=True)
    value: bool = False
    set_by: Optional[str] = None
    set_at: Optional[datetime] = ts_column()
    reason: Optional[str] = None


class Snapshot(SQLModel, table=True):
    """An etcd snapshot in the backup catalogue."""

    __tablename__ = "etcd_snapshots"

    id: int = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    path: str
    taken_at: datetime = ts_column(nullable=False)
    revision: int = 0
    size_bytes: int = 0
    sha256: str = ""
    total_keys: int = 0
    source_member: Optional[str] = None
    run_id: Optional[int] = None
    data: dict = json_column()
