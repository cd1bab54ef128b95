"""One mitigation at a time per cluster: a lease row with an expiry and a heartbeat.

The lease ``mitigation:<cluster>`` names the run holding it (``run:<id>``), so
a run resumed by another process after a crash takes its own lease back,
while any other run waits.  An expired lease (its owner died and nobody
resumed the run) can be taken over; the owner renews it with every heartbeat.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import select
from sqlmodel import Session, col

from bot.core.store.db import insert_once
from bot.core.store.models import Lease


def lease_name(cluster: str) -> str:
    return f"mitigation:{cluster}"


def holder_of(run_id: int) -> str:
    return f"run:{run_id}"


def _load(session: Session, name: str, lock: bool) -> Lease | None:
    query = select(Lease).where(col(Lease.name) == name)
    if lock and session.get_bind().dialect.name != "sqlite":
        query = query.with_for_update()
    return session.execute(query).scalars().first()


def acquire(session: Session, cluster: str, run_id: int, *, now: datetime, seconds: float) -> str | None:
    """Take (or renew) the cluster lease for ``run_id``; returns None, or the holder that keeps it."""
    name, holder = lease_name(cluster), holder_of(run_id)
    lease = _load(session, name, lock=True)
    if lease is None:
        new = Lease(name=name, holder=holder, acquired_at=now, expires_at=now + timedelta(seconds=seconds),
                    data={"run_id": run_id})
        if not insert_once(session, new):  # another replica inserted the same lease at the same moment
            other = _load(session, name, lock=False)
            return other.holder if other is not None else "another run"
        return None
    if lease.holder != holder and lease.expires_at > now:
        return lease.holder
    if lease.holder != holder:
        lease.acquired_at = now
    lease.holder = holder
    lease.expires_at = now + timedelta(seconds=seconds)
    lease.data = {"run_id": run_id}
    session.add(lease)
    return None


def renew(session: Session, cluster: str, run_id: int, *, now: datetime, seconds: float) -> bool:
    lease = _load(session, lease_name(cluster), lock=True)
    if lease is None or lease.holder != holder_of(run_id):
        return acquire(session, cluster, run_id, now=now, seconds=seconds) is None
    lease.expires_at = now + timedelta(seconds=seconds)
    session.add(lease)
    return True


def release(session: Session, cluster: str, run_id: int) -> None:
    lease = _load(session, lease_name(cluster), lock=True)
    if lease is not None and lease.holder == holder_of(run_id):
        session.delete(lease)


def holder(session: Session, cluster: str, *, now: datetime) -> str | None:
    lease = _load(session, lease_name(cluster), lock=False)
    if lease is None or lease.expires_at <= now:
        return None
    return lease.holder
