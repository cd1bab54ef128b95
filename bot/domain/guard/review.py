"""Reading an ``admission.k8s.io/v1`` AdmissionReview and writing its answer.

The kube-apiserver POSTs one review per write it admits. Everything the guard decides on is
checked here first, so a malformed review is answered 400 with the field that is wrong
(``request.operation: expected one of CREATE, UPDATE, DELETE, CONNECT``) and never reaches the
decision, the counters or the timeline.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from bot.core.errors import BadInput

API_VERSION = "admission.k8s.io/v1"
OPERATIONS = ("CREATE", "UPDATE", "DELETE", "CONNECT")
MAX_BODY = 3 * 1024 * 1024  # the apiserver's own request limit; a review is at most one object twice


@dataclass(frozen=True)
class AdmissionRequest:
    """The parts of ``request`` the guard decides on."""

    uid: str
    operation: str
    group: str
    resource: str
    namespace: str
    name: str
    user: str
    groups: tuple[str, ...]
    dry_run: bool = False

    @property
    def resource_key(self) -> str:
        """``resource`` for the core group, else ``group/resource`` (the form of the risk list)."""
        return f"{self.group}/{self.resource}" if self.group else self.resource

    def describe(self) -> str:
        where = f"{self.namespace}/" if self.namespace else ""
        return f"{self.operation} {self.resource_key} {where}{self.name or '(collection)'}"


def _fail(path: str, expected: str) -> BadInput:
    return BadInput(f"malformed AdmissionReview: {path}: expected {expected}.", field=path)


def _text(obj: dict[str, Any], key: str, path: str, *, required: bool = True) -> str:
    value = obj.get(key)
    if value is None and not required:
        return ""
    if not isinstance(value, str) or (required and not value):
        raise _fail(f"{path}.{key}", "a non-empty string" if required else "a string")
    return value


def parse_review(body: bytes) -> AdmissionRequest:
    """The request of one AdmissionReview, or ``BadInput`` naming the field that is wrong."""
    if len(body) > MAX_BODY:
        raise _fail("(body)", f"at most {MAX_BODY} bytes")
    try:
        doc = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        raise _fail("(body)", "a JSON AdmissionReview") from None
    except RecursionError:
        raise _fail("(body)", "JSON nested less deeply") from None
    if not isinstance(doc, dict):
        raise _fail("(body)", "a JSON object")
    if doc.get("apiVersion") != API_VERSION or doc.get("kind") != "AdmissionReview":
        raise _fail("apiVersion/kind", f"{API_VERSION} AdmissionReview")
    request = doc.get("request")
    if not isinstance(request, dict):
        raise _fail("request", "an object")
    operation = _text(request, "operation", "request")
    if operation not in OPERATIONS:
        raise _fail("request.operation", f"one of {', '.join(OPERATIONS)}")
    resource = request.get("resource")
    if not isinstance(resource, dict):
        raise _fail("request.resource", "an object with group, version and resource")
    user_info = request.get("userInfo")
    if not isinstance(user_info, dict):
        raise _fail("request.userInfo", "an object with username")
    groups = user_info.get("groups") or []
    if not isinstance(groups, list) or not all(isinstance(g, str) for g in groups):
        raise _fail("request.userInfo.groups", "a list of strings")
    dry_run = request.get("dryRun", False)
    if not isinstance(dry_run, bool):
        raise _fail("request.dryRun", "true or false")
    return AdmissionRequest(
        uid=_text(request, "uid", "request"), operation=operation,
        group=_text(resource, "group", "request.resource", required=False),
        resource=_text(resource, "resource", "request.resource"),
        namespace=_text(request, "namespace", "request", required=False),
        name=_text(request, "name", "request", required=False),
        user=_text(user_info, "username", "request.userInfo"), groups=tuple(groups), dry_run=dry_run,
    )


def answer(uid: str, allowed: bool, message: str = "", *, warning: str = "") -> dict[str, Any]:
    """The AdmissionReview the apiserver expects back (a denial carries 403 and the message)."""
    response: dict[str, Any] = {"uid": uid, "allowed": allowed}
    if not allowed:
        response["status"] = {"code": 403, "reason": "Forbidden", "message": message}
    if warning:
        response["warnings"] = [warning[:200]]
    return {"apiVersion": API_VERSION, "kind": "AdmissionReview", "response": response}
