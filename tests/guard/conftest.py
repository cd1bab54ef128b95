"""A bot with the admission guard on, and a kube-apiserver stand-in that sends AdmissionReviews."""

from __future__ import annotations

import json
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot, build_bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.conftest import make_settings

CLUSTER = "prod-1"


def review(operation: str, resource: str, *, user: str = "alice", namespace: str = "", name: str = "x",
           group: str = "", dry_run: bool = False) -> dict[str, Any]:
    """An ``admission.k8s.io/v1`` AdmissionReview as the kube-apiserver sends it."""
    return {"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview", "request": {
        "uid": str(uuid.uuid4()), "operation": operation, "name": name, "namespace": namespace,
        "kind": {"group": group, "version": "v1", "kind": resource.rstrip("s").title()},
        "resource": {"group": group, "version": "v1", "resource": resource},
        "userInfo": {"username": user, "groups": ["system:authenticated"]}, "dryRun": dry_run}}


class Apiserver:
    """Posts reviews to the guard the way a kube-apiserver would, and reads the answers."""

    def __init__(self, client: TestClient, cluster: str = CLUSTER) -> None:
        self.client = client
        self.cluster = cluster

    def send(self, operation: str, resource: str, **kw: Any) -> dict[str, Any]:
        answer = self.client.post(f"/admission/{self.cluster}", content=json.dumps(review(operation, resource, **kw)))
        assert answer.status_code == 200, answer.text
        return answer.json()["response"]  # type: ignore[no-any-return]

    def allowed(self, operation: str, resource: str, **kw: Any) -> bool:
        return bool(self.send(operation, resource, **kw)["allowed"])


@pytest.fixture
def guard_settings(sqlite_url: str) -> Settings:
    settings = make_settings(sqlite_url, default_cluster=CLUSTER)
    settings.guard.enabled = True
    settings.guard.breaker.per_client = 100
    settings.guard.breaker.cluster_wide = 300
    settings.guard.breaker.window_seconds = 60
    return settings


@pytest.fixture
def guarded(guard_settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    b = build_bot(guard_settings, clock=clock)
    yield b
    b.close()


@pytest.fixture
def gchat(guarded: Bot) -> MemoryChat:
    return MemoryChat(guarded.dispatcher, workers=guarded.workers)


@pytest.fixture
def apiserver(guarded: Bot) -> Iterator[Apiserver]:
    with TestClient(guarded.services.extras["guard_app"]) as client:
        guarded.services.extras["guard"]  # the guard is on
        yield Apiserver(client)
