"""Change correlation: what changed in a cluster, and what changed just before an incident's T0.

Many control-plane outages follow a change (a webhook whose backend died, an
APF or RBAC edit, a rollout).  The ``ChangeWatcher`` keeps a watch on the
kinds declared in ``WATCHED`` by re-listing them every few seconds through the
bot's own kubeconfig and diffing by uid and resourceVersion, so that
creations, edits and deletions are all seen; objects changed before the bot
first looked are dated by their ``managedFields`` times.  Every change is one
``ClusterChange`` row (deduplicated by key, so two replicas or a restart
record it once).  ``before_t0`` reads them back for an incident, ranked by
nearness to T0 and relevance to its component.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Callable, Iterable, Mapping, Protocol

from sqlalchemy import select
from sqlmodel import col

from bot.core.clock import Clock, human_duration, utc
from bot.core.store.db import Database, insert_once
from bot.core.store.models import ClusterChange

log = logging.getLogger(__name__)


class Lister(Protocol):
    """The one read the watcher needs (``KubernetesClient`` / ``FakeKubernetes``)."""

    def list_objects(self, api_version: str, kind: str, namespace: str | None = None,
                     label_selector: str | None = None) -> list[dict]: ...


@dataclass(frozen=True)
class Watched:
    """A kind whose changes often cause control-plane incidents, and what about it counts as a change."""

    api_version: str
    kind: str
    components: tuple[str, ...]  # the incident components it is most relevant to
    namespace: str | None = None
    aspect: str = "spec"  # spec: anything but metadata/status; images: container images; cordon: unschedulable
    plural: str = ""  # as audit logs name it


WATCHED: tuple[Watched, ...] = (
    Watched("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", ("apiserver",),
            plural="validatingwebhookconfigurations"),
    Watched("admissionregistration.k8s.io/v1", "MutatingWebhookConfiguration", ("apiserver",),
            plural="mutatingwebhookconfigurations"),
    Watched("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", ("apiserver",), plural="flowschemas"),
    Watched("flowcontrol.apiserver.k8s.io/v1", "PriorityLevelConfiguration", ("apiserver",),
            plural="prioritylevelconfigurations"),
    Watched("rbac.authorization.k8s.io/v1", "ClusterRole", ("apiserver",), plural="clusterroles"),
    Watched("rbac.authorization.k8s.io/v1", "ClusterRoleBinding", ("apiserver",), plural="clusterrolebindings"),
    Watched("rbac.authorization.k8s.io/v1", "Role", ("apiserver",), plural="roles"),
    Watched("rbac.authorization.k8s.io/v1", "RoleBinding", ("apiserver",), plural="rolebindings"),
    Watched("apiextensions.k8s.io/v1", "CustomResourceDefinition", ("apiserver", "etcd"),
            plural="customresourcedefinitions"),
    Watched("apps/v1", "Deployment", ("apiserver", "etcd", "scheduler", "controller-manager"), "kube-system",
            "images", "deployments"),
    Watched("apps/v1", "DaemonSet", ("apiserver", "etcd", "scheduler", "controller-manager"), "kube-system",
            "images", "daemonsets"),
    Watched("v1", "Pod", ("apiserver", "etcd", "scheduler", "controller-manager"), "kube-system", "images", "pods"),
    Watched("v1", "Node", ("scheduler", "nodes"), aspect="cordon", plural="nodes"),
)
BY_PLURAL = {w.plural: w for w in WATCHED}
MASS_CORDON = 3  # nodes cordoned within the window that make one "nodes cordoned en masse" change
# field managers of the apiserver's own bootstrap and reconciliation: what only they wrote is not a change
SYSTEM_MANAGERS = frozenset({"kube-apiserver", "api-priority-and-fairness-config-producer-v1",
                             "api-priority-and-fairness-config-consumer-v1"})


def _parse_time(value: Any) -> datetime | None:
    if not value:
        return None
    try:
        return utc(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return None


def _images(obj: Mapping[str, Any]) -> list[str]:
    spec = obj.get("spec") or {}
    pod = ((spec.get("template") or {}).get("spec") or spec) if "template" in spec else spec
    return sorted(f"{c.get('name')}={c.get('image')}" for c in (pod.get("containers") or []))


def _is_static_or_control_plane(w: Watched, obj: Mapping[str, Any]) -> bool:
    """Pods: only static (mirror) pods and pods owned by a Node; every other kind: all objects."""
    if w.kind != "Pod":
        return True
    meta = obj.get("metadata") or {}
    if "kubernetes.io/config.mirror" in (meta.get("annotations") or {}):
        return True
    return any(ref.get("kind") == "Node" for ref in meta.get("ownerReferences") or [])


def fingerprint(w: Watched, obj: Mapping[str, Any]) -> str:
    """What about an object counts as a change (status, resourceVersion and managedFields never do)."""
    if w.aspect == "images":
        shape: Any = _images(obj)
    elif w.aspect == "cordon":
        shape = bool((obj.get("spec") or {}).get("unschedulable"))
    else:
        shape = {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}
        shape["labels"] = (obj.get("metadata") or {}).get("labels") or {}
    return hashlib.sha256(json.dumps(shape, sort_keys=True, default=str).encode()).hexdigest()[:16]


def system_only(obj: Mapping[str, Any]) -> bool:
    """Written only by the apiserver itself (bootstrap RBAC and APF objects): not someone's change."""
    managers = {m.get("manager") for m in (obj.get("metadata") or {}).get("managedFields") or []}
    return bool(managers) and managers <= SYSTEM_MANAGERS


