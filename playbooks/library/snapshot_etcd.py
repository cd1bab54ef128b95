"""snapshot-etcd: take one snapshot of the cluster's etcd into the backup catalogue.

``etcdctl snapshot save`` against exactly one healthy member (a follower if
one is healthy, to spare the leader), then ``snapshot status`` and the
file's sha256 go into the catalogue, where restore-etcd finds it.  The file
is named after the run (``<cluster>-run<id>.db``), so a crash between
saving and recording is finished by recording, never by a second save.
The same code runs on a schedule (``playbooks.backups.SnapshotWorker``).
"""

from __future__ import annotations

from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from bot.core.errors import Conflict, IntegrationError
from integrations.clients.etcd import EtcdClient, snapshot_status, sha256_file
from integrations.clients.etcd import SnapshotInfo
from playbooks import backups
from playbooks.engine.declaration import Plan, PlanContext, Playbook, Step, StepContext, Verdict
from playbooks.engine.params import Param

NAME = "snapshot-etcd"


def plan(ctx: PlanContext) -> Plan:
    settings = ctx.tools.settings
    members = backups.etcd_members(settings, ctx.cluster)
    folder = backups.snapshot_dir(settings, ctx.cluster)
    backups.snapshot_tool(settings, ctx.cluster)  # refuse now if etcdctl is missing
    client = EtcdClient(members, timeout=2.0)
    try:
        wanted = ctx.params.get("member")
        if wanted:
            if wanted.rstrip("/") not in client.endpoints:
                raise Conflict(f"refusing {NAME}: {wanted} is not one of clusters.{ctx.cluster}.etcd.members.")
            health = client.health(wanted.rstrip("/"))
            if not health.healthy:
                raise Conflict(f"refusing {NAME}: member {wanted} is not healthy ({health.reason or 'unhealthy'}).")
            source = wanted.rstrip("/")
        else:
            try:
                source = backups.choose_source(client)
            except IntegrationError as exc:
                raise Conflict(f"refusing {NAME} on cluster {ctx.cluster}: {exc}") from exc
    finally:
        client.close()
    return Plan(changes=[{"action": "snapshot_save", "member": source, "dir": str(folder)}],
                lines=[f"etcdctl snapshot save from {source} into {folder}/{ctx.cluster}-run<id>.db",
                       "record revision, key count, size and sha256 in the backup catalogue"],
                impact={"members": 1}, facts={"member": source, "dir": str(folder)})


def _path(ctx: StepContext) -> Path:
    return Path(ctx.facts["dir"]) / f"{ctx.cluster}-run{ctx.run_id}.db"


def _now(tools: Any) -> datetime:
    try:
        return tools.get("clock", "*").now()
    except LookupError:
        return datetime.now(timezone.utc)


def save(ctx: StepContext) -> dict[str, Any]:
    catalogue = backups.catalogue_of(ctx.tools)
    path = _path(ctx)
    tool = backups.snapshot_tool(ctx.tools.settings, ctx.cluster)
    if path.is_file():  # saved before a crash, not recorded yet: record it, do not save again
        info = SnapshotInfo(path=path, endpoint=ctx.facts["member"], sha256=sha256_file(path),
                            size_bytes=path.stat().st_size, status=snapshot_status(path, tool=tool))
    else:
        info = backups.take(ctx.tools.settings, ctx.cluster, path, source=ctx.facts["member"], tool=tool)
    entry = catalogue.record(ctx.cluster, info, taken_at=_now(ctx.tools), run_id=ctx.run_id,
                             source_member=ctx.facts["member"])
    return {"snapshot_id": entry.id, "path": entry.path, "revision": entry.revision, "sha256": entry.sha256,
            "size_bytes": entry.size_bytes, "total_keys": entry.total_keys}


def saved(ctx: StepContext) -> bool:
    return backups.catalogue_of(ctx.tools).by_run(ctx.run_id) is not None


def verify(ctx: StepContext) -> Verdict:
    entry = backups.catalogue_of(ctx.tools).by_run(ctx.run_id)
    if entry is None:
        return Verdict(False, "no catalogue entry for this run")
    problem = backups.verify_file(entry)
    if problem:
        return Verdict(False, problem)
    return Verdict(True, entry.describe() + f", sha256 {entry.sha256[:12]}…",
                   {"snapshot_id": entry.id, "revision": entry.revision, "path": entry.path})


PLAYBOOK = Playbook(
    name=NAME,
    summary="Take an etcd snapshot from one healthy member into the backup catalogue.",
    risk="low",
    params=(Param("member", "the member's client URL to snapshot from (default: a healthy follower)",
                  default=None, example="http://10.0.0.5:2379"),),
    plan=plan,
    steps=(Step("save-snapshot", do=save, check=saved, timeout=600,
                describe="etcdctl snapshot save, then status and sha256 into the catalogue"),),
    verify=verify,
    blast_radius={"members": 1},
    details=__doc__ or "",
)
