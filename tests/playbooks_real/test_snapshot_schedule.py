"""Scheduled etcd snapshots: one per interval per cluster, pruned to ``keep``, catalogued with their sha256."""

from __future__ import annotations

from pathlib import Path

from playbooks.backups import Catalogue, SnapshotWorker
from tests.playbooks_real.conftest import CLUSTER, Lab


def test_the_worker_takes_a_snapshot_per_interval_and_keeps_the_newest(lab: Lab) -> None:
    snapshots = lab.bot.settings.clusters[CLUSTER].etcd.snapshots
    snapshots.interval_seconds, snapshots.keep = 3600, 2
    worker = SnapshotWorker(lab.bot.db, lab.bot.settings, lab.clock)
    catalogue = Catalogue(lab.bot.db)
    with lab.etcd.client() as client:
        client.put("/registry/configmaps/default/a", "1")

    first = worker.tick()
    assert [e.cluster for e in first] == [CLUSTER]
    assert worker.tick() == []  # not due yet
    lab.clock.advance(3600)
    assert len(worker.tick()) == 1
    lab.clock.advance(3600)
    assert len(worker.tick()) == 1

    kept = catalogue.entries(CLUSTER)
    assert len(kept) == 2 and first[0].id not in {e.id for e in kept}
    assert not Path(first[0].path).exists()  # pruned with its row
    newest, skipped = catalogue.newest_verified(CLUSTER)
    assert newest == kept[0] and skipped == []
    assert newest.source_member in lab.etcd.endpoints and newest.revision > 0


def test_a_second_replica_does_not_snapshot_the_same_interval(lab: Lab) -> None:
    lab.bot.settings.clusters[CLUSTER].etcd.snapshots.interval_seconds = 3600
    one = SnapshotWorker(lab.bot.db, lab.bot.settings, lab.clock, holder="replica-1")
    two = SnapshotWorker(lab.bot.db, lab.bot.settings, lab.clock, holder="replica-2")

    assert len(one.tick()) == 1
    assert two.tick() == []
    assert len(Catalogue(lab.bot.db).entries(CLUSTER)) == 1


def test_two_replicas_on_postgresql_take_one_snapshot(postgres_url: str, etcd_cluster, tmp_path: Path,
                                                       clock) -> None:
    from bot.compose.app.bot import build_bot
    from bot.core.config.clusters import ClusterEndpoints, EtcdEndpoints, EtcdSnapshotSettings
    from tests.conftest import make_settings

    settings = make_settings(postgres_url)
    settings.clusters = {CLUSTER: ClusterEndpoints(etcd=EtcdEndpoints(
        members=etcd_cluster.endpoints, snapshots=EtcdSnapshotSettings(dir=str(tmp_path), interval_seconds=60)))}
    bot = build_bot(settings, clock=clock)
    try:
        assert any(getattr(w, "name", None) == "etcd-snapshots" for w in bot.workers)  # registered by the extension
        one = SnapshotWorker(bot.db, settings, clock, holder="replica-1")
        two = SnapshotWorker(bot.db, settings, clock, holder="replica-2")
        assert len(one.tick()) + len(two.tick()) == 1
        entry = Catalogue(bot.db).entries(CLUSTER)[0]
        assert Catalogue(bot.db).newest_verified(CLUSTER) == (entry, [])
    finally:
        bot.close()
