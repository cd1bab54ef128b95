"""The throttle's two objects, and the checks the schema validator does not make.

``kubernetes-validate`` checks a manifest against the OpenAPI schema of the
cluster's version but not the server-side rules (research A.7/A.8):
precedence in [1, 10000] (and > 2 here, so ``exempt`` and ``probes`` keep
winning), distinguisher ByUser/ByNamespace, handSize <= queues, a positive
queue length, NCS >= 1 on v1beta3 (0 there meant "default 30"), no queuing
with Reject, percentages in 0..100.  ``semantic_problems`` checks those.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

from playbooks.library.apf_subjects import Subject, refuse

MANAGED_BY = {"app.kubernetes.io/managed-by": "incident-bot"}
MIN_PRECEDENCE = 3  # 1 = exempt (system:masters), 2 = probes: never outrank them
MAX_PRECEDENCE = 10000


def object_name(subject: Subject) -> str:
    slug = re.sub(r"[^a-z0-9]+", "-", str(subject).lower()).strip("-")[:40].strip("-")
    digest = hashlib.sha256(str(subject).encode()).hexdigest()[:6]
    return f"incident-bot-throttle-{slug}-{digest}"


def priority_level(name: str, *, api_version: str, shares: int, limit: str, queue_length: int,
                   annotations: dict[str, str]) -> dict[str, Any]:
    response: dict[str, Any] = {"type": "Reject"} if limit == "reject" else {
        "type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": queue_length}}
    return {
        "apiVersion": api_version, "kind": "PriorityLevelConfiguration",
        "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": dict(annotations)},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": shares, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": response}},
    }


def flow_schema(name: str, *, api_version: str, subject: Subject, precedence: int, verbs: list[str],
                api_groups: list[str], resources: list[str], annotations: dict[str, str]) -> dict[str, Any]:
    return {
        "apiVersion": api_version, "kind": "FlowSchema",
        "metadata": {"name": name, "labels": dict(MANAGED_BY), "annotations": dict(annotations)},
        "spec": {
            "priorityLevelConfiguration": {"name": name},
            "matchingPrecedence": precedence,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [subject.manifest()],
                "resourceRules": [{"verbs": list(verbs), "apiGroups": list(api_groups),
                                   "resources": list(resources), "clusterScope": True, "namespaces": ["*"]}],
            }],
        },
    }


def semantic_problems(manifest: dict[str, Any]) -> list[tuple[str, str]]:
    """(field path, what is wrong) for every server-side rule the schema check misses."""
    problems: list[tuple[str, str]] = []
    version = str(manifest.get("apiVersion", "")).rpartition("/")[2]
    spec = manifest.get("spec") or {}
    if manifest.get("kind") == "FlowSchema":
        prec = spec.get("matchingPrecedence")
        if not isinstance(prec, int) or not MIN_PRECEDENCE <= prec <= MAX_PRECEDENCE:
            problems.append(("spec.matchingPrecedence",
                             f"must be {MIN_PRECEDENCE}..{MAX_PRECEDENCE} (1 and 2 belong to exempt and probes), "
                             f"not {prec}"))
        method = (spec.get("distinguisherMethod") or {}).get("type")
        if method is not None and method not in ("ByUser", "ByNamespace"):
            problems.append(("spec.distinguisherMethod.type", f"must be ByUser or ByNamespace, not {method}"))
        if not (spec.get("priorityLevelConfiguration") or {}).get("name"):
            problems.append(("spec.priorityLevelConfiguration.name", "is required"))
        for i, rule in enumerate(spec.get("rules") or []):
            for j, s in enumerate(rule.get("subjects") or []):
                kind = s.get("kind")
                try:
                    if kind == "ServiceAccount":
                        sa = s.get("serviceAccount") or {}
                        refuse(Subject("ServiceAccount", sa.get("name", ""), sa.get("namespace", "")))
                    elif kind in ("User", "Group"):
                        refuse(Subject(kind, (s.get(kind.lower()) or {}).get("name", "")))
                    else:
                        problems.append((f"spec.rules[{i}].subjects[{j}].kind", f"unknown subject kind {kind}"))
                except ValueError as exc:
                    problems.append((f"spec.rules[{i}].subjects[{j}]", str(exc)))
            for j, rr in enumerate(rule.get("resourceRules") or []):
                for key in ("verbs", "apiGroups", "resources", "namespaces"):
                    values = rr.get(key) or []
                    if "*" in values and len(values) > 1:
                        problems.append((f"spec.rules[{i}].resourceRules[{j}].{key}", "`*` must be the only entry"))
    elif manifest.get("kind") == "PriorityLevelConfiguration" and spec.get("type") == "Limited":
        limited = spec.get("limited") or {}
        ncs = limited.get("nominalConcurrencyShares")
        low = 1 if version == "v1beta3" else 0
        if ncs is not None and (not isinstance(ncs, int) or ncs < low):
            problems.append(("spec.limited.nominalConcurrencyShares",
                             f"must be at least {low} in {version}" + (" (0 means the default, 30)" if low else "")))
        for key in ("lendablePercent", "borrowingLimitPercent"):
            value = limited.get(key)
            if value is not None and not 0 <= value <= 100:
                problems.append((f"spec.limited.{key}", f"must be 0..100, not {value}"))
        response = limited.get("limitResponse") or {}
        if response.get("type") == "Reject" and response.get("queuing"):
            problems.append(("spec.limited.limitResponse.queuing", "must be empty when the type is Reject"))
        if response.get("type") == "Queue":
            q = response.get("queuing") or {}
            queues, hand, length = q.get("queues", 64), q.get("handSize", 8), q.get("queueLengthLimit", 50)
            if queues < 1:
                problems.append(("spec.limited.limitResponse.queuing.queues", "must be at least 1"))
            if hand < 1 or hand > queues:
                problems.append(("spec.limited.limitResponse.queuing.handSize", f"must be 1..queues ({queues})"))
            if length < 1:
                problems.append(("spec.limited.limitResponse.queuing.queueLengthLimit", "must be at least 1"))
    return problems


def validate(manifest: dict[str, Any], kubernetes_version: str) -> str:
    """Schema (kubernetes-validate for that version) then semantics; BadInput naming the field."""
    from bot.core.errors import BadInput
    from integrations.clients.kubernetes import validate_manifest

    used = validate_manifest(manifest, kubernetes_version)
    problems = semantic_problems(manifest)
    if problems:
        path, what = problems[0]
        name = (manifest.get("metadata") or {}).get("name", "?")
        raise BadInput(f"{manifest.get('kind')} {name}: {path} {what}", field=path)
    return used
