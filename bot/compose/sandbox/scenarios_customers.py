"""Drills a customer notices first: a stuck scheduler, and nodes that stop heartbeating.

Both need the sandbox's customer cluster (``ControlPlaneOptions(customers=True)``: scheduler,
controller-manager, kwok nodes); the apiservers and etcd stay healthy throughout, so only the
customer probes (a pod that must be scheduled and run, node readiness) can see them.

* ``scheduler-down``: the kube-scheduler is frozen (SIGSTOP: its process, port and Lease stay,
  it binds nothing and renews nothing). The pod probe fails "not scheduled"; diagnosis reads
  the scheduler's stale leader Lease and binds ``restart-component component=kube-scheduler``;
  ``verify`` checks through the apiserver that the Lease is held and renewed by a new holder
  and that a new pod is scheduled and runs.
* ``nodes-not-ready``: one group of hollow nodes (half of them) stops renewing its Leases in
  ``kube-node-lease`` (its kwok process is stopped, as kubelets that died). The node probe fails;
  diagnosis sees the scheduler and the controller-manager leading and the silent nodes, and
  escalates it as node-side with the nodes as evidence; ``verify`` checks that exactly that group
  went NotReady, for the reason the node lifecycle controller gives a silent kubelet
  (``NodeStatusUnknown``) and with its Leases expired while the others' were renewed, that the
  control plane kept leading, and ``repair`` starts the group's kwok again.
"""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from bot.compose.sandbox.controlplane import ControlPlane
from bot.compose.sandbox.scenario import Scenario, VerificationFailed
from bot.compose.sandbox.customers import SCHEDULER, ready_nodes
from bot.compose.sandbox.processes import wait_until
from integrations.clients.probes.customer import run_pod_probe

PROBE_NAMESPACE = "incident-bot-probe"


class CustomersMissing(Exception):
    """The scenario runs only on a sandbox with the customer cluster."""


def _customers(plane: ControlPlane) -> Any:
    if plane.customers is None:
        raise CustomersMissing("this drill needs ControlPlaneOptions(customers=True)")
    return plane.customers


def _age(renewed: str | None) -> float | None:
    """Seconds since a Lease's ``renewTime`` (None: never renewed)."""
    if not renewed:
        return None
    return (datetime.now(timezone.utc) - datetime.fromisoformat(renewed.replace("Z", "+00:00"))).total_seconds()


def _lease(plane: ControlPlane, name: str) -> dict[str, Any]:
    admin = plane.admin()
    try:
        lease = admin.get_object("coordination.k8s.io/v1", "Lease", name, "kube-system") or {}
    finally:
        admin.close()
    spec = lease.get("spec") or {}
    renewed = spec.get("renewTime")
    age = ((datetime.now(timezone.utc) - datetime.fromisoformat(renewed.replace("Z", "+00:00"))).total_seconds()
           if renewed else None)
    return {"holder": spec.get("holderIdentity"), "age": age, "duration": spec.get("leaseDurationSeconds")}


# -- scheduler-down ------------------------------------------------------------------------


def _freeze_scheduler(plane: ControlPlane) -> dict[str, Any]:
    customers = _customers(plane)
    before = _lease(plane, SCHEDULER)
    customers.components[SCHEDULER].freeze()
    return {"frozen": SCHEDULER, "holder_before": before["holder"], "pid": customers.components[SCHEDULER].pid}


def _scheduler_restarted(plane: ControlPlane, facts: dict[str, Any]) -> str:

    customers = _customers(plane)
    if customers.components[SCHEDULER].frozen:
        raise VerificationFailed("the kube-scheduler is still the frozen process")
    lease = _lease(plane, SCHEDULER)
    fresh = lease["age"] is not None and lease["duration"] is not None and lease["age"] <= lease["duration"]
    if not fresh or lease["holder"] == facts["holder_before"]:
        raise VerificationFailed(f"Lease kube-system/{SCHEDULER} is held by {lease['holder']}, renewed "
                                 f"{lease['age']} s ago: no new leader")
    admin = plane.admin()
    try:
        stages = run_pod_probe(admin, PROBE_NAMESPACE, deadline_seconds=20)
    except Exception as exc:  # the probe's sentence says which stage failed
        raise VerificationFailed(f"a new pod still does not run: {exc}") from exc
    finally:
        admin.close()
    return (f"Lease kube-system/{SCHEDULER} now held by {lease['holder']} (was {facts['holder_before']}), renewed "
            f"{lease['age']:.1f} s ago; a new pod ran through the real scheduler and a hollow node: {stages.text()}")


