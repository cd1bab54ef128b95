"""Where each incident lives in Slack, as rows of ``ChatBinding`` (adapter "slack").

A home is a channel of its own (``inc-42-apiserver-5xx``, with the card as the
first message and the timeline in the card's thread) or a thread under the card
in ``slack.incidents_channel``.  The binding is the only way back from a
channel, thread or card message to its incident: that is what makes the
incident implicit inside its home.
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import select
from sqlmodel import col

from bot.core.store.db import Database
from bot.core.store.models import ChatBinding

ADAPTER = "slack"
MAX_CHANNEL_NAME = 80


def channel_name(incident_id: int, title: str, attempt: int = 0) -> str:
    """``inc-42-<slug>``: lowercase letters, digits and dashes, at most 80 characters."""
    slug = re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")
    base = f"inc-{incident_id}" + (f"-{slug}" if slug else "")
    suffix = f"-{attempt + 1}" if attempt else ""
    return base[: MAX_CHANNEL_NAME - len(suffix)].rstrip("-") + suffix


def binding(db: Database, incident_id: int) -> ChatBinding | None:
    with db.session() as session:
        return session.execute(
            select(ChatBinding).where(col(ChatBinding.incident_id) == incident_id, col(ChatBinding.adapter) == ADAPTER)
        ).scalars().first()


def save(db: Database, incident_id: int, **changes: Any) -> ChatBinding:
    """Create or update an incident's binding (``data`` keys are merged)."""
    with db.session() as session:
        row = session.execute(
            select(ChatBinding).where(col(ChatBinding.incident_id) == incident_id, col(ChatBinding.adapter) == ADAPTER)
        ).scalars().first()
        if row is None:
            row = ChatBinding(incident_id=incident_id, adapter=ADAPTER)
        data = changes.pop("data", None)
        for key, value in changes.items():
            setattr(row, key, value)
        if data:
            row.data = {**(row.data or {}), **data}
        session.add(row)
        session.flush()
        return row


def incident_at(db: Database, channel_id: str | None, thread_ts: str | None = None,
                message_ts: str | None = None) -> int | None:
    """The incident whose home is this channel, thread or card message, if any."""
    if not channel_id:
        return None
    with db.session() as session:
        rows = list(session.execute(
            select(ChatBinding).where(col(ChatBinding.adapter) == ADAPTER, col(ChatBinding.channel_id) == channel_id)
        ).scalars())
    for ts in (thread_ts, message_ts):
        if ts:
            for row in rows:
                if ts in (row.thread_ts, row.card_ts):
                    return row.incident_id
    owned = [row for row in rows if (row.data or {}).get("own_channel")]
    return owned[0].incident_id if len(owned) == 1 else None

