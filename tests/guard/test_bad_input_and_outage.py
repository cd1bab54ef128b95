"""Bad AdmissionReviews get 400 with the field; the bot's own outage never blocks the cluster."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import OperationalError
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from tests.guard.conftest import Apiserver, review


@pytest.mark.parametrize("body, error", [
    (b"{not json", "malformed AdmissionReview: (body): expected a JSON AdmissionReview."),
    (b"[]", "malformed AdmissionReview: (body): expected a JSON object."),
    (json.dumps({**review("DELETE", "pods"), "kind": "Pod"}).encode(),
     "malformed AdmissionReview: apiVersion/kind: expected admission.k8s.io/v1 AdmissionReview."),
    (json.dumps({"apiVersion": "admission.k8s.io/v1", "kind": "AdmissionReview"}).encode(),
     "malformed AdmissionReview: request: expected an object."),
    (json.dumps(review("ERASE", "pods")).encode(),
     "malformed AdmissionReview: request.operation: expected one of CREATE, UPDATE, DELETE, CONNECT."),
    (json.dumps(review("DELETE", "")).encode(),
     "malformed AdmissionReview: request.resource.resource: expected a non-empty string."),
    (json.dumps({**review("DELETE", "pods"), "request": {**review("DELETE", "pods")["request"],
                                                           "userInfo": {"username": "a", "groups": "x"}}}).encode(),
     "malformed AdmissionReview: request.userInfo.groups: expected a list of strings."),
    (b"[" * 100_000, "malformed AdmissionReview: (body): expected JSON nested less deeply."),
])
def test_a_malformed_review_gets_400_naming_the_field(apiserver: Apiserver, guarded: Bot, body: bytes,
                                                      error: str) -> None:
    answer = apiserver.client.post("/admission/prod-1", content=body)
    assert answer.status_code == 400 and answer.json() == {"error": error}
    assert guarded.services.extras["guard"].counts[("prod-1", "invalid", "malformed")] == 1


def test_an_unknown_cluster_or_endpoint_is_a_400_or_404_with_a_sentence(apiserver: Apiserver) -> None:
    answer = apiserver.client.post("/admission/nowhere", content=json.dumps(review("DELETE", "pods")))
    assert answer.status_code == 400
    assert answer.json()["error"] == ("unknown cluster `nowhere` in the webhook URL; expected one of prod-1 "
                                      "(/admission/CLUSTER).")
    assert apiserver.client.get("/admission/prod-1").status_code == 404


def test_kinds_outside_the_lists_are_allowed_without_reading_any_state(apiserver: Apiserver, guarded: Bot) -> None:
    assert guarded.services.extras["guard"].state is None  # not even read once yet
    assert apiserver.allowed("CREATE", "configmaps", namespace="apps")
    assert apiserver.allowed("DELETE", "secrets", namespace="apps")
    assert guarded.services.extras["guard"].counts[("prod-1", "allow", "outside-lists")] == 2


def test_with_the_database_down_the_guard_answers_allow_and_counts_it(gchat: MemoryChat, apiserver: Apiserver,
                                                                      guarded: Bot, clock: FakeClock,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    gchat.say("carol", "/incident declare etcd latency --severity sev1 --cluster prod-1")
    assert not apiserver.allowed("DELETE", "nodes", name="node-1")

    def database_down(*_: object, **__: object) -> None:
        raise OperationalError("SELECT", {}, Exception("connection refused"))

    monkeypatch.setattr("bot.compose.app.admission.load_state", database_down)
    clock.advance(5)
    gchat.pump()  # the refresh fails: the last state is still young enough to use
    assert not apiserver.allowed("DELETE", "nodes", name="node-1")
    clock.advance(6)
    gchat.pump()
    answer = apiserver.send("DELETE", "nodes", name="node-1")
    assert answer["allowed"] is True
    assert guarded.services.extras["guard"].counts[("prod-1", "allow", "state-unavailable")] == 1
    metrics = TestClient(__import__("bot.compose.app.http", fromlist=["build_http_app"]).build_http_app(guarded)).get(
        "/metrics").text
    assert 'incident_bot_guard_decisions_total{cluster="prod-1",decision="allow",reason="state-unavailable"} 1.0' \
        in metrics
    assert 'incident_bot_guard_decisions_total{cluster="prod-1",decision="deny",reason="freeze"} 2.0' in metrics
