"""PrometheusClient against a real Prometheus scraping the apiserver stand-in's /metrics."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable, Iterator, TypeVar

import pytest

from bot.core.errors import IntegrationError
from integrations.clients.prometheus import FakePrometheus, Matrix, PrometheusClient, PrometheusError, Scalar, Vector
from tests.support.apiserver import ApiServerStandIn
from bot.compose.sandbox.processes import Prometheus

pytest_plugins = ["tests.support.fixtures_kubernetes"]

T = TypeVar("T")
NOISY = "system:serviceaccount:team-a:noisy-controller"


def eventually(fn: Callable[[], T], *, timeout: float = 15.0, interval: float = 0.2) -> T:
    """Poll ``fn`` until it returns something truthy (a condition with a deadline)."""
    deadline = time.monotonic() + timeout
    last: T = fn()
    while not last and time.monotonic() < deadline:
        time.sleep(interval)
        last = fn()
    assert last, "condition not met before the deadline"
    return last


@pytest.fixture
def prom_proc(apiserver: ApiServerStandIn, tmp_path: Path) -> Iterator[Prometheus]:
    with Prometheus({"apiserver": [f"127.0.0.1:{apiserver.port}"]}, workdir=tmp_path / "prom") as proc:
        yield proc


@pytest.fixture
def prom(prom_proc: Prometheus) -> Iterator[PrometheusClient]:
    client = PrometheusClient(prom_proc.url, timeout=3.0)
    yield client
    client.close()


DISPATCHED = ('topk(5, sum by (flow_schema, priority_level) '
              '(rate(apiserver_flowcontrol_dispatched_requests_total[3s])))')


def test_instant_and_range_queries(prom: PrometheusClient, apiserver: ApiServerStandIn) -> None:
    assert prom.ready() and prom.is_ready()
    apiserver.flood(NOISY, requests=20, queued=5, rate=100.0)
    apiserver.set_request_total("get", "configmaps", 200, 10)

    up = eventually(lambda: prom.query('up{job="apiserver"}'))
    assert isinstance(up, Vector) and up.samples[0].value == 1.0

    # the noisy flow shows up as the top dispatcher, with its labels; rate() divides by the whole
    # window, so it reaches ~100/s once the 3s window is filled with scrapes
    top = eventually(lambda: [s for s in prom.query_vector(DISPATCHED) if s.value > 50])
    assert top[0].labels == {"flow_schema": "service-accounts", "priority_level": "workload-low"}
    assert 50 < top[0].value < 200

    inqueue = prom.query_vector("sum by (flow_schema) (apiserver_flowcontrol_current_inqueue_requests)")
    assert inqueue.by("flow_schema") == {"service-accounts": 5.0}
    nominal = prom.query_value('apiserver_flowcontrol_nominal_limit_seats{priority_level="workload-low"}')
    assert nominal == 245.0  # ceil(600 * 100 / 245), from the bootstrap levels
    assert prom.query_value("absent_metric_never_exported") is None

    scalar = prom.query("scalar(vector(42))")
    assert isinstance(scalar, Scalar) and scalar.value == 42.0

    start = time.time() - 30
    series = 'apiserver_flowcontrol_dispatched_requests_total{flow_schema="service-accounts"}'
    eventually(lambda: [s for s in prom.query_range(series, start, time.time(), 1) if len(s.values) >= 3])
    matrix = prom.query_range(series, start, time.time(), "1s")
    assert isinstance(matrix, Matrix) and len(matrix) == 1
    values = [v for _, v in matrix.series[0].values]
    assert values == sorted(values) and values[-1] > values[0]  # a growing counter
    assert prom.alerts() == []


def test_bad_promql_names_the_query(prom: PrometheusClient) -> None:
    with pytest.raises(PrometheusError) as err:
        prom.query("sum by (flow_schema (oops")
    msg = str(err.value)
    assert "sum by (flow_schema (oops" in msg and prom.base_url in msg and err.value.bad_query
    with pytest.raises(IntegrationError, match="rate"):
        prom.query_range("rate(up)", time.time() - 10, time.time(), 1)


def test_stopped_prometheus_is_an_integration_error(prom: PrometheusClient, prom_proc: Prometheus) -> None:
    prom_proc.stop()
    with pytest.raises(IntegrationError) as err:
        prom.query("up")
    assert "unreachable" in str(err.value) and "'up'" in str(err.value) and prom.base_url in str(err.value)
    assert prom.is_ready() is False
    with pytest.raises(IntegrationError):
        prom.alerts()


def test_fake_prometheus_answers_from_a_dict() -> None:
    fake = FakePrometheus({
        "sum(up)": 3,
        DISPATCHED: [({"flow_schema": "service-accounts", "priority_level": "workload-low"}, 120.0)],
        "broken": PrometheusError("bad", url="x", query="broken"),
    })
    assert fake.query_value("sum(up)") == 3.0
    assert fake.query_vector(" ".join(DISPATCHED.split())).by("flow_schema") == {"service-accounts": 120.0}
    assert fake.query_vector("unknown").samples == ()
    with pytest.raises(IntegrationError):
        fake.query("broken")
    fake.down = True
    with pytest.raises(IntegrationError, match="unreachable"):
        fake.query("sum(up)")
    assert ("query", "sum(up)") in fake.calls
