"""What a fresh sandbox cluster gets before the bot watches it: RBAC, namespaces, seed objects.

Applied once through the admin's credentials as an installer would: the bot's least-privilege
RBAC (``deploy/rbac/incident-bot.yaml``, the same rules the Helm chart grants), read access for
the drills' clients, and the namespaces and ConfigMaps that drills use as evidence (the objects
a restore of etcd must bring back).
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path
from typing import Any, Iterable, Mapping

import yaml

from integrations.clients.kubernetes import KubernetesClient

REPO_ROOT = Path(__file__).resolve().parents[3]
BOT_RBAC = REPO_ROOT / "deploy" / "rbac" / "incident-bot.yaml"
SEED_NAMESPACE = "drill-seed"
SEED_CONFIGMAPS = 10


def bot_rbac_manifests() -> list[dict[str, Any]]:
    """The bot's RBAC objects, from the source tree or the installed package's copy."""
    if BOT_RBAC.is_file():
        text = BOT_RBAC.read_text()
    else:  # installed from a wheel: the copy shipped as package data
        text = (resources.files("bot.compose.sandbox") / "data" / "incident-bot-rbac.yaml").read_text()
    return [doc for doc in yaml.safe_load_all(text) if doc]


# what the drills' clients may read (the aggregated `view` role is empty without a controller-manager)
DRILL_READER_ROLE = {
    "apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole", "metadata": {"name": "drill-reader"},
    "rules": [{"apiGroups": [""], "resources": ["configmaps", "pods", "namespaces"], "verbs": ["get", "list", "watch"]}],
}


def reader_binding(name: str, groups: Iterable[str], cluster_role: str = "drill-reader") -> dict[str, Any]:
    return {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
            "metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io",
                                                    "kind": "ClusterRole", "name": cluster_role},
            "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "Group", "name": g} for g in groups]}


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


def configmap(ns: str, name: str, data: Mapping[str, str]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": ns}, "data": dict(data)}


def apply_all(admin: KubernetesClient, manifests: Iterable[Mapping[str, Any]]) -> int:
    """Create each object unless it exists already (so a second run changes nothing)."""
    count = 0
    for manifest in manifests:
        admin.create_object(manifest, exist_ok=True)
        count += 1
    return count


def seed_objects() -> list[dict[str, Any]]:
    """The namespace and ConfigMaps an etcd restore must bring back."""
    return [namespace(SEED_NAMESPACE)] + [
        configmap(SEED_NAMESPACE, f"seed-{i:03d}", {"value": f"value-{i}"}) for i in range(SEED_CONFIGMAPS)]


def count_seed_objects(admin: KubernetesClient) -> int:
    """Seed ConfigMaps the apiserver returns, each read with a quorum GET (never the watch cache)."""
    found = 0
    for i in range(SEED_CONFIGMAPS):
        if admin.get_object("v1", "ConfigMap", f"seed-{i:03d}", SEED_NAMESPACE) is not None:
            found += 1
    return found


# the sandbox's queue limits for workload-low (where service accounts land): a real cluster queues
# 128 x 50 requests there; on 2 cores a flood is rejected only if one client can queue far fewer
SANDBOX_WORKLOAD_LOW_QUEUING = {"queues": 16, "handSize": 2, "queueLengthLimit": 4}


def tighten_workload_low(admin: KubernetesClient) -> dict[str, Any]:
    """Shrink workload-low's queues so that a flood from one client is rejected on 2 cores.

    The suggested priority levels are kept up to date by the apiserver unless their annotation
    ``apf.kubernetes.io/autoupdate-spec`` is "false", so the annotation is set with the change.
    """
    path = "/apis/flowcontrol.apiserver.k8s.io/v1/prioritylevelconfigurations/workload-low"
    level = admin.request("GET", path, operation="get priority level workload-low").json()
    level["metadata"].setdefault("annotations", {})["apf.kubernetes.io/autoupdate-spec"] = "false"
    limit = level["spec"]["limited"]
    limit["limitResponse"] = {"type": "Queue", "queuing": dict(SANDBOX_WORKLOAD_LOW_QUEUING)}
    limit["lendablePercent"] = 0
    limit["borrowingLimitPercent"] = 0
    return admin.request("PUT", path, operation="tighten priority level workload-low", body=level).json()
