"""The chart registers the admission guard: failurePolicy Ignore, a short timeout, the bot's own risk list."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from bot.core.config import load_settings
from bot.domain.guard.policy import webhook_rules
from tests.deploy.helm import one, refusal, render

GUARD = {"guard.enabled": True, "guard.tlsSecret": "incident-bot-guard-tls", "guard.caBundle": "Q0EK",
         "selfCluster.name": "prod-1"}


def _settings(manifests: list[dict[str, Any]], tmp_path: Path) -> Any:
    (tmp_path / "config.yaml").write_text(one(manifests, "ConfigMap")["data"]["config.yaml"])
    return load_settings(environ={"INCIDENT_BOT_CONFIG": str(tmp_path / "config.yaml")})


def test_the_webhook_fails_open_and_covers_exactly_what_the_bot_decides_on(tmp_path: Path) -> None:
    manifests = render(GUARD)
    hook = one(manifests, "ValidatingWebhookConfiguration")["webhooks"][0]
    assert hook["failurePolicy"] == "Ignore" and hook["timeoutSeconds"] == 2 and hook["sideEffects"] == "NoneOnDryRun"
    assert hook["clientConfig"]["service"] == {"name": "ib-incident-bot", "namespace": "incident-bot",
                                               "path": "/admission/prod-1", "port": 443}
    settings = _settings(manifests, tmp_path)
    assert settings.guard.enabled and settings.guard.tls_cert_path == "/etc/incident-bot/guard-tls/tls.crt"

    def flat(rules: list[dict[str, Any]]) -> set[tuple[str, str, str]]:
        return {(g, r, op) for rule in rules for g in rule["apiGroups"] for r in rule["resources"]
                for op in rule["operations"]}
    assert flat(hook["rules"]) == flat(webhook_rules(settings.guard))  # the chart asks for what the bot decides on
    service_ports = {p["name"]: p for p in one(manifests, "Service")["spec"]["ports"]}
    assert service_ports["admission"]["port"] == 443
    pod = one(manifests, "Deployment")["spec"]["template"]["spec"]
    assert {"name": "admission", "containerPort": 8443, "protocol": "TCP"} in pod["containers"][0]["ports"]
    assert {v["name"]: v for v in pod["volumes"]}["guard-tls"]["secret"]["secretName"] == "incident-bot-guard-tls"


def test_a_guard_without_its_certificate_or_cluster_is_refused_with_the_value_named() -> None:
    assert "guard.caBundle" in refusal({**GUARD, "guard.caBundle": ""})
    assert "guard.tlsSecret" in refusal({**GUARD, "guard.tlsSecret": ""})
    assert "guard.cluster" in refusal({**GUARD, "selfCluster.name": ""})
    assert "mode" in refusal({**GUARD, "guard.mode": "block-everything"})


def test_the_real_kube_apiserver_accepts_the_rendered_configuration(kube_apiserver: Any) -> None:
    ca = base64.b64encode(Path(kube_apiserver.ca_file).read_bytes()).decode()
    hook = one(render({**GUARD, "guard.caBundle": ca}), "ValidatingWebhookConfiguration")
    admin = kube_apiserver.admin()
    try:
        created = admin.create_object(hook, dry_run=True)  # server-side validation, nothing stored
    finally:
        admin.close()
    assert created["webhooks"][0]["failurePolicy"] == "Ignore"
