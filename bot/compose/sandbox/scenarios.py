"""The fault-scenario library: what a drill breaks, what the bot should conclude, how recovery is checked.

Each scenario is declared once: ``inject`` breaks the sandbox through the real components (kill
etcd members, kill the main kube-apiservers, flood them as a real client), the expectation names
the component the incident must be about and the playbook the diagnosis must bind (``None``:
escalate to a human), and ``verify`` checks the outcome through the real components again (the
apiservers' own answers, HAProxy's counters, etcd), never through the bot's own records.
``repair`` is the drill putting things back itself when the right answer was to escalate;
``prepare`` runs before the fault (data a scenario needs, a baseline measurement) and ``finish``
after the verdict (stop a flood). What a scenario measures goes under ``facts["measurements"]``
and onto the scorecard.
"""

from __future__ import annotations

import time
from typing import Any

from bot.core.errors import BadInput
from bot.compose.sandbox import cluster_setup
from bot.compose.sandbox.controlplane import BACKEND, BYSTANDER_USER, FLOOD_USER, ControlPlane
from bot.compose.sandbox import flood as clients
from bot.compose.sandbox import scenarios_customers, scenarios_guard
from bot.compose.sandbox import scenarios_webhook as bad_webhook
from bot.compose.sandbox.processes import etcd_healthy, wait_until
from bot.compose.sandbox.scenario import Scenario, VerificationFailed
from integrations.clients.etcd import EtcdClient
from integrations.clients.haproxy import RuntimeClient

SEED_PREFIX = "/registry/drill/"
SEED_KEYS = 20
FLOOD_NAMESPACE = "batch"
FLOOD_CONFIGMAPS = 400  # each LIST of the flood returns all of them (~0.8 MB)
MEASURE_SECONDS = 3.0  # how long the bystander is measured before the flood and after the throttle


# -- seed data: what a restore must bring back ------------------------------------------


def seed_etcd(plane: ControlPlane) -> int:
    """Write what a restore must bring back (before the first snapshot is taken): raw etcd keys,
    and Kubernetes objects (a namespace and ConfigMaps) through the apiservers."""
    assert plane.etcd is not None
    client = EtcdClient(plane.etcd.endpoints, timeout=3.0)
    try:
        for i in range(SEED_KEYS):
            client.put(f"{SEED_PREFIX}key-{i:03d}", f"value-{i}")
    finally:
        client.close()
    admin = plane.admin()
    try:
        cluster_setup.apply_all(admin, cluster_setup.seed_objects())
    finally:
        admin.close()
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


def _apiservers_ready(plane: ControlPlane) -> dict[str, bool]:
    return {name: server.ready() for name, server in plane.main.items()}


def _lb_serves_main(plane: ControlPlane) -> bool:
    """HAProxy has seen every main apiserver pass its health check again (checks run every second).

    A ready apiserver that HAProxy still marks down gets no connection: a read through the
    load balancer in that second is closed mid-handshake, which is not what the restore left.
    """
    assert plane.haproxy is not None
    stats = plane.haproxy.server_stats()
    return all(stats.get((BACKEND, name), {}).get("status", "").startswith("UP") for name in plane.main)


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
    ready = _apiservers_ready(plane)
    if not all(ready.values()):
        raise VerificationFailed(f"with one etcd member down the kube-apiservers should stay ready: {ready}")
    return (f"quorum held throughout ({len(alive)}/{len(plane.etcd.members)} members healthy, {facts['killed'][0]} "
            f"down); every main kube-apiserver stayed ready")


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
    return {"killed": [m.name for m in victims], "seed_keys": SEED_KEYS,
            "seed_objects": cluster_setup.SEED_CONFIGMAPS}


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
    try:
        wait_until(lambda: all(_apiservers_ready(plane).values()) and _lb_serves_main(plane), timeout=30,
                   interval=0.5, what="the main kube-apiservers to be ready again, and up in the load balancer")
    except Exception:
        raise VerificationFailed(f"the kube-apiservers are not ready after the restore: {_apiservers_ready(plane)}")
    admin = plane.admin()
    try:
        objects = cluster_setup.count_seed_objects(admin)
    finally:
        admin.close()
    if objects != facts["seed_objects"]:
        raise VerificationFailed(f"the kube-apiservers return {objects} of the {facts['seed_objects']} ConfigMaps "
                                 f"created before the snapshot")
    return (f"every etcd member healthy, one leader, all {keys} seeded keys back; every main kube-apiserver ready and "
            f"all {objects} ConfigMaps of namespace {cluster_setup.SEED_NAMESPACE} (created before the snapshot) "
            f"read back through the load balancer")


