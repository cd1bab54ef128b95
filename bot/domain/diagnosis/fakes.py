"""Fakes of the diagnosis ports, for unit tests of procedures and the service.

``integrations.clients.prometheus.FakePrometheus`` and
``integrations.clients.kubernetes.FakeKubernetes`` already have the shape of
``Metrics`` and ``ClusterReader``; here are the other two: an etcd cluster
whose members are up, down or unhealthy at will, and an HTTP prober that
answers from a table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from bot.domain.diagnosis.ports import HttpAnswer
from bot.core.errors import IntegrationError


@dataclass(frozen=True)
class _Status:
    member_id: int
    leader_id: int
    revision: int = 100
    raft_term: int = 2
    db_size: int = 40960


@dataclass(frozen=True)
class _Report:
    endpoint: str
    healthy: bool
    status: _Status | None
    error: str = ""


@dataclass(frozen=True)
class _Summary:
    members_total: int
    members_healthy: int
    leader_id: int
    leaders_seen: tuple[int, ...]
    members: tuple[_Report, ...]

    @property
    def quorum_size(self) -> int:
        return self.members_total // 2 + 1

    @property
    def has_quorum(self) -> bool:
        return self.members_healthy >= self.quorum_size

    @property
    def one_leader(self) -> bool:
        return len(self.leaders_seen) == 1 and self.leaders_seen[0] != 0

    @property
    def all_healthy(self) -> bool:
        return self.members_healthy == self.members_total

    @property
    def unhealthy_endpoints(self) -> tuple[str, ...]:
        return tuple(m.endpoint for m in self.members if not m.healthy)

    @property
    def members_refusing(self) -> int:
        return sum(1 for m in self.members if "connection refused" in m.error)

    @property
    def quorum_unreachable(self) -> bool:
        return self.members_total - self.members_refusing < self.quorum_size

    def sentence(self) -> str:
        quorum = "quorum kept" if self.has_quorum else "NO QUORUM"
        leader = f"leader {self.leader_id:x}" if self.one_leader else "no leader"
        return f"{self.members_healthy}/{self.members_total} members healthy, {quorum}, {leader}"


@dataclass(frozen=True)
class _Alarm:
    member_id: int
    alarm: str


@dataclass(frozen=True)
class _Hash:
    hash: int
    revision: int


@dataclass
class FakeEtcd:
    """Members by client URL: ``down`` ones refuse connections (no process), ``hanging`` ones never answer
    (a partition), and while ``electing`` the members that answer have no leader; the rest agree on
    member 1 as leader."""

    endpoints: tuple[str, ...] = ("http://etcd-1:2379", "http://etcd-2:2379", "http://etcd-3:2379")
    down: set[str] = field(default_factory=set)
    hanging: set[str] = field(default_factory=set)
    electing: bool = False
    alarms_raised: list[str] = field(default_factory=list)
    hashes: dict[str, int] = field(default_factory=dict)  # endpoint -> hashkv (default: all equal)

    def __call__(self, endpoints: Sequence[str]) -> "FakeEtcd":
        """The ``ClusterAccess.etcd`` factory: this fake serves whatever endpoints are asked."""
        self.endpoints = tuple(endpoints)
        return self

    def _silent(self) -> set[str]:
        return self.down | self.hanging

    def cluster_summary(self) -> _Summary:
        up = [ep for ep in self.endpoints if ep not in self._silent()]
        quorum = len(up) >= len(self.endpoints) // 2 + 1 and not self.electing
        leader = 1 if quorum else 0
        reports = tuple(
            _Report(ep, quorum, _Status(i + 1, leader), "RAFT NO LEADER" if self.electing else "") if ep in up else
            _Report(ep, False, None, f"etcd member {ep} did not answer: context deadline exceeded")
            if ep in self.hanging else
            _Report(ep, False, None, f"etcd member {ep} is unreachable: connection refused")
            for i, ep in enumerate(self.endpoints))
        return _Summary(len(self.endpoints), sum(1 for r in reports if r.healthy), leader,
                        (leader,) if up else (), reports)

    def alarms(self, endpoint: str | None = None) -> list[_Alarm]:
        if len(self.endpoints) - len(self._silent()) < len(self.endpoints) // 2 + 1:
            raise IntegrationError("No etcd member answered /v3/maintenance/alarm: context deadline exceeded")
        return [_Alarm(1, a) for a in self.alarms_raised]

    def hashkv(self, endpoints: Sequence[str] | None = None, *, revision: int = 0) -> Mapping[str, _Hash]:
        eps = list(endpoints or self.endpoints)
        dead = [ep for ep in eps if ep in self._silent()]
        if dead:
            raise IntegrationError(f"etcdctl endpoint hashkv failed for {dead[0]} (connection refused).")
        return {ep: _Hash(self.hashes.get(ep, 3237359275), revision or 102) for ep in eps}


@dataclass
class FakeHttp:
    """URL -> status; unknown URLs are refused connections."""

    statuses: dict[str, int] = field(default_factory=dict)
    calls: list[str] = field(default_factory=list)

    def get(self, url: str, *, timeout: float, verify: bool | str = True) -> HttpAnswer:
        self.calls.append(url)
        if url not in self.statuses:
            return HttpAnswer(url, None, 0.001, error="ConnectError: connection refused")
        status = self.statuses[url]
        return HttpAnswer(url, status, 0.001, body="ok" if status == 200 else "[-]etcd failed")


def cluster_config(name: str = "prod-1", *, main: Sequence[str] = (), bypass: Sequence[str] = (),
                   etcd: Sequence[str] = ()) -> dict[str, Any]:
    """A ``cluster`` template context like the composition root builds from ``Settings.clusters``."""
    return {"name": name, "apiservers": {"main": list(main), "bypass": list(bypass)}, "etcd": {"members": list(etcd)}}
