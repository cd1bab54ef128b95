"""Prometheus HTTP API client (httpx) and a fake for unit tests."""

from integrations.clients.prometheus.client import (
    Alert,
    Matrix,
    PrometheusClient,
    PrometheusError,
    PrometheusTimeout,
    QueryResult,
    Sample,
    Scalar,
    Series,
    String,
    Vector,
    parse_result,
)
from integrations.clients.prometheus.fake import FakePrometheus

__all__ = [
    "Alert", "FakePrometheus", "Matrix", "PrometheusClient", "PrometheusError", "PrometheusTimeout",
    "QueryResult", "Sample", "Scalar", "Series", "String", "Vector", "parse_result",
]
