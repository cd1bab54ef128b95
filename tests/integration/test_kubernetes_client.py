"""KubernetesClient against the apiserver stand-in (kmock over real HTTP)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from bot.core.errors import BadInput, ConfigError, IntegrationError, IntegrationTimeout
from integrations.clients.kubernetes import (
    FakeKubernetes,
    KubernetesClient,
    RequestAttributes,
    connect,
    matching_flow_schema,
    parse_dump_requests,
    top_users,
    validate_manifest,
)
from tests.support.apiserver import ApiServerStandIn, InflightRequest, bootstrap_flow_schemas

pytest_plugins = ["tests.support.fixtures_kubernetes"]

NOISY = "system:serviceaccount:team-a:noisy-controller"


def throttle_plc(name: str = "chatops-throttle-noisy") -> dict:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "incident-bot"}},
        "spec": {"type": "Limited", "limited": {
            "nominalConcurrencyShares": 1, "lendablePercent": 0, "borrowingLimitPercent": 0,
            "limitResponse": {"type": "Queue", "queuing": {"queues": 1, "handSize": 1, "queueLengthLimit": 10}}}},
    }


def throttle_fs(name: str = "chatops-throttle-noisy", plc: str = "chatops-throttle-noisy") -> dict:
    return {
        "metadata": {"name": name, "labels": {"app.kubernetes.io/managed-by": "incident-bot"}},
        "spec": {
            "priorityLevelConfiguration": {"name": plc},
            "matchingPrecedence": 50,
            "distinguisherMethod": {"type": "ByUser"},
            "rules": [{
                "subjects": [{"kind": "ServiceAccount",
                              "serviceAccount": {"namespace": "team-a", "name": "noisy-controller"}}],
                "resourceRules": [{"verbs": ["list", "get", "watch"], "apiGroups": [""],
                                   "resources": ["pods", "configmaps"], "clusterScope": True,
                                   "namespaces": ["*"]}],
            }],
        },
    }


@pytest.fixture
def kube(apiserver: ApiServerStandIn, apiserver_kubeconfig: Path) -> KubernetesClient:
    client = connect(str(apiserver_kubeconfig), context="standin", timeout=3.0)
    yield client
    client.close()


def test_connect_and_server_version(kube: KubernetesClient, apiserver: ApiServerStandIn) -> None:
    assert kube.server_version()["gitVersion"] == "v1.30.2"
    assert kube.server_minor_version() == "1.30"
    direct = KubernetesClient.from_host(apiserver.url, "some-token")
    assert direct.server_minor_version() == "1.30"


def test_bad_kubeconfig_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="KUBECONFIG"):
        connect(str(tmp_path / "missing"))


def test_served_flowcontrol_version_v1_then_fallback_to_v1beta3() -> None:
    with ApiServerStandIn() as v1:
        assert KubernetesClient.from_host(v1.url, "t").flowcontrol_version() == "v1"
    with ApiServerStandIn(kubernetes_version="1.28.9", flowcontrol_versions=("v1beta3",)) as old:
        client = KubernetesClient.from_host(old.url, "t")
        assert client.flowcontrol_version() == "v1beta3"
        created = client.create_priority_level(throttle_plc())
        assert created["apiVersion"] == "flowcontrol.apiserver.k8s.io/v1beta3"
        assert old.object("flowcontrol.apiserver.k8s.io/v1beta3", "prioritylevelconfigurations",
                          "chatops-throttle-noisy") is not None
    with ApiServerStandIn(flowcontrol_versions=()) as none:
        with pytest.raises(IntegrationError, match="neither flowcontrol"):
            KubernetesClient.from_host(none.url, "t").flowcontrol_version()


def test_flow_schema_and_priority_level_lifecycle(kube: KubernetesClient) -> None:
    names = {fs["metadata"]["name"] for fs in kube.list_flow_schemas()}
    assert {"exempt", "service-accounts", "global-default", "catch-all"} <= names

    plc = kube.create_priority_level(throttle_plc())
    fs = kube.create_flow_schema(throttle_fs())
    assert fs["metadata"]["uid"] and plc["metadata"]["uid"]
    assert kube.get_flow_schema("chatops-throttle-noisy")["spec"]["matchingPrecedence"] == 50
    assert kube.get_priority_level("chatops-throttle-noisy")["spec"]["limited"]["nominalConcurrencyShares"] == 1
    mine = kube.list_flow_schemas(label_selector=None)
    assert "chatops-throttle-noisy" in {f["metadata"]["name"] for f in mine}

    # create again: 409 unless asked to be idempotent, then the existing object comes back
    with pytest.raises(IntegrationError) as err:
        kube.create_flow_schema(throttle_fs())
    assert err.value.status == 409 and "create FlowSchema" in str(err.value) and kube.host in str(err.value)
    again = kube.create_flow_schema(throttle_fs(), exist_ok=True)
    assert again["metadata"]["uid"] == fs["metadata"]["uid"]

    # rollback order: FlowSchema first, then PLC
    assert kube.delete_flow_schema("chatops-throttle-noisy") is True
    assert kube.delete_priority_level("chatops-throttle-noisy") is True
    assert kube.get_flow_schema("chatops-throttle-noisy") is None
    assert kube.delete_flow_schema("chatops-throttle-noisy") is False  # missing_ok
    with pytest.raises(IntegrationError, match="HTTP 404"):
        kube.delete_priority_level("chatops-throttle-noisy", missing_ok=False)


def test_dry_run_create_stores_nothing(kube: KubernetesClient) -> None:
    out = kube.create_priority_level(throttle_plc("dry"), dry_run=True)
    assert out["metadata"]["name"] == "dry"
    assert kube.get_priority_level("dry") is None


def test_dangling_detection(kube: KubernetesClient) -> None:
    kube.create_flow_schema(throttle_fs("orphan", plc="no-such-level"))
    fs = kube.get_flow_schema("orphan")
    cond = {c["type"]: c for c in fs["status"]["conditions"]}
    assert cond["Dangling"]["status"] == "True"
    assert kube.dangling_flow_schemas() == ["orphan"]
    kube.create_priority_level(throttle_plc("no-such-level"))
    assert kube.dangling_flow_schemas() == []


def test_get_object_generic(kube: KubernetesClient) -> None:
    assert kube.get_object("v1", "Namespace", "default")["metadata"]["name"] == "default"
    assert kube.get_object("v1", "Namespace", "nope") is None
    assert kube.get_object("flowcontrol.apiserver.k8s.io/v1", "FlowSchema", "exempt")["spec"][
        "matchingPrecedence"] == 1


def test_health_and_raw_get(kube: KubernetesClient, apiserver: ApiServerStandIn) -> None:
    assert kube.health("readyz").ok and kube.health("livez").ok
    assert kube.raw_get("/readyz") == "ok"
    apiserver.set_healthy(False)
    bad = kube.health("readyz", verbose=True)
    assert not bad.ok and bad.status == 500 and "etcd failed" in bad.body
    with pytest.raises(IntegrationError, match="HTTP 500"):
        kube.raw_get("/livez")
    apiserver.set_healthy(True)
    assert "apiserver_flowcontrol_nominal_limit_seats" in kube.metrics_text()


def test_stopped_apiserver_is_an_integration_error(apiserver: ApiServerStandIn, kube: KubernetesClient) -> None:
    url = apiserver.url
    apiserver.stop()
    with pytest.raises(IntegrationError) as err:
        kube.list_flow_schemas() if kube._flowcontrol_version else kube.server_version()
    assert url in str(err.value) and "cannot reach" in str(err.value)
    with pytest.raises(IntegrationError, match="check /readyz"):
        kube.health("readyz")


def test_slow_apiserver_is_a_timeout_naming_the_operation(apiserver: ApiServerStandIn) -> None:
    client = KubernetesClient.from_host(apiserver.url, "t", timeout=0.3)
    apiserver.set_delay(2.0)
    started = time.monotonic()
    with pytest.raises(IntegrationTimeout) as err:
        client.get_flow_schema("exempt") if client._flowcontrol_version else client.server_version()
    assert time.monotonic() - started < 1.5
    assert "timed out after 0.3s" in str(err.value) and apiserver.url in str(err.value)
    assert client.health("readyz").ok  # probes are not delayed
    apiserver.set_delay(0)


def test_dump_parsing_and_top_users(kube: KubernetesClient, apiserver: ApiServerStandIn) -> None:
    assert kube.dump_requests() == []
    flood = apiserver.flood(NOISY, requests=30, queued=10)
    apiserver.add_inflight(InflightRequest(user="alice@example.com", flow_schema="global-default",
                                           priority_level="global-default", verb="get", resource="configmaps",
                                           namespace="team-b", name="cfg", initial_seats=2))
    rows = kube.dump_requests()
    assert len(rows) == 31
    noisy = [r for r in rows if r.user == NOISY]
    assert {r.flow_schema for r in noisy} == {"service-accounts"} == {flood["flow_schema"]}
    assert sum(r.queued for r in noisy) == 10 and noisy[-1].api_path == "/api/v1/pods"
    alice = next(r for r in rows if r.user == "alice@example.com")
    assert (alice.namespace, alice.name, alice.resource, alice.api_version) == ("team-b", "cfg", "configmaps", "v1")
    top = kube.top_users(2)
    assert [u.user for u in top] == [NOISY, "alice@example.com"]
    assert top[0].requests == 30 and top[0].queued == 10 and top[0].flow_schemas == ("service-accounts",)
    # without details the distinguisher (ByUser) still names the user
    assert top_users(kube.dump_requests(include_details=False))[0].user == NOISY


def test_parse_dump_requests_header_as_served() -> None:
    text = (
        "PriorityLevelName, FlowSchemaName,   QueueIndex, RequestIndexInQueue, FlowDistingsher, ArriveTime,\n"
        "workload-low,      service-accounts, 3,          -1,                  u1,              2026-11-25T20:00:00Z,\n"
    )
    # an older server (fewer columns, trailing comma) still parses by header name
    (row,) = parse_dump_requests(text)
    assert (row.priority_level, row.queue_index, row.index_in_queue, row.flow_distinguisher) == (
        "workload-low", 3, -1, "u1")
    with pytest.raises(ValueError):
        parse_dump_requests("<html>nope</html>")


def test_write_path_probe(kube: KubernetesClient, apiserver: ApiServerStandIn) -> None:
    result = kube.write_probe("incident-bot-probe")
    assert [s.operation for s in result.steps] == ["ensure-namespace", "create", "read", "delete"]
    assert all(s.seconds >= 0 for s in result.steps) and result.seconds < 3
    assert apiserver.object("v1", "configmaps", result.name, "incident-bot-probe") is None
    assert "incident-bot-probe" in apiserver.namespaces
    # single steps
    kube.create_configmap("incident-bot-probe", "one", {"k": "v"})
    assert kube.read_configmap("incident-bot-probe", "one").value["data"] == {"k": "v"}
    kube.delete_configmap("incident-bot-probe", "one")
    with pytest.raises(IntegrationError, match="does not exist"):
        kube.read_configmap("incident-bot-probe", "one")
    # a namespace that does not exist is a 404 from the stand-in, as from a real apiserver
    with pytest.raises(IntegrationError, match='namespaces "elsewhere" not found'):
        kube.create_configmap("elsewhere", "x")


def test_impersonated_request_lands_in_the_new_flow_schema(kube: KubernetesClient,
                                                          apiserver: ApiServerStandIn) -> None:
    before = kube.classify(NOISY, path="/api/v1/pods")
    assert before.flow_schema == "service-accounts" and before.priority_level == "workload-low"
    kube.create_priority_level(throttle_plc())
    fs = kube.create_flow_schema(throttle_fs())
    after = kube.classify(NOISY, path="/api/v1/pods")
    assert after.flow_schema_uid == fs["metadata"]["uid"]
    assert (after.flow_schema, after.priority_level) == ("chatops-throttle-noisy", "chatops-throttle-noisy")
    # another service account and a human are unaffected; a verb outside the rule too
    assert kube.classify("system:serviceaccount:team-a:other", path="/api/v1/pods").flow_schema == "service-accounts"
    assert kube.classify("alice@example.com", ["devs"], path="/api/v1/pods").flow_schema == "global-default"
    assert kube.classify("bob", ["system:masters"]).flow_schema == "exempt"
    # deleting the PLC first leaves the schema dangling: it is ignored
    kube.delete_priority_level("chatops-throttle-noisy")
    assert kube.classify(NOISY, path="/api/v1/pods").flow_schema == "service-accounts"
    assert apiserver.request_log[-1].user in (NOISY, "kubernetes-admin")


def test_matching_precedence_and_rules() -> None:
    schemas = bootstrap_flow_schemas()
    levels = {"exempt", "catch-all", "workload-low", "global-default", "workload-high"}
    uid = lambda fs: fs["metadata"]["name"]  # noqa: E731
    probe = RequestAttributes.for_user("system:anonymous", verb="get", path="/readyz", is_resource_request=False)
    assert uid(matching_flow_schema(schemas, probe, levels)) == "probes"
    ks = RequestAttributes.for_user("system:serviceaccount:kube-system:x", verb="list", resource="pods")
    assert uid(matching_flow_schema(schemas, ks, levels)) == "kube-system-service-accounts"
    # namespaced-only rule does not match a cluster-scope request
    only_ns = throttle_fs("ns-only")
    only_ns["spec"]["rules"][0]["resourceRules"][0]["clusterScope"] = False
    noisy_all = RequestAttributes.for_user(NOISY, verb="list", resource="pods")
    noisy_ns = RequestAttributes.for_user(NOISY, verb="list", resource="pods", namespace="team-a")
    every = schemas + [only_ns]
    assert uid(matching_flow_schema(every, noisy_all, levels | {"chatops-throttle-noisy"})) == "service-accounts"
    assert uid(matching_flow_schema(every, noisy_ns, levels | {"chatops-throttle-noisy"})) == "ns-only"


def test_validate_manifest_names_the_field() -> None:
    good = {"apiVersion": "flowcontrol.apiserver.k8s.io/v1", "kind": "FlowSchema", **throttle_fs()}
    assert validate_manifest(good, "1.30") == "1.30"
    bad = {**good, "spec": {**good["spec"], "rules": [{"subjects": [{"kind": "UserAgent",
                                                                      "userAgent": {"name": "curl"}}]}]}}
    with pytest.raises(BadInput) as err:
        validate_manifest(bad, "1.30")
    assert err.value.field == "spec.rules[0].subjects[0]" and "userAgent" in str(err.value)
    old = {**good, "apiVersion": "flowcontrol.apiserver.k8s.io/v1beta3"}
    with pytest.raises(BadInput, match="no schema"):
        validate_manifest(old, "1.32")


def test_fake_kubernetes_has_the_same_behaviour() -> None:
    fake = FakeKubernetes()
    fake.create_priority_level(throttle_plc())
    fs = fake.create_flow_schema(throttle_fs())
    assert fake.create_flow_schema(throttle_fs(), exist_ok=True)["metadata"]["uid"] == fs["metadata"]["uid"]
    assert fake.classify(NOISY, path="/api/v1/pods").flow_schema == "chatops-throttle-noisy"
    fake.delete_priority_level("chatops-throttle-noisy")
    assert fake.dangling_flow_schemas() == ["chatops-throttle-noisy"]
    assert [s.operation for s in fake.write_probe("p").steps] == ["ensure-namespace", "create", "read", "delete"]
    fake.fail("list_objects")
    with pytest.raises(IntegrationError, match="injected"):
        fake.list_flow_schemas()
