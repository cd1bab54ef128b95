"""The etcd restore procedure as plain functions over ``integrations.clients.etcd``.

The restore-etcd playbook strings these together as checkpointed steps; the
benchmark times them against the same procedure typed by hand.  Why the
procedure is shaped like this (research/control-plane-playbooks.md, C.3):

* every member is restored from the same snapshot into a NEW data dir with
  a NEW cluster token, so a restored member can never join a stale one and
  the old data stays on disk for forensics;
* the leader is stopped first (it hands over leadership at once; stopped
  last it hangs ~7 s trying to);
* "restored" means: every member healthy, exactly one leader, identical
  ``hashkv`` on every member, and a revision no lower than the snapshot's.

Each new data dir gets a marker file once its restore has finished, so a
crash in the middle of a restore is told apart from a finished one: a dir
without the marker is our own half-written output and is redone.
"""

from __future__ import annotations

import dataclasses
import json
import shutil
from concurrent.futures import ThreadPoolExecutor
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from bot.core.config import Settings
from bot.core.config.clusters import EtcdEndpoints
from bot.core.errors import ConfigError, IntegrationError, StepFailed
from playbooks.engine.waiting import poll_until
from integrations.clients.etcd import (
    ClusterSummary,
    CommandController,
    EtcdClient,
    EtcdMemberSpec,
    HashKV,
    LocalProcessController,
    MemberController,
    SnapshotTool,
    restore_member,
    with_cluster,
)

MARKER = ".incident-bot-restored"
STARTED = ".incident-bot-started"


def etcd_settings(settings: Settings, cluster: str) -> EtcdEndpoints:
    endpoints = settings.clusters.get(cluster)
    if endpoints is None:
        known = ", ".join(sorted(settings.clusters)) or "none"
        raise ConfigError(f"cluster `{cluster}` is not configured (clusters.{cluster}); configured clusters: {known}.")
    etcd = endpoints.etcd
    if not etcd.restore.members:
        raise ConfigError(f"clusters.{cluster}.etcd.restore.members is empty: name, client_url, peer_url and "
                          f"data_dir of every member are needed to restore.")
    return etcd


def current_specs(etcd: EtcdEndpoints) -> list[EtcdMemberSpec]:
    """The members as configured today (their running data dirs)."""
    return [EtcdMemberSpec(name=m.name, client_url=m.client_url, peer_url=m.peer_url, data_dir=Path(m.data_dir),
                           metrics_url=m.metrics_url, host=m.host) for m in etcd.restore.members]


def new_data_dir(etcd: EtcdEndpoints, member: EtcdMemberSpec, token: str) -> Path:
    root = Path(etcd.restore.data_root) if etcd.restore.data_root else member.data_dir.parent
    return root / f"{member.name}.{token}.etcd"


def restored_specs(etcd: EtcdEndpoints, token: str, data_dirs: dict[str, str] | None = None) -> list[EtcdMemberSpec]:
    """The same names and URLs, new data dirs, the new token: what the restored members start as."""
    specs = []
    for m in current_specs(etcd):
        target = Path(data_dirs[m.name]) if data_dirs else new_data_dir(etcd, m, token)
        specs.append(dataclasses.replace(m, data_dir=target, log_file=target.with_name(target.name + ".log")))
    return with_cluster(specs, token, "new")


def client_for(specs: Sequence[EtcdMemberSpec], *, timeout: float = 2.0) -> EtcdClient:
    return EtcdClient([m.client_url for m in specs], timeout=timeout)


def open_controller(tools: Any, settings: Settings, cluster: str) -> MemberController:
    """The toolbox's ``etcd_controller`` for the cluster, else one built from settings."""
    try:
        return tools.get("etcd_controller", cluster)
    except LookupError:
        pass
    restore = etcd_settings(settings, cluster).restore
    if restore.controller == "local":
        return _local_controllers.setdefault(cluster, LocalProcessController(restore.etcd_binary))
    start, stop, running = restore.start_command, restore.stop_command, restore.is_running_command
    if not (start and stop and running):
        missing = [k for k in ("start_command", "stop_command", "is_running_command") if not getattr(restore, k)]
        raise ConfigError(f"clusters.{cluster}.etcd.restore.controller is `command` but "
                          f"{', '.join(missing)} is not set.")
    return CommandController(start=start, stop=stop, is_running=running, timeout=restore.command_timeout_seconds)


_local_controllers: dict[str, LocalProcessController] = {}