# -- nodes-not-ready -------------------------------------------------------------------------


def _silence_group(plane: ControlPlane) -> dict[str, Any]:
    customers = _customers(plane)
    group = sorted(customers.groups)[-1]
    customers.components[f"kwok-{group}"].stop()
    return {"group": group, "silenced": list(customers.groups[group]),
            "nodes": sum(len(n) for n in customers.groups.values()),
            "node_lease_seconds": customers.options.node_lease_seconds}


def _nodes_escalated(plane: ControlPlane, facts: dict[str, Any]) -> str:

    admin = plane.admin()
    try:
        wait_until(lambda: not set(facts["silenced"]) & set(ready_nodes(admin)), timeout=60, interval=1,
                   what="the silenced nodes to be NotReady")
        ready = set(ready_nodes(admin))
        reasons = {(c.get("status"), c.get("reason")) for n in admin.list_objects("v1", "Node")
                   if n["metadata"]["name"] in facts["silenced"]
                   for c in (n.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"}
        leases = {lease["metadata"]["name"]: _age((lease.get("spec") or {}).get("renewTime"))
                  for lease in admin.list_objects("coordination.k8s.io/v1", "Lease", "kube-node-lease")}
    except Exception as exc:
        raise VerificationFailed(f"the silenced nodes did not all go NotReady: {exc}") from exc
    finally:
        admin.close()
    others = facts["nodes"] - len(facts["silenced"])
    if len(ready) != others:
        raise VerificationFailed(f"{len(ready)} nodes Ready, expected the {others} still heartbeating")
    if reasons != {("Unknown", "NodeStatusUnknown")}:
        raise VerificationFailed(f"the silenced nodes are NotReady for another reason than a silent kubelet: {reasons}")
    duration = facts.get("node_lease_seconds") or 0
    stale = [n for n in facts["silenced"] if (leases.get(n) or 0) > duration]
    fresh = [n for n in ready if (age := leases.get(n)) is not None and age <= duration]
    if len(stale) != len(facts["silenced"]) or len(fresh) != others:
        raise VerificationFailed(f"Leases: {len(stale)} of the {len(facts['silenced'])} silenced nodes expired, "
                                 f"{len(fresh)} of the {others} others renewed within {duration} s")
    scheduler = _lease(plane, SCHEDULER)
    if scheduler["age"] is None or scheduler["age"] > (scheduler["duration"] or 0):
        raise VerificationFailed("the scheduler stopped leading too: this was not a node-side fault only")
    return (f"the {len(facts['silenced'])} nodes of group {facts['group']} are NotReady (NodeStatusUnknown, their "
            f"Leases expired), the other {others} Ready with fresh Leases, the scheduler kept leading "
            f"({scheduler['holder']}): node-side, for people")


def _restart_group(plane: ControlPlane, facts: dict[str, Any]) -> str:
    customers = _customers(plane)
    customers.components[f"kwok-{facts['group']}"].start()
    admin = plane.admin()
    try:
        customers.wait_nodes_ready(admin, facts["nodes"], timeout=60)
    finally:
        admin.close()
    return f"the drill started group {facts['group']}'s kwok again; all {facts['nodes']} nodes Ready"


def scenarios() -> tuple[Any, ...]:

    return (
        Scenario("scheduler-down", "the kube-scheduler freezes (SIGSTOP): pods stay Pending while every apiserver "
                 "answers ready", "workloads", "restart-component", _freeze_scheduler, _scheduler_restarted,
                 needs=("customers",)),
        Scenario("nodes-not-ready", "half of the hollow nodes stop renewing their Leases (their kwok process stops)",
                 "workloads", None, _silence_group, _nodes_escalated, repair=_restart_group, needs=("customers",)),
    )