def last_managed_time(obj: Mapping[str, Any]) -> datetime | None:
    """The newest ``managedFields`` time: when some manager last wrote the object (second precision)."""
    times = [_parse_time(m.get("time")) for m in (obj.get("metadata") or {}).get("managedFields") or []]
    known = [t for t in times if t is not None]
    return max(known) if known else None


@dataclass
class _Seen:
    name: str
    namespace: str | None
    resource_version: str
    fingerprint: str
    images: list[str]


@dataclass(frozen=True)
class Change:
    kind: str
    namespace: str | None
    name: str
    change: str
    at: datetime
    source: str
    detail: str = ""
    key: str = ""


class ChangeRecorder:
    """Turns successive listings of the watched kinds into ``ClusterChange`` rows."""

    def __init__(self, db: Database, cluster: str, clock: Clock, *, watched: Iterable[Watched] = WATCHED) -> None:
        self.db = db
        self.cluster = cluster
        self.clock = clock
        self.watched = tuple(watched)
        self._seen: dict[str, dict[str, _Seen]] = {}  # kind -> uid -> last listing
        self.forbidden: set[str] = set()  # kinds the bot's RBAC does not let it list

    def observe(self, w: Watched, objects: list[dict]) -> list[Change]:
        """Compare one listing of ``w`` with the previous one; store and return what changed."""
        now = self.clock.now()
        first = w.kind not in self._seen
        before = self._seen.get(w.kind, {})
        current: dict[str, _Seen] = {}
        changes: list[Change] = []
        for obj in objects:
            if not _is_static_or_control_plane(w, obj):
                continue
            meta = obj.get("metadata") or {}
            uid = str(meta.get("uid") or f"{meta.get('namespace')}/{meta.get('name')}")
            seen = _Seen(str(meta.get("name")), meta.get("namespace"), str(meta.get("resourceVersion") or ""),
                         fingerprint(w, obj), _images(obj) if w.aspect == "images" else [])
            current[uid] = seen
            created = _parse_time(meta.get("creationTimestamp")) or now
            managed = last_managed_time(obj)
            old = before.get(uid)
            if old is None and first and system_only(obj):
                continue  # the baseline: the apiserver's own objects are not changes
            if old is None:
                source = "managedFields" if first else "watch"
                changes.append(self._change(w, seen, "created", created, source, uid, f"created {uid}"))
                if first and managed is not None and (managed - created).total_seconds() >= 1:
                    changes.append(self._change(w, seen, "updated", managed, "managedFields", uid,
                                                f"updated {uid}@{seen.resource_version}",
                                                self._cordon_word(w, obj)))
            elif old.fingerprint != seen.fingerprint:
                at = managed if managed is not None and managed >= now - timedelta(minutes=5) else now
                word, detail = self._what(w, old, seen, obj)
                changes.append(self._change(w, seen, word, min(at, now), "watch", uid,
                                            f"{word} {uid}@{seen.resource_version}", detail))
        for uid, old in before.items():
            if uid not in current:
                changes.append(self._change(w, old, "deleted", now, "watch", uid, f"deleted {uid}",
                                            "gone since the previous listing"))
        self._seen[w.kind] = current
        return [c for c in changes if self.store(c)]

    @staticmethod
    def _cordon_word(w: Watched, obj: Mapping[str, Any]) -> str:
        if w.aspect == "cordon" and (obj.get("spec") or {}).get("unschedulable"):
            return "unschedulable"
        return ""

    @staticmethod
    def _what(w: Watched, old: _Seen, new: _Seen, obj: Mapping[str, Any]) -> tuple[str, str]:
        if w.aspect == "cordon":
            cordoned = bool((obj.get("spec") or {}).get("unschedulable"))
            return ("cordoned" if cordoned else "uncordoned"), ""
        if w.aspect == "images":
            gone = sorted(set(old.images) - set(new.images))
            came = sorted(set(new.images) - set(old.images))
            return "image", f"{', '.join(gone) or '-'} → {', '.join(came) or '-'}"
        return "updated", ""

    def _change(self, w: Watched, seen: _Seen, word: str, at: datetime, source: str, uid: str, key: str,
                detail: str = "") -> Change:
        if word == "updated" and detail == "unschedulable":
            word, detail = "cordoned", ""
        return Change(w.kind, seen.namespace, seen.name, word, at, source, detail, f"{w.kind}:{key}")

    def store(self, change: Change) -> bool:
        with self.db.session() as session:
            row = ClusterChange(cluster=self.cluster, key=change.key[:500], at=change.at, kind=change.kind,
                                namespace=change.namespace, name=change.name, change=change.change,
                                source=change.source, detail=change.detail or None)
            return insert_once(session, row)

    def poll(self, lister: Lister) -> list[Change]:
        """List every watched kind once; a kind that fails is retried at the next poll (its baseline kept)."""
        out: list[Change] = []
        for w in self.watched:
            if w.kind in self.forbidden:
                continue
            try:
                objects = lister.list_objects(w.api_version, w.kind, w.namespace)
            except Exception as exc:  # one kind unreadable (RBAC, apiserver down) must not stop the others
                if getattr(exc, "status", None) == 403:  # not granted (Pods are not, by default): said once
                    self.forbidden.add(w.kind)
                    log.warning("change watch in %s: %s is not readable (%s); its changes are not watched",
                                self.cluster, w.kind, exc)
                else:
                    log.info("change watch of %s in %s: %s", w.kind, self.cluster, exc)
                continue
            out += self.observe(w, objects)
        return out


