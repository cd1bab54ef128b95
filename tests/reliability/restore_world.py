"""The part of the kill world that restore-etcd acts on: real etcd members under command templates.

restore-etcd stops every member, restores each from the catalogue's snapshot into
a new data dir and starts it; in production the templates say ``ssh {host}
systemctl ...``.  Here the members are a real 3-member etcd 3.6 started by the
tests' ``EtcdCluster``; the templates find a member by its pid file, stop it with
SIGTERM, start a restored one with ``nohup etcd ... &`` (so it outlives the
``serve`` that started it, as a systemd unit outlives an ssh session) and append
every stop and start they really do to a log.  The apiservers are cut off at the
same real HAProxy the failover cases use (``apiservers: lb``).

The story the chain tells: snapshot-etcd (the chain's first case) backs up the
seeded keys; later a script deletes them and writes others, and the commander
restores (``force=true``: etcd itself is healthy, its data is not).  Judged after
the run: each old member stopped, each restored member started exactly once, one
restored data dir per member (one token), the members healthy with one leader
under a new cluster id, holding exactly the snapshot's keys, and the HAProxy
states back where they were.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx

from bot.core import binaries
from integrations.clients.etcd import EtcdClient
from tests.support.components import EtcdCluster

PREFIX = "/registry/h14/"
SEEDED = 12  # keys written before the snapshot
# a pid file names the member's process; a zombie (a stopped child of the test not reaped yet) is stopped
ALIVE = "p=$(cat PIDS/{name}.pid 2>/dev/null) && kill -0 $p 2>/dev/null && ! ps -o stat= -p $p | grep -q Z"
ALIVE_P = "(kill -0 $p 2>/dev/null && ! ps -o stat= -p $p | grep -q Z)"
START = ("echo start {name} >> CALLS && nohup " + binaries.require("etcd") + " --name {name} --data-dir {data_dir} "
         "--listen-client-urls {client_url} --advertise-client-urls {client_url} --listen-peer-urls {peer_url} "
         "--initial-advertise-peer-urls {peer_url} --initial-cluster {initial_cluster} "
         "--initial-cluster-token {initial_cluster_token} --initial-cluster-state {initial_cluster_state} "
         "--listen-metrics-urls {metrics_url} >> {data_dir}.log 2>&1 < /dev/null & echo $! > PIDS/{name}.pid")
STOP = ("p=$(cat PIDS/{name}.pid 2>/dev/null) || exit 0; " + ALIVE_P + " || exit 0; echo stop {name} >> CALLS; "
        "kill $p; for i in $(seq 100); do " + ALIVE_P + " || exit 0; sleep 0.1; done; kill -9 $p")


class RestoreWorld:
    """Pid files, the call log and the judgement of restore-etcd's effects."""

    def __init__(self, work: Path, etcd: EtcdCluster) -> None:
        self.etcd = etcd
        self.pids, self.calls, self.restored = work / "etcd-pids", work / "etcd-calls.log", work / "restored"
        self.old_cluster_id = 0

    def settings(self) -> dict[str, Any]:
        """``clusters.etcd.etcd.restore``: the members as an operator lists them, and the templates."""
        def fill(template: str) -> str:
            return template.replace("PIDS", str(self.pids)).replace("CALLS", str(self.calls))

        return {"members": [{"name": m.name, "client_url": m.client_url, "peer_url": m.peer_url,
                             "data_dir": str(m.data_dir), "metrics_url": m.metrics_url} for m in self.etcd.members],
                "controller": "command", "start_command": fill(START), "stop_command": fill(STOP),
                "is_running_command": fill(ALIVE), "command_timeout_seconds": 30,
                "data_root": str(self.restored), "apiservers": "lb", "health_timeout_seconds": 60}

    def prepare(self) -> None:
        """Adopt the running members (their pid files) and write the keys the snapshot will hold."""
        self.pids.mkdir(exist_ok=True)
        self.calls.write_text("")
        for m in self.etcd.members:
            (self.pids / f"{m.name}.pid").write_text(f"{self.etcd.pid(m)}\n")
        with self.client() as client:
            for i in range(SEEDED):
                client.put(f"{PREFIX}k{i:03d}", f"value-{i}")
            ids = {r.status.cluster_id for r in client.cluster_summary().members if r.status is not None}
        assert len(ids) == 1, f"the seeded etcd answers with cluster ids {ids}"
        self.old_cluster_id = ids.pop()

    def fault(self) -> None:
        """A script deletes every seeded key and writes another: etcd is healthy, its data is wrong."""
        endpoint = self.etcd.endpoints[0]
        start, end = PREFIX.encode(), PREFIX[:-1].encode() + bytes([PREFIX.encode()[-1] + 1])
        body = {"key": base64.b64encode(start).decode(), "range_end": base64.b64encode(end).decode()}
        httpx.post(f"{endpoint}/v3/kv/deleterange", json=body, timeout=10, trust_env=False).raise_for_status()
        with self.client() as client:
            client.put(f"{PREFIX}written-after-the-snapshot", "lost by the restore")

    def client(self) -> EtcdClient:
        return EtcdClient(self.etcd.endpoints, timeout=5.0)

    def effects(self, plan: dict[str, Any]) -> list[str]:
        """Problems with the restore as the world sees it (empty: it happened once and holds the snapshot)."""
        names = [m.name for m in self.etcd.members]
        calls = [c.split() for c in self.calls.read_text().splitlines()]
        starts = [name for verb, name in calls if verb == "start"]
        first_start = next((i for i, (verb, _) in enumerate(calls) if verb == "start"), len(calls))
        problems = []
        if sorted(starts) != names:
            problems.append(f"restored members started {starts} (each of {names} once expected)")
        # a stop whose command outlived a SIGKILLed serve may be sent again: stopping twice changes nothing
        if {name for verb, name in calls[:first_start] if verb == "stop"} != set(names) \
                or any(verb == "stop" for verb, _ in calls[first_start:]):
            problems.append(f"member calls {calls} (every old member stopped before any start, none after)")
        dirs = sorted(p.name for p in self.restored.glob("*.etcd"))
        tokens = {d.split(".", 1)[1] for d in dirs}
        if len(dirs) != len(names) or len(tokens) != 1:
            problems.append(f"restored data dirs {dirs} (one per member, one token expected)")
        with self.client() as client:
            summary = client.cluster_summary()
            if not (summary.all_healthy and summary.one_leader):
                problems.append(f"etcd after the restore: {summary.sentence()}")
            ids = {r.status.cluster_id for r in summary.members if r.status is not None}
            if self.old_cluster_id in ids:
                problems.append("the old cluster still answers (cluster id unchanged)")
            keys = client.keys(PREFIX)
        expected = [f"{PREFIX}k{i:03d}" for i in range(SEEDED)]
        if keys != expected:
            problems.append(f"keys under {PREFIX} after the restore: {keys} (the snapshot's {len(expected)} expected)")
        return problems

    def cleanup(self) -> None:
        """The restored members run under the templates, not as the test's children: stop them by pid."""
        for pid_file in self.pids.glob("*.pid"):
            subprocess.run(["/bin/sh", "-c", f"kill -9 $(cat {pid_file}) 2>/dev/null"], check=False)
        shutil.rmtree(self.restored, ignore_errors=True)
