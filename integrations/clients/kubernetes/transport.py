"""One request to an apiserver, and what can go wrong with it: the transport under every Kubernetes call.

Requests go through ``ApiClient.param_serialize`` + ``ApiClient.call_api`` (the generic path
under the typed APIs) so that one code path serves every group and version, returns plain
dicts and exposes response headers (``X-Kubernetes-PF-FlowSchema-UID``).  Every call has a
timeout; every failure is a ``KubernetesApiError`` (or ``KubernetesTimeout``) whose sentence
names the operation and the URL, so the on-call reads what failed where.  Impersonation is
done here too, because it is a header on every request.
"""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from typing import Any, Mapping, Self, Sequence
from urllib.parse import urlencode

import kubernetes.client
import urllib3

from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout


class KubernetesApiError(IntegrationError):
    """The apiserver answered with an error, or could not be reached."""

    def __init__(self, message: str, *, operation: str, url: str, status: int | None = None,
                 reason: str | None = None) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.status = status
        self.reason = reason
        self.elapsed: float | None = None


class KubernetesTimeout(IntegrationTimeout):
    """The apiserver did not answer in time (a timeout is a verdict of its own for probes and checks)."""

    def __init__(self, message: str, *, operation: str, url: str) -> None:
        super().__init__(message)
        self.operation = operation
        self.url = url
        self.elapsed: float | None = None


@dataclass(frozen=True)
class HttpResult:
    status: int
    text: str
    headers: Mapping[str, str]

    def json(self) -> Any:
        return json.loads(self.text)


@dataclass(frozen=True)
class Health:
    """``/readyz`` or ``/livez``: ``ok`` is the status code verdict (what machines may use)."""

    endpoint: str
    ok: bool
    status: int
    body: str
    seconds: float


def _status_message(body: str) -> tuple[str | None, str | None]:
    try:
        data = json.loads(body)
    except (ValueError, TypeError):
        return None, (body or "").strip()[:200] or None
    if isinstance(data, dict):
        return data.get("reason"), data.get("message")
    return None, None


def _explicit_groups(user: str, groups: Sequence[str]) -> list[str]:
    """The groups to impersonate explicitly.

    A ServiceAccount's groups (``system:serviceaccounts``, ``system:serviceaccounts:<ns>``,
    ``system:authenticated``) come with its user name: the apiserver adds them itself when no
    group is named, and the caller then needs only ``impersonate`` on that ServiceAccount, not
    on groups (least privilege: impersonating groups would let one claim ``system:masters``).
    """
    parts = user.split(":")
    if len(parts) == 4 and parts[:2] == ["system", "serviceaccount"]:
        implied = {"system:serviceaccounts", f"system:serviceaccounts:{parts[2]}", "system:authenticated"}
        return [g for g in groups if g not in implied]
    return list(groups)


def api_client_for(cfg: kubernetes.client.Configuration) -> kubernetes.client.ApiClient:
    """An ApiClient that fails fast: no urllib3 retries hiding an apiserver that is down (the caller decides)."""
    cfg.retries = False
    return kubernetes.client.ApiClient(cfg)


