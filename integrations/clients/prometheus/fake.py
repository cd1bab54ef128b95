"""``FakePrometheus``: the PrometheusClient interface answering from a dict.

``answers`` maps a PromQL string (whitespace-insensitive) to one of:
a number (a one-sample vector with no labels), a list of ``(labels, value)``
pairs (a vector), a ``Vector``/``Matrix``/``Scalar`` result, an exception to
raise, or a callable ``(query, time) -> any of these``.  Unknown queries give
an empty vector (as Prometheus does for absent series), or raise with
``strict=True``.  ``down = True`` makes every call fail like an unreachable
Prometheus.  ``calls`` records ``(method, query)``.
"""

from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from integrations.clients.prometheus.client import (
    Alert,
    Matrix,
    PrometheusClient,
    PrometheusError,
    QueryResult,
    Sample,
    Scalar,
    Series,
    String,
    Vector,
)


def _norm(q: str) -> str:
    return re.sub(r"\s+", " ", q).strip()


class FakePrometheus:
    base_url = "http://fake-prometheus:9090"

    def __init__(self, answers: Mapping[str, Any] | None = None, *, alerts: list[Alert] | None = None,
                 strict: bool = False) -> None:
        self.answers: dict[str, Any] = {_norm(k): v for k, v in (answers or {}).items()}
        self.alerts_list: list[Alert] = list(alerts or [])
        self.strict = strict
        self.down = False
        self.calls: list[tuple[str, str | None]] = []

    def set(self, query: str, answer: Any) -> None:
        self.answers[_norm(query)] = answer

    def _check(self, method: str, query: str | None) -> None:
        self.calls.append((method, query))
        if self.down:
            what = f" for the query {query!r}" if query else ""
            raise PrometheusError(f"Prometheus at {self.base_url} is unreachable{what}: connection refused",
                                  url=self.base_url, query=query)

    def _answer(self, query: str, time: Any, *, range_: bool = False) -> QueryResult:
        key = _norm(query)
        if key not in self.answers:
            if self.strict:
                raise PrometheusError(f"FakePrometheus has no answer for the query {query!r}",
                                      url=self.base_url, query=query)
            return Matrix(()) if range_ else Vector(())
        answer = self.answers[key]
        if callable(answer) and not isinstance(answer, type):
            answer = answer(query, time)
        if isinstance(answer, BaseException) or (isinstance(answer, type) and issubclass(answer, BaseException)):
            raise answer
        if isinstance(answer, (Vector, Matrix, Scalar, String)):
            return answer
        if isinstance(answer, (int, float)):
            return Vector((Sample({}, float(answer), 0.0),))
        if isinstance(answer, list):
            if range_:
                return Matrix(tuple(Series(dict(l), tuple(v)) for l, v in answer))
            return Vector(tuple(Sample(dict(l), float(v), 0.0) for l, v in answer))
        raise TypeError(f"FakePrometheus cannot answer with {answer!r}")

    def query(self, promql: str, time: Any = None, *, timeout: float | None = None) -> QueryResult:
        self._check("query", promql)
        return self._answer(promql, time)

    query_vector = PrometheusClient.query_vector
    query_value = PrometheusClient.query_value

    def query_range(self, promql: str, start: Any, end: Any, step: Any = 15, *,
                    timeout: float | None = None) -> Matrix:
        self._check("query_range", promql)
        result = self._answer(promql, (start, end, step), range_=True)
        if isinstance(result, Vector):
            return Matrix(tuple(Series(s.labels, ((s.timestamp, s.value),)) for s in result.samples))
        assert isinstance(result, Matrix)
        return result

    def alerts(self) -> list[Alert]:
        self._check("alerts", None)
        return list(self.alerts_list)

    def ready(self) -> bool:
        self._check("ready", None)
        return True

    def is_ready(self) -> bool:
        return not self.down

    def close(self) -> None:
        pass
