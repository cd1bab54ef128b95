"""``FakeKubernetes``: the KubernetesClient interface over in-memory objects.

For unit tests of the layers above.  Objects live in a dict keyed by
(apiVersion group, plural, namespace, name); FlowSchemas get a computed
``Dangling`` condition on read, ``classify`` uses the same APF matching as
the apiserver stand-in.  Failures are injected per operation name with
``fail("create_flow_schema", IntegrationError(...))`` (or ``"*"`` for all).
Every call is recorded in ``calls`` as ``(operation, args)``.
"""

from __future__ import annotations

import copy
import datetime as _dt
import time
import uuid
from typing import Any, Mapping, Sequence

from integrations.clients.kubernetes.apf import (
    ApfRequest,
    RequestAttributes,
    UserLoad,
    is_dangling,
    matching_flow_schema,
    parse_dump_requests,
    top_users,
)
from integrations.clients.kubernetes.apf_shortcuts import ApfShortcuts
from integrations.clients.kubernetes.client import FLOWCONTROL_GROUP, Classification, Timed, WriteProbeResult
from integrations.clients.kubernetes.resources import KNOWN_KINDS
from integrations.clients.kubernetes.transport import Health, KubernetesApiError


def _group(api_version: str) -> str:
    return api_version.rpartition("/")[0]


