"""``Settings``: the whole configuration tree, one field per section."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator

from bot.core.config.base import Section
from bot.core.config.budgets import Budgets
from bot.core.config.clusters import ClusterEndpoints
from bot.core.config.detection import Alerting, Diagnosis, Evidence, Probes
from bot.core.config.guard import GuardSettings
from bot.core.config.people import OnCall, Paging
from bot.core.config.remediation import Approvers, Drills, PlaybookSettings
from bot.core.config.surfaces import ExportSettings, SlackSettings, TicketSettings, UiSettings


class Settings(Section):
    database_url: str = "sqlite:///incident-bot.db"
    host: str = "127.0.0.1"  # where ``serve`` listens (``--host`` wins)
    port: int = Field(8080, ge=1, le=65535)
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "WARNING"
    log_format: Literal["text", "json"] = "text"  # json: one object a line, for log collectors
    api_token: SecretStr | None = None  # bearer token for /api/*; required to serve on a non-loopback address
    auto_migrate: bool = True
    budgets: Budgets = Budgets()
    oncall: OnCall = OnCall()
    paging: Paging = Paging()
    approvers: Approvers = Approvers()
    playbooks: PlaybookSettings = PlaybookSettings()
    slack: SlackSettings = SlackSettings()
    alerting: Alerting = Alerting()
    clusters: dict[str, ClusterEndpoints] = Field(default_factory=dict)
    diagnosis: Diagnosis = Diagnosis()
    evidence: Evidence = Evidence()
    probes: Probes = Probes()
    drills: Drills = Drills()
    kubeconfig: str | None = None
    prometheus_url: str | None = None
    alertmanager_url: str | None = None
    webhook_token: SecretStr | None = None
    watcher_interval_seconds: float = Field(5, gt=0)
    outbox_interval_seconds: float = Field(0.5, gt=0)
    # how long a sender's claim on a batch holds before another sender may take it over (each delivery
    # renews it first): after a replica dies, the messages it had claimed wait this long
    outbox_claim_seconds: float = Field(60, gt=0)
    default_cluster: str = "default"
    export: ExportSettings = ExportSettings()
    tickets: TicketSettings = TicketSettings()
    ui: UiSettings = UiSettings()
    guard: GuardSettings = GuardSettings()
    extra: dict[str, Any] = Field(default_factory=dict)

    @field_validator("log_level", "log_format", mode="before")
    @classmethod
    def _any_case(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) and value.lower() not in {"text", "json"} else value

    @field_validator("database_url")
    @classmethod
    def _known_scheme(cls, value: str) -> str:
        if not value.startswith(("sqlite", "postgresql")):
            raise ValueError("expected a sqlite:/// or postgresql:// URL")
        return value
