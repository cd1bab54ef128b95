"""A small Prometheus HTTP API client (httpx, synchronous).

``query`` (instant, optional evaluation time), ``query_range``, ``alerts`` and
``ready``.  Results are typed: ``Vector`` (samples with labels and value),
``Matrix`` (series of (timestamp, value)), ``Scalar`` and ``String``.  Every
failure -- Prometheus down, timeout, HTTP error, ``status: error`` answers,
bad PromQL -- is a ``PrometheusError`` (an ``IntegrationError``) or
``PrometheusTimeout`` (an ``IntegrationTimeout``) whose sentence names the
URL and the query.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from typing import Any, Iterator, Mapping, Union

import httpx

from bot.core.errors import IntegrationError, IntegrationTimeout


class PrometheusError(IntegrationError):
    def __init__(self, message: str, *, url: str, query: str | None = None, status: int | None = None,
                 error_type: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.query = query
        self.status = status
        self.error_type = error_type  # Prometheus errorType: bad_data, timeout, execution ...

    @property
    def bad_query(self) -> bool:
        """The PromQL itself is wrong (a fix in the query, not in Prometheus)."""
        return self.error_type == "bad_data"


class PrometheusTimeout(IntegrationTimeout):
    def __init__(self, message: str, *, url: str, query: str | None = None) -> None:
        super().__init__(message)
        self.url = url
        self.query = query


@dataclass(frozen=True)
class Sample:
    labels: Mapping[str, str]
    value: float
    timestamp: float

    @property
    def metric(self) -> str | None:
        return self.labels.get("__name__")


@dataclass(frozen=True)
class Series:
    labels: Mapping[str, str]
    values: tuple[tuple[float, float], ...]

    @property
    def last(self) -> float | None:
        return self.values[-1][1] if self.values else None


@dataclass(frozen=True)
class Vector:
    samples: tuple[Sample, ...] = ()
    result_type: str = "vector"

    def __iter__(self) -> Iterator[Sample]:
        return iter(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def values(self) -> list[float]:
        return [s.value for s in self.samples]

    def by(self, label: str) -> dict[str, float]:
        """``{label value: sample value}`` (last one wins on duplicates)."""
        return {s.labels.get(label, ""): s.value for s in self.samples}


@dataclass(frozen=True)
class Matrix:
    series: tuple[Series, ...] = ()
    result_type: str = "matrix"

    def __iter__(self) -> Iterator[Series]:
        return iter(self.series)

    def __len__(self) -> int:
        return len(self.series)


@dataclass(frozen=True)
class Scalar:
    value: float
    timestamp: float
    result_type: str = "scalar"


@dataclass(frozen=True)
class String:
    value: str
    timestamp: float
    result_type: str = "string"


QueryResult = Union[Vector, Matrix, Scalar, String]


@dataclass(frozen=True)
class Alert:
    labels: Mapping[str, str]
    annotations: Mapping[str, str]
    state: str  # pending | firing
    active_at: str | None
    value: float | None

    @property
    def name(self) -> str:
        return self.labels.get("alertname", "")


def _float(v: Any) -> float:
    try:
        return float(v)
    except (TypeError, ValueError):
        return math.nan


def parse_result(data: Mapping[str, Any]) -> QueryResult:
    """Turn the ``data`` member of a query answer into a typed result."""
    rtype = data.get("resultType")
    result = data.get("result")
    if rtype == "vector":
        return Vector(tuple(Sample(dict(r.get("metric") or {}), _float(r["value"][1]), float(r["value"][0]))
                            for r in result or []))
    if rtype == "matrix":
        return Matrix(tuple(Series(dict(r.get("metric") or {}),
                                   tuple((float(t), _float(v)) for t, v in r.get("values") or []))
                            for r in result or []))
    if rtype in ("scalar", "string"):
        if not isinstance(result, list) or len(result) != 2:
            raise ValueError(f"a {rtype} result is [time, value], not {result!r}")
        if rtype == "scalar":
            return Scalar(_float(result[1]), float(result[0]))
        return String(str(result[1]), float(result[0]))
    raise ValueError(f"unknown resultType {rtype!r}")


def _ts(t: datetime | float | int | str | None) -> str | None:
    if t is None:
        return None
    if isinstance(t, datetime):
        if t.tzinfo is None:
            t = t.replace(tzinfo=timezone.utc)
        return f"{t.timestamp():.3f}"
    return str(t)


def _step(step: timedelta | float | int | str) -> str:
    if isinstance(step, timedelta):
        return f"{step.total_seconds():g}"
    return str(step)


class PrometheusClient:
    def __init__(self, base_url: str, *, timeout: float = 5.0, headers: Mapping[str, str] | None = None,
                 transport: httpx.BaseTransport | None = None, verify: bool = True) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, headers=dict(headers or {}),
                                  transport=transport, verify=verify)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> "PrometheusClient":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    # ---- transport
    def _get(self, path: str, params: Mapping[str, Any] | None, *, what: str, query: str | None,
             timeout: float | None) -> Any:
        url = f"{self.base_url}{path}"
        subject = f"{what} {query!r}" if query is not None else what
        try:
            response = self._http.get(path, params={k: v for k, v in (params or {}).items() if v is not None},
                                      timeout=self.timeout if timeout is None else timeout)
        except httpx.TimeoutException as e:
            raise PrometheusTimeout(
                f"Prometheus at {url} did not answer {subject} within "
                f"{self.timeout if timeout is None else timeout:g}s", url=url, query=query) from e
        except httpx.HTTPError as e:
            raise PrometheusError(f"Prometheus at {url} is unreachable for {subject}: {str(e) or type(e).__name__}",
                                  url=url, query=query) from e
        try:
            body = response.json()
        except ValueError:
            body = None
        if isinstance(body, dict) and body.get("status") == "error":
            etype = body.get("errorType")
            if etype == "timeout":
                raise PrometheusTimeout(f"Prometheus at {url} timed out evaluating {subject}: {body.get('error')}",
                                        url=url, query=query)
            raise PrometheusError(
                f"Prometheus at {url} rejected {subject}: {etype or 'error'}: {body.get('error')}",
                url=url, query=query, status=response.status_code, error_type=etype)
        if response.status_code >= 400 or not isinstance(body, dict):
            snippet = response.text.strip()[:200]
            raise PrometheusError(
                f"Prometheus at {url} answered HTTP {response.status_code} to {subject}"
                + (f": {snippet}" if snippet else ""), url=url, query=query, status=response.status_code)
        return body.get("data")

    # ---- API
    def query(self, promql: str, time: datetime | float | None = None, *,
              timeout: float | None = None) -> QueryResult:
        """Instant query (``/api/v1/query``), evaluated now or at ``time``."""
        data = self._get("/api/v1/query", {"query": promql, "time": _ts(time)}, what="the query",
                         query=promql, timeout=timeout)
        return self._typed(data, promql, "/api/v1/query")

    def query_vector(self, promql: str, time: datetime | float | None = None) -> Vector:
        """Instant query that must give a vector (a scalar becomes a one-sample vector)."""
        result = self.query(promql, time)
        if isinstance(result, Scalar):
            return Vector((Sample({}, result.value, result.timestamp),))
        if not isinstance(result, Vector):
            raise PrometheusError(f"Prometheus at {self.base_url} answered a {result.result_type} to the "
                                  f"query {promql!r}; a vector was expected", url=self.base_url, query=promql)
        return result

    def query_value(self, promql: str, time: datetime | float | None = None) -> float | None:
        """The single value of an instant query; None when it gives no sample."""
        vec = self.query_vector(promql, time)
        if len(vec) > 1:
            raise PrometheusError(f"Prometheus at {self.base_url} answered {len(vec)} series to the query "
                                  f"{promql!r}; one was expected", url=self.base_url, query=promql)
        return vec.samples[0].value if vec.samples else None

    def query_range(self, promql: str, start: datetime | float, end: datetime | float,
                    step: timedelta | float | str = 15, *, timeout: float | None = None) -> Matrix:
        data = self._get("/api/v1/query_range",
                         {"query": promql, "start": _ts(start), "end": _ts(end), "step": _step(step)},
                         what="the range query", query=promql, timeout=timeout)
        result = self._typed(data, promql, "/api/v1/query_range")
        if not isinstance(result, Matrix):
            raise PrometheusError(f"Prometheus at {self.base_url} answered a {result.result_type} to the range "
                                  f"query {promql!r}", url=self.base_url, query=promql)
        return result

    def _typed(self, data: Any, promql: str, path: str) -> QueryResult:
        try:
            return parse_result(data or {})
        except (ValueError, KeyError, IndexError, TypeError) as e:
            raise PrometheusError(f"Prometheus at {self.base_url}{path} answered the query {promql!r} with "
                                  f"something unreadable: {e}", url=self.base_url + path, query=promql) from e

    def alerts(self) -> list[Alert]:
        data = self._get("/api/v1/alerts", None, what="the alert list", query=None, timeout=None) or {}
        out = []
        for a in data.get("alerts") or []:
            value = a.get("value")
            out.append(Alert(dict(a.get("labels") or {}), dict(a.get("annotations") or {}), a.get("state", ""),
                             a.get("activeAt"), _float(value) if value is not None else None))
        return out

    def ready(self) -> bool:
        """True when ``/-/ready`` says 200; raises when Prometheus cannot be reached."""
        url = f"{self.base_url}/-/ready"
        try:
            response = self._http.get("/-/ready")
        except httpx.TimeoutException as e:
            raise PrometheusTimeout(f"Prometheus at {url} did not answer the readiness check within "
                                    f"{self.timeout:g}s", url=url) from e
        except httpx.HTTPError as e:
            raise PrometheusError(f"Prometheus at {url} is unreachable for the readiness check: {e}", url=url) from e
        return response.status_code == 200

    def is_ready(self) -> bool:
        """Like ``ready`` but never raises: unreachable is not ready."""
        try:
            return self.ready()
        except IntegrationError:
            return False
