"""The bad-webhook drill: an admission webhook with ``failurePolicy: Fail`` whose backend is down.

A very common change-induced outage: someone installs (or upgrades) a policy
engine's ``ValidatingWebhookConfiguration``, its backend never comes up, and
because the policy is ``Fail`` the apiserver refuses every write the webhook's
rules match ("failed calling webhook ...: connection refused").  Here the
webhook points at a loopback port nobody listens on, with the sandbox CA as
its ``caBundle`` (so the failure is the refused connection, not TLS), and
matches ConfigMap writes in every namespace but the control plane's own.

The bot must see the write probe fail, conclude from the change (the
configuration created just before T0) and the apiserver's error message, and
run ``disable-webhook``; ``verify`` then writes a ConfigMap through the real
apiservers, and ``finish`` removes the webhook configuration.
"""

from __future__ import annotations

import base64
import socket
import uuid
from pathlib import Path
from typing import Any

from bot.compose.sandbox.controlplane import ControlPlane
from bot.compose.sandbox.scenario import VerificationFailed

API_VERSION = "admissionregistration.k8s.io/v1"
KIND = "ValidatingWebhookConfiguration"
SPARED_NAMESPACES = ["kube-system", "kube-node-lease", "kube-public"]


class WebhookStillBlocks(Exception):
    """The injected webhook did not block writes (the fault is not in place)."""


def closed_loopback_port() -> int:
    """A loopback port nobody listens on (bound, read, released): calls to it are refused at once."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def failing_webhook(name: str, *, ca_file: Path, port: int | None = None,
                    namespaces: list[str] | None = None) -> dict[str, Any]:
    """A ValidatingWebhookConfiguration whose backend is down and whose policy is Fail.

    ``namespaces``: only these (by ``kubernetes.io/metadata.name``); default every namespace but
    the control plane's own.
    """
    selector = ({"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "In", "values": namespaces}]}
                if namespaces else
                {"matchExpressions": [{"key": "kubernetes.io/metadata.name", "operator": "NotIn",
                                       "values": SPARED_NAMESPACES}]})
    return {
        "apiVersion": API_VERSION, "kind": KIND,
        "metadata": {"name": name, "labels": {"app.kubernetes.io/part-of": "policy-engine"}},
        "webhooks": [{
            "name": f"validate.{name}.policy.example.com",
            "clientConfig": {"url": f"https://127.0.0.1:{port or closed_loopback_port()}/validate",
                             "caBundle": base64.b64encode(ca_file.read_bytes()).decode()},
            "rules": [{"operations": ["CREATE", "UPDATE"], "apiGroups": [""], "apiVersions": ["v1"],
                       "resources": ["configmaps"], "scope": "Namespaced"}],
            "namespaceSelector": selector,
            "failurePolicy": "Fail",
            "sideEffects": "None",
            "admissionReviewVersions": ["v1"],
            "timeoutSeconds": 2,
        }],
    }


def policies(obj: dict[str, Any] | None) -> dict[str, str]:
    return {w["name"]: w.get("failurePolicy", "Fail") for w in (obj or {}).get("webhooks") or []}


def write_configmap(admin: Any, namespace: str = "default") -> str:
    """Create and delete a ConfigMap as the admin; the apiserver's refusal raises."""
    name = f"drill-write-{uuid.uuid4().hex[:8]}"
    admin.create_object({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": name, "namespace": namespace},
                         "data": {"k": "v"}})
    admin.delete_object("v1", "ConfigMap", name, namespace)
    return name


# -- the scenario's parts ------------------------------------------------------------------


def inject(plane: ControlPlane) -> dict[str, Any]:
    assert plane.pki is not None
    name = f"policy-engine-{uuid.uuid4().hex[:6]}"
    admin = plane.admin()
    try:
        admin.create_object(failing_webhook(name, ca_file=plane.pki.ca_cert))
        try:
            write_configmap(admin)
        except Exception as exc:  # the fault is in place: writes are refused
            refused = str(exc)[:300]
        else:
            raise WebhookStillBlocks(f"{KIND} {name} was created but writes still succeed")
    finally:
        admin.close()
    return {"configuration": name, "webhook": f"validate.{name}.policy.example.com", "refused": refused}


def verify(plane: ControlPlane, facts: dict[str, Any]) -> str:

    admin = plane.admin()
    try:
        obj = admin.get_object(API_VERSION, KIND, facts["configuration"])
        try:
            written = write_configmap(admin)
        except Exception as exc:
            raise VerificationFailed(f"writes still fail through the kube-apiservers: {str(exc)[:200]}") from exc
    finally:
        admin.close()
    return (f"writes succeed again through the kube-apiservers (ConfigMap default/{written} created and deleted); "
            f"{KIND} {facts['configuration']}: failurePolicy {policies(obj).get(facts['webhook'], 'gone')}")


def finish(plane: ControlPlane, facts: dict[str, Any]) -> None:
    """Take the broken configuration away (the policy engine's owners would fix its backend)."""
    admin = plane.admin()
    try:
        admin.delete_object(API_VERSION, KIND, facts["configuration"])
    finally:
        admin.close()
