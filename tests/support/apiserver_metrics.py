"""The stand-in's ``/metrics`` and APF ``dump_requests``: settable series and in-flight rows.

``SettableMetrics`` is mixed into ``ApiServerStandIn``; it needs the stand-in's
``_lock``, ``_series``, ``_inflight``, ``_loop``, ``_in_loop``, ``_live`` and ``classify``.
"""

from __future__ import annotations

import datetime as _dt
import math
import time
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping, Sequence

from integrations.clients.kubernetes.apf import DUMP_REQUESTS_COLUMNS, DUMP_REQUESTS_DETAIL_COLUMNS
from tests.support.apiserver_apf import SERVER_CONCURRENCY_LIMIT

# --------------------------------------------------------------------------
# Metrics

_METRIC_META = {
    "apiserver_flowcontrol_dispatched_requests_total": ("counter", "Number of requests executed by API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_rejected_requests_total": ("counter", "Number of requests rejected by API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_inqueue_requests": ("gauge", "Number of requests currently pending in queues of the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_executing_requests": ("gauge", "Number of requests in initial (for a WATCH) or any (for a non-WATCH) execution stage in the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_current_executing_seats": ("gauge", "Concurrency (number of seats) occupied by the currently executing (initial stage for a WATCH, any stage otherwise) requests in the API Priority and Fairness subsystem"),
    "apiserver_flowcontrol_nominal_limit_seats": ("gauge", "Nominal number of execution seats configured for each priority level"),
    "apiserver_request_total": ("counter", "Counter of apiserver requests broken out for each verb, dry run value, group, version, resource, scope, component, and HTTP response code."),
    "apiserver_request_terminations_total": ("counter", "Number of requests which apiserver terminated in self-defense."),
}


@dataclass
class _Series:
    value: float
    rate: float = 0.0  # per second, for counters that grow on their own
    since: float = field(default_factory=time.monotonic)

    def current(self) -> float:
        return self.value + self.rate * (time.monotonic() - self.since)


def _label_key(labels: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _fmt(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if float(value).is_integer() and abs(value) < 1e15:
        return str(int(value))
    return repr(float(value))


# --------------------------------------------------------------------------
# dump_requests


def _go_time(t: _dt.datetime | None) -> str:
    """time.RFC3339Nano in UTC, as Go prints it (trailing zeros trimmed)."""
    if t is None:
        return "0001-01-01T00:00:00Z"
    t = t.astimezone(_dt.timezone.utc)
    base = t.strftime("%Y-%m-%dT%H:%M:%S")
    frac = f"{t.microsecond:06d}000".rstrip("0")
    return base + ("." + frac if frac else "") + "Z"


def _tabwriter(lines: Sequence[Sequence[str]], minwidth: int = 8, padding: int = 1) -> str:
    """Go text/tabwriter with cells joined by ",\\t" (all lines have the same column count)."""
    out_cells = [[c + "," for c in line[:-1]] + [line[-1]] if line else [] for line in lines]
    ncols = max((len(l) for l in out_cells), default=0)
    widths = []
    for j in range(ncols - 1):
        w = minwidth
        for l in out_cells:
            if j < len(l) - 1:
                w = max(w, len(l[j]) + padding)
        widths.append(w)
    text = []
    for l in out_cells:
        parts = [l[j].ljust(widths[j]) for j in range(len(l) - 1)] + ([l[-1]] if l else [])
        text.append("".join(parts))
    return "\n".join(text) + ("\n" if text else "")


@dataclass
class InflightRequest:
    """A request the stand-in pretends is queued or executing (one dump row)."""

    user: str
    flow_schema: str
    priority_level: str
    verb: str = "list"
    resource: str = "pods"
    namespace: str = ""
    name: str = ""
    api_group: str = ""
    api_version: str = "v1"
    subresource: str = ""
    queue_index: int = 0
    index_in_queue: int = -1  # -1: executing
    flow_distinguisher: str | None = None  # default: the user (ByUser)
    initial_seats: int = 1
    final_seats: int = 0
    additional_latency: str = "0s"
    arrive_time: _dt.datetime = field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))
    start_time: _dt.datetime | None = None  # None + index_in_queue >= 0: queued

    @property
    def api_path(self) -> str:
        prefix = f"/apis/{self.api_group}/{self.api_version}" if self.api_group else f"/api/{self.api_version}"
        ns = f"/namespaces/{self.namespace}" if self.namespace else ""
        name = f"/{self.name}" if self.name else ""
        sub = f"/{self.subresource}" if self.subresource else ""
        return f"{prefix}{ns}/{self.resource}{name}{sub}"

    def cells(self, details: bool) -> list[str]:
        queued = self.index_in_queue >= 0
        start = None if queued else (self.start_time or self.arrive_time)
        gv = f"{self.api_group}/{self.api_version}" if self.api_group else self.api_version
        cells = [
            self.priority_level, self.flow_schema, str(self.queue_index), str(self.index_in_queue),
            self.user if self.flow_distinguisher is None else self.flow_distinguisher,
            _go_time(self.arrive_time), str(self.initial_seats), str(self.final_seats),
            self.additional_latency, _go_time(start),
        ]
        if details:
            cells += [self.user, self.verb, self.api_path, self.namespace, self.name, gv,
                      self.resource, self.subresource]
        return cells


class SettableMetrics:
    """Series and in-flight rows a test sets; rendered as the apiserver renders them."""

    _lock: Any
    _series: dict[str, dict[tuple, _Series]]
    _inflight: list[InflightRequest]
    _loop: Any

    # ---- metrics
    def set_metric(self, name: str, labels: Mapping[str, str] | None = None, value: float = 0.0,
                   *, rate: float = 0.0) -> None:
        """Set a series; ``rate`` (per second) makes a counter keep growing on its own."""
        with self._lock:
            self._series.setdefault(name, {})[_label_key(labels or {})] = _Series(float(value), float(rate))

    def add_metric(self, name: str, labels: Mapping[str, str] | None = None, delta: float = 1.0,
                   *, rate: float | None = None) -> float:
        with self._lock:
            key = _label_key(labels or {})
            old = self._series.setdefault(name, {}).get(key)
            current = old.current() if old else 0.0
            new = _Series(current + delta, old.rate if (old and rate is None) else (rate or 0.0))
            self._series[name][key] = new
            return new.value

    def metric_value(self, name: str, labels: Mapping[str, str] | None = None) -> float | None:
        with self._lock:
            s = self._series.get(name, {}).get(_label_key(labels or {}))
            return s.current() if s else None

    def clear_metrics(self) -> None:
        with self._lock:
            self._series.clear()

    def set_dispatched(self, flow_schema: str, priority_level: str, value: float, *, rate: float = 0.0) -> None:
        self.set_metric("apiserver_flowcontrol_dispatched_requests_total",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value, rate=rate)

    def set_rejected(self, flow_schema: str, priority_level: str, reason: str, value: float,
                     *, rate: float = 0.0) -> None:
        self.set_metric("apiserver_flowcontrol_rejected_requests_total",
                        {"flow_schema": flow_schema, "priority_level": priority_level, "reason": reason},
                        value, rate=rate)

    def set_inqueue(self, flow_schema: str, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_current_inqueue_requests",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value)

    def set_executing_seats(self, flow_schema: str, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_current_executing_seats",
                        {"flow_schema": flow_schema, "priority_level": priority_level}, value)

    def set_nominal_limit(self, priority_level: str, value: float) -> None:
        self.set_metric("apiserver_flowcontrol_nominal_limit_seats", {"priority_level": priority_level}, value)

    def set_request_total(self, verb: str, resource: str, code: str | int, value: float, *,
                          rate: float = 0.0, group: str = "", version: str = "v1") -> None:
        self.set_metric("apiserver_request_total",
                        {"verb": verb.upper(), "resource": resource, "code": str(code), "group": group,
                         "version": version, "scope": "cluster", "component": "apiserver",
                         "dry_run": "", "subresource": ""}, value, rate=rate)

    def set_terminations(self, value: float, *, verb: str = "LIST", resource: str = "pods",
                         code: str | int = 429, rate: float = 0.0) -> None:
        self.set_metric("apiserver_request_terminations_total",
                        {"verb": verb, "resource": resource, "code": str(code), "group": "",
                         "version": "v1", "scope": "cluster", "component": "apiserver", "subresource": ""},
                        value, rate=rate)

    def _nominal_limits(self) -> dict[str, float]:
        pls = self._in_loop(lambda: self._live("prioritylevelconfigurations"))
        shares = {}
        for p in pls:
            spec = p.get("spec") or {}
            if spec.get("type") == "Limited":
                ncs = (spec.get("limited") or {}).get("nominalConcurrencyShares")
                shares[p["metadata"]["name"]] = 30 if ncs is None else int(ncs)
            else:
                shares[p["metadata"]["name"]] = 0
        total = sum(shares.values()) or 1
        return {name: math.ceil(SERVER_CONCURRENCY_LIMIT * ncs / total) for name, ncs in shares.items()}

    def render_metrics(self) -> str:
        with self._lock:
            series = {name: dict(s) for name, s in self._series.items()}
        # nominal_limit_seats follows the stored PLCs unless a value was set by hand
        computed = self._nominal_limits() if self._loop is not None else {}
        nominal = series.setdefault("apiserver_flowcontrol_nominal_limit_seats", {})
        for pl, seats in computed.items():
            nominal.setdefault(_label_key({"priority_level": pl}), _Series(float(seats)))
        lines: list[str] = []
        for name in sorted(series):
            kind, help_text = _METRIC_META.get(name, ("untyped", name))
            lines.append(f"# HELP {name} {help_text}")
            lines.append(f"# TYPE {name} {kind}")
            for key, s in sorted(series[name].items()):
                labels = ",".join(f'{k}="{_escape(v)}"' for k, v in key)
                lines.append(f"{name}{{{labels}}} {_fmt(s.current())}" if labels else f"{name} {_fmt(s.current())}")
        return "\n".join(lines) + "\n"

    # ---- APF dump
    def add_inflight(self, *requests: InflightRequest) -> None:
        with self._lock:
            self._inflight.extend(requests)

    def set_inflight(self, requests: Iterable[InflightRequest]) -> None:
        with self._lock:
            self._inflight = list(requests)

    def clear_inflight(self) -> None:
        self.set_inflight([])

    def render_dump_requests(self, details: bool = True) -> str:
        header = list(DUMP_REQUESTS_COLUMNS) + (list(DUMP_REQUESTS_DETAIL_COLUMNS) if details else [])
        with self._lock:
            rows = [r.cells(details) for r in self._inflight]
        return _tabwriter([header] + rows)

    # ---- scenario
    def flood(
        self,
        user: str,
        groups: Sequence[str] = (),
        *,
        requests: int = 40,
        queued: int | None = None,
        rate: float = 200.0,
        rejected_rate: float = 20.0,
        verb: str = "list",
        resource: str = "pods",
        namespace: str = "",
    ) -> dict:
        """Simulate one client flooding the apiserver.

        The client's requests are classified like real ones (its current
        FlowSchema and priority level); that flow's dispatched/rejected
        counters start growing at ``rate``/``rejected_rate`` per second, its
        in-queue and executing gauges rise, ``apiserver_request_total`` for
        the verb/resource grows (200s and 429s), and the dump gets
        ``requests`` rows for the user (``queued`` of them waiting).
        Returns ``{"flow_schema", "priority_level", "user"}``.
        """
        fs = self.classify(user, groups, verb=verb, resource=resource, namespace=namespace)
        fs_name = fs["metadata"]["name"] if fs else "catch-all"
        pl_name = fs["spec"]["priorityLevelConfiguration"]["name"] if fs else "catch-all"
        by = ((fs or {}).get("spec", {}).get("distinguisherMethod") or {}).get("type")
        distinguisher = user if by == "ByUser" else (namespace if by == "ByNamespace" else "")
        queued = requests // 2 if queued is None else queued
        labels = {"flow_schema": fs_name, "priority_level": pl_name}
        self.add_metric("apiserver_flowcontrol_dispatched_requests_total", labels, requests, rate=rate)
        self.add_metric("apiserver_flowcontrol_rejected_requests_total", {**labels, "reason": "queue-full"},
                        0, rate=rejected_rate)
        self.add_metric("apiserver_flowcontrol_current_inqueue_requests", labels, queued)
        self.add_metric("apiserver_flowcontrol_current_executing_seats", labels, requests - queued)
        self.add_metric("apiserver_flowcontrol_current_executing_requests", labels, requests - queued)
        req_labels = {"verb": verb.upper(), "resource": resource, "group": "", "version": "v1",
                      "scope": "namespace" if namespace else "cluster", "component": "apiserver",
                      "dry_run": "", "subresource": ""}
        self.add_metric("apiserver_request_total", {**req_labels, "code": "200"}, requests, rate=rate)
        self.add_metric("apiserver_request_total", {**req_labels, "code": "429"}, 0, rate=rejected_rate)
        self.add_metric("apiserver_request_terminations_total", {**req_labels, "code": "429"}, 0,
                        rate=rejected_rate)
        now = _dt.datetime.now(_dt.timezone.utc)
        rows = []
        for i in range(requests):
            waiting = i < queued
            rows.append(InflightRequest(
                user=user, flow_schema=fs_name, priority_level=pl_name, verb=verb, resource=resource,
                namespace=namespace, queue_index=0 if waiting else 0, index_in_queue=i if waiting else -1,
                flow_distinguisher=distinguisher, arrive_time=now - _dt.timedelta(milliseconds=10 * i),
                start_time=None if waiting else now))
        self.add_inflight(*rows)
        return {"flow_schema": fs_name, "priority_level": pl_name, "user": user}
