"""The etcd client, snapshot and member-control code against REAL etcd 3.6 members on loopback (built by setup)."""

from __future__ import annotations

import hashlib
import socket
from pathlib import Path

import pytest

from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout
from integrations.clients.etcd import (
    CommandController,
    EtcdClient,
    EtcdMemberSpec,
    MemberController,
    detect_tool,
    restore_cluster,
    save_snapshot,
    sha256_file,
    snapshot_status,
)
from tests.support.components import EtcdCluster, free_port, wait_until

pytest_plugins = ["tests.support.fixtures_components"]


def test_summary_of_a_healthy_cluster(etcd_cluster: EtcdCluster) -> None:
    with etcd_cluster.client() as client:
        summary = client.cluster_summary()
        members = client.member_list()
        statuses = [client.status(ep) for ep in etcd_cluster.endpoints]
        alarms = client.alarms()

    assert (summary.members_healthy, summary.members_total) == (3, 3)
    assert summary.has_quorum and summary.all_healthy and summary.one_leader
    assert sorted(m.name for m in members) == ["m1", "m2", "m3"]
    assert summary.leader_id in {m.member_id for m in members}
    assert [s.is_leader for s in statuses].count(True) == 1
    assert {s.member_id for s in statuses} == {m.member_id for m in members}
    assert all(s.version.startswith("3.") and s.raft_term >= 1 and s.db_size > 0 for s in statuses)
    assert alarms == []
    assert summary.sentence().startswith("3/3 members healthy, quorum kept, leader ")


def test_killing_the_leader_leaves_two_of_three_with_quorum_and_a_new_leader(etcd_cluster: EtcdCluster) -> None:
    with etcd_cluster.client(timeout=1.0) as client:
        old_leader = client.cluster_summary().leader_id
        leader = next(m for m, ep in zip(etcd_cluster.members, etcd_cluster.endpoints)
                      if client.status(ep).member_id == old_leader)
        assert etcd_cluster.pid(leader) is not None

        etcd_cluster.kill(leader)
        assert not etcd_cluster.controller.is_running(leader)
        assert etcd_cluster.pid(leader) is None

        summary = wait_until(
            lambda: (s := client.cluster_summary()).one_leader and s.members_healthy == 2 and s,
            timeout=20, what="a new leader among the two survivors",
        )
        assert summary.members_total == 3 and summary.has_quorum and not summary.all_healthy
        assert summary.leader_id != old_leader
        assert summary.unhealthy_endpoints == (leader.client_url,)
        assert leader.client_url in summary.sentence() and "2/3 members healthy, quorum kept" in summary.sentence()
        with pytest.raises(IntegrationError, match=leader.client_url):
            client.health(leader.client_url)
        # writes still commit with one member down
        client.put("/registry/after-kill", "x")

        etcd_cluster.restart(leader)
        summary = wait_until(lambda: (s := client.cluster_summary()).all_healthy and s.one_leader and s,
                             timeout=20, what="the restarted member to rejoin")
        assert client.get("/registry/after-kill", endpoint=leader.client_url) == b"x"


def test_failures_are_integration_errors_that_name_the_member() -> None:
    dead = f"http://127.0.0.1:{free_port()}"
    # A socket that listens but never answers: the call must time out, not hang.
    mute = socket.socket()
    mute.bind(("127.0.0.1", 0))
    mute.listen(8)
    silent = f"http://127.0.0.1:{mute.getsockname()[1]}"
    try:
        with EtcdClient([dead, silent], timeout=0.3) as client:
            with pytest.raises(IntegrationError, match=f"etcd member {dead} is unreachable"):
                client.status(dead)
            with pytest.raises(IntegrationTimeout, match=f"etcd member {silent} did not answer"):
                client.health(silent)
            with pytest.raises(IntegrationError) as excinfo:
                client.member_list()
            assert dead in str(excinfo.value) and silent in str(excinfo.value)
            summary = client.cluster_summary()
            assert (summary.members_healthy, summary.has_quorum, summary.one_leader) == (0, False, False)
            with pytest.raises(IntegrationError, match=dead):
                client.hashkv([dead])
    finally:
        mute.close()
    with pytest.raises(ConfigError):
        EtcdClient([])


