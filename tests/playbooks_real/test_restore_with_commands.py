"""restore-etcd on "real hosts": members and apiservers controlled by configured shell commands.

The members are started and stopped by ``CommandController`` templates (here
``nohup etcd ... &`` with a pid file, where a site would write ``ssh {host}
systemctl start etcd``), and the apiservers are cut off by a stop command
and brought back by a start command instead of the LB.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core import binaries

from bot.core.config.clusters import EtcdRestoreSettings
from tests.playbooks_real.conftest import CLUSTER, Lab
from tests.playbooks_real.test_restore_etcd import destroy_etcd, keys_of, put_keys, request_restore, take_snapshot

START = ("nohup " + binaries.require("etcd") + " --name {name} --data-dir {data_dir} --listen-client-urls {client_url} "
         "--advertise-client-urls {client_url} --listen-peer-urls {peer_url} --initial-advertise-peer-urls {peer_url} "
         "--initial-cluster {initial_cluster} --initial-cluster-token {initial_cluster_token} "
         "--initial-cluster-state {initial_cluster_state} --listen-metrics-urls {metrics_url} "
         ">> {data_dir}.log 2>&1 & echo $! > PIDS/{name}.pid")
STOP = ("test -f PIDS/{name}.pid || exit 0; p=$(cat PIDS/{name}.pid); kill $p 2>/dev/null; "
        "for i in $(seq 100); do kill -0 $p 2>/dev/null || exit 0; sleep 0.1; done; kill -9 $p")
RUNNING = "test -f PIDS/{name}.pid && kill -0 $(cat PIDS/{name}.pid) 2>/dev/null"


@pytest.fixture
def commands(lab: Lab) -> Iterator[Path]:
    pids = lab.tmp / "pids"
    pids.mkdir()
    calls = lab.tmp / "apiservers.log"
    restore = lab.bot.settings.clusters[CLUSTER].etcd.restore
    lab.bot.settings.clusters[CLUSTER].etcd.restore = EtcdRestoreSettings(
        **{**restore.model_dump(), "controller": "command",
           "start_command": START.replace("PIDS", str(pids)), "stop_command": STOP.replace("PIDS", str(pids)),
           "is_running_command": RUNNING.replace("PIDS", str(pids)), "apiservers": "command",
           "apiservers_stop_command": f"echo stop >> {calls}", "apiservers_start_command": f"echo start >> {calls}"})
    lab.new_engine(test_controller=False)
    try:
        yield calls
    finally:
        for pid_file in pids.glob("*.pid"):
            subprocess.run(["/bin/sh", "-c", f"kill -9 $(cat {pid_file}) 2>/dev/null"], check=False)


def test_restore_with_command_controlled_members_and_apiservers(lab: Lab, commands: Path) -> None:
    put_keys(lab, "before", 15)
    take_snapshot(lab)
    snapshot_keys = keys_of(lab.etcd.endpoints)
    destroy_etcd(lab)

    run_id = request_restore(lab)
    lab.chat.say("alice", f"/incident approve RUN-{run_id}")
    lab.chat.say("carol", f"/incident approve RUN-{run_id}")

    run = lab.run_row(run_id)
    assert run.state == "succeeded", run.error
    assert keys_of(lab.etcd.endpoints) == snapshot_keys
    assert commands.read_text().split() == ["stop", "start"]
    assert not any(lab.etcd.controller.is_running(m) for m in lab.etcd.members)  # they run under the commands
