"""The chart's RBAC proven on a real kube-apiserver: as its ServiceAccount, the bot can do its job and no more.

The chart is rendered with helm, every manifest passes the apiserver's
server-side dry run, the RBAC objects and the ServiceAccount are applied by
the admin, and the ServiceAccount's token comes from the TokenRequest API.
With that token: every Kubernetes diagnosis check of the shipped procedures,
the write probe, and throttle-client's plan, run, verification, time-to-live
removal and rollback, the customer probes' calls and disable-webhook's
replace and restore succeed; reading Secrets, deleting Pods, writing outside
the probe namespace, and impersonating system:masters or anyone not named in
``rbac.impersonate`` are denied.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.diagnosis.checks import run_kind
from bot.domain.diagnosis.library import Library
from bot.domain.diagnosis.ports import ClusterAccess
from integrations.clients.kubernetes import KubernetesClient
from integrations.clients.kubernetes import KubernetesApiError
from playbooks.engine import Engine
from tests.deploy.helm import render
from tests.playbooks.conftest import diagnosed_incident, engine, pb_bot, pchat  # noqa: F401  (fixtures)
from tests.support.kube_apiserver import RealCluster

RBAC_KINDS = {"ServiceAccount", "ClusterRole", "ClusterRoleBinding", "Role", "RoleBinding", "Namespace"}
THROTTLED_NS = "team-a"


@dataclass
class Installed:
    namespace: str
    account: str
    throttled: str  # the one ServiceAccount verification may impersonate
    token: str
    manifests: list[dict[str, Any]]
    cluster: RealCluster

    def client(self) -> KubernetesClient:
        return KubernetesClient.from_host(self.cluster.url, self.token, ca_cert=str(self.cluster.ca_file), timeout=10)

    def kubeconfig(self, path: Path) -> Path:
        return self.cluster.kubeconfig(path, token=self.token)


def namespace(name: str) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}}


@pytest.fixture(scope="module")
def installed(kube_apiserver: RealCluster) -> Iterator[Installed]:
    suffix = uuid.uuid4().hex[:6]
    ns, throttled = f"ib-{suffix}", f"noisy-{suffix}"
    manifests = render({"rbac.impersonate.serviceAccounts": [f"{THROTTLED_NS}/{throttled}"],
                        "database.existingSecret": "incident-bot-db", "slack.existingSecret": "incident-bot-slack",
                        "clusters": {"prod-1": {"kubeconfigSecret": "kubeconfig-prod-1"}}},
                       namespace=ns, release=f"ib{suffix}")
    admin = kube_apiserver.admin()
    try:
        for name in (ns, THROTTLED_NS):
            admin.create_object(namespace(name), exist_ok=True)
        for manifest in manifests:  # the apiserver validates and admits every object, changing nothing
            admin.create_object(manifest, dry_run=True, exist_ok=manifest["kind"] == "Namespace")
        for manifest in manifests:
            if manifest["kind"] in RBAC_KINDS:
                admin.create_object(manifest, exist_ok=True)
        account = next(m["metadata"]["name"] for m in manifests if m["kind"] == "ServiceAccount")
        answer = admin.request(
            "POST", f"/api/v1/namespaces/{ns}/serviceaccounts/{account}/token", operation="request a token",
            body={"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
                  "spec": {"expirationSeconds": 3600}}).json()
        yield Installed(ns, account, throttled, answer["status"]["token"], manifests, kube_apiserver)
    finally:
        for manifest in manifests:
            if manifest["kind"] in {"ClusterRole", "ClusterRoleBinding"}:
                admin.delete_object(manifest["apiVersion"], manifest["kind"], manifest["metadata"]["name"])
        admin.delete_object("v1", "Namespace", ns)
        admin.close()


@pytest.fixture
def bot_sa(installed: Installed) -> Iterator[KubernetesClient]:
    client = installed.client()
    yield client
    client.close()


def denied(call: Any) -> int:
    with pytest.raises(KubernetesApiError) as err:
        call()
    return err.value.status  # type: ignore[return-value]


def test_every_rendered_manifest_passed_the_server_side_dry_run(installed: Installed) -> None:
    kinds = {m["kind"] for m in installed.manifests}
    assert {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget", "ServiceAccount", "ClusterRole"} <= kinds


def test_every_kubernetes_check_of_the_shipped_procedures_runs(installed: Installed, bot_sa: KubernetesClient) -> None:
    checks = [c for p in Library.load().procedures.values() for c in p.checks if c.kind == "kubernetes"]
    assert checks
    access = ClusterAccess(name="guarded", kubernetes=bot_sa)
    extra = [{"op": "health", "endpoint": "readyz"}, {"op": "health", "endpoint": "livez"},
             {"op": "raw", "path": "/metrics"}, {"op": "raw", "path": "/version"},
             {"op": "get", "api_version": "flowcontrol.apiserver.k8s.io/v1", "object_kind": "FlowSchema",
              "name": "global-default"}]
    for params in [dict(c.params) for c in checks] + extra:
        facts, _ = run_kind("kubernetes", access, params, 10)  # raises on a 403
        assert facts.summary
    assert bot_sa.dump_requests_text()  # the APF debug dump top_users reads


def test_the_write_probe_and_the_change_correlation_reads_work(installed: Installed, bot_sa: KubernetesClient) -> None:
    result = bot_sa.write_probe("incident-bot-probe")
    assert result.namespace == "incident-bot-probe"
    for api_version, kind in [("v1", "Event"), ("v1", "Node"), ("apps/v1", "Deployment"),
                              ("coordination.k8s.io/v1", "Lease"), ("rbac.authorization.k8s.io/v1", "ClusterRole"),
                              ("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration"),
                              ("apiextensions.k8s.io/v1", "CustomResourceDefinition")]:
        bot_sa.list_objects(api_version, kind)
    assert bot_sa.server_version()["major"] == "1"


def test_the_customer_probes_calls_are_allowed_in_the_probe_namespace(installed: Installed,
                                                                     bot_sa: KubernetesClient) -> None:
    from integrations.clients.probes.customer import STATEFULSET, delete_now, pod_manifest, statefulset_manifest

    ns, pod = "incident-bot-probe", f"probe-{uuid.uuid4().hex[:6]}"
    bot_sa.create_object(pod_manifest(ns, pod))  # this apiserver has no nodes: the pod stays Pending
    assert bot_sa.get_object("v1", "Pod", pod, ns) is not None
    delete_now(bot_sa, f"/api/v1/namespaces/{ns}/pods/{pod}", "delete the probe pod")
    bot_sa.create_object(statefulset_manifest(ns), exist_ok=True)
    bot_sa.request("PATCH", f"/apis/apps/v1/namespaces/{ns}/statefulsets/{STATEFULSET}/scale", operation="scale",
                   body={"spec": {"replicas": 0}}, headers={"Content-Type": "application/merge-patch+json"})
    assert denied(lambda: bot_sa.create_object(pod_manifest("default", pod))) == 403  # nowhere else


def test_disable_webhook_can_replace_and_restore_a_webhook_configuration(installed: Installed,
                                                                         bot_sa: KubernetesClient) -> None:
    name = f"failing-{uuid.uuid4().hex[:6]}"
    admin = installed.cluster.admin()
    try:
        admin.create_object({
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": name},
            "webhooks": [{"name": "deny.example.com", "failurePolicy": "Fail", "sideEffects": "None",
                          "admissionReviewVersions": ["v1"],
                          "clientConfig": {"url": "https://127.0.0.1:1/deny"},
                          "rules": [{"apiGroups": [""], "apiVersions": ["v1"], "operations": ["CREATE"],
                                     "resources": ["configmaps"], "scope": "Namespaced"}],
                          "namespaceSelector": {"matchLabels": {"webhook-test": name}}}]})
        saved = bot_sa.get_object("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", name)
        assert saved is not None
        ignored = {**saved, "webhooks": [{**saved["webhooks"][0], "failurePolicy": "Ignore"}]}
        bot_sa.replace_object(ignored, dry_run=True)  # the playbook's server-side validation
        updated = bot_sa.replace_object(ignored)
        assert updated["webhooks"][0]["failurePolicy"] == "Ignore"
        restored = {**updated, "webhooks": [{**updated["webhooks"][0], "failurePolicy": "Fail"}]}
        assert bot_sa.replace_object(restored)["webhooks"][0]["failurePolicy"] == "Fail"
        assert denied(lambda: bot_sa.delete_object("admissionregistration.k8s.io/v1",
                                                   "ValidatingWebhookConfiguration", name)) == 403  # update only
    finally:
        admin.delete_object("admissionregistration.k8s.io/v1", "ValidatingWebhookConfiguration", name)
        admin.close()


def test_what_the_bot_must_not_do_is_denied(installed: Installed, bot_sa: KubernetesClient) -> None:
    assert denied(lambda: bot_sa.list_objects("v1", "Secret", "kube-system")) == 403
    assert denied(lambda: bot_sa.list_objects("v1", "Secret", installed.namespace)) == 403
    assert denied(lambda: bot_sa.request("DELETE", "/api/v1/namespaces/default/pods/anything",
                                         operation="delete a pod")) == 403
    assert denied(lambda: bot_sa.create_configmap("default", "not-here", {"a": "b"})) == 403
    assert denied(lambda: bot_sa.create_object(namespace(f"not-mine-{uuid.uuid4().hex[:4]}"))) == 403
    masters = bot_sa.impersonating("mallory", ["system:masters"])
    assert denied(lambda: masters.list_objects("v1", "Secret", "kube-system")) == 403
    for user in ("system:admin", "admin", f"system:serviceaccount:{THROTTLED_NS}:someone-else",
                 f"system:serviceaccount:kube-system:{installed.throttled}"):
        other = bot_sa.impersonating(user)
        assert denied(lambda: other.server_version()) == 403, user
    named = bot_sa.impersonating(f"system:serviceaccount:{THROTTLED_NS}:{installed.throttled}")
    assert named.server_version()["major"] == "1"  # the one identity verification needs


@pytest.fixture
def sa_chat(pchat: MemoryChat, pb_bot: Bot, installed: Installed, tmp_path: Path) -> MemoryChat:  # noqa: F811
    pb_bot.settings.kubeconfig = str(installed.kubeconfig(tmp_path / "sa.kubeconfig"))
    return pchat


def throttle_objects(installed: Installed) -> tuple[list[str], list[str]]:
    admin = installed.cluster.admin()
    try:
        def ours(objs: list[dict]) -> list[str]:
            return sorted(o["metadata"]["name"] for o in objs if installed.throttled in o["metadata"]["name"])
        return ours(admin.list_priority_levels()), ours(admin.list_flow_schemas())
    finally:
        admin.close()


def test_throttle_client_plans_runs_verifies_and_rolls_back_as_the_service_account(
        sa_chat: MemoryChat, pb_bot: Bot, engine: Engine, installed: Installed) -> None:  # noqa: F811
    subject = f"serviceaccount:{THROTTLED_NS}/{installed.throttled}"
    diagnosed_incident(sa_chat, "alice")
    plan = sa_chat.say("alice", f"/incident plan throttle-client subject={subject}")
    assert f"create PriorityLevelConfiguration incident-bot-throttle-serviceaccount-{THROTTLED_NS}" in plan
    sa_chat.say("alice", f"/incident run throttle-client subject={subject} ttl=15m")  # RUN-2 (RUN-1: the plan)
    assert sa_chat.say("alice", "/incident approve RUN-2") == "RUN-2 approved by @alice; it starts now."
    run = engine.service.get(2)
    assert run.state == "succeeded", run.error  # validate on the server, create both, verify by impersonation
    name = run.plan["facts"]["name"]
    assert throttle_objects(installed) == ([name], [name])
    assert sa_chat.say("alice", "/incident abort RUN-2") == "RUN-2 succeeded earlier; its changes are being removed (undo)."
    assert throttle_objects(installed) == ([], []) and engine.service.get(2).state == "rolled_back"


def test_the_throttle_s_time_to_live_removal_runs_as_the_service_account(
        sa_chat: MemoryChat, engine: Engine, installed: Installed, clock: FakeClock) -> None:  # noqa: F811
    diagnosed_incident(sa_chat, "alice")
    sa_chat.say("alice", f"/incident run throttle-client subject=serviceaccount:{THROTTLED_NS}/{installed.throttled} ttl=10m")
    sa_chat.say("alice", "/incident approve RUN-1")
    name = engine.service.get(1).plan["facts"]["name"]
    assert throttle_objects(installed) == ([name], [name])
    clock.advance(601)
    sa_chat.pump()
    assert throttle_objects(installed) == ([], []) and engine.service.get(1).state == "rolled_back"


def test_verifying_a_throttle_of_someone_not_named_for_impersonation_is_refused(
        sa_chat: MemoryChat, engine: Engine, installed: Installed) -> None:  # noqa: F811
    diagnosed_incident(sa_chat, "alice")
    sa_chat.say("alice", f"/incident run throttle-client subject=serviceaccount:{THROTTLED_NS}/not-listed")
    sa_chat.say("alice", "/incident approve RUN-1")
    run = engine.service.get(1)
    # the impersonated request is refused before APF classifies it: verification fails, nothing is claimed
    assert run.state == "rolled_back" and run.error.startswith("verification failed")
    assert throttle_objects(installed) == ([], [])  # and what was created is rolled back
