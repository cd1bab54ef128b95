"""Kubernetes objects by apiVersion and kind: get, list, create, replace, delete.

The bot reads and writes many kinds (ConfigMaps for the write probe, FlowSchemas for
throttle-client, webhooks, Leases, Pods) through these five generic calls rather than a typed
API per kind; the plural and scope of a kind come from a table of the kinds the bot knows, and
from discovery for the rest.
"""

from __future__ import annotations

from typing import Any, Mapping

import kubernetes.client

from bot.core.errors import IntegrationError
from integrations.clients.kubernetes.transport import ApiTransport, KubernetesApiError


# kind -> (plural, namespaced) for kinds the bot reads; others are resolved by discovery.
KNOWN_KINDS: dict[str, tuple[str, bool]] = {
    "Namespace": ("namespaces", False), "Node": ("nodes", False), "ConfigMap": ("configmaps", True),
    "Secret": ("secrets", True), "Pod": ("pods", True), "Service": ("services", True),
    "ServiceAccount": ("serviceaccounts", True), "Event": ("events", True),
    "Endpoints": ("endpoints", True), "Deployment": ("deployments", True),
    "StatefulSet": ("statefulsets", True), "DaemonSet": ("daemonsets", True),
    "ReplicaSet": ("replicasets", True), "Job": ("jobs", True), "CronJob": ("cronjobs", True),
    "Lease": ("leases", True), "FlowSchema": ("flowschemas", False),
    "PriorityLevelConfiguration": ("prioritylevelconfigurations", False),
    "ClusterRole": ("clusterroles", False), "ClusterRoleBinding": ("clusterrolebindings", False),
    "Role": ("roles", True), "RoleBinding": ("rolebindings", True),
    "APIService": ("apiservices", False), "CustomResourceDefinition": ("customresourcedefinitions", False),
}


def _qual(namespace: str | None, name: str | None) -> str:
    """``ns/name``, or ``name`` for a cluster-scoped object: how operations are named in errors."""
    return f"{namespace}/{name}" if namespace else str(name)


class ResourceClient(ApiTransport):
    """The generic object calls over the transport; kinds not in ``KNOWN_KINDS`` are discovered once."""

    def __init__(self, api_client: kubernetes.client.ApiClient, *, timeout: float = 5.0) -> None:
        super().__init__(api_client, timeout=timeout)
        self._kind_cache: dict[tuple[str, str], tuple[str, bool]] = {}

    def _resolve(self, api_version: str, kind: str) -> tuple[str, bool]:
        if kind in KNOWN_KINDS:
            return KNOWN_KINDS[kind]
        key = (api_version, kind)
        if key not in self._kind_cache:
            path = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
            try:
                data = self._json("GET", path, operation=f"discover {api_version}")
                for r in data.get("resources", []):
                    if r.get("kind") == kind and "/" not in r.get("name", ""):
                        self._kind_cache[key] = (r["name"], bool(r.get("namespaced")))
                        break
            except IntegrationError:
                pass
            if key not in self._kind_cache:
                low = kind.lower()
                plural = low[:-1] + "ies" if low.endswith("y") else low + ("es" if low.endswith("s") else "s")
                self._kind_cache[key] = (plural, True)
        return self._kind_cache[key]

    @staticmethod
    def object_path(api_version: str, plural: str, name: str | None = None,
                    namespace: str | None = None) -> str:
        base = f"/api/{api_version}" if "/" not in api_version else f"/apis/{api_version}"
        ns = f"/namespaces/{namespace}" if namespace else ""
        return f"{base}{ns}/{plural}" + (f"/{name}" if name else "")

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        """An object as a dict, or None when it does not exist."""
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        result = self.request("GET", path, operation=f"get {kind} {_qual(namespace, name)}", ok=(404,))
        return None if result.status == 404 else result.json()

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]:
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, None, namespace if namespaced else None)
        data = self._json("GET", path, operation=f"list {plural}",
                          query={"labelSelector": label_selector} if label_selector else None)
        return list(data.get("items") or [])

    def create_object(self, manifest: Mapping[str, Any], *, exist_ok: bool = False,
                      dry_run: bool = False) -> dict:
        """Create; with ``exist_ok`` a 409 returns the existing object instead of failing."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        if not api_version or not kind:
            raise KubernetesApiError("a manifest needs apiVersion and kind", operation="create",
                                     url=self.host)
        meta = manifest.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, None, namespace if namespaced else None)
        op = f"create {kind} {_qual(namespace, name)}"
        result = self.request("POST", path, operation=op, body=dict(manifest),
                              query={"dryRun": "All"} if dry_run else None, ok=(409,) if exist_ok else ())
        if result.status == 409:
            existing = self.get_object(api_version, kind, str(name), namespace)  # a 409 is about a named object
            if existing is None:  # deleted meanwhile: try once more
                return self.create_object(manifest, exist_ok=False, dry_run=dry_run)
            return existing
        return result.json()

    def replace_object(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict:
        """PUT the whole object; with ``metadata.resourceVersion`` a concurrent change is a 409 Conflict."""
        api_version, kind = manifest.get("apiVersion"), manifest.get("kind")
        meta = manifest.get("metadata") or {}
        name, namespace = meta.get("name"), meta.get("namespace")
        if not api_version or not kind or not name:
            raise KubernetesApiError("a manifest needs apiVersion, kind and metadata.name", operation="replace",
                                     url=self.host)
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        return self._json("PUT", path, operation=f"replace {kind} {_qual(namespace, name)}", body=dict(manifest),
                          query={"dryRun": "All"} if dry_run else None)

    def delete_object(self, api_version: str, kind: str, name: str, namespace: str | None = None,
                      *, missing_ok: bool = True) -> bool:
        """Delete; returns False when it was already gone (and ``missing_ok``)."""
        plural, namespaced = self._resolve(api_version, kind)
        path = self.object_path(api_version, plural, name, namespace if namespaced else None)
        result = self.request("DELETE", path, operation=f"delete {kind} {_qual(namespace, name)}",
                              body={"kind": "DeleteOptions", "apiVersion": "v1",
                                    "propagationPolicy": "Background"},
                              ok=(404,) if missing_ok else ())
        return result.status != 404
