"""Customer probes: use the cluster as a customer would, and time each stage.

``/readyz`` and a ConfigMap write pass while the scheduler is stuck, the controller-manager
is gone or the nodes stopped heartbeating; a customer notices at once, because their pods stay
Pending. These checks do what a customer does, in the bot's own probe namespace:

* ``pod``: create a pod and wait until it is scheduled (``spec.nodeName``) and Running and
  Ready; the detail names each stage's latency (API accept -> scheduled -> running), and a
  failure names the stage it stuck in (the first clue of the diagnosis: "not scheduled" points
  at the scheduler, "scheduled, not running" at the nodes);
* ``statefulset``: scale a StatefulSet up and see every replica ready, then back to zero
  (the controller-manager's StatefulSet controller, the scheduler and the nodes together).

The client is taken by duck type (``create_object``, ``request``, ``watch``), as the other checks
do. Nothing polls: the pod is followed with one watch (a healthy pod probe costs the apiserver
three requests: create, watch, delete) and each scale of the StatefulSet with one (four requests a
run: PATCH and watch, each way). The overhead measurement in docs/customer-probes.md counts them.
``monotonic`` is injectable so tests need no real waiting.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from integrations.clients.probes.checks import Check, ProbeFailed

PAUSE_IMAGE = "registry.k8s.io/pause:3.10"
MANAGED = {"app.kubernetes.io/managed-by": "incident-bot", "incident-bot.dev/probe": "customer"}
STATEFULSET = "incident-bot-probe"


@dataclass
class Stages:
    """Seconds from the probe's start to each stage reached (None: not reached)."""

    accepted: float | None = None
    scheduled: float | None = None
    running: float | None = None
    node: str | None = None
    requests: int = 0

    def text(self) -> str:
        def ms(value: float | None) -> str:
            return "-" if value is None else f"{value * 1000:.0f} ms"
        return (f"accepted {ms(self.accepted)}, scheduled {ms(self.scheduled)}"
                + (f" on {self.node}" if self.node else "") + f", running {ms(self.running)}")


def pod_manifest(namespace: str, name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED)},
            "spec": {"containers": [{"name": "probe", "image": PAUSE_IMAGE,
                                     "resources": {"requests": {"cpu": "10m", "memory": "16Mi"}}}],
                     "terminationGracePeriodSeconds": 0, "automountServiceAccountToken": False,
                     "restartPolicy": "Never"}}


def _ready(pod: dict[str, Any]) -> bool:
    status = pod.get("status") or {}
    return status.get("phase") == "Running" and any(
        c.get("type") == "Ready" and c.get("status") == "True" for c in status.get("conditions") or [])


def delete_now(client: Any, api_path: str, operation: str) -> None:
    """DELETE with grace 0: a probe pod is gone at once, bound or not."""
    client.request("DELETE", api_path, operation=operation, ok=(404,),
                   body={"kind": "DeleteOptions", "apiVersion": "v1", "gracePeriodSeconds": 0,
                         "propagationPolicy": "Background"})


class PodStuck(ProbeFailed):
    """The pod probe failed; ``stage`` says where the pod stuck (``scheduling`` or ``running``)."""

    def __init__(self, message: str, stage: str, stages: Stages) -> None:
        super().__init__(message)
        self.stage = stage
        self.stages = stages


def run_pod_probe(client: Any, namespace: str, *, deadline_seconds: float,
                  monotonic: Callable[[], float] = time.monotonic) -> Stages:
    """Create a pod, watch it until it is scheduled and running, delete it; raise naming the stuck stage.

    One watch of the pod (from the creation's resourceVersion, so no change is missed) instead of
    polling it: three requests per healthy probe (create, watch, delete) whatever the latency.
    """
    name = f"probe-pod-{uuid.uuid4().hex[:8]}"
    started = monotonic()
    stages = Stages()
    pod: dict[str, Any] = {}

    def elapsed() -> float:
        return monotonic() - started

    stages.requests += 1
    created = client.create_object(pod_manifest(namespace, name))
    stages.accepted = elapsed()
    pod.update(created or {})
    try:
        remaining = deadline_seconds - elapsed()
        if remaining > 0:
            stages.requests += 1
            version = ((created or {}).get("metadata") or {}).get("resourceVersion")
            events = client.watch(f"/api/v1/namespaces/{namespace}/pods", operation=f"watch Pod {namespace}/{name}",
                                  query={"fieldSelector": f"metadata.name={name}",
                                         **({"resourceVersion": version} if version else {})},
                                  seconds=remaining)
            for event in events:
                if event.get("type") == "DELETED":
                    raise ProbeFailed(f"pod {namespace}/{name} vanished after it was created")
                found = event.get("object") or {}
                if event.get("type") not in ("ADDED", "MODIFIED") or found.get("kind") not in (None, "Pod"):
                    continue  # a BOOKMARK, or an ERROR (an expired resourceVersion): the deadline decides
                pod.clear()
                pod.update(found)
                if stages.scheduled is None and (found.get("spec") or {}).get("nodeName"):
                    stages.scheduled, stages.node = elapsed(), found["spec"]["nodeName"]
                if stages.running is None and _ready(found):
                    stages.running = elapsed()
                    break
                if elapsed() >= deadline_seconds:
                    break
        if stages.scheduled is None:
            raise PodStuck(f"pod not scheduled within {deadline_seconds:g} s (no node assigned; "
                           f"{_pending_reason(pod)}) — {stages.text()}", "scheduling", stages)
        if stages.running is None or stages.running > deadline_seconds:
            phase = (pod.get("status") or {}).get("phase") or "unknown"
            raise PodStuck(f"pod scheduled on {stages.node} but not running within {deadline_seconds:g} s "
                           f"(phase {phase}) — {stages.text()}", "running", stages)
        return stages
    finally:
        stages.requests += 1
        delete_now(client, f"/api/v1/namespaces/{namespace}/pods/{name}", f"delete Pod {namespace}/{name}")


