"""failover-apiserver depends on the LoadBalancer protocol, not on HAProxy; bad settings are named.

Here the "load balancer" is an in-memory implementation (what a cloud target
group or a kubeconfig switch would provide through the toolbox's
``loadbalancer`` factory) and the clients' address is the bypass itself.
"""

from __future__ import annotations

from bot.core.errors import IntegrationError
from integrations.clients.haproxy import LBServer, TargetState
from playbooks.engine import Toolbox
from tests.playbooks_real.conftest import CLUSTER, Lab


class MemoryLB:
    def __init__(self, servers: dict[str, str]) -> None:
        self.addresses = servers
        self.states = {name: TargetState.READY for name in servers}
        self.calls: list[tuple[str, str]] = []

    def list_servers(self, group: str) -> list[LBServer]:
        return [LBServer(group, n, a, self.states[n], True, n == "bypass", self.states[n] is TargetState.READY)
                for n, a in self.addresses.items()]

    def read_states(self, group: str) -> dict[str, TargetState]:
        return dict(self.states)

    def set_state(self, group: str, server: str, state: TargetState | str) -> LBServer:
        if server not in self.states:
            raise IntegrationError(f"no server {server}")
        self.states[server] = TargetState.parse(state)
        self.calls.append((server, self.states[server].value))
        return next(s for s in self.list_servers(group) if s.name == server)

    def close_sessions(self, group: str, server: str) -> None:
        self.calls.append((server, "close"))


def test_failover_runs_on_any_load_balancer_behind_the_protocol(lab: Lab) -> None:
    lb = MemoryLB({"main": lab.main.address, "bypass": lab.bypass.address})
    cfg = lab.bot.settings.clusters[CLUSTER].loadbalancer
    cfg.frontend_url, cfg.state_file = lab.bypass.url, None  # clients now point at the bypass
    lab.engine = __import__("bot.chat.handlers_playbooks", fromlist=["install"]).install(
        lab.bot, tools=Toolbox(lab.bot.settings, loadbalancer=lambda _c: lb, database=lambda _c: lab.bot.db))
    lab.incident("main apiservers down")

    lab.chat.say("alice", "/incident run failover-apiserver mode=maint")
    lab.chat.say("alice", "/incident approve RUN-1")

    assert lab.run_row(1).state == "succeeded", lab.run_row(1).error
    assert lb.calls == [("main", "maint"), ("main", "close")]
    texts = "\n".join(lab.timeline_texts())
    assert "answers ok through the LB; states: main maint, bypass ready" in texts


def test_missing_load_balancer_settings_are_named(lab: Lab) -> None:
    lab.bot.settings.clusters[CLUSTER].loadbalancer.runtime = None
    lab.incident("main apiservers down")

    reply = lab.chat.say("alice", "/incident run failover-apiserver")

    assert "clusters.prod.loadbalancer.runtime is not set" in reply
    assert lab.engine.service.runs() == []
