"""pytest fixtures around ``tests.support.components``.

Use them from a test module (or a conftest) with::

    pytest_plugins = ["tests.support.fixtures_components"]

Every fixture closes what it started on teardown, pass or fail: processes
stopped, temporary directories removed.  Factories let one test start
several components with its own arguments; everything a factory made is
closed at the end of the test, last started first.
"""

from __future__ import annotations

import contextlib
from typing import Any, Callable, Iterator, Mapping, Sequence

import pytest

from .components import (
    Alertmanager,
    EtcdCluster,
    HAProxy,
    HAProxyBackend,
    Prometheus,
    StubApiserver,
    WebhookRecorder,
)


@pytest.fixture
def etcd_cluster_factory() -> Iterator[Callable[..., EtcdCluster]]:
    """``make(n=3, **kwargs)`` → a started, healthy ``EtcdCluster``."""
    with contextlib.ExitStack() as stack:

        def make(n: int = 3, **kwargs: Any) -> EtcdCluster:
            cluster = EtcdCluster(n, **kwargs)
            stack.callback(cluster.close)
            return cluster.start()

        yield make


@pytest.fixture
def etcd_cluster(etcd_cluster_factory: Callable[..., EtcdCluster]) -> EtcdCluster:
    """A started, healthy 3-member etcd cluster, private to the test."""
    return etcd_cluster_factory(3)


@pytest.fixture
def stub_apiserver_factory() -> Iterator[Callable[..., StubApiserver]]:
    """``make(name, ready=True)`` → a running apiserver stand-in (``/readyz``, ``X-Served-By``)."""
    with contextlib.ExitStack() as stack:

        def make(name: str, *, ready: bool = True) -> StubApiserver:
            server = StubApiserver(name, ready=ready)
            stack.callback(server.close)
            return server.start()

        yield make


@pytest.fixture
def haproxy_factory() -> Iterator[Callable[..., HAProxy]]:
    """``make(backends, **kwargs)`` → a running HAProxy; ``backends`` are ``HAProxyBackend``s."""
    with contextlib.ExitStack() as stack:

        def make(backends: Sequence[HAProxyBackend], **kwargs: Any) -> HAProxy:
            proxy = HAProxy(backends, **kwargs)
            stack.callback(proxy.close)
            return proxy.start()

        yield make


@pytest.fixture
def webhook_recorder() -> Iterator[WebhookRecorder]:
    """A loopback HTTP server recording every POST (``.requests``, ``.wait_for(pred)``)."""
    with WebhookRecorder() as recorder:
        yield recorder


@pytest.fixture
def alertmanager_factory() -> Iterator[Callable[..., Alertmanager]]:
    """``make(webhook_url, bearer_token=None, **kwargs)`` → a ready Alertmanager."""
    with contextlib.ExitStack() as stack:

        def make(webhook_url: str, bearer_token: str | None = None, **kwargs: Any) -> Alertmanager:
            am = Alertmanager(webhook_url, bearer_token, **kwargs)
            stack.callback(am.close)
            return am.start()

        yield make


@pytest.fixture
def prometheus_factory() -> Iterator[Callable[..., Prometheus]]:
    """``make(scrape_targets={job: [host:port]}, rules=..., alertmanager="host:port")`` → a ready Prometheus."""
    with contextlib.ExitStack() as stack:

        def make(scrape_targets: Mapping[str, Sequence[str]] | None = None, **kwargs: Any) -> Prometheus:
            prom = Prometheus(scrape_targets, **kwargs)
            stack.callback(prom.close)
            return prom.start()

        yield make
