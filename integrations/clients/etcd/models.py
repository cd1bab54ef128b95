"""Answers from etcd as small frozen dataclasses.

The JSON gateway returns int64/uint64 as decimal *strings* and etcdctl's
``-w json`` returns them as numbers; both are normalised to ``int`` here so
that callers never compare ``"123"`` with ``123``.  Member ids are also shown
in hex by ``etcdctl -w table``, hence ``hex_id``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


def as_int(value: Any, default: int = 0) -> int:
    """An int from a gateway decimal string, a JSON number, or a missing field."""
    if value is None or value == "":
        return default
    return int(value)


def hex_id(member_id: int) -> str:
    """A member id the way ``etcdctl -w table`` and etcd logs print it."""
    return format(member_id, "x")


@dataclass(frozen=True)
class MemberHealth:
    """The answer of ``GET /health`` on one member (etcd 3.4 has no /readyz)."""

    endpoint: str
    healthy: bool
    reason: str = ""
    took_seconds: float = 0.0


@dataclass(frozen=True)
class MemberStatus:
    """``/v3/maintenance/status`` of one member."""

    endpoint: str
    member_id: int
    cluster_id: int
    version: str
    db_size: int
    db_size_in_use: int
    leader_id: int
    raft_index: int
    raft_term: int
    raft_applied_index: int
    revision: int
    errors: tuple[str, ...] = ()

    @property
    def is_leader(self) -> bool:
        return self.member_id != 0 and self.member_id == self.leader_id

    @property
    def has_leader(self) -> bool:
        return self.leader_id != 0

    @classmethod
    def from_gateway(cls, endpoint: str, body: dict[str, Any]) -> "MemberStatus":
        header = body.get("header") or {}
        return cls(
            endpoint=endpoint,
            member_id=as_int(header.get("member_id")),
            cluster_id=as_int(header.get("cluster_id")),
            version=str(body.get("version", "")),
            db_size=as_int(body.get("dbSize")),
            db_size_in_use=as_int(body.get("dbSizeInUse")),
            leader_id=as_int(body.get("leader")),
            raft_index=as_int(body.get("raftIndex")),
            raft_term=as_int(body.get("raftTerm")),
            raft_applied_index=as_int(body.get("raftAppliedIndex")),
            revision=as_int(header.get("revision")),
            errors=tuple(body.get("errors") or ()),
        )


@dataclass(frozen=True)
class Member:
    """One entry of the member list.  A member added but never started has no name."""

    member_id: int
    name: str
    peer_urls: tuple[str, ...]
    client_urls: tuple[str, ...]
    is_learner: bool = False

    @property
    def hex_id(self) -> str:
        return hex_id(self.member_id)

    @property
    def started(self) -> bool:
        return bool(self.name) and bool(self.client_urls)

    @classmethod
    def from_gateway(cls, body: dict[str, Any]) -> "Member":
        return cls(
            member_id=as_int(body.get("ID")),
            name=str(body.get("name", "")),
            peer_urls=tuple(body.get("peerURLs") or ()),
            client_urls=tuple(body.get("clientURLs") or ()),
            is_learner=bool(body.get("isLearner", False)),
        )


@dataclass(frozen=True)
class Alarm:
    """An active alarm (``NOSPACE`` after the quota is hit, ``CORRUPT`` after a hash mismatch)."""

    member_id: int
    alarm: str

    @classmethod
    def from_gateway(cls, body: dict[str, Any]) -> "Alarm":
        raw = body.get("alarm", "NONE")
        names = {0: "NONE", 1: "NOSPACE", 2: "CORRUPT"}
        alarm = names.get(raw, str(raw)) if isinstance(raw, int) else str(raw)
        return cls(member_id=as_int(body.get("memberID")), alarm=alarm)


@dataclass(frozen=True)
class HashKV:
    """``etcdctl endpoint hashkv``: a hash of the MVCC key space up to ``revision``.

    Unlike ``/v3/maintenance/hash`` (a hash of the whole bbolt file, which
    differs between members), hashkv is consistent across healthy members at
    the same revision, which is what a restore check compares.
    """

    endpoint: str
    hash: int
    revision: int
    compact_revision: int
    member_id: int


@dataclass(frozen=True)
class MemberReport:
    """What the cluster summary learned about one configured endpoint."""

    endpoint: str
    healthy: bool
    status: MemberStatus | None
    error: str = ""


@dataclass(frozen=True)
class ClusterSummary:
    """The one-glance answer the diagnosis and the restore check need.

    ``members_total`` is the number of configured endpoints: a member that
    does not answer still counts, which is the point.
    """

    members_total: int
    members_healthy: int
    leader_id: int
    leaders_seen: tuple[int, ...]
    members: tuple[MemberReport, ...] = field(default_factory=tuple)

    @property
    def quorum_size(self) -> int:
        return self.members_total // 2 + 1

    @property
    def has_quorum(self) -> bool:
        return self.members_total > 0 and self.members_healthy >= self.quorum_size

    @property
    def one_leader(self) -> bool:
        """Every reachable member names the same, non-zero leader."""
        return len(self.leaders_seen) == 1 and self.leaders_seen[0] != 0

    @property
    def all_healthy(self) -> bool:
        return self.members_total > 0 and self.members_healthy == self.members_total

    @property
    def unhealthy_endpoints(self) -> tuple[str, ...]:
        return tuple(m.endpoint for m in self.members if not m.healthy)

    @property
    def members_refusing(self) -> int:
        """Members whose port refused the connection: no etcd process listens there (not an election)."""
        return sum(1 for m in self.members if "connection refused" in (m.error or "").lower())

    @property
    def quorum_unreachable(self) -> bool:
        """Fewer members accept connections than a quorum needs: lost for certain, not for a second's election."""
        return self.members_total > 0 and self.members_total - self.members_refusing < self.quorum_size

    def sentence(self) -> str:
        """A line for chat: ``2/3 members healthy, quorum kept, leader 1fb56780d7a82959``."""
        quorum = "quorum kept" if self.has_quorum else "NO QUORUM"
        if self.one_leader:
            leader = f"leader {hex_id(self.leader_id)}"
        elif not self.leaders_seen or self.leaders_seen == (0,):
            leader = "no leader"
        else:
            leader = "members disagree on the leader (" + ", ".join(hex_id(x) for x in self.leaders_seen) + ")"
        text = f"{self.members_healthy}/{self.members_total} members healthy, {quorum}, {leader}"
        bad = [m for m in self.members if not m.healthy]
        if bad:
            text += "; unhealthy: " + "; ".join(f"{m.endpoint} ({m.error or 'unhealthy'})" for m in bad)
        return text