class FakeKubernetes(ApfShortcuts):
    def __init__(self, *, version: str = "1.30.2", flowcontrol_version: str = "v1",
                 host: str = "https://fake-apiserver:6443") -> None:
        self.host = host
        self.version = version
        self._flowcontrol_version = flowcontrol_version
        self.objects: dict[tuple[str, str, str | None, str], dict] = {}
        self.raw: dict[str, str] = {}  # path -> body for raw_get
        self.health_status: dict[str, int] = {"/readyz": 200, "/livez": 200}
        self.dump_text = ""
        self.calls: list[tuple[str, tuple]] = []
        self._failures: dict[str, BaseException] = {}
        for ns in ("default", "kube-system"):
            self._put("v1", "Namespace", {"metadata": {"name": ns}})

    # ---- test controls
    def fail(self, operation: str, error: BaseException | None = None) -> None:
        """Make ``operation`` (a method name, or ``"*"``) raise ``error`` until ``heal()``."""
        self._failures[operation] = error or KubernetesApiError(
            f"Kubernetes API {operation} failed at {self.host}: injected failure",
            operation=operation, url=self.host)

    def heal(self, operation: str | None = None) -> None:
        if operation is None:
            self._failures.clear()
        else:
            self._failures.pop(operation, None)

    def _call(self, operation: str, *args: Any) -> None:
        self.calls.append((operation, args))
        err = self._failures.get(operation) or self._failures.get("*")
        if err is not None:
            raise err

    def _key(self, api_version: str, kind: str, name: str | None, namespace: str | None) -> tuple:
        plural, namespaced = KNOWN_KINDS.get(kind, (kind.lower() + "s", True))
        return (_group(api_version), plural, namespace if namespaced else None, name)

    def _put(self, api_version: str, kind: str, manifest: Mapping[str, Any]) -> dict:
        obj = copy.deepcopy(dict(manifest))
        obj["apiVersion"], obj["kind"] = api_version, kind
        meta = obj.setdefault("metadata", {})
        meta.setdefault("uid", str(uuid.uuid4()))
        meta.setdefault("creationTimestamp", _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
        self.objects[self._key(api_version, kind, meta["name"], meta.get("namespace"))] = obj
        return copy.deepcopy(obj)

    def _present(self, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if obj.get("kind") == "FlowSchema":
            pl = obj["spec"]["priorityLevelConfiguration"]["name"]
            dangling = pl not in {p["metadata"]["name"] for p in self._items("prioritylevelconfigurations")}
            obj["status"] = {"conditions": [{"type": "Dangling", "status": "True" if dangling else "False",
                                             "reason": "NotFound" if dangling else "Found"}]}
        return obj

    def _items(self, plural: str, namespace: str | None = None) -> list[dict]:
        return [o for (g, p, ns, _), o in sorted(self.objects.items(), key=lambda kv: str(kv[0]))
                if p == plural and (namespace is None or ns == namespace)]

    # ---- basics
    def server_version(self) -> dict:
        self._call("server_version")
        major, minor = self.version.split(".")[:2]
        return {"major": major, "minor": minor, "gitVersion": f"v{self.version}"}

    def server_minor_version(self) -> str:
        v = self.server_version()
        return f"{v['major']}.{v['minor']}"

    def raw_get(self, path: str, *, query: Mapping[str, Any] | None = None, accept: str = "*/*",
                operation: str | None = None) -> str:
        self._call("raw_get", path)
        if path not in self.raw:
            raise KubernetesApiError(f"Kubernetes API GET {path} failed at {self.host}{path}: HTTP 404",
                                     operation=f"GET {path}", url=self.host + path, status=404)
        return self.raw[path]

    def health(self, endpoint: str = "readyz", *, verbose: bool = False) -> Health:
        path = "/" + endpoint.strip("/")
        self._call("health", path)
        status = self.health_status.get(path, 404)
        return Health(path, status == 200, status, "ok" if status == 200 else "check failed", 0.0)

    def metrics_text(self) -> str:
        return self.raw_get("/metrics")

    def dump_requests(self, *, include_details: bool = True) -> list[ApfRequest]:
        self._call("dump_requests")
        return parse_dump_requests(self.dump_text)

    def top_users(self, n: int = 5) -> list[UserLoad]:
        return top_users(self.dump_requests(), n)

    # ---- generic objects
    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        self._call("get_object", api_version, kind, name, namespace)
        obj = self.objects.get(self._key(api_version, kind, name, namespace))
        return self._present(obj) if obj else None

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]:
        self._call("list_objects", api_version, kind, namespace)
        plural = KNOWN_KINDS.get(kind, (kind.lower() + "s", True))[0]
        items = [self._present(o) for o in self._items(plural, namespace)]
        if label_selector:
            wanted = dict(part.split("=", 1) for part in label_selector.split(","))
            items = [o for o in items
                     if all((o["metadata"].get("labels") or {}).get(k) == v for k, v in wanted.items())]
        return items

    def create_object(self, manifest: Mapping[str, Any], *, exist_ok: bool = False,
                      dry_run: bool = False) -> dict:
        self._call("create_object", manifest.get("kind"), (manifest.get("metadata") or {}).get("name"))
        meta = manifest.get("metadata") or {}
        key = self._key(manifest["apiVersion"], manifest["kind"], meta.get("name"), meta.get("namespace"))
        if key in self.objects:
            if exist_ok:
                return self._present(self.objects[key])
            raise KubernetesApiError(
                f"Kubernetes API create {manifest['kind']} {meta.get('name')} failed at {self.host}: "
                f"HTTP 409 AlreadyExists", operation="create", url=self.host, status=409, reason="AlreadyExists")
        ns = meta.get("namespace")
        if key[2] is not None and self._key("v1", "Namespace", ns, None) not in self.objects:
            raise KubernetesApiError(f"Kubernetes API create {manifest['kind']} {ns}/{meta.get('name')} failed "
                                     f"at {self.host}: HTTP 404 NotFound: namespaces \"{ns}\" not found",
                                     operation="create", url=self.host, status=404, reason="NotFound")
        if dry_run:
            return copy.deepcopy(dict(manifest))
        return self._present(self._put(manifest["apiVersion"], manifest["kind"], manifest))

    def replace_object(self, manifest: Mapping[str, Any], *, dry_run: bool = False) -> dict:
        self._call("replace_object", manifest.get("kind"), (manifest.get("metadata") or {}).get("name"))
        meta = manifest.get("metadata") or {}
        key = self._key(manifest["apiVersion"], manifest["kind"], meta.get("name"), meta.get("namespace"))
        if key not in self.objects:
            raise KubernetesApiError(f"Kubernetes API replace {manifest['kind']} {meta.get('name')} failed at "
                                     f"{self.host}: HTTP 404 NotFound", operation="replace", url=self.host,
                                     status=404, reason="NotFound")
        if dry_run:
            return copy.deepcopy(dict(manifest))
        return self._present(self._put(manifest["apiVersion"], manifest["kind"], manifest))

    def delete_object(self, api_version: str, kind: str, name: str, namespace: str | None = None,
                      *, missing_ok: bool = True) -> bool:
        self._call("delete_object", api_version, kind, name, namespace)
        key = self._key(api_version, kind, name, namespace)
        if key not in self.objects:
            if missing_ok:
                return False
            raise KubernetesApiError(f"Kubernetes API delete {kind} {name} failed at {self.host}: HTTP 404",
                                     operation="delete", url=self.host, status=404, reason="NotFound")
        del self.objects[key]
        if kind == "Namespace":
            for k in [k for k in self.objects if k[2] == name]:
                del self.objects[k]
        return True

    # ---- APF
    def flowcontrol_version(self, *, refresh: bool = False) -> str:
        self._call("flowcontrol_version")
        return self._flowcontrol_version

    @property
    def flowcontrol_api_version(self) -> str:
        return f"{FLOWCONTROL_GROUP}/{self._flowcontrol_version}"

    def dangling_flow_schemas(self) -> list[str]:
        return sorted(f["metadata"]["name"] for f in self.list_flow_schemas() if is_dangling(f))

    def classify(self, user: str, groups: Sequence[str] = (), *,
                 path: str = "/api/v1/namespaces/default/pods") -> Classification:
        self._call("classify", user, tuple(groups))
        parts = [p for p in path.split("/") if p]
        namespace = parts[3] if len(parts) > 4 and parts[2] == "namespaces" else ""
        resource = parts[-1] if parts else ""
        req = RequestAttributes.for_user(user, groups, verb="list", resource=resource, namespace=namespace)
        levels = {p["metadata"]["name"]: p for p in self._items("prioritylevelconfigurations")}
        fs = matching_flow_schema(self._items("flowschemas"), req, levels.keys())
        if fs is None:
            return Classification(None, None, None, None, 200)
        pl = levels[fs["spec"]["priorityLevelConfiguration"]["name"]]
        return Classification(fs["metadata"]["uid"], pl["metadata"]["uid"], fs["metadata"]["name"],
                              pl["metadata"]["name"], 200)

    # ---- write-path probe
    def ensure_namespace(self, namespace: str) -> Timed:
        self._call("ensure_namespace", namespace)
        obj = self.get_object("v1", "Namespace", namespace) or self._put(
            "v1", "Namespace", {"metadata": {"name": namespace}})
        return Timed("ensure-namespace", 0.0, obj)

    def create_configmap(self, namespace: str, name: str, data: Mapping[str, str] | None = None,
                         labels: Mapping[str, str] | None = None) -> Timed:
        self._call("create_configmap", namespace, name)
        return Timed("create", 0.0, self.create_object({
            "apiVersion": "v1", "kind": "ConfigMap",
            "metadata": {"name": name, "namespace": namespace, "labels": dict(labels or {})},
            "data": dict(data or {})}))

    def read_configmap(self, namespace: str, name: str) -> Timed:
        self._call("read_configmap", namespace, name)
        obj = self.get_object("v1", "ConfigMap", name, namespace)
        if obj is None:
            raise KubernetesApiError(f"Kubernetes API read ConfigMap {namespace}/{name} at {self.host}: "
                                     f"it does not exist", operation="read", url=self.host, status=404)
        return Timed("read", 0.0, obj)

    def delete_configmap(self, namespace: str, name: str) -> Timed:
        self._call("delete_configmap", namespace, name)
        return Timed("delete", 0.0, self.delete_object("v1", "ConfigMap", name, namespace, missing_ok=False))

    def write_probe(self, namespace: str = "incident-bot-probe", name: str | None = None,
                    *, ensure_namespace: bool = True) -> WriteProbeResult:
        self._call("write_probe", namespace)
        name = name or f"probe-{uuid.uuid4().hex[:10]}"
        steps = [self.ensure_namespace(namespace)] if ensure_namespace else []
        steps.append(self.create_configmap(namespace, name, {"written-at": str(time.time())}))
        steps.append(self.read_configmap(namespace, name))
        steps.append(self.delete_configmap(namespace, name))
        return WriteProbeResult(namespace, name, tuple(steps))

    def close(self) -> None:
        pass
