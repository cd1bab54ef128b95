"""The admission guard's shared state: open circuit breakers, delete counts, freeze exceptions."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import JSON, Column, Index, Text, UniqueConstraint, text
from sqlmodel import Field, SQLModel

from bot.core.store.models.columns import ts_column


class GuardBreaker(SQLModel, table=True):
    """A tripped mass-deletion circuit breaker: deletes by ``client`` (``*``: everyone) are denied until lifted."""

    __tablename__ = "guard_breakers"
    __table_args__ = (
        Index("ix_guard_breakers_open", "cluster", "lifted_at"),
        # one open breaker per key across replicas: the database decides which replica's trip opens the incident
        Index("uq_guard_breakers_open_key", "cluster", "resource", "client", unique=True,
              postgresql_where=text("lifted_at IS NULL"), sqlite_where=text("lifted_at IS NULL")),
    )

    id: int = Field(default=None, primary_key=True)
    cluster: str
    client: str  # the user the breaker stops, or "*" for the cluster-wide breaker
    resource: str
    first_delete_at: datetime = ts_column(nullable=False)  # the burst's first delete: the incident's T0
    tripped_at: datetime = ts_column(nullable=False)
    threshold: int
    incident_id: Optional[int] = Field(default=None, index=True)
    lifted_at: Optional[datetime] = ts_column()
    lifted_by: Optional[str] = None


class GuardDeleteCount(SQLModel, table=True):
    """One replica's deletes of one key in one time bucket, published so every replica counts them all.

    ``count`` is the replica's total for the bucket (an upsert sets it, so publishing twice is harmless);
    ``first_at``/``last_at`` bound the bucket's deletes: the window uses ``last_at``, a trip's T0 ``first_at``.
    """

    __tablename__ = "guard_delete_counts"
    __table_args__ = (UniqueConstraint("replica", "cluster", "resource", "client", "bucket_start",
                                       name="uq_guard_delete_count"),)

    id: int = Field(default=None, primary_key=True)
    replica: str
    cluster: str
    resource: str
    client: str
    bucket_start: datetime = ts_column(nullable=False)
    count: int
    first_at: datetime = ts_column(nullable=False)
    last_at: datetime = ts_column(nullable=False, index=True)


class GuardException(SQLModel, table=True):
    """An exception to the change freeze: one user, one cluster, a time window, approved in chat."""

    __tablename__ = "guard_exceptions"

    id: int = Field(default=None, primary_key=True)
    cluster: str = Field(index=True)
    user: str
    rule: str  # a risk-list rule name, or "*" for every rule
    minutes: int
    reason: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    incident_id: Optional[int] = Field(default=None, index=True)
    requested_by: str
    requested_at: datetime = ts_column(nullable=False)
    needed: int = 1  # approvals needed: two for critical rules
    approvers: list = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    approved_at: Optional[datetime] = ts_column()
    until: Optional[datetime] = ts_column()