def test_snapshot_save_status_sha256_then_restore_a_new_cluster(etcd_cluster: EtcdCluster) -> None:
    tool = detect_tool()
    snap = etcd_cluster.workdir / "snap.db"  # removed with the cluster's directory
    client = etcd_cluster.client()
    try:
        for i in range(25):
            client.put(f"/registry/configmaps/default/cm-{i:02d}", f"value-{i}")
        keys_before = client.keys("/registry/")
        revision_before = client.status(etcd_cluster.endpoints[0]).revision

        # -- save from exactly one member
        with pytest.raises(ConfigError, match="exactly one etcd member"):
            save_snapshot(",".join(etcd_cluster.endpoints), etcd_cluster.workdir / "bad.db", tool=tool)
        info = save_snapshot(etcd_cluster.endpoints[1], snap, tool=tool)
        with pytest.raises(IntegrationError, match="already exists"):
            save_snapshot(etcd_cluster.endpoints[1], snap, tool=tool)

        data = snap.read_bytes()
        assert info.sha256 == hashlib.sha256(data).hexdigest() == sha256_file(snap)
        assert info.size_bytes == len(data)
        assert info.status == snapshot_status(snap, tool=tool)
        assert info.status.revision == revision_before
        assert info.status.total_keys >= len(keys_before) == 25
        assert info.status.total_size > 0
        assert (tool.offline_kind, Path(tool.offline).name) == ("etcdutl", "etcdutl")

        # what the restored cluster must equal: hashkv at the snapshot's revision, same on every member
        expected = client.hashkv(revision=info.status.revision)
        assert len({h.hash for h in expected.values()}) == 1
        old_ids = {m.member_id for m in client.member_list()}

        client.put("/registry/written-after-snapshot", "lost")
    finally:
        client.close()

    # -- disaster: every member dies; restore into new data dirs with a new token
    etcd_cluster.stop_all(kill=True)
    restored = etcd_cluster.respec(etcd_cluster.workdir / "restored", token="restored-token")
    assert all(not m.data_dir.exists() for m in restored)
    paths = restore_cluster(snap, restored, "restored-token", tool=tool)
    assert paths == [m.data_dir for m in restored] and all((p / "member").is_dir() for p in paths)
    with pytest.raises(IntegrationError, match="already exist"):
        restore_cluster(snap, restored, "restored-token", tool=tool)

    etcd_cluster.start(restored)
    with etcd_cluster.client() as client:
        summary = wait_until(lambda: (s := client.cluster_summary()).all_healthy and s.one_leader and s,
                             timeout=20, what="the restored cluster to elect a leader")
        assert summary.members_total == 3
        assert {m.member_id for m in client.member_list()}.isdisjoint(old_ids)
        assert client.keys("/registry/") == keys_before
        assert client.get("/registry/written-after-snapshot") is None
        for ep in etcd_cluster.endpoints:
            assert client.count_keys("/registry/", endpoint=ep, serializable=True) == 25
        hashes = client.hashkv()
        assert len({h.hash for h in hashes.values()}) == 1  # every member restored the same data
        # revisions jumped ahead (and older ones are compacted): watchers never see time go back
        assert all(h.revision > info.status.revision + 999_999_999 for h in hashes.values())


def _script(path: Path, body: str) -> None:
    path.write_text("#!/bin/sh\n" + body + "\n")
    path.chmod(0o755)


