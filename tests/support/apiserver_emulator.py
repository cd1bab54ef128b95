"""kmock's Kubernetes emulator with what the stand-in adds: namespaces, APF headers and status, uids."""

from __future__ import annotations

import asyncio
import copy
import datetime as _dt
import re
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import aiohttp.web
import kmock

from tests.support.apiserver_apf import FLOWCONTROL_GROUP

if TYPE_CHECKING:
    from tests.support.apiserver import ApiServerStandIn

_NAMESPACE_PATH = re.compile(r"^/api/v1/namespaces(/[^/]+(/status|/finalize)?)?$")
# --------------------------------------------------------------------------
# The emulator subclass


def _status(code: int, reason: str, message: str, details: dict | None = None) -> aiohttp.web.Response:
    return aiohttp.web.json_response({
        "apiVersion": "v1", "kind": "Status", "metadata": {}, "status": "Failure",
        "code": code, "reason": reason, "message": message, "details": details or {},
    }, status=code)


def _now_str() -> str:
    return _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class _Emulator(kmock.KubernetesEmulator):
    """kmock's emulator plus the apiserver behaviour the bot relies on."""

    standin: "ApiServerStandIn"

    # ---- entry point: non-kmock paths first, then kmock, then PF headers
    async def __call__(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse:
        s = self.standin
        if s.delay and not raw.path.startswith(("/readyz", "/livez", "/healthz")):
            await asyncio.sleep(s.delay)
        user, groups = s._identify(raw.headers)
        attrs = s._request_attributes(raw.method, raw.path, dict(raw.query), user, groups)
        fs, pl = s._classify(attrs)
        s.request_log.append(RequestRecord(raw.method, raw.path_qs, user, tuple(groups),
                                           fs.get("metadata", {}).get("name") if fs else None))
        response = await self._serve_special(raw)
        if response is None:
            response = await super().__call__(raw)
        if not response.prepared:
            if fs is not None:
                response.headers["X-Kubernetes-PF-FlowSchema-UID"] = fs["metadata"].get("uid", "")
            if pl is not None:
                response.headers["X-Kubernetes-PF-PriorityLevel-UID"] = pl["metadata"].get("uid", "")
        return response

    async def _serve_special(self, raw: aiohttp.web.BaseRequest) -> aiohttp.web.StreamResponse | None:
        s = self.standin
        path = raw.path.rstrip("/") or "/"
        for probe in ("/readyz", "/livez", "/healthz"):
            if path == probe or path.startswith(probe + "/"):
                if raw.method != "GET":
                    return _status(405, "MethodNotAllowed", "method not allowed")
                if s.healthy:
                    body = "ok" if "verbose" not in raw.query else f"[+]ping ok\n[+]etcd ok\n{probe[1:]} check passed\n"
                    return aiohttp.web.Response(text=body, content_type="text/plain")
                body = f"[+]ping ok\n[-]etcd failed: reason withheld\n{probe[1:]} check failed\n"
                return aiohttp.web.Response(text=body, status=500, content_type="text/plain")
        if path == "/metrics" and raw.method == "GET":
            return aiohttp.web.Response(text=s.render_metrics(), content_type="text/plain",
                                        charset="utf-8")
        if path == "/debug/api_priority_and_fairness/dump_requests" and raw.method == "GET":
            details = bool(raw.query.get("includeRequestDetails"))
            return aiohttp.web.Response(text=s.render_dump_requests(details), content_type="text/plain")
        if path == "/version" and raw.method == "GET":
            return aiohttp.web.json_response(s.version_info())
        if _NAMESPACE_PATH.match(path):
            return await self._serve_namespaces(raw, path)
        return None

    async def _serve_namespaces(self, raw: aiohttp.web.BaseRequest, path: str) -> aiohttp.web.StreamResponse:
        s = self.standin
        parts = path.split("/")  # ['', 'api', 'v1', 'namespaces', name?, 'status'?]
        name = parts[4] if len(parts) > 4 else None
        if name is None:
            if raw.method == "GET":
                return aiohttp.web.json_response({
                    "apiVersion": "v1", "kind": "NamespaceList", "metadata": {"resourceVersion": "1"},
                    "items": [copy.deepcopy(ns) for ns in s.namespaces.values()]})
            if raw.method == "POST":
                try:
                    body = await raw.json()
                except ValueError:
                    return _status(400, "BadRequest", "the body of the request was not valid JSON")
                ns_name = ((body or {}).get("metadata") or {}).get("name")
                if not ns_name:
                    return _status(422, "Invalid", "Namespace \"\" is invalid: metadata.name: Required value")
                if ns_name in s.namespaces:
                    return _status(409, "AlreadyExists", f'namespaces "{ns_name}" already exists',
                                   {"name": ns_name, "kind": "namespaces"})
                obj = s._decorate({"apiVersion": "v1", "kind": "Namespace", **body})
                obj["status"] = {"phase": "Active"}
                if "dryRun" not in raw.query:
                    s.namespaces[ns_name] = obj
                return aiohttp.web.json_response(obj, status=201)
            return _status(405, "MethodNotAllowed", "method not allowed")
        if name not in s.namespaces:
            return _status(404, "NotFound", f'namespaces "{name}" not found', {"name": name, "kind": "namespaces"})
        if raw.method == "GET":
            return aiohttp.web.json_response(s.namespaces[name])
        if raw.method == "DELETE":
            obj = s.namespaces.pop(name)
            # The real apiserver terminates the namespace asynchronously; here it is immediate.
            for key in [k for k in list(self.objects) if k[1] == name]:
                del self.objects[key]
            return aiohttp.web.json_response(obj)
        return _status(405, "MethodNotAllowed", "method not allowed")

    # ---- kmock hooks
    async def _handle(self, request: kmock.Request) -> aiohttp.web.StreamResponse:
        s = self.standin
        res = request.resource
        if res is not None and res.plural:
            info = s._resource_info(res.group, res.version, res.plural)
            if info is None:
                return _status(404, "NotFound", "the server could not find the requested resource")
            kind, namespaced = info
            if request.action is None and request.method.value not in ("GET",):
                return _status(405, "MethodNotAllowed", f"{request.method.value} is not served by this stand-in")
            if request.action == kmock.action.CREATE:
                data = request.data if isinstance(request.data, dict) else None
                if data is None:
                    return _status(400, "BadRequest", "the body of the request was not valid JSON")
                name = (data.get("metadata") or {}).get("name")
                if not name:
                    return _status(422, "Invalid", f"{kind} is invalid: metadata.name: Required value")
                if namespaced:
                    ns = request.namespace or (data.get("metadata") or {}).get("namespace")
                    if not ns:
                        return _status(400, "BadRequest", "a namespace is required")
                    if ns not in s.namespaces:
                        return _status(404, "NotFound", f'namespaces "{ns}" not found',
                                       {"name": ns, "kind": "namespaces"})
                    data.setdefault("metadata", {})["namespace"] = ns
                key = (res, request.namespace if namespaced else None, name)
                if key in self.objects and not self.objects[key].deleted:
                    return _status(409, "AlreadyExists", f'{res.plural}.{res.group or "core"} "{name}" already exists'
                                   .replace(".core", ""), {"name": name, "group": res.group, "kind": res.plural})
                data.setdefault("apiVersion", f"{res.group}/{res.version}" if res.group else res.version)
                data.setdefault("kind", kind)
                s._decorate(data)
                if "dryRun" in request.params:
                    return aiohttp.web.json_response(self._present(res, data), status=201)
                response = await super()._handle(request)
                if response.status == 200:
                    response.set_status(201)
                return response
        return await super()._handle(request)

    def _present(self, res: Any, obj: dict) -> dict:
        obj = copy.deepcopy(obj)
        if res.group == FLOWCONTROL_GROUP and res.plural == "flowschemas":
            self.standin._add_flow_schema_status(obj)
        return obj

    async def _serve_fetch(self, request: kmock.Request) -> Any:
        obj = await super()._serve_fetch(request)
        return self._present(request.resource, obj)

    async def _serve_list(self, request: kmock.Request) -> Any:
        result = await super()._serve_list(request)
        res = request.resource
        info = self.standin._resource_info(res.group, res.version, res.plural)
        kind = info[0] if info else ""
        return {
            "apiVersion": f"{res.group}/{res.version}" if res.group else res.version,
            "kind": f"{kind}List",
            "metadata": {"resourceVersion": "1"},
            "items": [self._present(res, o) for o in result["items"]],
        }


async def _close_server(server: Any) -> None:
    """Stop listening for sure.

    kmock's exit first unwinds its process-wide aiohttp resolver interceptor;
    when several stand-ins stop in another order than they started (the
    sandbox stops the main apiserver while the bypass runs), that raises
    "resolver chain is inconsistent" before the HTTP server is closed, and the
    port would keep accepting connections nobody answers.  Close the client
    and the server ourselves in that case.
    """
    try:
        await server.__aexit__(None, None, None)
    except RuntimeError:
        await server.client.close()
        await server.server.close()


@dataclass(frozen=True)
class RequestRecord:
    method: str
    path: str
    user: str
    groups: tuple[str, ...]
    flow_schema: str | None
