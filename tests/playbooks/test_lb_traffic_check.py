"""Verifying a failover by HAProxy's session counters: what may still reach a main server in drain.

The LB here is a fake runtime whose counters move as a busy HAProxy's would while the
check runs (one session on a main server that a request already on its way took); the
frontend is a real loopback apiserver stand-in answering ``/readyz``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

import pytest

from bot.core.config.clusters import LoadBalancerSettings
from integrations.clients.haproxy.stat import StatRow
from playbooks.library import lb_ops
from tests.support.components import StubApiserver


@dataclass
class MovingCounters:
    """``show stat`` whose server session totals are ``before`` on the first read, ``after`` on the next."""

    before: dict[str, int]
    after: dict[str, int]
    reads: int = 0

    def show_stat(self) -> list[StatRow]:
        totals = self.before if self.reads == 0 else self.after
        self.reads += 1
        return [StatRow(proxy="kube_api_servers", name=n, kind="server", status="UP", weight=1, active=True,
                        backup=False, check_status="L7OK", current_sessions=0, total_sessions=t, address="127.0.0.1:1")
                for n, t in totals.items()]


@dataclass
class FakeLB:
    runtime: MovingCounters
    states: dict[str, str] = field(default_factory=dict)


@pytest.fixture
def frontend() -> Iterator[StubApiserver]:
    with StubApiserver("bypass") as server:
        yield server


def settings(frontend: StubApiserver) -> LoadBalancerSettings:
    return LoadBalancerSettings(runtime="/unused", main=["main"], bypass=["bypass"], frontend_url=frontend.url,
                                server_scheme="http", verify_requests=3)


def test_a_session_on_main_fails_a_maint_failover_but_not_a_drain(frontend: StubApiserver) -> None:
    cfg = settings(frontend)
    # the bypass took our 3 fresh requests and the informative 4th; main took one already on its way
    moving = {"before": {"main": 40, "bypass": 0}, "after": {"main": 41, "bypass": 4}}

    maint = lb_ops.traffic_check(FakeLB(MovingCounters(**moving)), cfg)  # type: ignore[arg-type]
    drain = lb_ops.traffic_check(FakeLB(MovingCounters(**moving)), cfg, main_draining=True)  # type: ignore[arg-type]

    assert (maint["ok"], maint["main_sessions"], maint["bypass_sessions"]) == (False, 1, 4)
    assert (drain["ok"], drain["main_sessions"], drain["bypass_sessions"]) == (True, 1, 4)


def test_in_drain_the_fresh_requests_must_still_all_reach_the_bypass(frontend: StubApiserver) -> None:
    cfg = settings(frontend)
    short = {"before": {"main": 40, "bypass": 0}, "after": {"main": 42, "bypass": 2}}  # 2 of our 3 went to main

    result = lb_ops.traffic_check(FakeLB(MovingCounters(**short)), cfg, main_draining=True)  # type: ignore[arg-type]

    assert result["ok"] is False and result["bypass_sessions"] == 2
