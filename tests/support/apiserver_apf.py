"""The APF objects a real apiserver creates at start, for the stand-in (``tests/support/apiserver.py``)."""

from __future__ import annotations

from typing import Any

FLOWCONTROL_GROUP = "flowcontrol.apiserver.k8s.io"
SERVER_CONCURRENCY_LIMIT = 600  # --max-requests-inflight 400 + --max-mutating-requests-inflight 200

# --------------------------------------------------------------------------
# Bootstrap APF configuration (k8s.io/apiserver .../flowcontrol/bootstrap/default.go, abridged)


def _plc(name: str, ncs: int, lendable: int, limit: dict | None, exempt: bool = False) -> dict:
    if exempt:
        spec = {"type": "Exempt", "exempt": {"nominalConcurrencyShares": 0, "lendablePercent": 0}}
    else:
        spec = {"type": "Limited", "limited": {
            "nominalConcurrencyShares": ncs, "lendablePercent": lendable, "limitResponse": limit}}
    return {"metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
            "spec": spec}


def _queue(queues: int, hand: int, length: int) -> dict:
    return {"type": "Queue", "queuing": {"queues": queues, "handSize": hand, "queueLengthLimit": length}}


_ALL_RESOURCES = {"verbs": ["*"], "apiGroups": ["*"], "resources": ["*"], "clusterScope": True,
                  "namespaces": ["*"]}
_ALL_NON_RESOURCES = {"verbs": ["*"], "nonResourceURLs": ["*"]}


def _fs(name: str, prec: int, pl: str, subjects: list, *, by: str | None = "ByUser",
        resource_rules: list | None = None, non_resource_rules: list | None = None) -> dict:
    rule: dict[str, Any] = {"subjects": subjects}
    rule["resourceRules"] = resource_rules if resource_rules is not None else [_ALL_RESOURCES]
    rule["nonResourceRules"] = non_resource_rules if non_resource_rules is not None else [_ALL_NON_RESOURCES]
    spec: dict[str, Any] = {"priorityLevelConfiguration": {"name": pl}, "matchingPrecedence": prec,
                            "rules": [rule]}
    if by:
        spec["distinguisherMethod"] = {"type": by}
    return {"metadata": {"name": name, "annotations": {"apf.kubernetes.io/autoupdate-spec": "true"}},
            "spec": spec}


def _user(name: str) -> dict:
    return {"kind": "User", "user": {"name": name}}


def _group(name: str) -> dict:
    return {"kind": "Group", "group": {"name": name}}


def bootstrap_priority_levels() -> list[dict]:
    return [
        _plc("exempt", 0, 0, None, exempt=True),
        _plc("catch-all", 5, 0, {"type": "Reject"}),
        _plc("system", 30, 33, _queue(64, 6, 50)),
        _plc("node-high", 40, 25, _queue(64, 6, 50)),
        _plc("leader-election", 10, 0, _queue(16, 4, 50)),
        _plc("workload-high", 40, 50, _queue(128, 6, 50)),
        _plc("workload-low", 100, 90, _queue(128, 6, 50)),
        _plc("global-default", 20, 50, _queue(128, 6, 50)),
    ]


def bootstrap_flow_schemas() -> list[dict]:
    ks = {"kind": "ServiceAccount", "serviceAccount": {"namespace": "kube-system", "name": "*"}}
    return [
        _fs("exempt", 1, "exempt", [_group("system:masters")], by=None),
        _fs("probes", 2, "exempt", [_group("system:unauthenticated"), _group("system:authenticated")],
            by=None, resource_rules=[],
            non_resource_rules=[{"verbs": ["get"], "nonResourceURLs": ["/healthz", "/readyz", "/livez"]}]),
        _fs("system-leader-election", 100, "leader-election",
            [_user("system:kube-controller-manager"), _user("system:kube-scheduler")],
            resource_rules=[{"verbs": ["get", "create", "update"], "apiGroups": ["coordination.k8s.io"],
                             "resources": ["leases"], "namespaces": ["*"]}], non_resource_rules=[]),
        _fs("system-node-high", 400, "node-high", [_group("system:nodes")],
            resource_rules=[{"verbs": ["*"], "apiGroups": [""], "resources": ["nodes", "nodes/status"],
                             "clusterScope": True}], non_resource_rules=[]),
        _fs("system-nodes", 500, "system", [_group("system:nodes")]),
        _fs("kube-controller-manager", 800, "workload-high", [_user("system:kube-controller-manager")],
            by="ByNamespace"),
        _fs("kube-scheduler", 800, "workload-high", [_user("system:kube-scheduler")], by="ByNamespace"),
        _fs("kube-system-service-accounts", 900, "workload-high", [ks], by="ByNamespace"),
        _fs("service-accounts", 9000, "workload-low", [_group("system:serviceaccounts")]),
        _fs("global-default", 9900, "global-default",
            [_group("system:unauthenticated"), _group("system:authenticated")]),
        _fs("catch-all", 10000, "catch-all",
            [_group("system:unauthenticated"), _group("system:authenticated")]),
    ]
