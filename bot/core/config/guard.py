"""The admission guard's settings: the change-freeze risk list and the mass-deletion breaker."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from bot.core.config.base import Section


class GuardRule(Section):
    """One entry of the admission guard's risk list: writes that an open sev1/sev2 incident freezes."""

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
    operations: list[Literal["CREATE", "UPDATE", "DELETE", "CONNECT"]] = Field(min_length=1)
    resources: list[str] = Field(min_length=1)  # "resource" (core group) or "group/resource"
    namespaces: list[str] = Field(default_factory=list)  # empty: any namespace (and cluster-scoped objects)
    critical: bool = False  # an exception needs two approvers


class GuardBreakerSettings(Section):
    """The mass-deletion circuit breaker: more deletes than this within the window are denied."""

    resources: list[str] = Field(default_factory=lambda: ["pods"])
    per_client: int = Field(100, ge=1)
    cluster_wide: int = Field(300, ge=1)
    window_seconds: float = Field(60, gt=0)


def _default_guard_rules() -> list["GuardRule"]:
    return [GuardRule(name=n, operations=o, resources=r, namespaces=ns, critical=c) for n, o, r, ns, c in (
        ("delete-namespaces", ["DELETE"], ["namespaces"], [], True),
        ("delete-crds", ["DELETE"], ["apiextensions.k8s.io/customresourcedefinitions"], [], True),
        ("delete-nodes", ["DELETE"], ["nodes"], [], False),
        ("control-plane-workloads", ["UPDATE", "DELETE"],
         ["apps/deployments", "apps/daemonsets", "apps/statefulsets"], ["kube-system"], False),
        ("admission-webhooks", ["CREATE", "UPDATE", "DELETE"],
         ["admissionregistration.k8s.io/validatingwebhookconfigurations",
          "admissionregistration.k8s.io/mutatingwebhookconfigurations"], [], True),
        ("apf", ["CREATE", "UPDATE", "DELETE"],
         ["flowcontrol.apiserver.k8s.io/flowschemas", "flowcontrol.apiserver.k8s.io/prioritylevelconfigurations"],
         [], False),
    )]


class GuardSettings(Section):
    """The validating admission webhook (``bot.domain.guard``): change freeze during incidents and the breaker."""

    enabled: bool = False
    mode: Literal["enforce", "audit"] = "enforce"  # audit: would-deny decisions are counted and logged only
    freeze_severities: list[str] = Field(default_factory=lambda: ["sev1", "sev2"])
    rules: list[GuardRule] = Field(default_factory=_default_guard_rules)
    breaker: GuardBreakerSettings = GuardBreakerSettings()
    exempt_users: list[str] = Field(default_factory=lambda: ["incident-bot",
                                                             "system:serviceaccount:incident-bot:incident-bot"])
    refresh_seconds: float = Field(1.0, gt=0)  # how often the incident/freeze state is read from the database
    stale_after_seconds: float = Field(10.0, gt=0)  # older state than this: answer allow (and count it)
    max_exception_minutes: int = Field(240, ge=1)
    host: str = "127.0.0.1"  # the TLS listener the kube-apiservers call
    port: int = Field(8443, ge=1, le=65535)
    tls_cert_path: str | None = None
    tls_key_path: str | None = None
    client_ca_path: str | None = None  # set: the apiservers must present a client certificate it signed
    # the TLS listener and its worker run in a child process of ``serve`` (``incident-bot guard-process``):
    # the rest of the bot (an alert storm's ingest, diagnosis, Slack) never holds the interpreter lock an
    # admission answer waits for; false runs them in threads of ``serve`` itself
    own_process: bool = True
    # (paths, not *_file: INCIDENT_BOT_X_FILE means "the value of X is in this file" everywhere else)