# -- apiserver-down: the main apiservers die -> failover-apiserver ----------------------


def _kill_main(plane: ControlPlane) -> dict[str, Any]:
    for server in plane.main.values():
        server.kill()
    return {"killed": list(plane.main)}


def _sessions(plane: ControlPlane, server: str) -> int:
    assert plane.haproxy is not None
    return int(plane.haproxy.server_stats()[(BACKEND, server)].get("stot") or 0)


def _served_by_bypass(plane: ControlPlane, facts: dict[str, Any]) -> str:
    assert plane.haproxy is not None
    states = {s.name: s for s in RuntimeClient(plane.haproxy.socket_path).show_servers_state(BACKEND)}
    main_states = {name: states[name].admin.value for name in plane.main}
    pinned = [n for n in plane.main if states[n].in_maintenance or states[n].draining]
    if len(pinned) != len(main_states):
        raise VerificationFailed(f"the main servers are not taken out of the load balancer (admin state "
                                 f"{main_states}): a recovered main would take traffic back unchecked")
    bypass = next(iter(plane.bypass))
    before = _sessions(plane, bypass)
    admin = plane.admin()
    try:
        ready = admin.health("readyz")
        namespaces = admin.list_objects("v1", "Namespace")
        written = admin.create_object(cluster_setup.configmap("apps", f"failover-check-{int(time.time())}",
                                                              {"written": "through the bypass"}))
    except Exception as exc:  # the client's errors say which request failed and why
        raise VerificationFailed(f"through the load balancer a request failed: {exc}") from exc
    finally:
        admin.close()
    if not ready.ok:
        raise VerificationFailed(f"through the load balancer /readyz answers {ready.status}")
    if _sessions(plane, bypass) <= before:
        raise VerificationFailed("requests through the load balancer did not reach the bypass kube-apiserver")
    return (f"main servers {', '.join(f'{n} {s}' for n, s in main_states.items())} in HAProxy; through the load "
            f"balancer /readyz answers ok, a LIST returned {len(namespaces)} namespaces and ConfigMap "
            f"{written['metadata']['name']} was written, all served by the bypass kube-apiserver {bypass}")


# -- client-flood: one client hammers the apiservers -> throttle-client ------------------


def _prepare_flood(plane: ControlPlane) -> dict[str, Any]:
    """Fill the flood's namespace, start the flood held (ready, sending nothing), start the bystander and
    measure it before the fault.

    The flood's process starts here, not at the fault: its interpreter's start-up is not the fault.
    """
    assert plane.pki is not None
    admin = plane.admin()
    try:
        payload = "x" * 2000
        cluster_setup.apply_all(admin, [cluster_setup.configmap(FLOOD_NAMESPACE, f"data-{i:04d}", {"blob": payload})
                                        for i in range(FLOOD_CONFIGMAPS)])
        before = admin.classify(FLOOD_USER.name, FLOOD_USER.groups)
    finally:
        admin.close()
    flood = clients.flood(plane.apiserver_url, plane.pki.ca_cert, plane.pki.token(FLOOD_USER.name), FLOOD_NAMESPACE,
                          plane.root / "flood.log").start(hold=True)
    bystander = clients.bystander(plane.apiserver_url, plane.pki.ca_cert, plane.pki.token(BYSTANDER_USER.name),
                                  "apps", "reporter", plane.root / "bystander.log").start()
    began = time.time()
    time.sleep(MEASURE_SECONDS)  # a measurement period, not a wait for something to happen
    return {"_bystander": bystander, "_clients_since": began, "_flood": flood,
            "_before": (before.flow_schema, before.priority_level)}


def _flood(plane: ControlPlane) -> dict[str, Any]:
    """Start a flood now (without ``prepare``): the process's start-up then counts as the fault's."""
    assert plane.pki is not None
    admin = plane.admin()
    try:
        before = admin.classify(FLOOD_USER.name, FLOOD_USER.groups)
    finally:
        admin.close()
    flood = clients.flood(plane.apiserver_url, plane.pki.ca_cert, plane.pki.token(FLOOD_USER.name), FLOOD_NAMESPACE,
                          plane.root / "flood.log").start()
    return {"user": FLOOD_USER.name, "flow_schema": before.flow_schema, "priority_level": before.priority_level,
            "_flood": flood, "_flood_since": time.time()}


def _release_flood(plane: ControlPlane, prepared: dict[str, Any]) -> dict[str, Any]:
    """Release the flood ``_prepare_flood`` started held: its first LISTs leave within milliseconds."""
    flood: clients.ClientProcess = prepared["_flood"]
    flow_schema, priority_level = prepared["_before"]
    return {"user": FLOOD_USER.name, "flow_schema": flow_schema, "priority_level": priority_level,
            "_flood_since": flood.go()}


