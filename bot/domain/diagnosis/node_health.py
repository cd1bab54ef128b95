"""Kubernetes op ``nodes``: which nodes stopped heartbeating, and for how long.

A kubelet heartbeats by renewing its Lease in ``kube-node-lease`` every quarter of the Lease's
duration and posts its status only every few minutes; the node lifecycle controller marks a node
NotReady only after its grace period (40-50 s by default). Customers see it earlier: pods bound to
a silent node do not start. So a node counts as *silent* when it is not Ready **or** its Lease is
late (not renewed for more than half its duration: two renewals missed), and how long it has been
silent is measured from the later of its Lease renewal and its status heartbeat.

Facts: ``total``, ``ready``, ``not_ready`` (+ ``not_ready_share``, ``not_ready_nodes``) as the
node lifecycle controller sees them, and ``silent`` (+ ``silent_share``, ``silent_nodes``) as the
Leases show them. Without read access to the Leases, silent is the NotReady nodes only.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from typing import Any

from bot.domain.diagnosis.kind_types import Facts
from bot.core.errors import IncidentBotError

LEASES = "/apis/coordination.k8s.io/v1/namespaces/kube-node-lease/leases"
MAX_LISTED = 20  # evidence lists the first N nodes; facts keep all
LATE_SHARE = 0.5  # a Lease not renewed for more than this share of its duration is late


def _time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _leases(kube: Any) -> dict[str, tuple[datetime, float | None]] | None:
    """Node name -> (last renewal, lease duration); None when the Leases cannot be read."""
    try:
        text = kube.raw_get(LEASES, accept="application/json")
    except IncidentBotError:  # not allowed or not served: the status heartbeats are all there is
        return None
    found = {}
    for lease in json.loads(text or "{}").get("items") or []:
        spec = lease.get("spec") or {}
        at = _time(spec.get("renewTime"))
        if at is not None:
            duration = spec.get("leaseDurationSeconds")
            found[lease["metadata"]["name"]] = (at, float(duration) if duration is not None else None)
    return found


def _names(nodes: list[dict[str, Any]]) -> str:
    return ", ".join(n["name"] for n in nodes[:5]) + (f" +{len(nodes) - 5} more" if len(nodes) > 5 else "")


def nodes_facts(kube: Any, host: str, now: datetime | None = None) -> Facts:
    items = json.loads(kube.raw_get("/api/v1/nodes", accept="application/json") or "{}").get("items") or []
    leases = _leases(kube)
    now = now or datetime.now(timezone.utc)
    not_ready: list[dict[str, Any]] = []
    silent: list[dict[str, Any]] = []
    for node in items:
        name = node["metadata"]["name"]
        ready = next((c for c in (node.get("status") or {}).get("conditions") or [] if c.get("type") == "Ready"), None)
        renewed, duration = (leases or {}).get(name, (None, None))
        lease_age = round((now - renewed).total_seconds(), 1) if renewed else None
        beat = max((t for t in (_time((ready or {}).get("lastHeartbeatTime")), renewed) if t), default=None)
        row = {"name": name, "status": (ready or {}).get("status"), "reason": (ready or {}).get("reason"),
               "silent_seconds": round((now - beat).total_seconds(), 1) if beat else None,
               "lease_renewed_seconds_ago": lease_age}
        is_ready = ready is not None and ready.get("status") == "True"
        late = lease_age is not None and duration is not None and lease_age > duration * LATE_SHARE
        if not is_ready:
            not_ready.append(row)
        if not is_ready or late:
            silent.append(row)
    total = len(items)
    summary = f"{total - len(not_ready)}/{total} nodes Ready"
    if not_ready:
        summary += f"; not ready: {_names(not_ready)}"
    late_only = [n for n in silent if n not in not_ready]
    if late_only:
        ages = [n["lease_renewed_seconds_ago"] for n in late_only]
        summary += (f"; {len(late_only)} still Ready but their Leases not renewed for {min(ages):.0f}-{max(ages):.0f} s: "
                    f"{_names(late_only)}")
    facts = {"total": total, "ready": total - len(not_ready), "not_ready": len(not_ready),
             "not_ready_share": len(not_ready) / total if total else 0.0, "not_ready_nodes": not_ready,
             "silent": len(silent), "silent_share": len(silent) / total if total else 0.0, "silent_nodes": silent,
             "leases_read": leases is not None}
    evidence = {"op": "nodes", "server": host, **{k: v for k, v in facts.items() if not k.endswith("_nodes")},
                "not_ready_nodes": not_ready[:MAX_LISTED], "silent_nodes": silent[:MAX_LISTED]}
    return Facts(facts, summary, evidence)
