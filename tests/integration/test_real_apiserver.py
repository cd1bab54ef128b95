"""The Kubernetes client, APF and the bot's RBAC against a real kube-apiserver.

The session's kube-apiserver (built from ``k8s.io/kubernetes`` by setup, ``tests.support.
kube_apiserver``) validates objects, computes FlowSchema status, classifies requests with API
Priority and Fairness and authorizes with RBAC: everything here is the real server's answer.
The bot acts with its own least-privilege user (``deploy/rbac/incident-bot.yaml``); the admin
only sets the scene. Object names are unique per test, so the shared server stays clean.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from bot.core.errors import IntegrationError
from bot.compose.sandbox.processes import wait_until
from integrations.clients.kubernetes import KubernetesClient, connect
from tests.integration.test_kubernetes_client import throttle_fs, throttle_plc
from tests.support.kube_apiserver import RealCluster


@pytest.fixture
def bot(bot_kubeconfig: Path) -> Iterator[KubernetesClient]:
    client = connect(str(bot_kubeconfig), timeout=10.0)
    yield client
    client.close()


@pytest.fixture
def name() -> str:
    return f"ib-test-{uuid.uuid4().hex[:8]}"


def test_the_bot_sees_the_real_version_and_flowcontrol_v1(bot: KubernetesClient) -> None:
    version = bot.server_version()
    assert version["gitVersion"].startswith("v1.") and int(version["minor"]) >= 31
    assert bot.flowcontrol_version() == "v1"
    names = {fs["metadata"]["name"] for fs in bot.list_flow_schemas()}
    assert {"exempt", "service-accounts", "global-default", "catch-all"} <= names  # the real bootstrap set


def test_the_bot_creates_and_deletes_its_throttle_objects(bot: KubernetesClient, name: str) -> None:
    plc = bot.create_priority_level(throttle_plc(name))
    fs = bot.create_flow_schema(throttle_fs(name, plc=name))
    assert fs["metadata"]["uid"] and plc["metadata"]["uid"]
    assert bot.get_flow_schema(name)["spec"]["matchingPrecedence"] == 50
    with pytest.raises(IntegrationError) as err:
        bot.create_flow_schema(throttle_fs(name, plc=name))
    assert err.value.status == 409 and "AlreadyExists" in str(err.value)
    assert bot.create_flow_schema(throttle_fs(name, plc=name), exist_ok=True)["metadata"]["uid"] == fs["metadata"]["uid"]
    assert bot.delete_flow_schema(name) is True and bot.delete_priority_level(name) is True
    assert bot.get_flow_schema(name) is None and bot.delete_flow_schema(name) is False


def test_the_real_server_rejects_an_invalid_flow_schema_naming_the_field(bot: KubernetesClient, name: str) -> None:
    bad = throttle_fs(name, plc=name)
    bad["spec"]["matchingPrecedence"] = 20000  # the server allows 1..10000
    with pytest.raises(IntegrationError) as err:
        bot.create_flow_schema(bad)
    assert err.value.status == 422 and "spec.matchingPrecedence" in str(err.value)
    assert bot.get_flow_schema(name) is None


def test_a_dry_run_is_validated_and_stores_nothing(bot: KubernetesClient, name: str) -> None:
    out = bot.create_priority_level(throttle_plc(name), dry_run=True)
    assert out["metadata"]["name"] == name and bot.get_priority_level(name) is None


def test_the_server_marks_a_flow_schema_dangling_until_its_level_exists(bot: KubernetesClient, name: str) -> None:
    bot.create_flow_schema(throttle_fs(name, plc=name))
    try:
        # the apiserver's APF controller writes the Dangling condition shortly after the create
        wait_until(lambda: name in bot.dangling_flow_schemas(), timeout=20, interval=0.2,
                   what="the apiserver to mark the FlowSchema dangling")
        bot.create_priority_level(throttle_plc(name))
        wait_until(lambda: name not in bot.dangling_flow_schemas(), timeout=20, interval=0.2,
                   what="the apiserver to clear the Dangling condition")
    finally:
        bot.delete_flow_schema(name)
        bot.delete_priority_level(name)


def test_an_impersonated_client_lands_where_the_real_apf_puts_it(bot: KubernetesClient, name: str) -> None:
    sa = f"system:serviceaccount:team-a:{name}"
    assert bot.classify(sa).flow_schema == "service-accounts"
    fs = throttle_fs(name, plc=name)
    fs["spec"]["rules"][0]["subjects"] = [{"kind": "ServiceAccount",
                                          "serviceAccount": {"namespace": "team-a", "name": name}}]
    bot.create_priority_level(throttle_plc(name))
    bot.create_flow_schema(fs)
    try:
        landed = bot.classify(sa, path="/api/v1/namespaces/default/configmaps")
        assert (landed.flow_schema, landed.priority_level) == (name, name)
        assert bot.classify("system:serviceaccount:team-b:quiet").flow_schema == "service-accounts"
    finally:
        bot.delete_flow_schema(name)
        bot.delete_priority_level(name)


def test_health_dump_and_write_probe_as_the_bot(bot: KubernetesClient) -> None:
    ready = bot.health("readyz", verbose=True)
    assert ready.ok and ready.status == 200 and "[+]etcd ok" in ready.body
    assert bot.health("livez").ok
    users = {u.user for u in bot.top_users(10)}
    assert "incident-bot" in users  # the dump request itself is in flight while it is served
    assert "apiserver_flowcontrol_dispatched_requests_total" in bot.metrics_text()
    probe = bot.write_probe("incident-bot-probe")
    assert [s.operation for s in probe.steps] == ["ensure-namespace", "create", "read", "delete"]


def test_a_stopped_apiserver_is_an_integration_error_naming_the_address(kube_apiserver: RealCluster) -> None:
    client = KubernetesClient.from_host("https://127.0.0.1:9", kube_apiserver.bot_token,
                                        ca_cert=str(kube_apiserver.ca_file), timeout=2)
    with pytest.raises(IntegrationError, match="cannot reach https://127.0.0.1:9"):
        client.server_version()


@pytest.mark.parametrize(("what", "attempt"), [
    ("read Secrets", lambda c: c.list_objects("v1", "Secret", "kube-system")),
    ("delete Pods", lambda c: c.delete_object("v1", "Pod", "anything", "default", missing_ok=False)),
    ("write ConfigMaps outside its probe namespace", lambda c: c.create_configmap("default", "x", {"a": "b"}).value),
    ("create namespaces", lambda c: c.create_object({"apiVersion": "v1", "kind": "Namespace",
                                                     "metadata": {"name": "ib-not-allowed"}})),
    ("impersonate a user", lambda c: c.impersonating("sandbox-admin").list_objects("v1", "Namespace")),
    ("impersonate system:masters", lambda c: c.impersonating("system:serviceaccount:a:b", ["system:masters"])
     .list_objects("v1", "Namespace")),
])
def test_the_bots_rbac_denies_what_it_must_not_do(bot: KubernetesClient, what: str, attempt) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(IntegrationError) as err:
        attempt(bot)
    assert err.value.status == 403, f"the bot could {what}: {err.value}"
