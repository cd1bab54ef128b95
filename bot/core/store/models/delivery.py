"""Talking to people and services exactly once: the outbox, inbound deliveries seen, rate limits, chat homes."""

from __future__ import annotations

from datetime import datetime
from typing import Optional

from sqlalchemy import Column, Index, Text, UniqueConstraint
from sqlmodel import Field, SQLModel

from bot.core.store.models.columns import json_column, ts_column


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

    id: int = Field(default=None, primary_key=True)
    incident_id: Optional[int] = Field(default=None, foreign_key="incidents.id", index=True)
    channel: str = "chat"
    kind: str
    payload: dict = json_column()
    coalesce_key: Optional[str] = Field(default=None, index=True)
    dedupe_key: Optional[str] = None
    status: str = "pending"
    attempts: int = 0
    not_before: Optional[datetime] = ts_column()
    created_at: datetime = ts_column(nullable=False)
    sent_at: Optional[datetime] = ts_column()
    claimed_by: Optional[str] = None
    claimed_until: Optional[datetime] = ts_column()
    last_error: Optional[str] = Field(default=None, sa_column=Column(Text, nullable=True))
    result: dict = json_column()


class ProcessedDelivery(SQLModel, table=True):
    """An inbound delivery already handled (Slack event id, webhook digest)."""

    __tablename__ = "processed_deliveries"

    key: str = Field(primary_key=True)
    source: str
    at: datetime = ts_column(nullable=False)
    result: dict = json_column()


class RateLimit(SQLModel, table=True):
    """An outside API told us to wait (HTTP 429 + Retry-After): every replica waits until ``until``.

    Keyed per API method (``slack:chat.postMessage``), because Slack limits each
    method separately: a 429 on one method holds that method, not the others.
    """

    __tablename__ = "rate_limits"

    key: str = Field(primary_key=True)
    until: datetime = ts_column(nullable=False)


class ChatBinding(SQLModel, table=True):
    """Where an incident lives in a chat system: its channel/thread and card message."""

    __tablename__ = "chat_bindings"
    __table_args__ = (UniqueConstraint("incident_id", "adapter", name="uq_chat_binding"),)

    id: int = Field(default=None, primary_key=True)
    incident_id: int = Field(foreign_key="incidents.id", index=True)
    adapter: str
    channel_id: Optional[str] = Field(default=None, index=True)
    thread_ts: Optional[str] = None
    card_ts: Optional[str] = None
    data: dict = json_column()
