"""The admission guard in the sandbox (``ControlPlaneOptions(admission_guard=True)``).

The kube-apiservers call webhooks over TLS only, and the guard counts every delete it sees, so
nobody but the apiservers may call it. Before the apiservers start this issues, from the
sandbox CA, a serving certificate for the bot's webhook listener (127.0.0.1) and a client
certificate the apiservers present to it (``--admission-control-config-file`` with a
kubeconfig naming the webhook's address); the bot requires a client certificate signed by that
CA. Once the cluster is up the admin registers the ValidatingWebhookConfiguration built from the
guard's own risk list and breaker kinds, with ``failurePolicy: Ignore`` and a 2 s timeout: the
bot's outage never blocks the cluster.
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

import yaml

from bot.core.config.guard import GuardSettings
from bot.domain.guard.policy import webhook_rules
from bot.compose.sandbox.pki import ClusterPKI, StaticUser, issue_certificate
from bot.compose.sandbox.processes import LOOPBACK, free_port

WEBHOOK_CONFIGURATION = "incident-bot-guard"
WEBHOOK_NAME = "guard.incident-bot.io"
TIMEOUT_SECONDS = 2
# the mass-delete drill's runaway client (a namespace janitor gone wrong)
JANITOR_USER = StaticUser("system:serviceaccount:batch:janitor",
                          ("system:serviceaccounts", "system:serviceaccounts:batch", "system:authenticated"))
GUARD_USERS = (JANITOR_USER,)


class GuardSetup:
    def __init__(self, directory: Path, pki: ClusterPKI, cluster: str) -> None:
        self.directory = directory
        self.pki = pki
        self.cluster = cluster
        self.port = free_port()
        self.cert_file, self.key_file = issue_certificate(pki, directory, "incident-bot-webhook")
        self.client_cert, self.client_key = issue_certificate(pki, directory, "kube-apiserver-webhook-client",
                                                              client=True)

    @property
    def url(self) -> str:
        return f"https://{LOOPBACK}:{self.port}/admission/{self.cluster}"

    def apiserver_args(self) -> list[str]:
        """What each kube-apiserver needs to present its client certificate to the bot's webhook."""
        kubeconfig = self.directory / "webhook-client.kubeconfig"
        user = {"client-certificate": str(self.client_cert), "client-key": str(self.client_key)}
        kubeconfig.write_text(yaml.safe_dump({
            "apiVersion": "v1", "kind": "Config",
            "users": [{"name": f"{LOOPBACK}:{self.port}", "user": user}, {"name": "*", "user": user}]}))
        admission = self.directory / "admission.yaml"
        admission.write_text(yaml.safe_dump({
            "apiVersion": "apiserver.config.k8s.io/v1", "kind": "AdmissionConfiguration",
            "plugins": [{"name": "ValidatingAdmissionWebhook", "configuration": {
                "apiVersion": "apiserver.config.k8s.io/v1", "kind": "WebhookAdmissionConfiguration",
                "kubeConfigFile": str(kubeconfig)}}]}))
        return [f"--admission-control-config-file={admission}"]

    def settings_tree(self) -> dict[str, Any]:
        """The bot's ``guard`` settings: its TLS listener, requiring the apiservers' client certificate."""
        return {"enabled": True, "host": LOOPBACK, "port": self.port, "tls_cert_path": str(self.cert_file),
                "tls_key_path": str(self.key_file), "client_ca_path": str(self.pki.ca_cert)}

    def webhook_configuration(self, settings: GuardSettings | None = None) -> dict[str, Any]:
        settings = settings or GuardSettings(**self.settings_tree())
        ca_bundle = base64.b64encode(self.pki.ca_cert.read_bytes()).decode()
        return {
            "apiVersion": "admissionregistration.k8s.io/v1", "kind": "ValidatingWebhookConfiguration",
            "metadata": {"name": WEBHOOK_CONFIGURATION},
            "webhooks": [{
                "name": WEBHOOK_NAME, "clientConfig": {"url": self.url, "caBundle": ca_bundle},
                "rules": webhook_rules(settings), "failurePolicy": "Ignore", "matchPolicy": "Equivalent",
                "sideEffects": "NoneOnDryRun", "timeoutSeconds": TIMEOUT_SECONDS,
                "admissionReviewVersions": ["v1"],
            }],
        }
