"""Publishing this replica's delete counts and reading the others', for the guard's worker only.

One upsert per refresh carries the buckets that changed (a bucket's total, so a retry after a lost
answer sets the same row again); one read brings back the other replicas' buckets still in the
window and the breakers lifted within it (deletes before a lift no longer count). Rows older than
the window are deleted by whichever replica publishes, so the table stays a few windows deep.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.orm import Session
from sqlmodel import col

from bot.domain.guard.shared_counts import BucketCount, Key, PeerCounts
from bot.core.store.models import GuardBreaker, GuardDeleteCount, table_of

KEEP_WINDOWS = 2  # rows whose last delete is older than this many windows are deleted


def publish_counts(session: Session, replica: str, counts: list[BucketCount], now: datetime,
                   window_seconds: float) -> None:
    """Upsert this replica's changed buckets, and prune every replica's rows long out of the window."""
    if counts:
        if session.get_bind().dialect.name == "sqlite":
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert  # type: ignore[assignment]  # each dialect's insert() is its own type
        table = table_of(GuardDeleteCount)
        stmt = insert(table)
        session.execute(stmt.on_conflict_do_update(
            index_elements=["replica", "cluster", "resource", "client", "bucket_start"],
            set_={"count": stmt.excluded.count, "first_at": stmt.excluded.first_at, "last_at": stmt.excluded.last_at}),
            [{"replica": replica, "cluster": c.cluster, "resource": c.resource, "client": c.client,
              "bucket_start": c.bucket_start, "count": c.count, "first_at": c.first_at, "last_at": c.last_at}
             for c in counts])
    horizon = now - timedelta(seconds=KEEP_WINDOWS * window_seconds)
    session.execute(delete(GuardDeleteCount).where(col(GuardDeleteCount.last_at) < horizon))


def read_peer_counts(session: Session, replica: str, now: datetime, window_seconds: float) -> PeerCounts:
    """The other replicas' buckets with a delete in the window, less what a lift since has cleared."""
    horizon = now - timedelta(seconds=window_seconds)
    t = GuardDeleteCount
    rows = session.execute(select(  # columns, not objects: they may be many
        col(t.cluster), col(t.resource), col(t.client), col(t.bucket_start), col(t.count), col(t.first_at),
        col(t.last_at)).where(col(t.last_at) > horizon, col(t.replica) != replica)).all()
    counts = [BucketCount(cluster, resource, client, _at(start), n, _at(first), _at(last))
              for cluster, resource, client, start, n, first, last in rows]
    lifted: dict[Key, datetime] = {}
    for b in session.execute(select(GuardBreaker).where(col(GuardBreaker.lifted_at) > horizon)).scalars():
        key = (b.cluster, b.resource, b.client)
        if b.lifted_at is not None and (key not in lifted or lifted[key] < b.lifted_at):
            lifted[key] = b.lifted_at
    return PeerCounts(counts, lifted=lifted, loaded_at=now)


def _at(value: datetime | None) -> datetime:
    """A NOT NULL timestamp column's value (the model types them Optional)."""
    if value is None:
        raise ValueError("guard_delete_counts: a NULL timestamp in a NOT NULL column")
    return value
