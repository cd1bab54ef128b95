"""Retry-After, remembered in the database so that every replica honours it.

When Slack answers 429 to ``chat.postMessage`` it means "this app, this
method, wait N seconds" — not "this message".  Keeping that fact per message
let each queued message try once more (337 calls during one 30 s limit);
keeping it in one process let the other replicas keep calling.  A row per
method (``rate_limits``) is read before each call and written on each 429.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.exc import IntegrityError

from bot.core.clock import Clock, utc
from bot.core.store.db import Database
from bot.core.store.models import RateLimit


class RateLimits:
    """``wait(key)`` before calling; ``hold(key, seconds)`` when told to back off."""

    def __init__(self, db: Database, clock: Clock) -> None:
        self.db = db
        self.clock = clock

    def wait(self, key: str) -> float | None:
        """Seconds left before ``key`` may be called again; None when it may be called now."""
        with self.db.reading() as session:
            row = session.get(RateLimit, key)
            until = utc(row.until) if row is not None and row.until is not None else None
        if until is None:
            return None
        left = (until - self.clock.now()).total_seconds()
        return left if left > 0 else None

    def hold(self, key: str, seconds: float) -> datetime:
        """Nobody calls ``key`` for ``seconds`` (a later hold extends, an earlier one never shortens)."""
        until = self.clock.now() + timedelta(seconds=max(0.0, seconds))
        for _ in range(2):  # a replica inserting the same key at the same moment: update on the retry
            try:
                with self.db.session() as session:
                    row = session.get(RateLimit, key)
                    if row is None:
                        session.add(RateLimit(key=key, until=until))
                    elif utc(row.until) < until:
                        row.until = until
                        session.add(row)
                return until
            except IntegrityError:
                continue
        return until
