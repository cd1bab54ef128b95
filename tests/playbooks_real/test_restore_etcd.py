"""snapshot-etcd and restore-etcd through chat, against a real 3-member etcd cluster.

A snapshot is taken into the catalogue, more keys are written, then every
member is killed and its data destroyed.  restore-etcd (critical: the
commander and a second approver) must bring back exactly the snapshot's keys
on a healthy cluster with one leader and identical hashkv, cutting the
apiservers off at the LB meanwhile and bringing them back.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from integrations.clients.etcd import EtcdClient
from integrations.clients.haproxy import HAProxyLoadBalancer
from playbooks.backups import Catalogue
from playbooks.engine import Toolbox
from playbooks.library import etcd_ops
from tests.playbooks_real.conftest import BACKEND, Crash, Lab


def put_keys(lab: Lab, prefix: str, n: int) -> None:
    client = lab.etcd.client()
    try:
        for i in range(n):
            client.put(f"/registry/{prefix}/k{i:03d}", f"value-{i}")
    finally:
        client.close()


def keys_of(endpoints: list[str]) -> list[str]:
    with EtcdClient(endpoints) as client:
        return sorted(client.keys("/registry/"))


def take_snapshot(lab: Lab) -> None:
    """snapshot-etcd through chat, on an incident of its own."""
    lab.incident("take a backup before maintenance")
    reply = lab.chat.say("alice", "/incident run snapshot-etcd")
    run_id = int(reply.split("RUN-")[1].split()[0])
    lab.chat.say("alice", f"/incident approve RUN-{run_id}")
    run = lab.run_row(run_id)
    assert run.state == "succeeded", run.error


def destroy_etcd(lab: Lab) -> None:
    lab.etcd.stop_all(kill=True)
    for m in lab.etcd.members:
        shutil.rmtree(m.data_dir)


def lb_states(lab: Lab) -> dict[str, str]:
    return {k: v.value for k, v in HAProxyLoadBalancer(lab.haproxy.socket_path).read_states(BACKEND).items()}


def restored_endpoints(lab: Lab) -> list[str]:
    return lab.etcd.endpoints  # same names and URLs; new data dirs


def request_restore(lab: Lab) -> int:
    lab.incident("etcd data destroyed on every member")
    reply = lab.chat.say("bob", "/incident run restore-etcd")
    assert "restore-etcd (critical risk) awaits approval" in reply, reply
    assert "commander and a second approver" in reply
    assert "no member answers: the revisions after" in reply
    assert "new cluster token prod-r1-" in reply
    return int(reply.split("RUN-")[1].split()[0])


def test_restore_brings_back_exactly_the_snapshot(lab: Lab) -> None:
    put_keys(lab, "before", 40)
    take_snapshot(lab)
    entry = Catalogue(lab.bot.db).entries("prod")[0]
    assert entry.run_id == 1 and entry.revision > 40 and len(entry.sha256) == 64
    snapshot_keys = keys_of(lab.etcd.endpoints)
    put_keys(lab, "after", 10)  # written after the snapshot: lost by the restore
    destroy_etcd(lab)

    run_id = request_restore(lab)
    own = lab.chat.say("bob", f"/incident approve RUN-{run_id}")
    assert "nobody approves their own critical run" in own
    first = lab.chat.say("alice", f"/incident approve RUN-{run_id}")
    assert "still needed: a second approver" in first
    assert lab.run_row(run_id).state == "awaiting_approval"
    lab.chat.say("carol", f"/incident approve RUN-{run_id}")

    run = lab.run_row(run_id)
    assert run.state == "succeeded", run.error
    assert keys_of(restored_endpoints(lab)) == snapshot_keys
    summary = lab.etcd.client().cluster_summary()
    assert summary.all_healthy and summary.one_leader
    hashes = lab.etcd.client().hashkv()
    assert len({h.hash for h in hashes.values()}) == 1
    assert lb_states(lab) == {"main": "ready", "bypass": "ready"}  # apiservers back
    texts = "\n".join(lab.timeline_texts())
    for i, step in enumerate(["cut-apiservers", "stop-members", "restore-data", "start-members", "verify-etcd",
                              "reconnect-apiservers"], 1):
        assert f"step {i}/6 {step}: " in texts
    assert "verified: 3/3 members healthy" in texts and "hashkv" in texts


def test_restore_refuses_without_a_snapshot_that_passes_its_check(lab: Lab) -> None:
    lab.incident("etcd quorum lost")
    none = lab.chat.say("bob", "/incident run restore-etcd")
    assert "refusing restore-etcd on cluster prod: no snapshot in the catalogue passes its sha256 check" in none

    take_snapshot(lab)
    path = Path(Catalogue(lab.bot.db).entries("prod")[0].path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2: len(data) // 2 + 4] = b"XXXX"  # a corrupted backup
    path.write_bytes(bytes(data))
    destroy_etcd(lab)
    lab.incident("etcd data destroyed")
    corrupted = lab.chat.say("bob", "/incident run restore-etcd")
    assert "no snapshot in the catalogue passes its sha256 check (#1" in corrupted and "sha256" in corrupted
    assert [r.playbook for r in lab.engine.service.runs()] == ["snapshot-etcd"]


def test_restore_refuses_a_healthy_cluster_unless_forced(lab: Lab) -> None:
    take_snapshot(lab)
    lab.incident("suspected etcd problem")
    reply = lab.chat.say("bob", "/incident run restore-etcd")
    assert "refusing restore-etcd on cluster prod: etcd looks healthy (3/3 members healthy" in reply
    forced = lab.chat.say("bob", "/incident plan restore-etcd force=true")
    assert "revisions after the snapshot" in forced and "will be LOST" in forced


def test_a_crash_after_the_restore_resumes_without_restoring_again(lab: Lab) -> None:
    put_keys(lab, "before", 20)
    take_snapshot(lab)
    snapshot_keys = keys_of(lab.etcd.endpoints)
    destroy_etcd(lab)
    run_id = request_restore(lab)
    lab.chat.say("alice", f"/incident approve RUN-{run_id}")

    def die(label: str, rid: int) -> None:
        if label == "step:2:done":  # every member restored, the checkpoint not written
            raise Crash(label)

    lab.engine.executor.hooks.append(die)
    with pytest.raises(Crash):
        lab.chat.say("carol", f"/incident approve RUN-{run_id}")
    run = lab.run_row(run_id)
    assert run.state == "running" and run.checkpoint == 2
    markers = {m: (Path(d) / etcd_ops.MARKER).stat().st_mtime_ns for m, d in run.plan["facts"]["data_dirs"].items()}

    lab.new_engine()
    lab.clock.advance(lab.bot.settings.playbooks.stale_after_seconds + 1)
    lab.chat.pump()

    run = lab.run_row(run_id)
    assert run.state == "succeeded", run.error
    texts = "\n".join(lab.timeline_texts())
    assert "resumed after its worker stopped" in texts
    assert "step 3/6 restore-data: already in place" in texts
    assert {m: (Path(d) / etcd_ops.MARKER).stat().st_mtime_ns
            for m, d in run.plan["facts"]["data_dirs"].items()} == markers  # not restored twice
    assert keys_of(lab.etcd.endpoints) == snapshot_keys
    assert lb_states(lab) == {"main": "ready", "bypass": "ready"}


def test_a_sigkilled_engine_process_mid_restore_is_resumed_without_restoring_again(lab: Lab) -> None:
    put_keys(lab, "before", 20)
    take_snapshot(lab)
    snapshot_keys = keys_of(lab.etcd.endpoints)
    destroy_etcd(lab)
    run_id = request_restore(lab)
    lab.pause_worker()
    lab.chat.say("alice", f"/incident approve RUN-{run_id}")
    lab.chat.say("carol", f"/incident approve RUN-{run_id}")
    assert lab.run_row(run_id).state == "approved"

    proc = lab.run_and_kill(run_id, "step:2:done")  # apiservers cut, members restored; then SIGKILL

    assert proc.returncode == -9, proc.stdout + proc.stderr
    run = lab.run_row(run_id)
    assert run.state == "running" and run.checkpoint == 2
    assert lb_states(lab) == {"main": "maint", "bypass": "maint"}
    markers = {m: (Path(d) / etcd_ops.MARKER).stat().st_mtime_ns for m, d in run.plan["facts"]["data_dirs"].items()}

    lab.new_engine()
    lab.clock.advance(lab.bot.settings.playbooks.stale_after_seconds + 1)
    lab.chat.pump()

    run = lab.run_row(run_id)
    assert run.state == "succeeded", run.error
    texts = "\n".join(lab.timeline_texts())
    assert "step 3/6 restore-data: already in place" in texts
    assert {m: (Path(d) / etcd_ops.MARKER).stat().st_mtime_ns
            for m, d in run.plan["facts"]["data_dirs"].items()} == markers
    assert keys_of(lab.etcd.endpoints) == snapshot_keys
    assert lb_states(lab) == {"main": "ready", "bypass": "ready"}


def test_members_the_controller_does_not_control_fail_the_stop_step(lab: Lab) -> None:
    """A controller that cannot see the running members (wrong host, wrong unit) must not 'stop' them silently."""
    from integrations.clients.etcd import LocalProcessController

    take_snapshot(lab)
    lab.engine = __import__("bot.chat.handlers_playbooks", fromlist=["install"]).install(
        lab.bot, tools=Toolbox(lab.bot.settings, etcd_controller=lambda _c: LocalProcessController(),
                               database=lambda _c: lab.bot.db))
    lab.incident("etcd looks corrupted")
    reply = lab.chat.say("bob", "/incident run restore-etcd force=true")
    run_id = int(reply.split("RUN-")[1].split()[0])
    lab.chat.say("alice", f"/incident approve RUN-{run_id}")
    lab.chat.say("carol", f"/incident approve RUN-{run_id}")

    run = lab.run_row(run_id)
    assert run.state == "rolled_back", run.state
    assert "still answers at" in (run.error or "") and "does not control" in run.error
    assert lb_states(lab) == {"main": "ready", "bypass": "ready"}  # the apiservers' cut-off was undone
    assert lab.etcd.client().cluster_summary().all_healthy  # the running cluster was not touched
