"""pytest fixtures for the Kubernetes apiserver stand-in.

Use with ``pytest_plugins = ["tests.support.fixtures_kubernetes"]`` or import
the fixtures into a conftest.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterator

import pytest

from tests.support.apiserver import ApiServerStandIn


@pytest.fixture
def apiserver() -> Iterator[ApiServerStandIn]:
    """A running stand-in (Kubernetes 1.30, flowcontrol v1, bootstrap APF objects)."""
    server = ApiServerStandIn().start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def apiserver_kubeconfig(apiserver: ApiServerStandIn, tmp_path: Path) -> Path:
    """A kubeconfig file whose current context points at ``apiserver``."""
    return apiserver.write_kubeconfig(tmp_path / "kubeconfig")