def read_audit_lines(lines: Iterable[str], cluster: str) -> list[ClusterChange]:
    """Changes from a kube-apiserver audit log (``audit.k8s.io/v1`` Events, one JSON object a line)."""
    verbs = {"create": "created", "update": "updated", "patch": "updated", "delete": "deleted"}
    out: list[ClusterChange] = []
    for line in lines:
        try:
            event = json.loads(line)
        except ValueError:
            continue
        ref = event.get("objectRef") or {}
        w = BY_PLURAL.get(str(ref.get("resource") or ""))
        if (not isinstance(event, dict) or event.get("stage") != "ResponseComplete" or w is None
                or ref.get("subresource") or event.get("verb") not in verbs
                or int((event.get("responseStatus") or {}).get("code") or 0) >= 300):
            continue
        at = _parse_time(event.get("stageTimestamp") or event.get("requestReceivedTimestamp"))
        if at is None:
            continue
        user = (event.get("user") or {}).get("username") or "?"
        out.append(ClusterChange(cluster=cluster, key=f"audit:{event.get('auditID')}", at=at, kind=w.kind,
                                 namespace=ref.get("namespace"), name=str(ref.get("name") or "?"),
                                 change=verbs[event["verb"]], source="audit", detail=f"by {user}"))
    return out


class AuditTail:
    """Reads new lines of an audit log file at each poll (from where the last poll stopped)."""

    def __init__(self, db: Database, cluster: str, path: str) -> None:
        self.db, self.cluster, self.path, self.offset = db, cluster, path, 0

    def poll(self) -> int:
        try:
            with open(self.path, encoding="utf-8", errors="replace") as handle:
                handle.seek(self.offset)
                text = handle.read()
        except OSError as exc:
            log.info("audit log %s unreadable: %s", self.path, exc)
            return 0
        complete, _, rest = text.rpartition("\n")
        self.offset += len(complete.encode()) + (1 if complete or text.startswith("\n") else 0)
        stored = 0
        for row in read_audit_lines(complete.splitlines(), self.cluster):
            with self.db.session() as session:
                stored += bool(insert_once(session, row))
        return stored


