"""The fault-scenario library: what a drill breaks, what the bot should conclude, how recovery is checked.

Each scenario is declared once: ``inject`` breaks the sandbox through the
real components (kill etcd members, stop an apiserver, flood it), the
expectation names the component the incident must be about and the playbook
the diagnosis must bind (``None``: escalate to a human), and ``verify`` checks
the outcome through the real components again, never through the bot's own
records.  ``repair`` is the drill putting things back itself when the right
answer was to escalate.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from bot.errors import BadInput
from bot.sandbox.controlplane import BACKEND, ControlPlane
from bot.sandbox.processes import etcd_healthy, wait_until
from integrations.etcd import EtcdClient
from integrations.haproxy import RuntimeClient

SEED_PREFIX = "/registry/drill/"
SEED_KEYS = 20
FLOOD_USER = "system:serviceaccount:batch:hammer"
FLOOD_GROUPS = ("system:serviceaccounts", "system:serviceaccounts:batch", "system:authenticated")


class VerificationFailed(Exception):
    """The components say the fault is not repaired (the sentence says what was seen)."""


@dataclass(frozen=True)
class Scenario:
    name: str
    summary: str
    component: str  # the incident must be about this component
    playbook: str | None  # the diagnosis must bind this playbook; None: escalate
    inject: Callable[[ControlPlane], dict[str, Any]]
    verify: Callable[[ControlPlane, dict[str, Any]], str]
    repair: Callable[[ControlPlane, dict[str, Any]], str] | None = None
    needs_snapshot: bool = False
    notes: list[str] = field(default_factory=list)

    @property
    def expectation(self) -> str:
        return f"-> {self.playbook}" if self.playbook else "-> escalate"


# -- seed data: what a restore must bring back ------------------------------------------


def seed_etcd(plane: ControlPlane) -> int:
    """Write the keys a restore must bring back (before the first snapshot is taken)."""
    assert plane.etcd is not None
    client = EtcdClient(plane.etcd.endpoints, timeout=3.0)
    try:
        for i in range(SEED_KEYS):
            client.put(f"{SEED_PREFIX}key-{i:03d}", f"value-{i}")
    finally:
        client.close()
    return SEED_KEYS


def _count_seed(plane: ControlPlane) -> int:
    assert plane.etcd is not None
    client = EtcdClient(plane.etcd.endpoints, timeout=3.0)
    try:
        return client.count_keys(SEED_PREFIX)
    finally:
        client.close()


def _etcd_summary(plane: ControlPlane) -> Any:
    assert plane.etcd is not None
    client = EtcdClient(plane.etcd.endpoints, timeout=2.0)
    try:
        return client.cluster_summary()
    finally:
        client.close()


# -- etcd-member-down: one member crashes, quorum holds -> a human decides ----------------


def _kill_one_member(plane: ControlPlane) -> dict[str, Any]:
    assert plane.etcd is not None
    victim = plane.etcd.members[-1]
    plane.etcd.kill(victim)
    return {"killed": [victim.name], "endpoint": victim.client_url}


def _member_down_escalated(plane: ControlPlane, facts: dict[str, Any]) -> str:
    assert plane.etcd is not None
    alive = [m.name for m in plane.etcd.members if etcd_healthy(m.client_url)]
    if len(alive) < 2:
        raise VerificationFailed(f"only {alive} answer /health: quorum was lost, not one member")
    return f"quorum held throughout ({len(alive)}/{len(plane.etcd.members)} members healthy, {facts['killed'][0]} down)"


def _restart_member(plane: ControlPlane, facts: dict[str, Any]) -> str:
    assert plane.etcd is not None
    for name in facts["killed"]:
        plane.etcd.restart(name)
    return f"the drill restarted {', '.join(facts['killed'])}; every member healthy again"


# -- etcd-quorum-loss: two of three members crash -> restore-etcd -----------------------


def _kill_two_members(plane: ControlPlane) -> dict[str, Any]:
    assert plane.etcd is not None
    victims = plane.etcd.members[-2:]
    for m in victims:
        plane.etcd.kill(m)
    return {"killed": [m.name for m in victims], "seed_keys": SEED_KEYS}


def _etcd_restored(plane: ControlPlane, facts: dict[str, Any]) -> str:
    assert plane.etcd is not None
    down = [m.name for m in plane.etcd.members if not etcd_healthy(m.client_url)]
    if down:
        raise VerificationFailed(f"etcd members {down} do not answer /health after the restore")
    summary = _etcd_summary(plane)
    if not summary.one_leader:
        raise VerificationFailed(f"etcd has no single leader after the restore: {summary}")
    keys = _count_seed(plane)
    if keys != facts["seed_keys"]:
        raise VerificationFailed(f"the restored etcd holds {keys} of the {facts['seed_keys']} seeded keys")
    return (f"every etcd member healthy, one leader, all {keys} seeded keys back "
            f"(restored from the snapshot taken before the fault)")


# -- apiserver-down: the main apiservers stop -> failover-apiserver ---------------------


def _stop_main(plane: ControlPlane) -> dict[str, Any]:
    for server in plane.main.values():
        server.stop()
    return {"stopped": list(plane.main)}


def _served_by_bypass(plane: ControlPlane, facts: dict[str, Any]) -> str:
    assert plane.haproxy is not None
    states = {s.name: s for s in RuntimeClient(plane.haproxy.socket_path).show_servers_state(BACKEND)}
    main_states = {name: states[name].admin.value for name in plane.main}
    pinned = [n for n in plane.main if states[n].in_maintenance or states[n].draining]
    if len(pinned) != len(main_states):
        raise VerificationFailed(f"the main servers are not taken out of the load balancer (admin state "
                                 f"{main_states}): a recovered main would take traffic back unchecked")
    bypass = next(iter(plane.bypass.values()))
    before = len(bypass.request_log)
    with httpx.Client(timeout=3, trust_env=False, headers={"Connection": "close"}) as client:
        answer = client.get(plane.apiserver_url + "/readyz")
        listing = client.get(plane.apiserver_url + "/api/v1/namespaces")
    if answer.status_code != 200 or listing.status_code != 200:
        raise VerificationFailed(f"through the load balancer /readyz answers {answer.status_code} and a LIST "
                                 f"{listing.status_code}")
    if len(bypass.request_log) <= before:
        raise VerificationFailed("requests through the load balancer did not reach the bypass apiserver")
    return (f"main servers {', '.join(f'{n} {s}' for n, s in main_states.items())} in HAProxy; through the load balancer "
            f"/readyz answers ok and requests reach the bypass apiserver")


# -- client-flood: one client hammers the apiserver -> throttle-client -----------------


def _flood(plane: ControlPlane) -> dict[str, Any]:
    server = next(iter(plane.main.values()))
    flow = server.flood(FLOOD_USER, FLOOD_GROUPS, requests=60, rate=300.0, rejected_rate=40.0)
    return {"user": FLOOD_USER, "flow_schema": flow["flow_schema"], "priority_level": flow["priority_level"]}


def _throttled(plane: ControlPlane, facts: dict[str, Any]) -> str:
    server = next(iter(plane.main.values()))
    fs = server.classify(FLOOD_USER, FLOOD_GROUPS, verb="list", resource="pods")
    name = (fs or {}).get("metadata", {}).get("name")
    if not fs or name == facts["flow_schema"]:
        raise VerificationFailed(f"{FLOOD_USER}'s requests still land in flow schema {name}")
    level = fs["spec"]["priorityLevelConfiguration"]["name"]
    levels = {p["metadata"]["name"]: p for p in server.priority_levels()}
    if level not in levels:
        raise VerificationFailed(f"flow schema {name} points at a missing priority level {level} (dangling)")
    shares = ((levels[level].get("spec") or {}).get("limited") or {}).get("nominalConcurrencyShares")
    return (f"{FLOOD_USER}'s requests now land in flow schema {name} (precedence "
            f"{fs['spec'].get('matchingPrecedence')}) at priority level {level} "
            f"(nominalConcurrencyShares {shares}), no longer in {facts['flow_schema']}")


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("etcd-member-down", "SIGKILL one of three etcd members; quorum holds", "etcd", None,
             _kill_one_member, _member_down_escalated, repair=_restart_member),
    Scenario("etcd-quorum-loss", "SIGKILL two of three etcd members; the cluster loses quorum", "etcd",
             "restore-etcd", _kill_two_members, _etcd_restored, needs_snapshot=True),
    Scenario("apiserver-down", "stop every main apiserver; the bypass apiserver stays healthy", "apiserver",
             "failover-apiserver", _stop_main, _served_by_bypass),
    Scenario("client-flood", f"{FLOOD_USER} floods the main apiserver with LISTs; APF rejects and queues",
             "apiserver", "throttle-client", _flood, _throttled),
)}


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise BadInput(f"unknown drill scenario `{name}`; expected one of {', '.join(SCENARIOS)}.",
                       field="scenario") from None


def wait_healthy_etcd(plane: ControlPlane, timeout: float = 30.0) -> None:
    assert plane.etcd is not None
    wait_until(lambda: all(etcd_healthy(m.client_url) for m in plane.etcd.members),  # type: ignore[union-attr]
               timeout=timeout, what="every etcd member to be healthy")
