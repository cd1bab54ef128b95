"""Client of etcd clusters: health, status, hashes, snapshots and member process control.

Import from here; the submodules hold one idea each:

* ``spec``      EtcdMemberSpec, initial_cluster(), with_cluster()
* ``client``    EtcdClient (per-member health/status, member list, alarms, counts, hash, hashkv, cluster_summary)
* ``snapshot``  save_snapshot(), snapshot_status(), sha256_file(), restore_member(), restore_cluster(), detect_tool()
* ``control``   MemberController protocol, LocalProcessController, CommandController
* ``models``    the answer dataclasses
"""

from .client import EtcdClient
from .control import CommandController, LocalProcessController, MemberController
from .models import (
    Alarm,
    ClusterSummary,
    HashKV,
    Member,
    MemberHealth,
    MemberReport,
    MemberStatus,
    hex_id,
)
from .snapshot import (
    SnapshotInfo,
    SnapshotStatus,
    SnapshotTool,
    detect_tool,
    restore_cluster,
    restore_member,
    save_snapshot,
    sha256_file,
    snapshot_status,
)
from .spec import EtcdMemberSpec, initial_cluster, with_cluster

__all__ = [
    "Alarm",
    "ClusterSummary",
    "CommandController",
    "EtcdClient",
    "EtcdMemberSpec",
    "HashKV",
    "LocalProcessController",
    "Member",
    "MemberController",
    "MemberHealth",
    "MemberReport",
    "MemberStatus",
    "SnapshotInfo",
    "SnapshotStatus",
    "SnapshotTool",
    "detect_tool",
    "hex_id",
    "initial_cluster",
    "restore_cluster",
    "restore_member",
    "save_snapshot",
    "sha256_file",
    "snapshot_status",
    "with_cluster",
]
