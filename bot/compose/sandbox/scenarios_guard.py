"""The ``mass-delete`` drill: a runaway client deletes Pods en masse; the admission guard stops it.

Pods are plain API objects here (no kubelet, no scheduler: the ServiceAccount admission plugin is
off in the sandbox), 300 of them in namespace ``batch``. A namespace janitor gone wrong (its own
static-token user, its own process: ``bot.compose.sandbox.deleter``) deletes them back to back. The bot's
validating webhook (``ControlPlaneOptions(admission_guard=True)``) lets the first ``per_client``
deletes through and denies the rest; the breaker opens an incident with T0 at the first delete;
diagnosis concludes "mass deletion by <client>" and binds ``throttle-client`` for that client.
Verified through the real apiserver: how many Pods are left, and the client's requests now land in
the throttle's flow schema. ``pods_deleted`` and ``threshold`` go on the scorecard (the goal, reported
as ``pods_deleted_goal``: no more deleted than the threshold; a review the webhook could not answer
in time is allowed by ``failurePolicy: Ignore``, so an overloaded machine may let a few more through).
"""

from __future__ import annotations

from typing import Any

from bot.core.config.guard import GuardSettings
from bot.compose.sandbox import cluster_setup
from bot.compose.sandbox.controlplane import ControlPlane
from bot.compose.sandbox.scenario import Scenario, VerificationFailed
from bot.compose.sandbox.deleter import DeleterProcess
from bot.compose.sandbox.guard_setup import JANITOR_USER
from bot.compose.sandbox.processes import wait_until

NAMESPACE = "batch"
PODS = 300
PAUSE_IMAGE = "registry.k8s.io/pause:3.10"  # never pulled: no kubelet runs here


class GuardMissing(Exception):
    """The scenario ran on a sandbox without the admission guard (the drill turns it on by itself)."""


def _threshold(plane: ControlPlane) -> int:
    if plane.guard is None:
        raise GuardMissing("mass-delete needs ControlPlaneOptions(admission_guard=True)")
    return GuardSettings(**plane.guard.settings_tree()).breaker.per_client


def _pod(i: int) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": f"job-{i:03d}", "namespace": NAMESPACE,
                                                            "labels": {"app": "batch-job"}},
            "spec": {"containers": [{"name": "work", "image": PAUSE_IMAGE}]}}


def _janitor_rbac() -> list[dict[str, Any]]:
    role = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "Role",
            "metadata": {"name": "janitor", "namespace": NAMESPACE},
            "rules": [{"apiGroups": [""], "resources": ["pods"], "verbs": ["get", "list", "delete"]}]}
    binding = {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "RoleBinding",
               "metadata": {"name": "janitor", "namespace": NAMESPACE},
               "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": "janitor"},
               "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": JANITOR_USER.name}]}
    return [role, binding]


def _count_pods(plane: ControlPlane) -> int:
    admin = plane.admin()
    try:
        return len(admin.list_objects("v1", "Pod", NAMESPACE))
    finally:
        admin.close()


def prepare(plane: ControlPlane) -> dict[str, Any]:
    """The janitor's rights, then 300 Pods."""
    threshold = _threshold(plane)
    admin = plane.admin()
    try:
        cluster_setup.apply_all(admin, _janitor_rbac())
        for i in range(PODS):  # one at a time: a burst of creates makes Prometheus' 1 s scrapes time out
            admin.create_object(_pod(i), exist_ok=True)
        before = admin.classify(JANITOR_USER.name, JANITOR_USER.groups)
    finally:
        admin.close()
    pods = _count_pods(plane)
    return {"pods_before": pods, "threshold": threshold, "flow_schema": before.flow_schema}


def inject(plane: ControlPlane) -> dict[str, Any]:
    assert plane.pki is not None
    deleter = DeleterProcess(url=plane.apiserver_url, ca_file=plane.pki.ca_cert,
                             token=plane.pki.token(JANITOR_USER.name), namespace=NAMESPACE,
                             out=plane.root / "deleter.log").start()
    return {"user": JANITOR_USER.name, "_deleter": deleter}


def _measure(plane: ControlPlane, facts: dict[str, Any]) -> dict[str, Any]:
    deleter: DeleterProcess = facts["_deleter"]
    left = _count_pods(plane)
    measured = {"pods_before": facts["pods_before"], "pods_deleted": facts["pods_before"] - left,
                "threshold": facts["threshold"], **deleter.summary()}
    measurements = facts.setdefault("measurements", {})
    measurements.update({"pods_deleted": measured["pods_deleted"], "threshold": measured["threshold"],
                         "mass_delete": measured})
    return measured


def verify(plane: ControlPlane, facts: dict[str, Any]) -> str:

    deleter: DeleterProcess = facts["_deleter"]
    try:
        wait_until(deleter.finished, timeout=60, interval=0.2, what="the janitor to have tried every Pod")
    except TimeoutError:
        raise VerificationFailed("the janitor was still deleting a minute after the fault") from None
    measured = _measure(plane, facts)
    if measured["deletes_denied"] == 0 or measured["pods_deleted"] >= measured["pods_before"]:
        raise VerificationFailed(f"the janitor deleted {measured['pods_deleted']} of {measured['pods_before']} Pods "
                                 f"and none was denied: the guard did not stop it")
    admin = plane.admin()
    try:
        now = admin.classify(JANITOR_USER.name, JANITOR_USER.groups)
    finally:
        admin.close()
    if not now.flow_schema or now.flow_schema == facts["flow_schema"]:
        raise VerificationFailed(f"{JANITOR_USER.name}'s requests still land in flow schema {now.flow_schema}")
    # the goal, reported not required: a review the webhook could not answer in time (an overloaded machine)
    # is allowed by failurePolicy Ignore and never counted, so a few deletes may pass the threshold
    goal = "met" if measured["pods_deleted"] <= facts["threshold"] else "missed"
    facts["measurements"]["pods_deleted_goal"] = goal
    return (f"{measured['pods_deleted']} of {measured['pods_before']} Pods deleted (threshold {facts['threshold']}: "
            f"goal {goal}); "
            f"the real kube-apiserver denied {measured['deletes_denied']} deletes through the admission webhook, "
            f"the first {measured['seconds_to_first_denial']}s after the janitor began; its requests now land in "
            f"flow schema {now.flow_schema} at priority level {now.priority_level}")


def finish(plane: ControlPlane, facts: dict[str, Any]) -> None:
    deleter: DeleterProcess | None = facts.pop("_deleter", None)
    if deleter is not None:
        deleter.stop()
        facts["_deleter"] = deleter
        if "mass_delete" not in (facts.get("measurements") or {}):
            _measure(plane, facts)
        facts.pop("_deleter")


def scenarios() -> tuple[Any, ...]:

    return (Scenario("mass-delete", f"{JANITOR_USER.name} deletes the {PODS} Pods of namespace {NAMESPACE} back "
                     f"to back; the admission guard's breaker stops it", "mass-deletion", "throttle-client",
                     inject, verify, prepare=prepare, finish=finish, needs=("admission_guard",)),)
