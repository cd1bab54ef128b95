"""API Priority and Fairness: pure helpers (no network).

* ``parse_dump_requests`` reads ``/debug/api_priority_and_fairness/dump_requests``
  as the apiserver serves it: Go ``text/tabwriter`` output whose cells are
  joined with ``",\\t"`` and padded with spaces, so a line looks like
  ``PriorityLevelName,  FlowSchemaName,  QueueIndex, ...``.  Columns are taken
  from the header line, so older servers (fewer columns) and dumps without
  ``includeRequestDetails`` parse too.
* ``top_users`` sums the rows per user name.
* ``flow_schema_conditions`` / ``is_dangling`` read FlowSchema status.
* ``RequestAttributes`` + ``matching_flow_schema`` classify a request the way
  the apiserver does (``k8s.io/apiserver/pkg/util/flowcontrol/match.go``):
  among FlowSchemas whose PriorityLevelConfiguration exists, the lowest
  ``matchingPrecedence`` (ties: smaller name) whose rules match wins.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

DUMP_REQUESTS_COLUMNS: tuple[str, ...] = (
    "PriorityLevelName", "FlowSchemaName", "QueueIndex", "RequestIndexInQueue",
    "FlowDistingsher", "ArriveTime", "InitialSeats", "FinalSeats", "AdditionalLatency",
    "StartTime",
)
DUMP_REQUESTS_DETAIL_COLUMNS: tuple[str, ...] = (
    "UserName", "Verb", "APIPath", "Namespace", "Name", "APIVersion", "Resource", "SubResource",
)

_ZERO_TIME_PREFIX = "0001-01-01"


@dataclass(frozen=True)
class ApfRequest:
    """One row of dump_requests: a request queued or executing right now."""

    priority_level: str
    flow_schema: str
    queue_index: int
    index_in_queue: int
    flow_distinguisher: str
    arrive_time: str
    initial_seats: int
    final_seats: int
    additional_latency: str
    start_time: str
    user: str
    verb: str
    api_path: str
    namespace: str
    name: str
    api_version: str
    resource: str
    subresource: str
    raw: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def queued(self) -> bool:
        """Waiting in a queue (not started yet)."""
        if self.start_time:
            return self.start_time.startswith(_ZERO_TIME_PREFIX)
        return self.index_in_queue >= 0

    @property
    def executing(self) -> bool:
        return not self.queued


@dataclass(frozen=True)
class UserLoad:
    """What one user has in flight according to a dump."""

    user: str
    requests: int
    queued: int
    executing: int
    seats: int
    flow_schemas: tuple[str, ...]
    priority_levels: tuple[str, ...]
    top_verbs: tuple[tuple[str, int], ...]
    top_resources: tuple[tuple[str, int], ...]


def _int(value: str, default: int = 0) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        return default


def parse_dump_requests(text: str) -> list[ApfRequest]:
    """Parse the dump_requests body into rows; an empty dump gives ``[]``.

    Raises ``ValueError`` when the first line is not a dump_requests header.
    """
    lines = [ln for ln in text.splitlines() if ln.strip()]
    if not lines:
        return []
    header = [c.strip() for c in lines[0].split(",")]
    if not header or header[0] != "PriorityLevelName" or "FlowSchemaName" not in header:
        raise ValueError(f"not an APF dump_requests header: {lines[0][:120]!r}")
    n = len(header)
    path_index = header.index("APIPath") if "APIPath" in header else None
    rows: list[ApfRequest] = []
    for line in lines[1:]:
        cells = [c.strip() for c in line.split(",")]
        if len(cells) > n and path_index is not None:
            # A comma inside the API path: fields left of it come from the left,
            # fields right of it from the right, the path gets the rest.
            extra = len(cells) - n
            merged = ",".join(cells[path_index:path_index + extra + 1])
            cells = cells[:path_index] + [merged] + cells[path_index + extra + 1:]
        if len(cells) < n:
            cells += [""] * (n - len(cells))
        raw = dict(zip(header, cells[:n]))
        g = raw.get
        rows.append(ApfRequest(
            priority_level=g("PriorityLevelName", ""),
            flow_schema=g("FlowSchemaName", ""),
            queue_index=_int(g("QueueIndex", ""), -1),
            index_in_queue=_int(g("RequestIndexInQueue", ""), -1),
            flow_distinguisher=g("FlowDistingsher", g("FlowDistinguisher", "")) or "",
            arrive_time=g("ArriveTime", ""),
            initial_seats=_int(g("InitialSeats", ""), 1),
            final_seats=_int(g("FinalSeats", ""), 0),
            additional_latency=g("AdditionalLatency", ""),
            start_time=g("StartTime", ""),
            user=g("UserName", ""),
            verb=g("Verb", ""),
            api_path=g("APIPath", ""),
            namespace=g("Namespace", ""),
            name=g("Name", ""),
            api_version=g("APIVersion", ""),
            resource=g("Resource", ""),
            subresource=g("SubResource", ""),
            raw=raw,
        ))
    return rows


def top_users(rows: Iterable[ApfRequest], n: int = 5) -> list[UserLoad]:
    """Users ranked by seats in flight (then by request count).

    Rows without a user name (dump fetched without ``includeRequestDetails``)
    are grouped under their flow distinguisher, which is the user name for
    ``ByUser`` FlowSchemas.
    """
    groups: dict[str, list[ApfRequest]] = {}
    for row in rows:
        key = row.user or row.flow_distinguisher or "<unknown>"
        groups.setdefault(key, []).append(row)
    loads = []
    for user, rs in groups.items():
        verbs = Counter(r.verb for r in rs if r.verb)
        resources = Counter(
            (r.resource + ("/" + r.subresource if r.subresource else "")) or r.api_path
            for r in rs if r.resource or r.api_path
        )
        loads.append(UserLoad(
            user=user,
            requests=len(rs),
            queued=sum(1 for r in rs if r.queued),
            executing=sum(1 for r in rs if r.executing),
            seats=sum(max(r.initial_seats, 1) for r in rs),
            flow_schemas=tuple(sorted({r.flow_schema for r in rs if r.flow_schema})),
            priority_levels=tuple(sorted({r.priority_level for r in rs if r.priority_level})),
            top_verbs=tuple(verbs.most_common(3)),
            top_resources=tuple(resources.most_common(3)),
        ))
    loads.sort(key=lambda u: (-u.seats, -u.requests, u.user))
    return loads[:n] if n else loads


# --------------------------------------------------------------------------
# FlowSchema status


def flow_schema_conditions(flow_schema: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """``status.conditions`` of a FlowSchema dict, keyed by condition type."""
    conditions = ((flow_schema.get("status") or {}).get("conditions")) or []
    return {c.get("type", ""): dict(c) for c in conditions if isinstance(c, Mapping)}


def is_dangling(flow_schema: Mapping[str, Any]) -> bool | None:
    """True/False from the ``Dangling`` condition; None when the server has not said."""
    cond = flow_schema_conditions(flow_schema).get("Dangling")
    if cond is None:
        return None
    return str(cond.get("status", "")).lower() == "true"


# --------------------------------------------------------------------------
# Classification


@dataclass(frozen=True)
class RequestAttributes:
    """What APF looks at: who asks, and for what."""

    user: str
    groups: tuple[str, ...] = ()
    verb: str = "get"
    # resource requests
    api_group: str = ""
    resource: str = ""
    subresource: str = ""
    namespace: str = ""
    # non-resource requests (``/readyz``, ``/metrics`` ...)
    path: str = ""
    is_resource_request: bool = True

    @classmethod
    def for_user(cls, user: str, groups: Sequence[str] = (), **kwargs: Any) -> "RequestAttributes":
        """Groups as the apiserver completes them for an authenticated (or impersonated) user."""
        return cls(user=user, groups=tuple(effective_groups(user, groups)), **kwargs)


def effective_groups(user: str, groups: Sequence[str] = ()) -> list[str]:
    out = list(groups)
    if user == "system:anonymous":
        if "system:unauthenticated" not in out:
            out.append("system:unauthenticated")
        return out
    if user.startswith("system:serviceaccount:"):
        parts = user.split(":")
        if len(parts) == 4:
            for g in ("system:serviceaccounts", f"system:serviceaccounts:{parts[2]}"):
                if g not in out:
                    out.append(g)
    if "system:authenticated" not in out:
        out.append("system:authenticated")
    return out


def _contains(values: Sequence[str] | None, value: str, wildcard: str = "*") -> bool:
    values = values or []
    return wildcard in values or value in values


def _subject_matches(subject: Mapping[str, Any], req: RequestAttributes) -> bool:
    kind = subject.get("kind")
    if kind == "User":
        name = (subject.get("user") or {}).get("name")
        return name == "*" or name == req.user
    if kind == "Group":
        name = (subject.get("group") or {}).get("name")
        return name == "*" or name in req.groups
    if kind == "ServiceAccount":
        sa = subject.get("serviceAccount") or {}
        ns, name = sa.get("namespace"), sa.get("name")
        parts = req.user.split(":")
        if len(parts) != 4 or parts[0] != "system" or parts[1] != "serviceaccount":
            return False
        return parts[2] == ns and (name == "*" or parts[3] == name)
    return False


def _resource_rule_matches(rule: Mapping[str, Any], req: RequestAttributes) -> bool:
    if not req.is_resource_request:
        return False
    if not _contains(rule.get("verbs"), req.verb):
        return False
    if not _contains(rule.get("apiGroups"), req.api_group):
        return False
    resources = rule.get("resources") or []
    full = req.resource + ("/" + req.subresource if req.subresource else "")
    if not ("*" in resources or full in resources):
        return False
    if not req.namespace:
        return bool(rule.get("clusterScope"))
    return _contains(rule.get("namespaces"), req.namespace)


def _non_resource_rule_matches(rule: Mapping[str, Any], req: RequestAttributes) -> bool:
    if req.is_resource_request:
        return False
    if not _contains(rule.get("verbs"), req.verb):
        return False
    for pattern in rule.get("nonResourceURLs") or []:
        if pattern == "*" or pattern == req.path:
            return True
        if pattern.endswith("*") and req.path.startswith(pattern.rstrip("*")):
            return True
    return False


def flow_schema_matches(flow_schema: Mapping[str, Any], req: RequestAttributes) -> bool:
    for rule in (flow_schema.get("spec") or {}).get("rules") or []:
        if not any(_subject_matches(s, req) for s in rule.get("subjects") or []):
            continue
        if any(_resource_rule_matches(r, req) for r in rule.get("resourceRules") or []):
            return True
        if any(_non_resource_rule_matches(r, req) for r in rule.get("nonResourceRules") or []):
            return True
    return False


def precedence(flow_schema: Mapping[str, Any]) -> int:
    value = (flow_schema.get("spec") or {}).get("matchingPrecedence")
    return int(value) if value is not None else 1000


def matching_flow_schema(
    flow_schemas: Iterable[Mapping[str, Any]],
    req: RequestAttributes,
    priority_levels: Iterable[str] | None = None,
) -> Mapping[str, Any] | None:
    """The FlowSchema a request lands in, or None (the real server then uses catch-all).

    ``priority_levels``: names of existing PriorityLevelConfigurations; when
    given, FlowSchemas pointing elsewhere (Dangling) are ignored, as the
    apiserver ignores them.
    """
    existing = set(priority_levels) if priority_levels is not None else None
    candidates = []
    for fs in flow_schemas:
        pl = ((fs.get("spec") or {}).get("priorityLevelConfiguration") or {}).get("name")
        if existing is not None and pl not in existing:
            continue
        candidates.append(fs)
    candidates.sort(key=lambda fs: (precedence(fs), (fs.get("metadata") or {}).get("name", "")))
    for fs in candidates:
        if flow_schema_matches(fs, req):
            return fs
    return None
