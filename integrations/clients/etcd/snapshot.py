"""etcd snapshots: save from one member, inspect, fingerprint, restore a member.

Why these rules:
* ``snapshot save`` must target exactly ONE endpoint; etcdctl refuses a list
  ("snapshot must be requested to one selected node"), so we refuse it first
  with a clearer sentence.
* ``snapshot status`` is *not* an integrity check (a corrupted file still
  prints a result); the sha256 of the file is what the playbook records, and
  ``restore`` itself verifies the 32-byte sha256 trailer etcd appends.
* Restore always goes into a NEW data dir (etcd refuses an existing one), and
  from 3.5 ``etcdutl`` is the documented restore/status tool while
  ``etcdctl snapshot restore`` is deprecated (gone in 3.6).  ``detect_tool``
  picks the right one so playbooks never branch on versions.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bot.core.errors import ConfigError, IntegrationError

from .cli import cli_version, find_binary, run_cli
from .models import as_int
from .spec import EtcdMemberSpec, initial_cluster


@dataclass(frozen=True)
class SnapshotTool:
    """Which binary runs ``snapshot status``/``restore``, and which runs ``save``.

    ``save`` always needs etcdctl (it talks to a member); the offline file
    operations use etcdutl when it exists.
    """

    etcdctl: str
    offline: str
    offline_kind: str  # "etcdutl": the offline tool's name, for messages


@dataclass(frozen=True)
class SnapshotStatus:
    """``snapshot status -w json``: revision, CRC hash, total keys (etcd-internal keys included), size."""

    hash: int
    revision: int
    total_keys: int
    total_size: int


@dataclass(frozen=True)
class SnapshotInfo:
    """What a saved snapshot is, for the timeline and for the restore check."""

    path: Path
    endpoint: str
    sha256: str
    size_bytes: int
    status: SnapshotStatus


# how far a restore moves revisions ahead (etcd's and Kubernetes' guidance: more than the writes
# the cluster could have made since the snapshot); 0 restores revisions as they were
DEFAULT_BUMP_REVISION = 1_000_000_000


def detect_tool(etcdctl: str | None = None, etcdutl: str | None = None, *, timeout: float = 10.0) -> SnapshotTool:
    """Find etcdctl (online: snapshot save) and etcdutl (offline: snapshot status and restore).

    Both come from etcd 3.5+ (setup builds 3.6 from its Go modules): an explicit path, next to
    etcdctl, then the build cache and ``$PATH``. Without etcdutl nothing can be restored, which is
    a configuration error worth saying at once, not in the middle of a disaster.
    """
    ctl = find_binary("etcdctl", etcdctl)
    if not ctl:
        raise ConfigError(f"etcdctl was not found ({etcdctl or 'not in the build cache or on PATH'}); "
                          f"run ./scripts/setup.sh, which builds etcd 3.6 with etcdctl and etcdutl.")
    utl = find_binary("etcdutl", etcdutl, near=ctl)
    if not utl:
        raise ConfigError(f"etcdutl was not found ({etcdutl or 'next to ' + ctl + ', in the build cache or on PATH'}): "
                          f"etcd 3.5+ restores snapshots with etcdutl; install it next to etcdctl.")
    return SnapshotTool(etcdctl=ctl, offline=utl, offline_kind="etcdutl")


def sha256_file(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """Hex sha256 of a file, read in chunks (snapshots can be gigabytes)."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    except OSError as exc:
        raise IntegrationError(f"Cannot read snapshot file {path}: {exc.strerror or exc}.") from exc
    return digest.hexdigest()


def save_snapshot(
    endpoint: str,
    path: str | Path,
    *,
    tool: SnapshotTool | None = None,
    timeout: float = 120.0,
    overwrite: bool = False,
) -> SnapshotInfo:
    """``etcdctl snapshot save`` from exactly one member, then status and sha256 of the file.

    Refuses to overwrite an existing file by default: the last good snapshot
    is the most valuable file during an etcd incident.
    """
    endpoint = endpoint.strip().rstrip("/")
    if not endpoint or "," in endpoint:
        raise ConfigError(
            f"A snapshot must be saved from exactly one etcd member, got {endpoint!r}; pick one client URL."
        )
    path = Path(path)
    if path.exists() and not overwrite:
        raise IntegrationError(f"Snapshot file {path} already exists; refusing to overwrite it.")
    if not path.parent.is_dir():
        raise IntegrationError(f"Cannot save a snapshot into {path.parent}: the directory does not exist.")
    tool = tool or detect_tool()
    if path.exists():
        path.unlink()
    run_cli(
        [tool.etcdctl, f"--endpoints={endpoint}", f"--command-timeout={max(int(timeout), 1)}s", "snapshot", "save", str(path)],
        timeout=timeout,
        what=f"etcdctl snapshot save from {endpoint}",
    )
    if not path.is_file():
        raise IntegrationError(f"etcdctl snapshot save from {endpoint} reported success but wrote no file at {path}.")
    status = snapshot_status(path, tool=tool)
    return SnapshotInfo(
        path=path,
        endpoint=endpoint,
        sha256=sha256_file(path),
        size_bytes=path.stat().st_size,
        status=status,
    )