class ChangeWatcher:
    """The worker keeping the change watch on one cluster (``serve`` runs one per cluster)."""

    def __init__(self, recorder: ChangeRecorder, lister: Callable[[], Lister], *, interval: float,
                 audit: AuditTail | None = None) -> None:
        self.recorder = recorder
        self.lister = lister
        self.interval = interval
        self.audit = audit
        self.name = f"changes-{recorder.cluster}"
        self.wake = threading.Event()

    def tick(self) -> int:
        found = len(self.recorder.poll(self.lister()))
        if self.audit is not None:
            found += self.audit.poll()
        return found


# ------------------------------------------------------------------ reading for an incident
def relevance(kind: str, component: str | None) -> int:
    """2: the kind often breaks this component; 1: it may; 0: unrelated."""
    w = next((w for w in WATCHED if w.kind == kind), None)
    if w is None or not component:
        return 1
    if component in w.components[:1]:
        return 2
    return 1 if component in w.components else 0


def rows_before_t0(session: Any, cluster: str, t0: datetime, window_seconds: float) -> list[ClusterChange]:
    """The stored changes of ``cluster`` in ``[T0 - window, T0]`` (any session: the export reads with its own)."""
    t0 = utc(t0)
    return list(session.execute(
        select(ClusterChange).where(col(ClusterChange.cluster) == cluster,
                                    col(ClusterChange.at) >= t0 - timedelta(seconds=window_seconds),
                                    col(ClusterChange.at) <= t0).order_by(col(ClusterChange.at).desc())
    ).scalars())


def ranked(rows: list[ClusterChange], t0: datetime, component: str | None, limit: int = 20) -> list[dict[str, Any]]:
    """Most relevant to the component first, then nearest to T0; JSON-ready (kind, name, change, time ...)."""
    t0 = utc(t0)
    items: list[dict[str, Any]] = []
    for r in _fold_mass_cordon(rows):
        seconds = max(0.0, (t0 - utc(r.at)).total_seconds())
        items.append({"kind": r.kind, "namespace": r.namespace, "name": r.name, "change": r.change,
                      "time": utc(r.at).isoformat(), "seconds_before_t0": round(seconds, 1),
                      "source": r.source, "detail": r.detail or "", "relevance": relevance(r.kind, component)})
    items.sort(key=lambda c: (-c["relevance"], c["seconds_before_t0"], c["kind"], c["name"]))
    return items[:limit]


def before_t0(db: Database, cluster: str, t0: datetime, *, window_seconds: float,
              component: str | None = None, limit: int = 20) -> list[dict[str, Any]]:
    """The changes in ``[T0 - window, T0]``, most relevant and nearest to T0 first."""
    with db.reading() as session:
        rows = rows_before_t0(session, cluster, t0, window_seconds)
    return ranked(rows, t0, component, limit)


def _fold_mass_cordon(rows: list[ClusterChange]) -> list[ClusterChange]:
    """Many nodes cordoned in the window are one change ("12 nodes cordoned"), dated by the latest."""
    cordons = [r for r in rows if r.kind == "Node" and r.change == "cordoned"]
    if len(cordons) < MASS_CORDON:
        return rows
    latest = max(cordons, key=lambda r: r.at)
    names = sorted(r.name for r in cordons)
    folded = ClusterChange(cluster=latest.cluster, key="mass-cordon", at=latest.at, kind="Node",
                           name=f"{len(cordons)} nodes", change="cordoned en masse", source=latest.source,
                           detail=", ".join(names[:10]) + (" ..." if len(names) > 10 else ""))
    return [r for r in rows if r not in cordons] + [folded]


def sentence(change: Mapping[str, Any]) -> str:
    """``ValidatingWebhookConfiguration `deny-all`, created 2m10s before`` (the card's and timeline's words)."""
    ns = f"{change['namespace']}/" if change.get("namespace") else ""
    detail = f" ({change['detail']})" if change.get("detail") and change["change"] in ("image", "cordoned en masse") else ""
    return (f"{change['kind']} `{ns}{change['name']}`, {change['change']}{detail} "
            f"{human_duration(change['seconds_before_t0'])} before")
