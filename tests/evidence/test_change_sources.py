"""Where changes come from besides the watch, and how they read: the audit log, images, cordons.

Listings are the shapes the Kubernetes API returns (metadata with uid, resourceVersion,
creationTimestamp, managedFields); the audit log lines are ``audit.k8s.io/v1`` Events as a
kube-apiserver writes them with ``--audit-log-format=json``.
"""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
from pathlib import Path

from bot.core.clock import FakeClock
from bot.domain.diagnosis.changes import WATCHED, AuditTail, ChangeRecorder, before_t0, sentence
from bot.core.store import migrate
from bot.core.store.db import Database

T0 = datetime(2026, 11, 30, 6, 0, tzinfo=timezone.utc)
DEPLOYMENT = next(w for w in WATCHED if w.kind == "Deployment")
NODE = next(w for w in WATCHED if w.kind == "Node")


def stamp(seconds_before: float) -> str:
    return (T0 - timedelta(seconds=seconds_before)).strftime("%Y-%m-%dT%H:%M:%SZ")


def db(url: str) -> Database:
    database = Database(url)
    migrate.upgrade(database)
    return database


def audit_event(verb: str, resource: str, name: str, seconds_before: float, *, code: int = 200,
                user: str = "alice@example.com") -> str:
    return json.dumps({"kind": "Event", "apiVersion": "audit.k8s.io/v1", "auditID": f"{verb}-{name}",
                       "stage": "ResponseComplete", "verb": verb, "user": {"username": user},
                       "objectRef": {"resource": resource, "name": name, "apiGroup": "flowcontrol.apiserver.k8s.io"},
                       "responseStatus": {"code": code}, "stageTimestamp": stamp(seconds_before)})


def test_the_audit_log_names_who_deleted_a_flow_schema_and_is_read_once(sqlite_url: str, tmp_path: Path) -> None:
    store = db(sqlite_url)
    log = tmp_path / "audit.log"
    log.write_text("\n".join([
        audit_event("delete", "flowschemas", "exempt-controllers", 95),
        audit_event("get", "flowschemas", "ignored", 90),  # reads are not changes
        audit_event("delete", "flowschemas", "refused", 80, code=403),  # refused: nothing changed
        audit_event("create", "configmaps", "not-watched", 70),
        "not json at all",
    ]) + "\n" + audit_event("patch", "prioritylevelconfigurations", "workload-low", 40)[:30])  # half a line
    tail = AuditTail(store, "prod-1", str(log))
    assert tail.poll() == 1
    with log.open("a") as handle:  # the rest of the half-written line arrives
        handle.write(audit_event("patch", "prioritylevelconfigurations", "workload-low", 40)[30:] + "\n")
    assert tail.poll() == 1 and tail.poll() == 0
    changes = before_t0(store, "prod-1", T0, window_seconds=1800, component="apiserver")
    assert [(c["kind"], c["name"], c["change"], c["source"], c["detail"]) for c in changes] == [
        ("PriorityLevelConfiguration", "workload-low", "updated", "audit", "by alice@example.com"),
        ("FlowSchema", "exempt-controllers", "deleted", "audit", "by alice@example.com")]


def test_an_image_change_and_nodes_cordoned_en_masse_read_as_one_line_each(sqlite_url: str) -> None:
    store = db(sqlite_url)
    clock = FakeClock(T0 - timedelta(seconds=300))
    recorder = ChangeRecorder(store, "prod-1", clock)

    def deployment(image: str, rv: str) -> dict:
        return {"metadata": {"name": "kube-controller-manager", "namespace": "kube-system", "uid": "d1",
                             "resourceVersion": rv, "creationTimestamp": stamp(86400)},
                "spec": {"template": {"spec": {"containers": [{"name": "kcm", "image": image}]}}},
                "status": {"readyReplicas": int(rv)}}

    def node(name: str, cordoned: bool) -> dict:
        return {"metadata": {"name": name, "uid": name, "resourceVersion": "2" if cordoned else "1",
                             "creationTimestamp": stamp(86400)}, "spec": {"unschedulable": cordoned}}

    recorder.observe(DEPLOYMENT, [deployment("registry.k8s.io/kcm:v1.35.3", "1")])
    recorder.observe(NODE, [node(f"n{i}", False) for i in range(4)])
    clock.set(T0 - timedelta(seconds=120))
    assert recorder.observe(DEPLOYMENT, [deployment("registry.k8s.io/kcm:v1.35.3", "2")]) == []  # status only
    changed = recorder.observe(DEPLOYMENT, [deployment("registry.k8s.io/kcm:v1.35.4", "3")])
    assert [(c.change, c.detail) for c in changed] == [
        ("image", "kcm=registry.k8s.io/kcm:v1.35.3 → kcm=registry.k8s.io/kcm:v1.35.4")]
    clock.set(T0 - timedelta(seconds=30))
    recorder.observe(NODE, [node(f"n{i}", i < 3) for i in range(4)])

    changes = before_t0(store, "prod-1", T0, window_seconds=1800, component="controller-manager")
    assert [sentence(c) for c in changes] == [
        "Deployment `kube-system/kube-controller-manager`, image (kcm=registry.k8s.io/kcm:v1.35.3 → "
        "kcm=registry.k8s.io/kcm:v1.35.4) 2m00s before",
        "Node `3 nodes`, cordoned en masse (n0, n1, n2) 30s before"]