def test_detect_tool_finds_the_built_etcdutl_and_refuses_an_etcdctl_without_one(tmp_path: Path) -> None:
    tool = detect_tool()
    assert (tool.offline_kind, Path(tool.offline).name, Path(tool.etcdctl).name) == ("etcdutl", "etcdutl", "etcdctl")
    assert Path(tool.offline).parent == Path(tool.etcdctl).parent  # one etcd release, side by side
    _script(tmp_path / "etcdctl", 'echo "etcdctl version: 3.6.0"; echo "API version: 3.6"')
    with pytest.raises(ConfigError, match="etcdutl was not found"):
        detect_tool(etcdctl=str(tmp_path / "etcdctl"), etcdutl=str(tmp_path / "etcdutl"))
    with pytest.raises(ConfigError, match="etcdctl was not found"):
        detect_tool(etcdctl=str(tmp_path / "nope"))


def test_command_controller_runs_templates_with_quoted_fields(tmp_path: Path) -> None:
    member = EtcdMemberSpec(
        name="m1; touch hacked", client_url="http://127.0.0.1:2379", peer_url="http://127.0.0.1:2380",
        data_dir=tmp_path / "data dir",
    )
    marker = "{data_dir}.running"
    ctl = CommandController(
        start=f"touch {marker}",
        stop=f"rm {marker}",
        is_running=f"test -e {marker}",
        timeout=5,
    )
    assert isinstance(ctl, MemberController)
    assert not ctl.is_running(member)
    ctl.start(member)
    assert ctl.is_running(member) and (tmp_path / "data dir.running").exists()
    ctl.stop(member)
    assert not ctl.is_running(member)
    assert not (tmp_path / "hacked").exists() and not Path("hacked").exists()
    assert ctl.render("start", member) == f"touch '{tmp_path}/data dir'.running"

    with pytest.raises(IntegrationError, match=r"failed to stop etcd member .*exit 1.*No such file"):
        ctl.stop(member)  # rm of a missing file: nonzero exit, stderr in the message

    broken = CommandController(start="echo boom >&2; exit 7", stop="sleep 5", is_running="exit 255", timeout=0.3)
    with pytest.raises(IntegrationError, match="exit 7.*boom"):
        broken.start(member)
    with pytest.raises(IntegrationTimeout, match="did not finish within 0.3 s"):
        broken.stop(member)
    with pytest.raises(IntegrationError, match="Could not tell"):
        broken.is_running(member)
    with pytest.raises(ConfigError, match=r"\{hostname\}"):
        CommandController(start="ssh {hostname} true", stop="true", is_running="true")


def test_prometheus_and_alertmanager_report_a_killed_member_to_the_webhook(
    etcd_cluster: EtcdCluster, prometheus_factory, alertmanager_factory, webhook_recorder
) -> None:
    """The harness end to end: Prometheus scrapes the members' metrics ports, a rule fires on
    SIGKILL, and Alertmanager delivers the webhook carrying the bearer token."""
    am = alertmanager_factory(webhook_recorder.webhook_url, "s3cret-token")
    rules = {"groups": [{"name": "etcd-fast", "interval": "1s", "rules": [{
        "alert": "EtcdMemberDownFast", "expr": 'up{job="etcd"} == 0', "for": "1s",
        "labels": {"severity": "critical"},
    }]}]}
    prom = prometheus_factory({"etcd": etcd_cluster.metrics_targets}, rules=rules, alertmanager=am.address)
    wait_until(lambda: len(prom.query('up{job="etcd"} == 1')) == 3, timeout=15, what="3 etcd targets up")

    victim = etcd_cluster.kill(2)
    request = webhook_recorder.wait_for(
        lambda r: r["body"]["status"] == "firing"
        and any(a["labels"]["alertname"] == "EtcdMemberDownFast" for a in r["body"]["alerts"]),
        timeout=20,
    )
    assert request["headers"].get("Authorization") == "Bearer s3cret-token"
    assert request["path"] == "/webhooks/alertmanager"
    alert = request["body"]["alerts"][0]
    assert alert["labels"]["instance"] == victim.metrics_url.split("://", 1)[1]
    assert request["body"]["version"] == "4"