def _pending_reason(pod: dict[str, Any]) -> str:
    for condition in (pod.get("status") or {}).get("conditions") or []:
        if condition.get("type") == "PodScheduled" and condition.get("status") == "False":
            return f"PodScheduled False: {condition.get('reason')}: {condition.get('message') or ''}".strip()
    return "no scheduling decision recorded: is a scheduler running?"


def statefulset_manifest(namespace: str, name: str = STATEFULSET) -> dict[str, Any]:
    labels = {"app": name, **MANAGED}
    template = pod_manifest(namespace, name)
    template["metadata"] = {"labels": labels}
    template["spec"]["restartPolicy"] = "Always"  # the only policy a StatefulSet accepts
    return {"apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(MANAGED)},
            "spec": {"replicas": 0, "serviceName": name, "podManagementPolicy": "Parallel",
                     "selector": {"matchLabels": {"app": name}}, "template": template}}


def _scale(client: Any, namespace: str, target: int) -> None:
    """PATCH the probe StatefulSet's scale; create the StatefulSet first only when it does not exist yet."""
    path = f"/apis/apps/v1/namespaces/{namespace}/statefulsets/{STATEFULSET}/scale"
    for attempt in (1, 2):
        answer = client.request("PATCH", path, operation=f"scale StatefulSet {STATEFULSET} to {target}",
                                body={"spec": {"replicas": target}}, ok=(404,) if attempt == 1 else (),
                                headers={"Content-Type": "application/merge-patch+json"})
        if answer.status != 404:
            return
        client.create_object(statefulset_manifest(namespace), exist_ok=True)


def run_statefulset_probe(client: Any, namespace: str, *, replicas: int, deadline_seconds: float,
                          monotonic: Callable[[], float] = time.monotonic) -> dict[str, float]:
    """Scale the probe StatefulSet to ``replicas`` and back to 0; seconds each way until it is settled.

    Each way is one PATCH and one watch of the StatefulSet (started without a resourceVersion, so
    its first event is the current state: a scale that changes nothing is seen settled at once).
    """
    result: dict[str, float] = {}
    for direction, target in (("up", replicas), ("down", 0)):
        started = monotonic()
        _scale(client, namespace, target)
        seen: dict[str, Any] = {}
        settled = False
        events = client.watch(f"/apis/apps/v1/namespaces/{namespace}/statefulsets",
                              operation=f"watch StatefulSet {namespace}/{STATEFULSET}",
                              query={"fieldSelector": f"metadata.name={STATEFULSET}"},
                              seconds=max(0.1, deadline_seconds - (monotonic() - started)))
        for event in events:
            sts = event.get("object") or {}
            if event.get("type") not in ("ADDED", "MODIFIED") or sts.get("kind") not in (None, "StatefulSet"):
                continue
            status = sts.get("status") or {}
            seen = dict(status)
            settled = (status.get("observedGeneration", 0) >= (sts.get("metadata") or {}).get("generation", 0)
                       and int(status.get("readyReplicas") or 0) == target
                       and int(status.get("replicas") or 0) == target)
            if settled or monotonic() - started >= deadline_seconds:
                break
        if not settled:
            raise ProbeFailed(f"StatefulSet {namespace}/{STATEFULSET} scaled {direction} to {target} but "
                              f"{int(seen.get('readyReplicas') or 0)} of {target} replicas ready after "
                              f"{deadline_seconds:g} s (replicas {int(seen.get('replicas') or 0)})")
        result[direction] = monotonic() - started
    return result


def pod_check(cluster: str, client: Any, namespace: str, *, deadline_seconds: float) -> Check:
    def run() -> str:
        return run_pod_probe(client, namespace, deadline_seconds=deadline_seconds).text()
    return Check(cluster, f"pod {namespace}", "workloads", run)


def statefulset_check(cluster: str, client: Any, namespace: str, *, replicas: int = 2,
                      deadline_seconds: float) -> Check:
    def run() -> str:
        took = run_statefulset_probe(client, namespace, replicas=replicas, deadline_seconds=deadline_seconds)
        return f"{replicas} replicas ready in {took['up'] * 1000:.0f} ms, back to 0 in {took['down'] * 1000:.0f} ms"
    return Check(cluster, f"statefulset {namespace}", "workloads", run)


def nodes_check(cluster: str, client: Any, *, max_not_ready_share: float = 0.1) -> Check:
    """Capacity customers can schedule on: fails when more than ``max_not_ready_share`` of the nodes are not Ready."""

    def run() -> str:
        result = client.request("GET", "/api/v1/nodes", operation="list nodes").json()
        nodes = result.get("items") or []
        silent = [n["metadata"]["name"] for n in nodes if not any(
            c.get("type") == "Ready" and c.get("status") == "True"
            for c in (n.get("status") or {}).get("conditions") or [])]
        if not nodes:
            raise ProbeFailed("no nodes registered: nothing can run")
        share = len(silent) / len(nodes)
        text = f"{len(nodes) - len(silent)}/{len(nodes)} nodes Ready"
        if share > max_not_ready_share:
            raise ProbeFailed(f"{text}; not ready: {', '.join(silent[:5])}"
                              + (f" +{len(silent) - 5} more" if len(silent) > 5 else ""))
        return text

    return Check(cluster, "nodes ready", "workloads", run)
