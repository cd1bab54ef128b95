"""The kinds of check a procedure can run, declared once.

Each kind declares its fields (name -> (type, required)) — the loader
validates procedures from these declarations and ``incident-bot sop``
documents them — and a function that asks the cluster and returns *facts*
(what templates and conditions read), a one-line summary and the evidence
recorded on the timeline.  A kind function raises on any failure; the runner
turns that into an unknown result.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime, timedelta, timezone
from typing import Any, Mapping

from bot.domain.diagnosis.kind_types import Facts, Field, Kind
from bot.domain.diagnosis.node_health import nodes_facts
from bot.domain.diagnosis.ports import ClusterAccess
from bot.domain.diagnosis.probe_kind import PROBE_KIND
from bot.domain.diagnosis.templating import parse_duration
from bot.core.errors import ConfigError, IncidentBotError

MAX_SAMPLES = 20  # evidence keeps the first N samples/series; facts keep all


def _num(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(v) else v


def _labels_text(labels: Mapping[str, str]) -> str:
    shown = {k: v for k, v in labels.items() if k != "__name__"}
    return "{" + ", ".join(f'{k}="{v}"' for k, v in sorted(shown.items())) + "}" if shown else "{}"


# ------------------------------------------------------------------ promql
def _promql(access: ClusterAccess, params: dict[str, Any], timeout: float) -> Facts:
    if access.metrics is None:
        raise ConfigError(f"no Prometheus is configured for cluster {access.name} "
                          f"(set PROMETHEUS_URL or clusters.{access.name}.prometheus_url)")
    query = str(params["query"])
    if params.get("range"):
        window = parse_duration(str(params["range"]))
        step = parse_duration(str(params.get("step") or "15s"))
        end = datetime.now(timezone.utc)  # Prometheus is asked about its present, not the bot's clock
        start = end - timedelta(seconds=window)
        matrix = access.metrics.query_range(query, start, end, step, timeout=timeout)
        series: list[dict[str, Any]] = []
        for s in getattr(matrix, "series", ()):
            values = [v for _, v in s.values if _num(v) is not None]
            series.append({"labels": dict(s.labels), "last": values[-1] if values else None,
                           "max": max(values) if values else None, "min": min(values) if values else None,
                           "avg": sum(values) / len(values) if values else None, "points": len(values)})
        series.sort(key=lambda s: -(s["max"] if s["max"] is not None else -math.inf))
        maxes = [s["max"] for s in series if s["max"] is not None]
        top = series[0] if series else None
        facts = {"count": len(series), "series": series, "top": top, "labels": top["labels"] if top else {},
                 "max": max(maxes) if maxes else None, "min": min(s["min"] for s in series if s["min"] is not None)
                 if maxes else None, "value": top["last"] if top else None}
        summary = (f"{len(series)} series over {params['range']}, max {facts['max']:g} "
                   f"{_labels_text(top['labels'])}" if top and facts["max"] is not None else
                   f"no series over {params['range']}")
        evidence = {"query": query, "type": "range", "start": start.isoformat(), "end": end.isoformat(),
                    "step_seconds": step, "series": series[:MAX_SAMPLES], "count": len(series)}
        return Facts(facts, summary, evidence)
    result = access.metrics.query(query, timeout=timeout)
    if hasattr(result, "samples"):
        raw = [(dict(s.labels), _num(s.value), s.timestamp) for s in result.samples]
    elif hasattr(result, "series"):
        raise ValueError(f"the query {query!r} gave a range vector; add `range:` or use an instant vector")
    else:  # scalar
        raw = [({}, _num(result.value), result.timestamp)]
    samples: list[dict[str, Any]] = sorted(({"labels": lbl, "value": v} for lbl, v, _ in raw),
                                           key=lambda s: -(s["value"] if s["value"] is not None else -math.inf))
    values = [s["value"] for s in samples if s["value"] is not None]
    top = samples[0] if samples else None
    evaluated = max((t for _, _, t in raw), default=None)
    facts = {"count": len(samples), "samples": samples, "top": top, "labels": top["labels"] if top else {},
             "value": top["value"] if top else None, "sum": sum(values), "max": max(values) if values else None,
             "min": min(values) if values else None}
    summary = (f"{len(samples)} series, max {facts['max']:g} {_labels_text(top['labels'])}"
               if top and facts["max"] is not None else "no series (empty result)")
    evidence = {"query": query, "type": "instant", "samples": samples[:MAX_SAMPLES], "count": len(samples),
                "evaluated_at": datetime.fromtimestamp(evaluated, timezone.utc).isoformat() if evaluated else None}
    return Facts(facts, summary, evidence)


# ------------------------------------------------------------------ kubernetes
def _kubernetes(access: ClusterAccess, params: dict[str, Any], timeout: float) -> Facts:
    kube = access.kubernetes
    if kube is None:
        raise ConfigError(f"no Kubernetes API is configured for cluster {access.name} "
                          f"(set KUBECONFIG or clusters.{access.name}.kubeconfig)")
    op = params["op"]
    host = getattr(kube, "host", "")
    if op == "get":
        obj = kube.get_object(str(params["api_version"]), str(params["object_kind"]), str(params["name"]),
                              params.get("namespace") or None)
        ref = (f"{params['object_kind']} {(str(params['namespace']) + '/') if params.get('namespace') else ''}"
               f"{params['name']}")
        return Facts({"exists": obj is not None, "object": obj},
                     f"{ref} {'exists' if obj is not None else 'does not exist'}",
                     {"op": op, "server": host, "object": ref, "exists": obj is not None})
    if op == "raw":
        text = kube.raw_get(str(params["path"]))
        return Facts({"text": text, "lines": text.splitlines()}, f"GET {params['path']}: {len(text)} bytes",
                     {"op": op, "server": host, "path": params["path"], "text": text[:2000]})
    if op == "health":
        endpoint = str(params.get("endpoint") or "readyz")
        h = kube.health(endpoint)
        return Facts({"ok": bool(h.ok), "status": h.status, "body": h.body},
                     f"/{endpoint.strip('/')} answered {h.status} ({'ok' if h.ok else 'failing'})",
                     {"op": op, "server": host, "endpoint": endpoint, "status": h.status, "ok": bool(h.ok),
                      "body": (h.body or "")[:500]})
    if op == "top_users":
        n = int(params.get("n") or 5)
        loads = kube.top_users(n)
        total = sum(u.requests for u in loads) or 0
        users = [{"user": u.user, "requests": u.requests, "queued": u.queued, "executing": u.executing,
                  "seats": u.seats, "share": (u.requests / total) if total else 0.0,
                  "flow_schemas": list(u.flow_schemas), "priority_levels": list(u.priority_levels),
                  "top_verbs": [list(v) for v in u.top_verbs]} for u in loads]
        top = users[0] if users else None
        summary = (f"top user {top['user']}: {top['requests']} of {total} requests in flight "
                   f"({top['share']:.0%}), {top['queued']} queued" if top else "no requests in flight")
        return Facts({"users": users, "top": top, "total_requests": total}, summary,
                     {"op": op, "server": host, "path": "/debug/api_priority_and_fairness/dump_requests",
                      "users": users})
    if op == "leader":
        return _leader(kube, host, str(params.get("namespace") or "kube-system"), str(params["name"]))
    if op == "nodes":
        return nodes_facts(kube, host)
    if op == "write":
        return _write(kube, str(params.get("namespace") or "incident-bot-probe"), host)
    raise ValueError(f"unknown kubernetes op {op!r}")


_WEBHOOK = re.compile(r'(?:failed calling webhook|admission webhook) \\?"([^"\\]+)\\?"')


def _write(kube: Any, namespace: str, host: str) -> Facts:
    """The write path as the prober sees it; a refused write is the answer (with the apiserver's words), not unknown."""
    try:
        result = kube.write_probe(namespace)
    except IncidentBotError as exc:
        if getattr(exc, "status", None) is None and "cannot reach" in str(exc):
            raise  # the apiserver did not answer at all: that is not a refused write
        message = str(exc)
        match = _WEBHOOK.search(message)
        facts = {"ok": False, "status": getattr(exc, "status", None), "message": message[:1000],
                 "webhook": match.group(1) if match else None, "blocked_by_webhook": bool(match),
                 "refusal": (message[match.start():] if match else message)[:500]}  # the apiserver's own words
        summary = (f"writes fail: admission webhook {match.group(1)} blocks them" if match else
                   f"writes fail: {message[:200]}")
        return Facts(facts, summary, {"op": "write", "server": host, "namespace": namespace, **facts})
    steps = ", ".join(f"{s.operation} {s.seconds * 1000:.0f} ms" for s in result.steps)
    facts = {"ok": True, "status": 201, "message": steps, "webhook": None, "blocked_by_webhook": False, "refusal": None}
    return Facts(facts, f"writes succeed ({steps})", {"op": "write", "server": host, "namespace": namespace, **facts})


def _k8s_time(value: Any) -> datetime | None:
    if not value:
        return None
    text = str(value).replace("Z", "+00:00")
    try:
        return datetime.fromisoformat(text)
    except ValueError:
        return None


def _leader(kube: Any, host: str, namespace: str, name: str) -> Facts:
    """A leader-election Lease: who holds it and how long ago it was renewed (stale: nobody leads)."""
    lease = kube.get_object("coordination.k8s.io/v1", "Lease", name, namespace)
    spec = (lease or {}).get("spec") or {}
    renewed = _k8s_time(spec.get("renewTime"))
    age = (datetime.now(timezone.utc) - renewed).total_seconds() if renewed else None
    duration = spec.get("leaseDurationSeconds")
    stale = lease is None or age is None or (duration is not None and age > float(duration))
    holder = spec.get("holderIdentity")
    summary = (f"Lease {namespace}/{name} does not exist" if lease is None else
               f"Lease {namespace}/{name} held by {holder}, renewed {age:.1f} s ago (duration {duration} s)"
               + (": stale, nobody leads" if stale else ""))
    facts = {"exists": lease is not None, "holder": holder, "renewed_seconds_ago": age,
             "lease_duration_seconds": duration, "stale": stale, "transitions": spec.get("leaseTransitions")}
    return Facts(facts, summary, {"op": "leader", "server": host, "lease": f"{namespace}/{name}", **facts})


# ------------------------------------------------------------------ etcd
def _members(access: ClusterAccess, params: dict[str, Any]) -> list[str]:
    members = params.get("members") or (access.config.get("etcd") or {}).get("members") or []
    if isinstance(members, str):
        members = [m.strip() for m in members.split(",") if m.strip()]
    if not members:
        raise ConfigError(f"no etcd members are configured for cluster {access.name} "
                          f"(clusters.{access.name}.etcd.members)")
    if access.etcd is None:
        raise ConfigError(f"no etcd client is available for cluster {access.name}")
    return [str(m) for m in members]


def _etcd(access: ClusterAccess, params: dict[str, Any], timeout: float) -> Facts:
    members = _members(access, params)
    assert access.etcd is not None
    client = access.etcd(members)
    try:
        return _etcd_op(client, params["op"], members)
    finally:
        closer = getattr(client, "close", None)
        if callable(closer):
            closer()


def _etcd_op(client: Any, op: str, members: list[str]) -> Facts:
    if op in ("health", "status"):
        s = client.cluster_summary()
        rows = [{"endpoint": m.endpoint, "healthy": m.healthy, "error": m.error,
                 "leader": format(m.status.leader_id, "x") if m.status else None,
                 "member_id": format(m.status.member_id, "x") if m.status else None,
                 "revision": m.status.revision if m.status else None,
                 "raft_term": m.status.raft_term if m.status else None,
                 "db_size": m.status.db_size if m.status else None} for m in s.members]
        facts = {"members_total": s.members_total, "members_healthy": s.members_healthy,
                 "members_unhealthy": s.members_total - s.members_healthy, "quorum_size": s.quorum_size,
                 "has_quorum": s.has_quorum, "one_leader": s.one_leader, "all_healthy": s.all_healthy,
                 "members_refusing": s.members_refusing, "quorum_unreachable": s.quorum_unreachable,
                 "leader": format(s.leader_id, "x") if s.leader_id else None,
                 "unhealthy": list(s.unhealthy_endpoints), "members": rows}
        # etcd 3.5+ answers /health false while an alarm is raised ("ALARM CORRUPT"): an alive,
        # alarmed member is not a lost quorum, and the alarm is known without a second request
        raised = sorted({(m.error or "")[6:].strip() for m in s.members if (m.error or "").startswith("ALARM ")})
        facts.update({"health_alarms": raised, "corrupt": "CORRUPT" in raised})
        return Facts(facts, s.sentence() + (f"; alarms raised: {', '.join(raised)}" if raised else ""),
                     {"op": op, "endpoints": members, **facts})
    if op == "alarms":
        alarms = client.alarms()
        names = sorted({a.alarm for a in alarms if a.alarm and a.alarm != "NONE"})
        rows = [{"member_id": format(a.member_id, "x"), "alarm": a.alarm} for a in alarms]
        facts = {"alarms": names, "count": len(names), "corrupt": "CORRUPT" in names, "nospace": "NOSPACE" in names,
                 "raised": rows}
        return Facts(facts, "alarms: " + (", ".join(names) if names else "none"),
                     {"op": op, "endpoints": members, **facts})
    if op == "hashkv":
        hashes = client.hashkv(members)
        revisions = {h.revision for h in hashes.values()}
        if len(revisions) > 1:  # writes between the members' answers: compare at one revision
            hashes = client.hashkv(members, revision=min(revisions))
        values = {ep: h.hash for ep, h in hashes.items()}
        consistent = len(set(values.values())) <= 1
        revision = min((h.revision for h in hashes.values()), default=0)
        facts = {"hashes": values, "consistent": consistent, "mismatch": not consistent, "revision": revision}
        summary = (f"hashkv identical on {len(values)} members at revision {revision}" if consistent else
                   "hashkv DIFFERS: " + ", ".join(f"{ep}={h}" for ep, h in sorted(values.items())))
        return Facts(facts, summary, {"op": op, "endpoints": members, **facts})
    raise ValueError(f"unknown etcd op {op!r}")


# ------------------------------------------------------------------ http
def _http(access: ClusterAccess, params: dict[str, Any], timeout: float) -> Facts:
    urls = params.get("urls") if params.get("urls") is not None else params.get("url")
    if isinstance(urls, str):
        urls = [u.strip() for u in urls.split(",") if u.strip()]
    urls = [str(u) for u in (urls or [])]
    if not urls:
        raise ConfigError("the http check has no URL to probe (is the endpoint list configured?)")
    path = str(params.get("path") or "")
    expect = int(params.get("expect_status") or 200)
    verify: bool | str = bool(params.get("verify", True))
    ca_cert = params.get("ca_cert") or ((access.config.get("apiservers") or {}).get("ca_cert"))
    if verify and ca_cert:  # the cluster's own CA (apiservers.ca_cert) signs its apiservers' certificates
        verify = str(ca_cert)
    probes = []
    for base in urls:
        url = base.rstrip("/") + path if path else base
        answer = access.http.get(url, timeout=timeout, verify=verify)
        probes.append({"url": url, "status": answer.status, "ok": answer.status == expect,
                       "seconds": round(answer.seconds, 4), "error": answer.error, "body": answer.body[:200]})
    ok = sum(1 for p in probes if p["ok"])
    facts = {"probes": probes, "total": len(probes), "ok_count": ok, "failed_count": len(probes) - ok,
             "all_ok": ok == len(probes), "any_ok": ok > 0, "none_ok": ok == 0}
    detail = "; ".join(f"{p['url']} {p['status'] if p['status'] is not None else p['error']}" for p in probes)
    return Facts(facts, f"{ok}/{len(probes)} answered {expect}: {detail}",
                 {"expect_status": expect, **facts})


KINDS: dict[str, Kind] = {
    "promql": Kind("promql", "a PromQL query against the cluster's Prometheus (instant, or a range with `range`)", {
        "query": Field("str", True, doc="PromQL (a template)"),
        "range": Field("str", doc="look back this long (e.g. 5m) with a range query"),
        "step": Field("str", doc="range query resolution (default 15s)"),
    }, _promql),
    "kubernetes": Kind("kubernetes", "a read of the cluster's Kubernetes API", {
        "op": Field("str", True, ("get", "raw", "health", "top_users", "leader", "nodes", "write"),
                    doc="get an object, GET a raw path, /readyz|/livez, the APF dump's top users, a "
                        "leader-election Lease's holder and age, node readiness, or a write probe (create, "
                        "read, delete a ConfigMap in `namespace`; the apiserver's refusal is the answer)"),
        "api_version": Field("str"), "object_kind": Field("str", doc="the object's kind, e.g. FlowSchema"),
        "name": Field("str"), "namespace": Field("str"),
        "path": Field("str"), "endpoint": Field("str"), "n": Field("int"),
    }, _kubernetes, ops={"get": ("api_version", "object_kind", "name"), "raw": ("path",), "health": (),
                         "top_users": (), "leader": ("name",), "nodes": (), "write": ()}),
    "etcd": Kind("etcd", "health, status, alarms or hashkv of the cluster's etcd members", {
        "op": Field("str", True, ("health", "status", "alarms", "hashkv")),
        "members": Field("strings", doc="client URLs (default: clusters.NAME.etcd.members)"),
    }, _etcd, ops={"health": (), "status": (), "alarms": (), "hashkv": ()}),
    "http": Kind("http", "an HTTP GET of one or more URLs, expecting a status", {
        "url": Field("str"), "urls": Field("strings"), "path": Field("str", doc="appended to each URL"),
        "expect_status": Field("int", doc="default 200"), "verify": Field("bool", doc="check TLS (default true)"),
    }, _http),
    "probe": PROBE_KIND,
}

COMMON_FIELDS = ("id", "kind", "description", "timeout", "repeat")


def run_kind(kind: str, access: ClusterAccess, params: dict[str, Any], timeout: float) -> tuple[Facts, float]:
    start = time.monotonic()
    facts = KINDS[kind].run(access, params, timeout)
    return facts, time.monotonic() - start