def _throttled(plane: ControlPlane, facts: dict[str, Any]) -> str:
    admin = plane.admin()
    try:
        now = admin.classify(FLOOD_USER.name, FLOOD_USER.groups)
        levels = {p["metadata"]["name"]: p for p in admin.list_priority_levels()}
    finally:
        admin.close()
    if not now.flow_schema or now.flow_schema == facts["flow_schema"]:
        raise VerificationFailed(f"{FLOOD_USER.name}'s requests still land in flow schema {now.flow_schema}")
    if now.priority_level not in levels:
        raise VerificationFailed(f"flow schema {now.flow_schema} points at a missing priority level {now.priority_level}")
    facts["_throttled_at"] = time.time()
    time.sleep(MEASURE_SECONDS)  # a measurement period after the throttle took effect
    after = _measure(facts)["bystander_after"]
    if after["requests"] == 0 or after["ok"] != after["requests"]:
        raise VerificationFailed(f"after the throttle the well-behaved client still fails: {after}")
    shares = ((levels[now.priority_level].get("spec") or {}).get("limited") or {}).get("nominalConcurrencyShares")
    return (f"the real kube-apiserver now puts {FLOOD_USER.name}'s requests in flow schema {now.flow_schema} at "
            f"priority level {now.priority_level} (nominalConcurrencyShares {shares}), no longer in "
            f"{facts['flow_schema']}; the well-behaved client's {after['requests']} requests all succeeded "
            f"(p99 {after['p99_ms']} ms)")


def _measure(facts: dict[str, Any]) -> dict[str, Any]:
    """The clients' answers before the flood, during it (until the throttle) and after the throttle."""
    bystander: clients.ClientProcess = facts["_bystander"]
    flood: clients.ClientProcess | None = facts.get("_flood")
    began, flooded = facts["_clients_since"], facts.get("_flood_since", time.time())
    throttled = facts.get("_throttled_at")
    measurements = facts.setdefault("measurements", {})
    measurements["bystander_before"] = bystander.summary(began, flooded)
    measurements["bystander_during"] = bystander.summary(flooded, throttled)
    if flood is not None:
        measurements["flood_during"] = flood.summary(flooded, throttled)
    if throttled is not None:
        measurements["bystander_after"] = bystander.summary(throttled)
        if flood is not None:
            measurements["flood_after"] = flood.summary(throttled)
    return measurements


def _stop_flood(plane: ControlPlane, facts: dict[str, Any]) -> None:
    if "_bystander" in facts:
        _measure(facts)
    for key in ("_flood", "_bystander"):
        if key in facts:
            facts.pop(key).stop()


SCENARIOS: dict[str, Scenario] = {s.name: s for s in (
    Scenario("etcd-member-down", "SIGKILL one of three etcd members; quorum holds", "etcd", None,
             _kill_one_member, _member_down_escalated, repair=_restart_member),
    Scenario("etcd-quorum-loss", "SIGKILL two of three etcd members; the cluster loses quorum and the "
             "kube-apiservers go unready", "etcd", "restore-etcd", _kill_two_members, _etcd_restored,
             needs_snapshot=True),
    Scenario("apiserver-down", "SIGKILL both main kube-apiservers; the bypass kube-apiserver stays healthy",
             "apiserver", "failover-apiserver", _kill_main, _served_by_bypass),
    Scenario("client-flood", f"{FLOOD_USER.name} floods the kube-apiservers with LISTs; APF queues and rejects",
             "apiserver", "throttle-client", _flood, _throttled, prepare=_prepare_flood, finish=_stop_flood,
             release=_release_flood),
    Scenario("bad-webhook", "a ValidatingWebhookConfiguration with failurePolicy Fail whose backend is down "
             "blocks ConfigMap writes", "apiserver", "disable-webhook", bad_webhook.inject, bad_webhook.verify,
             finish=bad_webhook.finish),
)}


SCENARIOS.update({s.name: s for s in scenarios_guard.scenarios()})
SCENARIOS.update({s.name: s for s in scenarios_customers.scenarios()})


def scenario(name: str) -> Scenario:
    try:
        return SCENARIOS[name]
    except KeyError:
        raise BadInput(f"unknown drill scenario `{name}`; expected one of {', '.join(SCENARIOS)}.",
                       field="scenario") from None


def wait_healthy_etcd(plane: ControlPlane, timeout: float = 30.0) -> None:
    etcd = plane.etcd
    assert etcd is not None
    wait_until(lambda: all(etcd_healthy(m.client_url) for m in etcd.members),
               timeout=timeout, what="every etcd member to be healthy")
