"""Who is paged and when: the duty rota, rotas per team, and the pagers beside chat.

One section because the rota, its overrides and the pagers answer one question for the
notify stage of the clock: whom to wake now, and whom next when nobody acknowledges.
"""

from __future__ import annotations

from datetime import datetime, timezone

from pydantic import Field, SecretStr, field_validator

from bot.core.config.base import Section, iana_zone


class RotaOverride(Section):
    """Someone covers a stretch of a rota (a swap, a holiday); times without an offset are the rota's zone."""

    user: str
    start: datetime
    end: datetime


class Team(Section):
    """A team's rota, chosen for an incident by its cluster and component (see bot/domain/slo/rota.py)."""

    members: list[str] = Field(min_length=1)
    clusters: list[str] = Field(default_factory=list)  # shell patterns (prod-eu-*); empty: any cluster
    components: list[str] = Field(default_factory=list)  # empty: any component
    timezone: str = "UTC"  # hand-overs happen at rotation_start's wall-clock time in this zone
    rotation_hours: float = Field(168, gt=0)
    rotation_start: datetime = datetime(2026, 1, 5, 9, 0)
    overrides: list[RotaOverride] = Field(default_factory=list)
    escalation: list[str] = Field(default_factory=list)  # paged after the members (a manager, a lead)

    _zone = field_validator("timezone")(classmethod(lambda cls, v: iana_zone(v)))


class OnCall(Section):
    """The duty rota: who is paged first, and whom escalation pages next.

    ``rota`` (with its rotation and overrides) is the ``default`` team; ``teams``
    add rotas per team and cluster.  ``people`` maps a name to an e-mail address:
    Slack finds the person with ``users.lookupByEmail``, Opsgenie pages it.
    """

    rota: list[str] = Field(default_factory=list)
    rotation_hours: float = Field(168, gt=0)
    rotation_start: datetime = datetime(2026, 1, 5, 9, 0, tzinfo=timezone.utc)
    timezone: str = "UTC"
    overrides: list[RotaOverride] = Field(default_factory=list)
    teams: dict[str, Team] = Field(default_factory=dict)
    people: dict[str, str] = Field(default_factory=dict)  # name -> e-mail
    pager_webhook_url: str | None = None

    _zone = field_validator("timezone")(classmethod(lambda cls, v: iana_zone(v)))


class PagerDutySettings(Section):
    """PagerDuty Events API v2 (pages) and webhooks v3 (acknowledgements)."""

    routing_key: SecretStr | None = None  # the integration key of an Events API v2 service integration
    events_url: str = "https://events.pagerduty.com/v2/enqueue"
    webhook_secrets: list[SecretStr] = Field(default_factory=list)  # v3 subscription secrets (two while rotating)
    timeout_seconds: float = Field(10, gt=0)


class OpsgenieSettings(Section):
    """Opsgenie Alert API (pages) and its outgoing Webhook integration (acknowledgements)."""

    api_key: SecretStr | None = None  # an API integration's key (Authorization: GenieKey ...)
    api_url: str = "https://api.opsgenie.com"  # https://api.eu.opsgenie.com for the EU instance
    webhook_token: SecretStr | None = None  # sent by the Webhook integration as a custom header
    timeout_seconds: float = Field(10, gt=0)


class Paging(Section):
    """Pagers beside chat, and what happens to a page nobody acknowledges."""

    pagerduty: PagerDutySettings = PagerDutySettings()
    opsgenie: OpsgenieSettings = OpsgenieSettings()
    repage_after_seconds: float = Field(180, gt=0)  # an unacknowledged page is repeated after this
    repeats: int = Field(1, ge=0)  # repeats to the same person before escalating along the rota
    max_escalations: int = Field(3, ge=0)
