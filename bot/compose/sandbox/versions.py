"""Which real components a drill ran, with their versions, as the components themselves report them.

The scorecard lists them so that a reader knows the verdict came from a real kube-apiserver,
etcd, HAProxy, Prometheus and Alertmanager, and which releases; a version is asked of the
running process (its ``/version`` endpoint) where it has one, else of the binary.
"""

from __future__ import annotations

import re
import subprocess
from collections.abc import Mapping
from typing import Any, Protocol

import httpx

from bot.compose.sandbox.processes import ALERTMANAGER_BIN, HAPROXY_BIN, PROMETHEUS_BIN



class Plane(Protocol):
    """What the scorecard reads of a sandbox (``bot.compose.sandbox.controlplane.ControlPlane``), named here so that
    this module need not import the control plane that asks it."""

    @property
    def apiservers(self) -> Mapping[str, Any]: ...

    @property
    def etcd(self) -> Any: ...

    @property
    def customers(self) -> Any: ...

    @property
    def options(self) -> Any: ...


def _binary_version(args: list[str], pattern: str) -> str:
    try:
        out = subprocess.run(args, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return "unknown"
    found = re.search(pattern, out.stdout + out.stderr)
    return found.group(1) if found else "unknown"


def _etcd_version(url: str) -> str:
    try:
        return str(httpx.get(url.rstrip("/") + "/version", timeout=2, trust_env=False).json().get("etcdserver"))
    except (httpx.HTTPError, ValueError):
        return "unknown"


def component_versions(plane: Plane) -> list[dict[str, str]]:
    out: list[dict[str, str]] = []
    for name, server in plane.apiservers.items():
        try:
            version = server.version()
        except (httpx.HTTPError, ValueError):
            version = "unknown (not running)"
        out.append({"component": "kube-apiserver", "name": name, "version": version})
    if plane.etcd is not None:
        for member in plane.etcd.members:
            out.append({"component": "etcd", "name": member.name, "version": _etcd_version(member.client_url)})
    if plane.customers is not None:  # the customer cluster: scheduler, controller-manager, kwok nodes
        from bot.core import binaries

        for binary in ("kube-scheduler", "kube-controller-manager"):
            out.append({"component": binary, "name": binary,
                        "version": _binary_version([binaries.require(binary), "--version"], r"Kubernetes (\S+)")})
        out.append({"component": "kwok", "name": f"{plane.options.customer.nodes} hollow nodes",
                    "version": _binary_version([binaries.require("kwok"), "--version"], r"kwok version (\S+)")})
    out.append({"component": "haproxy", "name": "load balancer",
                "version": _binary_version([HAPROXY_BIN, "-v"], r"version (\S+)")})
    out.append({"component": "prometheus", "name": "prometheus",
                "version": _binary_version([PROMETHEUS_BIN, "--version"], r"version (\S+)")})
    out.append({"component": "alertmanager", "name": "alertmanager",
                "version": _binary_version([ALERTMANAGER_BIN, "--version"], r"version (\S+)")})
    return out