# -- the procedure --------------------------------------------------------------------


def summary_or_none(specs: Sequence[EtcdMemberSpec]) -> ClusterSummary | None:
    client = client_for(specs, timeout=1.0)
    try:
        return client.cluster_summary()
    except IntegrationError:
        return None
    finally:
        client.close()


def stop_members(controller: MemberController, specs: Sequence[EtcdMemberSpec]) -> list[str]:
    """Stop every running member, the leader first; returns the names stopped."""
    summary = summary_or_none(specs)
    leader_url = None
    if summary is not None and summary.one_leader:
        leader_url = next((r.endpoint for r in summary.members if r.status is not None and r.status.is_leader), None)
    ordered = sorted(specs, key=lambda m: 0 if m.client_url.rstrip("/") == (leader_url or "").rstrip("/") else 1)
    stopped = []
    for member in ordered:
        if controller.is_running(member):
            controller.stop(member)
            stopped.append(member.name)
    still = [m.name for m in specs if controller.is_running(m)]
    if still:
        raise StepFailed(f"etcd members {', '.join(still)} still run after stop.")
    answering = [m for m in specs if _answers(m.client_url)]
    if answering:  # the controller says stopped, the network says otherwise: it does not control them
        raise StepFailed("etcd " + ", ".join(f"{m.name} still answers at {m.client_url}" for m in answering)
                         + " after stop: the configured controller does not control these processes.")
    return stopped


def _answers(url: str) -> bool:
    import httpx

    try:
        httpx.get(url.rstrip("/") + "/health", timeout=1.0, trust_env=False)
        return True
    except httpx.HTTPError:
        return False


def restore_is_done(member: EtcdMemberSpec) -> bool:
    return (member.data_dir / MARKER).is_file()


def restore_members(snapshot: str | Path, specs: Sequence[EtcdMemberSpec], token: str, *, tool: SnapshotTool,
                    timeout: float = 300.0, run_id: int | None = None) -> list[str]:
    """Restore every member not restored yet; returns the names restored now.

    A target dir without the marker is a half-written restore of ours (the
    dir name carries the new token, so it cannot be anybody else's): it is
    removed and redone.
    """
    todo = [m for m in specs if not restore_is_done(m)]

    def one(member: EtcdMemberSpec) -> str:
        if member.data_dir.exists():
            shutil.rmtree(member.data_dir)
        restore_member(snapshot, member, specs, token, tool=tool, timeout=timeout)
        (member.data_dir / MARKER).write_text(json.dumps({"token": token, "snapshot": str(snapshot),
                                                          "run_id": run_id}))
        return member.name

    if not todo:
        return []
    # the members' restores are independent (on real hosts they would run on each host at once)
    with ThreadPoolExecutor(max_workers=len(todo)) as pool:
        return list(pool.map(one, todo))


def start_members(controller: MemberController, specs: Sequence[EtcdMemberSpec]) -> list[str]:
    """Start the restored members.  A marker is written *before* each start: from then on a process
    running under that member's name is the restored one, which is what the stop step's re-check
    after a crash needs to know."""
    started = []
    for member in specs:
        if not restore_is_done(member):
            raise StepFailed(f"etcd member {member.name}: {member.data_dir} is not a finished restore; not starting it.")
        (member.data_dir / STARTED).touch()
        if not controller.is_running(member):
            controller.start(member)
            started.append(member.name)
    return started


def restored_started(specs: Sequence[EtcdMemberSpec]) -> bool:
    """Every restored member has been started (at least once) from its new data dir."""
    return all((m.data_dir / STARTED).is_file() for m in specs)


def members_stopped(controller: MemberController, old: Sequence[EtcdMemberSpec],
                    new: Sequence[EtcdMemberSpec]) -> bool:
    """No member runs on its old data: stopped, or what runs under its name is the restored member."""
    started = {m.name for m in new if (m.data_dir / STARTED).is_file()}
    return all(m.name in started or (not controller.is_running(m) and not _answers(m.client_url)) for m in old)


