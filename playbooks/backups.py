"""The etcd backup catalogue: which snapshots exist, which one a restore may trust, taking new ones.

Every snapshot the bot takes (by the snapshot-etcd playbook or on a
schedule) becomes an ``etcd_snapshots`` row with the file's sha256, the
revision and key count from ``snapshot status`` and the member it came from.
A restore never trusts a row alone: ``newest_verified`` re-hashes the file,
newest first, and skips (and reports) any file that is missing or changed,
because ``snapshot status`` happily reads a corrupted file.

``SnapshotWorker`` takes one snapshot per cluster every
``clusters.NAME.etcd.snapshots.interval_seconds`` (0: never), guarded by a
lease so that several replicas do not snapshot twice, and prunes to ``keep``.
"""

from __future__ import annotations

import logging
import threading
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlmodel import col

from bot.core.clock import Clock
from bot.core.config import Settings
from bot.core.errors import ConfigError, IncidentBotError, IntegrationError
from bot.core.store.db import Database
from bot.core.store.models import Lease, Snapshot
from integrations.clients.etcd import EtcdClient, SnapshotInfo, SnapshotTool, detect_tool, save_snapshot, sha256_file
from bot.core.plugins import Extra, Host

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Entry:
    """One catalogue row, detached from the session (plain data for plans and chat)."""

    id: int
    cluster: str
    path: str
    taken_at: datetime
    revision: int
    size_bytes: int
    sha256: str
    total_keys: int
    source_member: str | None
    run_id: int | None

    @classmethod
    def of(cls, row: Snapshot) -> "Entry":
        return cls(id=row.id or 0, cluster=row.cluster, path=row.path, taken_at=row.taken_at,
                   revision=row.revision, size_bytes=row.size_bytes, sha256=row.sha256, total_keys=row.total_keys,
                   source_member=row.source_member, run_id=row.run_id)

    def describe(self) -> str:
        return (f"snapshot #{self.id} of {self.taken_at:%Y-%m-%d %H:%M:%SZ} (revision {self.revision}, "
                f"{self.total_keys} keys, {self.size_bytes / 1e6:.1f} MB, from {self.source_member or '?'})")


class Catalogue:
    """The ``etcd_snapshots`` table, as the playbooks and the worker use it."""

    def __init__(self, db: Database) -> None:
        self.db = db

    def record(self, cluster: str, info: SnapshotInfo, *, taken_at: datetime, run_id: int | None = None,
               source_member: str | None = None) -> Entry:
        with self.db.session() as s:
            row = Snapshot(cluster=cluster, path=str(info.path), taken_at=taken_at, revision=info.status.revision,
                           size_bytes=info.size_bytes, sha256=info.sha256, total_keys=info.status.total_keys,
                           source_member=source_member or info.endpoint, run_id=run_id,
                           data={"hash": info.status.hash, "total_size": info.status.total_size})
            s.add(row)
            s.flush()
            return Entry.of(row)

    def entries(self, cluster: str) -> list[Entry]:
        """Newest first."""
        with self.db.session() as s:
            rows = s.execute(select(Snapshot).where(col(Snapshot.cluster) == cluster)
                             .order_by(col(Snapshot.taken_at).desc(), col(Snapshot.id).desc())).scalars().all()
            return [Entry.of(r) for r in rows]

    def get(self, snapshot_id: int) -> Entry | None:
        with self.db.session() as s:
            row = s.get(Snapshot, snapshot_id)
            return Entry.of(row) if row else None

    def by_run(self, run_id: int) -> Entry | None:
        with self.db.session() as s:
            row = s.execute(select(Snapshot).where(col(Snapshot.run_id) == run_id)).scalars().first()
            return Entry.of(row) if row else None

    def newest_verified(self, cluster: str) -> tuple[Entry | None, list[str]]:
        """The newest snapshot whose file still has its recorded sha256, and why newer ones were skipped."""
        skipped: list[str] = []
        for entry in self.entries(cluster):
            problem = verify_file(entry)
            if problem is None:
                return entry, skipped
            skipped.append(f"#{entry.id} {problem}")
        return None, skipped

    def prune(self, cluster: str, keep: int) -> list[str]:
        """Delete the files and rows of all but the ``keep`` newest snapshots; returns removed paths."""
        removed: list[str] = []
        for entry in self.entries(cluster)[keep:]:
            try:
                Path(entry.path).unlink(missing_ok=True)
            except OSError as exc:
                log.warning("cannot remove old etcd snapshot %s: %s", entry.path, exc)
                continue
            with self.db.session() as s:
                row = s.get(Snapshot, entry.id)
                if row is not None:
                    s.delete(row)
            removed.append(entry.path)
        return removed


def verify_file(entry: Entry) -> str | None:
    """None when the file exists and hashes to the recorded sha256, else why not."""
    path = Path(entry.path)
    if not path.is_file():
        return f"{path} is missing"
    if path.stat().st_size != entry.size_bytes:
        return f"{path} is {path.stat().st_size} bytes, the catalogue says {entry.size_bytes}"
    digest = sha256_file(path)
    if digest != entry.sha256:
        return f"{path} has sha256 {digest[:12]}…, the catalogue says {entry.sha256[:12]}…"
    return None


_databases: dict[str, Database] = {}


def database_of(tools: Any) -> Database:
    """The bot's database as steps and plans reach it: the toolbox's ``database``, else settings."""
    try:
        return tools.get("database", "*")
    except LookupError:
        url = tools.settings.database_url
        return _databases.setdefault(url, Database(url))


