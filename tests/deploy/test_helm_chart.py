"""The Helm chart as an operator installs it: helm lint/template, and what the manifests promise.

helm is the one built from its Go module by setup (scripts/build-go.sh).
Server-side dry run and the RBAC proof on a real kube-apiserver: test_rbac_real.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from bot.core.config import load_settings, secret
from tests.deploy.helm import CHART, helm, one, refusal, render

DEPLOY = CHART.parents[1]


def container(manifests: list[dict[str, Any]]) -> dict[str, Any]:
    return one(manifests, "Deployment")["spec"]["template"]["spec"]["containers"][0]


def env_of(manifests: list[dict[str, Any]]) -> dict[str, str]:
    return {e["name"]: e["value"] for e in container(manifests)["env"]}


def test_helm_lint_is_clean_for_both_databases() -> None:
    for extra in ([], ["--set", "database.existingSecret=incident-bot-db"]):
        done = helm("lint", "--strict", str(CHART), "--set", "api.existingSecret=api",
                    "--set", "image.repository=registry.example.com/incident-bot", *extra)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout


def test_sqlite_is_one_replica_on_a_kept_volume() -> None:
    manifests = render()
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 1 and deployment["spec"]["strategy"]["type"] == "Recreate"
    pvc = one(manifests, "PersistentVolumeClaim")
    assert pvc["metadata"]["annotations"]["helm.sh/resource-policy"] == "keep"
    assert env_of(manifests)["INCIDENT_BOT_DATABASE_URL"] == "sqlite:////var/lib/incident-bot/incident-bot.db"
    assert one(manifests, "PodDisruptionBudget")["spec"] == {
        "maxUnavailable": 1, "selector": deployment["spec"]["selector"]}


def test_postgresql_is_two_replicas_never_both_down() -> None:
    manifests = render({"database.existingSecret": "incident-bot-db"})
    deployment = one(manifests, "Deployment")
    assert deployment["spec"]["replicas"] == 2
    assert deployment["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    assert not [m for m in manifests if m["kind"] == "PersistentVolumeClaim"]
    assert one(manifests, "PodDisruptionBudget")["spec"]["minAvailable"] == 1
    assert env_of(manifests)["INCIDENT_BOT_DATABASE_URL_FILE"] == "/var/run/secrets/incident-bot/database/url"


def test_the_pod_is_restricted() -> None:
    manifests = render()
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] == 10001
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert pod["automountServiceAccountToken"] is False  # no token unless it guards its own cluster
    ctx = container(manifests)["securityContext"]
    assert ctx["readOnlyRootFilesystem"] is True and ctx["allowPrivilegeEscalation"] is False
    assert ctx["capabilities"] == {"drop": ["ALL"]} and ctx["privileged"] is False
    c = container(manifests)
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz" and c["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert c["resources"]["requests"] and c["resources"]["limits"]["memory"]


def test_secrets_are_referenced_never_rendered() -> None:
    manifests = render({"slack.existingSecret": "slack", "webhook.existingSecret": "am",
                        "database.existingSecret": "db"})
    assert not [m for m in manifests if m["kind"] == "Secret"]
    env = env_of(manifests)
    assert {k for k in env if k.endswith("_FILE")} == {
        "INCIDENT_BOT_DATABASE_URL_FILE", "SLACK_BOT_TOKEN_FILE", "SLACK_APP_TOKEN_FILE",
        "INCIDENT_BOT_WEBHOOK_TOKEN_FILE", "INCIDENT_BOT_API_TOKEN_FILE"}
    assert container(manifests)["args"] == ["serve", "--socket-mode"]
    http_mode = env_of(render({"slack.existingSecret": "slack", "slack.socketMode": False}))
    assert "SLACK_SIGNING_SECRET_FILE" in http_mode and "SLACK_APP_TOKEN_FILE" not in http_mode


def test_bad_values_are_refused_with_the_value_named() -> None:
    image = {"image.repository": "registry.example.com/incident-bot"}
    assert "api.existingSecret: /api/* would be open to the cluster network" in refusal(image, required=False)
    assert "image.repository: build the image from the Dockerfile" in refusal(
        {"api.existingSecret": "api"}, required=False)
    assert "--allow-unauthenticated-api" in container(
        render({**image, "api.allowUnauthenticated": True}, required=False))["args"]
    assert 'rbac.impersonate.groups: "system:masters" is refused' in refusal({"rbac.impersonate.groups": ["system:masters"]})
    assert "replicaCount: SQLite serves one replica" in refusal({"replicaCount": 2})
    assert "clusters.prod-1.kubeconfigSecret: the Secret holding this cluster's kubeconfig" in refusal(
        {"clusters": {"prod-1": {"settings": {}}}})
    assert "at '/rbac/impersonate/serviceAccounts/0': 'hammer' does not match pattern" in refusal(
        {"rbac.impersonate.serviceAccounts": ["hammer"]})
    # values.schema.json: a misspelt or mistyped value is named, not silently ignored
    assert "additional properties 'databse' not allowed" in refusal({"databse": {"existingSecret": "db"}})
    assert "at '/logFormat': value must be one of 'text', 'json'" in refusal({"logFormat": "xml"})


def test_guarded_clusters_each_get_their_kubeconfig_and_the_bot_accepts_the_settings(tmp_path: Path) -> None:
    manifests = render({
        "settings": {"budgets": {"sev1": {"notify": 30, "diagnose": 300, "mitigate": 600}}, "oncall": {"rota": ["alice"]}},
        "clusters": {"prod-1": {"kubeconfigSecret": "kc-prod-1",
                                "settings": {"prometheus_url": "http://prometheus.prod-1:9090"},
                                "probe": {"apiservers": ["https://10.0.0.10:6443"]}},
                     "prod-2": {"kubeconfigSecret": "kc-prod-2"}},
        "api.existingSecret": "api"})
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    volumes = {v["name"]: v for v in pod["volumes"]}
    assert volumes["kubeconfig-prod-1"]["secret"]["secretName"] == "kc-prod-1"
    mounts = {m["name"]: m["mountPath"] for m in container(manifests)["volumeMounts"]}
    assert mounts["kubeconfig-prod-2"] == "/etc/incident-bot/clusters/prod-2"
    config = one(manifests, "ConfigMap")["data"]["config.yaml"]
    (tmp_path / "config.yaml").write_text(config)
    (tmp_path / "api-token").write_text("t0ken\n")
    env = {**env_of(manifests), "INCIDENT_BOT_CONFIG": str(tmp_path / "config.yaml"),
           "INCIDENT_BOT_API_TOKEN_FILE": str(tmp_path / "api-token")}
    settings = load_settings(environ=env)  # what the pod would load (secret paths moved to tmp)
    assert settings.clusters["prod-1"].kubeconfig == "/etc/incident-bot/clusters/prod-1/kubeconfig"
    assert settings.clusters["prod-1"].prometheus_url == "http://prometheus.prod-1:9090"
    assert settings.probes.clusters["prod-1"].apiservers == ["https://10.0.0.10:6443"]
    assert settings.probes.namespace == "incident-bot-probe"  # where the RBAC lets the write probe write
    assert settings.budgets.sev1.notify == 30 and settings.host == "0.0.0.0" and settings.log_format == "json"
    assert secret(settings.api_token) == "t0ken"


def test_the_bot_guarding_its_own_cluster_uses_its_service_account_token() -> None:
    manifests = render({"selfCluster": {"name": "mgmt"}})
    assert one(manifests, "Deployment")["spec"]["template"]["spec"]["automountServiceAccountToken"] is True
    kubeconfig = yaml.safe_load(one(manifests, "ConfigMap")["data"]["self-kubeconfig"])
    assert kubeconfig["users"][0]["user"] == {"tokenFile": "/var/run/secrets/kubernetes.io/serviceaccount/token"}
    assert kubeconfig["clusters"][0]["cluster"]["server"] == "https://kubernetes.default.svc"


def test_rbac_only_for_a_guarded_cluster() -> None:
    manifests = render({"deployment.enabled": False}, required=False)
    assert sorted({m["kind"] for m in manifests}) == [
        "ClusterRole", "ClusterRoleBinding", "Namespace", "Role", "RoleBinding", "ServiceAccount"]


def rules_of(manifests: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    return one(manifests, kind, name)["rules"]


def test_rbac_is_the_least_privilege_of_deploy_rbac_with_impersonation_only_by_name() -> None:
    manifests = render({"rbac.impersonate.serviceAccounts": ["batch/hammer"], "rbac.impersonate.users": ["ci-robot"]})
    cluster_rules = rules_of(manifests, "ClusterRole")
    reference = [d for d in yaml.safe_load_all((DEPLOY / "rbac" / "incident-bot.yaml").read_text()) if d]
    reference_rules = next(d for d in reference if d["kind"] == "ClusterRole")["rules"]
    without_impersonation = [r for r in cluster_rules if "impersonate" not in r.get("verbs", [])]
    assert without_impersonation == [r for r in reference_rules if "impersonate" not in r["verbs"]]
    reference_probe = next(d for d in reference if d["kind"] == "Role")["rules"]
    assert rules_of(manifests, "Role", "ib-incident-bot-probe") == reference_probe
    impersonation = [r for r in cluster_rules if "impersonate" in r["verbs"]]
    assert impersonation == [{"apiGroups": [""], "resources": ["users"], "resourceNames": ["ci-robot"],
                              "verbs": ["impersonate"]}]
    role = one(manifests, "Role", "ib-incident-bot-impersonate")
    assert role["metadata"]["namespace"] == "batch"
    assert role["rules"] == [{"apiGroups": [""], "resources": ["serviceaccounts"], "resourceNames": ["hammer"],
                              "verbs": ["impersonate"]}]
    every_rule = cluster_rules + [r for m in manifests if m["kind"] == "Role" for r in m["rules"]]
    for rule in every_rule:
        assert "*" not in rule.get("verbs", []) + rule.get("resources", []) + rule.get("apiGroups", [])
        assert "secrets" not in rule.get("resources", [])
        assert "groups" not in rule.get("resources", [])  # no group impersonation unless asked by name
    assert not [r for r in cluster_rules if "pods" in r.get("resources", [])]  # pods: the probe namespace only
    probe = one(manifests, "Role", "ib-incident-bot-probe")
    assert probe["metadata"]["namespace"] == "incident-bot-probe"
    assert probe["rules"][0]["resources"] == ["configmaps"]
    bindings = [m for m in manifests if m["kind"] in ("RoleBinding", "ClusterRoleBinding")]
    assert all(b["subjects"] == [{"kind": "ServiceAccount", "name": "ib-incident-bot", "namespace": "incident-bot"}]
               for b in bindings)


def test_monitoring_objects_carry_the_tested_alerts() -> None:
    manifests = render({"serviceMonitor.enabled": True, "prometheusRule.enabled": True})
    assert one(manifests, "ServiceMonitor")["spec"]["endpoints"][0]["path"] == "/metrics"
    shipped = yaml.safe_load((CHART / "files" / "incident-bot-alerts.yml").read_text())
    assert one(manifests, "PrometheusRule")["spec"] == shipped
    assert "{{ $labels.channel }}" in str(shipped)  # Prometheus templates pass through helm untouched