def run_command(command: str, *, timeout: float, what: str) -> str:
    """Run a site command (e.g. ``ssh cp1 systemctl stop kube-apiserver``); its output, or IntegrationError."""
    import subprocess

    try:
        proc = subprocess.run(["/bin/sh", "-c", command], capture_output=True, text=True, timeout=timeout,
                              stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as exc:
        raise IntegrationError(f"'{command}' ({what}) did not finish within {timeout:g} s.") from exc
    detail = " ".join((proc.stderr.strip() or proc.stdout.strip()).split())[-300:]
    if proc.returncode != 0:
        raise IntegrationError(f"'{command}' ({what}) failed (exit {proc.returncode}): {detail or 'no output'}")
    return detail


def wait_healthy(specs: Sequence[EtcdMemberSpec], *, timeout: float, poll: float = 0.1,
                 alive: Callable[[], None] | None = None) -> ClusterSummary:
    """Poll until every member is healthy and one leader is seen, or raise StepFailed with the last view."""
    client = client_for(specs, timeout=1.0)
    try:
        ok, summary = poll_until(client.cluster_summary, lambda s: s.all_healthy and s.one_leader,
                                 seconds=timeout, every=poll, between=alive)
    finally:
        client.close()
    if not ok:
        raise StepFailed(f"etcd is not healthy after {timeout:g} s: {summary.sentence()}.")
    return summary


def hashes_at_one_revision(client: EtcdClient) -> dict[str, HashKV]:
    """Every member's hashkv, compared at one revision when they answered at different ones.

    ``endpoint hashkv`` hashes each member's key space at its own latest revision. A live
    cluster's members are a write or two apart (the apiserver renews leases between their
    answers), so those hashes differ for that alone, and a restore that worked was rolled back
    for it. Asked again at the lowest revision every member has reached, the hashes must agree;
    if they still differ, the members really disagree.
    """
    hashes = client.hashkv()
    if len({h.hash for h in hashes.values()}) <= 1:
        return hashes
    common = min(h.revision for h in hashes.values())
    return client.hashkv(revision=common)


def looks_consistent(specs: Sequence[EtcdMemberSpec], *, etcdctl: str | None = None) -> bool:
    """No alarm and the same hashkv on every member (a healthy-looking cluster can still be corrupted)."""
    client = EtcdClient([m.client_url for m in specs], timeout=2.0, cli_timeout=20.0, etcdctl=etcdctl)
    try:
        if client.alarms():
            return False
        return len({h.hash for h in hashes_at_one_revision(client).values()}) == 1
    except IntegrationError:
        return False
    finally:
        client.close()


def cluster_ids(summary: ClusterSummary | None) -> set[int]:
    return {r.status.cluster_id for r in (summary.members if summary else ()) if r.status is not None}


def check_restored(specs: Sequence[EtcdMemberSpec], snapshot_revision: int, *,
                   etcdctl: str | None = None, old_cluster_id: int | None = None,
                   controller: MemberController | None = None) -> tuple[bool, str, dict[str, Any]]:
    """All healthy, one leader, the same hashkv on every member, revision >= the snapshot's -- and it
    is the restored cluster that answers (a new cluster id; the restored processes running), not the
    old one still listening on the same URLs."""
    if controller is not None:
        gone = [m.name for m in specs if not controller.is_running(m)]
        if gone:
            return False, f"restored members {', '.join(gone)} are not running (see their logs)", {}
    client = EtcdClient([m.client_url for m in specs], timeout=2.0, cli_timeout=20.0, etcdctl=etcdctl)
    try:
        summary = client.cluster_summary()
        data: dict[str, Any] = {"healthy": summary.members_healthy, "members": summary.members_total,
                                "leaders_seen": [str(x) for x in summary.leaders_seen]}
        if not (summary.all_healthy and summary.one_leader):
            return False, summary.sentence(), data
        if old_cluster_id and old_cluster_id in cluster_ids(summary):
            return False, f"the old cluster {old_cluster_id:x} still answers on the members' URLs", data
        try:
            hashes = hashes_at_one_revision(client)
        except IntegrationError as exc:
            return False, f"hashkv failed: {exc}", data
        values = {h.hash for h in hashes.values()}
        revisions = {h.revision for h in hashes.values()}
        data.update(hashkv={ep: h.hash for ep, h in hashes.items()}, revision=max(revisions))
        if len(values) != 1:
            return False, "members disagree: hashkv " + ", ".join(f"{ep} {h.hash}" for ep, h in hashes.items()), data
        if max(revisions) < snapshot_revision:
            return False, f"revision {max(revisions)} is below the snapshot's {snapshot_revision}", data
        return True, (f"{summary.sentence()}; hashkv {values.pop()} on all {len(hashes)} members, "
                      f"revision {max(revisions)} (snapshot {snapshot_revision})"), data
    finally:
        client.close()