def catalogue_of(tools: Any) -> Catalogue:
    return Catalogue(database_of(tools))


# -- taking a snapshot ---------------------------------------------------------------


def snapshot_dir(settings: Settings, cluster: str) -> Path:
    endpoints = settings.clusters.get(cluster)
    folder = endpoints.etcd.snapshots.dir if endpoints else None
    if not folder:
        raise ConfigError(f"clusters.{cluster}.etcd.snapshots.dir is not set: where should etcd snapshots go?")
    path = Path(folder)
    path.mkdir(parents=True, exist_ok=True)
    return path


def etcd_members(settings: Settings, cluster: str) -> list[str]:
    endpoints = settings.clusters.get(cluster)
    members = list(endpoints.etcd.members) if endpoints else []
    if not members:
        raise ConfigError(f"clusters.{cluster}.etcd.members lists no etcd client URLs.")
    return members


def snapshot_tool(settings: Settings, cluster: str) -> SnapshotTool:
    etcd = settings.clusters[cluster].etcd if cluster in settings.clusters else None
    return detect_tool(etcd.etcdctl if etcd else None, etcd.etcdutl if etcd else None)


def choose_source(client: EtcdClient) -> str:
    """A healthy member to snapshot from: a follower if one is healthy (spare the leader), else the leader."""
    summary = client.cluster_summary()
    healthy = [m for m in summary.members if m.healthy and m.status is not None]
    if not healthy:
        raise IntegrationError(f"no healthy etcd member to take a snapshot from: {summary.sentence()}.")
    followers = [m for m in healthy if m.status is not None and not m.status.is_leader]
    return (followers or healthy)[0].endpoint


def take(settings: Settings, cluster: str, path: Path, *, source: str, tool: SnapshotTool | None = None) -> SnapshotInfo:
    timeout = settings.clusters[cluster].etcd.snapshots.timeout_seconds if cluster in settings.clusters else 300.0
    return save_snapshot(source, path, tool=tool or snapshot_tool(settings, cluster), timeout=timeout)


def scheduled_path(folder: Path, cluster: str, now: datetime) -> Path:
    return folder / f"{cluster}-{now:%Y%m%dT%H%M%S%f}Z.db"


class SnapshotWorker:
    """Takes a snapshot of every cluster whose schedule is due; one replica at a time per cluster."""

    name = "etcd-snapshots"

    def __init__(self, db: Database, settings: Settings, clock: Clock, *, holder: str | None = None) -> None:
        self.db = db
        self.settings = settings
        self.clock = clock
        self.catalogue = Catalogue(db)
        self.holder = holder or f"worker-{uuid.uuid4().hex[:12]}"
        due = [c.etcd.snapshots.interval_seconds for c in settings.clusters.values() if c.etcd.snapshots.interval_seconds]
        self.interval = max(1.0, min(due) / 10) if due else 60.0
        self._lock = threading.Lock()

    def scheduled(self) -> dict[str, float]:
        return {name: c.etcd.snapshots.interval_seconds for name, c in self.settings.clusters.items()
                if c.etcd.snapshots.interval_seconds > 0}

    def tick(self) -> list[Entry]:
        taken: list[Entry] = []
        with self._lock:
            for cluster, interval in self.scheduled().items():
                try:
                    entry = self.run_once(cluster, interval)
                except IncidentBotError as exc:
                    log.warning("scheduled etcd snapshot of %s failed: %s", cluster, exc)
                    continue
                if entry is not None:
                    taken.append(entry)
        return taken

    def run_once(self, cluster: str, interval: float) -> Entry | None:
        now = self.clock.now()
        newest = self.catalogue.entries(cluster)
        if newest and now - newest[0].taken_at < timedelta(seconds=interval):
            return None
        if not self._claim(cluster, now, interval):
            return None
        client = EtcdClient(etcd_members(self.settings, cluster))
        try:
            source = choose_source(client)
        finally:
            client.close()
        info = take(self.settings, cluster, scheduled_path(snapshot_dir(self.settings, cluster), cluster, now),
                    source=source)
        entry = self.catalogue.record(cluster, info, taken_at=now, source_member=source)
        self.catalogue.prune(cluster, self.settings.clusters[cluster].etcd.snapshots.keep)
        return entry

    def _claim(self, cluster: str, now: datetime, interval: float) -> bool:
        """A lease ``etcd-snapshot:<cluster>`` for one interval: the first replica takes it, the rest skip."""
        name = f"etcd-snapshot:{cluster}"
        try:
            with self.db.session() as s:
                query = select(Lease).where(col(Lease.name) == name)
                if not self.db.is_sqlite:
                    query = query.with_for_update()
                lease = s.execute(query).scalars().first()
                if lease is not None and lease.holder != self.holder and lease.expires_at and lease.expires_at > now:
                    return False
                if lease is None:
                    lease = Lease(name=name, holder=self.holder, acquired_at=now)
                lease.holder = self.holder
                lease.expires_at = now + timedelta(seconds=max(interval / 2, 1.0))
                s.add(lease)
        except IntegrityError:  # another replica created the lease row at the same moment: it goes
            return False
        return True


ETCD_CATALOGUE: Extra[Catalogue] = Extra("etcd_catalogue", "playbooks.backups")


def register(bot: Host) -> None:
    """Extension hook: the scheduled snapshot worker (only when some cluster has a schedule)."""
    worker = SnapshotWorker(bot.db, bot.settings, bot.clock)
    bot.services.extras.put(ETCD_CATALOGUE, worker.catalogue)
    if worker.scheduled():
        bot.workers.append(worker)