def snapshot_status(path: str | Path, *, tool: SnapshotTool | None = None, timeout: float = 60.0) -> SnapshotStatus:
    """``snapshot status -w json`` → revision, hash, total keys, size."""
    path = Path(path)
    if not path.is_file():
        raise IntegrationError(f"Snapshot file {path} does not exist.")
    tool = tool or detect_tool()
    res = run_cli(
        [tool.offline, "snapshot", "status", str(path), "-w", "json"],
        timeout=timeout,
        what=f"{tool.offline_kind} snapshot status {path}",
    )
    try:
        data = json.loads(res.stdout.strip().splitlines()[-1])
    except (ValueError, IndexError) as exc:
        raise IntegrationError(f"{tool.offline_kind} snapshot status {path} printed no JSON: {res.stdout[:200]!r}.") from exc
    return SnapshotStatus(
        hash=as_int(data.get("hash")),
        revision=as_int(data.get("revision")),
        total_keys=as_int(data.get("totalKey")),
        total_size=as_int(data.get("totalSize")),
    )


def restore_member(
    snapshot: str | Path,
    member: EtcdMemberSpec,
    cluster: Sequence[EtcdMemberSpec],
    token: str,
    *,
    data_dir: str | Path | None = None,
    tool: SnapshotTool | None = None,
    timeout: float = 120.0,
    skip_hash_check: bool = False,
    bump_revision: int = DEFAULT_BUMP_REVISION,
) -> Path:
    """Restore one member from a snapshot into a new data dir; return the data dir.

    ``cluster`` is the full membership of the *restored* cluster (same names
    and peer URLs the members will be started with); ``token`` should be new,
    so that restored members can never join stale ones.  ``data_dir``
    defaults to ``member.data_dir`` and must not exist yet.
    """
    snapshot = Path(snapshot)
    target = Path(data_dir) if data_dir is not None else member.data_dir
    if not snapshot.is_file():
        raise IntegrationError(f"Cannot restore etcd member {member.name}: snapshot {snapshot} does not exist.")
    if member.name not in {m.name for m in cluster}:
        raise ConfigError(f"etcd member {member.name} is not in the restored cluster's membership.")
    if target.exists():
        raise IntegrationError(
            f"Cannot restore etcd member {member.name} into {target}: it exists; restore needs a new data dir."
        )
    if not token:
        raise ConfigError("A restore needs an --initial-cluster-token (use a new one).")
    tool = tool or detect_tool()
    args = [
        tool.offline,
        "snapshot",
        "restore",
        str(snapshot),
        f"--name={member.name}",
        f"--data-dir={target}",
        f"--initial-cluster={initial_cluster(cluster)}",
        f"--initial-cluster-token={token}",
        f"--initial-advertise-peer-urls={member.peer_url}",
    ]
    if skip_hash_check:
        args.append("--skip-hash-check")
    if bump_revision:
        # Kubernetes' watch caches and informers must never see a revision go back: restored
        # revisions jump ahead and everything older is marked compacted (etcd's guidance for
        # restoring a cluster behind kube-apiservers), so clients re-list instead of stalling.
        args += [f"--bump-revision={bump_revision}", "--mark-compacted"]
    run_cli(args, timeout=timeout, what=f"{tool.offline_kind} snapshot restore of member {member.name} into {target}")
    if not (target / "member").is_dir():
        raise IntegrationError(f"Restore of etcd member {member.name} reported success but {target}/member is missing.")
    return target


def restore_cluster(
    snapshot: str | Path,
    members: Sequence[EtcdMemberSpec],
    token: str,
    *,
    tool: SnapshotTool | None = None,
    timeout: float = 120.0,
    bump_revision: int = DEFAULT_BUMP_REVISION,
) -> list[Path]:
    """Restore every member (each into its own ``data_dir``), checking them all first.

    All target dirs are checked before the first restore so that a clash
    does not leave a half-restored set behind.
    """
    clashes = [str(m.data_dir) for m in members if m.data_dir.exists()]
    if clashes:
        raise IntegrationError(f"Cannot restore: data dirs already exist: {', '.join(clashes)}.")
    tool = tool or detect_tool()
    return [restore_member(snapshot, m, members, token, tool=tool, timeout=timeout, bump_revision=bump_revision)
            for m in members]