class ApiTransport:
    """One apiserver (or load balancer) reached through one identity: requests, health, version."""

    def __init__(self, api_client: kubernetes.client.ApiClient, *, timeout: float = 5.0) -> None:
        self.api_client = api_client
        self.timeout = timeout
        self._imp: tuple[str, tuple[str, ...]] | None = None

    @classmethod
    def from_host(cls, host: str, token: str | None = None, *, verify_ssl: bool = True,
                  ca_cert: str | None = None, timeout: float = 5.0,
                  tls_server_name: str | None = None) -> Self:
        if not host or not re.match(r"^https?://", host):
            raise ConfigError(f"Kubernetes host must be an http(s) URL, got {host!r}")
        cfg = kubernetes.client.Configuration()
        cfg.host = host.rstrip("/")
        if token:
            cfg.api_key = {"authorization": f"Bearer {token}"}
        cfg.verify_ssl = verify_ssl
        if ca_cert:
            cfg.ssl_ca_cert = ca_cert
        if tls_server_name:
            cfg.tls_server_name = tls_server_name
        return cls(api_client_for(cfg), timeout=timeout)

    @property
    def host(self) -> str:
        return self.api_client.configuration.host

    def close(self) -> None:
        try:
            self.api_client.close()
        except Exception:  # pragma: no cover - best effort
            pass

    def request(self, method: str, path: str, *, operation: str, query: Mapping[str, Any] | None = None,
                body: Any = None, headers: Mapping[str, str] | None = None,
                accept: str = "application/json", ok: Sequence[int] = (),
                timeout: float | None = None) -> HttpResult:
        """One HTTP request; non-2xx raises unless its status is in ``ok``."""
        timeout = self.timeout if timeout is None else timeout
        header_params = {"Accept": accept}
        if body is not None:
            header_params["Content-Type"] = "application/json"
        header_params.update(headers or {})
        imp = self._imp
        url = self.host + path + ("?" + urlencode(query, doseq=True) if query else "")
        try:
            method_, full_url, hdrs, body_, post = self.api_client.param_serialize(
                method=method, resource_path=path, query_params=list((query or {}).items()) or None,
                header_params=header_params, body=body, auth_settings=["BearerToken"])
            sent: Mapping[str, str] = hdrs
            if imp:
                # One Impersonate-Group header line per group (the apiserver does not split commas).
                multi = urllib3.HTTPHeaderDict(hdrs)
                multi["Impersonate-User"] = imp[0]
                for group in _explicit_groups(imp[0], imp[1]):
                    multi.add("Impersonate-Group", group)
                sent = multi
            url = full_url
            response = self.api_client.call_api(method_, full_url, header_params=sent, body=body_,
                                                 post_params=post, _request_timeout=timeout)
            response.read()
        except kubernetes.client.ApiException as e:  # SSL problems and similar
            raise KubernetesApiError(
                f"Kubernetes API {operation} failed at {url}: {e.reason or e}",
                operation=operation, url=url, status=e.status or None) from e
        except urllib3.exceptions.HTTPError as e:
            cause = getattr(e, "reason", None) or e
            refused = isinstance(cause, urllib3.exceptions.NewConnectionError) or isinstance(
                e, urllib3.exceptions.NewConnectionError)  # (a ConnectTimeoutError subclass in urllib3)
            if not refused and (isinstance(cause, urllib3.exceptions.TimeoutError)
                                or isinstance(e, urllib3.exceptions.TimeoutError)):
                raise KubernetesTimeout(
                    f"Kubernetes API {operation} timed out after {timeout:g}s at {url}",
                    operation=operation, url=url) from e
            raise KubernetesApiError(
                f"Kubernetes API {operation} failed: cannot reach {url} ({type(cause).__name__}: {cause})",
                operation=operation, url=url) from e
        except OSError as e:
            raise KubernetesApiError(f"Kubernetes API {operation} failed: cannot reach {url} ({e})",
                                     operation=operation, url=url) from e
        text = (response.read() or b"").decode("utf-8", errors="replace")  # read(): the typed accessor of data
        # case-insensitive: Go canonicalises header names (X-Kubernetes-Pf-Flowschema-Uid)
        result = HttpResult(response.status, text, urllib3.HTTPHeaderDict(response.headers or {}))
        if 200 <= response.status < 300 or response.status in ok:
            return result
        reason, message = _status_message(text)
        raise KubernetesApiError(
            f"Kubernetes API {operation} failed at {url}: HTTP {response.status}"
            + (f" {reason}" if reason else "") + (f": {message}" if message else ""),
            operation=operation, url=url, status=response.status, reason=reason)

    def _json(self, method: str, path: str, *, operation: str, **kw: Any) -> Any:
        result = self.request(method, path, operation=operation, **kw)
        try:
            return result.json()
        except ValueError as e:
            raise KubernetesApiError(
                f"Kubernetes API {operation} at {self.host}{path} answered something that is not JSON: "
                f"{result.text[:120]!r}", operation=operation, url=self.host + path,
                status=result.status) from e

    def server_version(self) -> dict:
        """``/version``: ``gitVersion``, ``major``, ``minor`` ..."""
        return self._json("GET", "/version", operation="read the server version")

    def server_minor_version(self) -> str:
        """``"1.30"`` style version, for schema validation."""
        v = self.server_version()
        major = re.sub(r"\D", "", str(v.get("major", ""))) or "1"
        minor = re.sub(r"\D", "", str(v.get("minor", "")))
        if not minor:
            m = re.match(r"v?(\d+)\.(\d+)", str(v.get("gitVersion", "")))
            major, minor = (m.group(1), m.group(2)) if m else (major, "0")
        return f"{major}.{minor}"

    def raw_get(self, path: str, *, query: Mapping[str, Any] | None = None, accept: str = "*/*",
                operation: str | None = None) -> str:
        """GET a path (``/metrics``, ``/readyz``, debug endpoints) and return the body text."""
        return self.request("GET", path, query=query, accept=accept,
                            operation=operation or f"GET {path}").text

    def health(self, endpoint: str = "readyz", *, verbose: bool = False) -> Health:
        """``/readyz`` or ``/livez``; a 5xx is an answer (``ok=False``), not an error."""
        path = "/" + endpoint.strip("/")
        start = time.monotonic()
        result = self.request("GET", path, query={"verbose": "1"} if verbose else None, accept="*/*",
                              operation=f"check {path}", ok=tuple(range(400, 600)))
        return Health(path, result.status == 200, result.status, result.text, time.monotonic() - start)

    def impersonating(self, user: str, groups: Sequence[str] = ()) -> Self:
        """A client whose requests carry ``Impersonate-User``/``Impersonate-Group``."""
        other = type(self)(api_client_for(self.api_client.configuration), timeout=self.timeout)
        other._imp = (user, tuple(groups))
        return other
