"""Where people meet the bot: Slack, the web board, the post-mortem export and action-item tickets."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, SecretStr, field_validator

from bot.core.config.base import Section


class SlackSettings(Section):
    bot_token: SecretStr | None = None
    signing_secret: SecretStr | None = None
    app_token: SecretStr | None = None
    api_url: str = "https://slack.com/api/"
    home: Literal["channel", "thread"] = "channel"
    incidents_channel: str | None = None
    invite: list[str] = Field(default_factory=list)
    card_min_interval_seconds: float = Field(3, ge=0)
    users: dict[str, str] = Field(default_factory=dict)  # bot user name -> Slack user id (U…), for rota/approvers
    request_timeout_seconds: float = Field(10, gt=0)  # one Web API call; a hang becomes a retry, not a stuck worker
    press_window_seconds: float = Field(10, ge=0)  # a second press of the same button within this is a double click


class ExportSettings(Section):
    """Post-mortem export: the default reader zone, links, extra secret patterns to redact."""

    default_timezone: str = "UTC"
    public_url: str | None = None  # the bot's HTTP base URL as people reach it (for export links in chat)
    redact_patterns: list[str] = Field(default_factory=list)  # regular expressions, redacted in every format

    @field_validator("default_timezone")
    @classmethod
    def _known_zone(cls, value: str) -> str:
        from zoneinfo import ZoneInfo

        if value.strip().upper() != "UTC":
            try:
                ZoneInfo(value)
            except Exception:
                raise ValueError(f"{value!r} is not an IANA time zone (e.g. UTC, Europe/Berlin)") from None
        return value

    @field_validator("redact_patterns")
    @classmethod
    def _compiles(cls, value: list[str]) -> list[str]:
        import re

        for pattern in value:
            try:
                re.compile(pattern)
            except re.error as exc:
                raise ValueError(f"{pattern!r} is not a regular expression: {exc}") from None
        return value


class TicketSettings(Section):
    """Where action items become issues: GitHub (``repo``) or Jira (``project``); none by default."""

    kind: Literal["none", "github", "jira"] = "none"
    url: str | None = None  # GitHub: https://api.github.com (default) or https://HOST/api/v3; Jira: the site URL
    repo: str | None = None  # GitHub OWNER/NAME
    project: str | None = None  # Jira project key
    issue_type: str = "Task"  # Jira
    email: str | None = None  # Jira Cloud: basic auth as this account with ``token``; without it, a bearer PAT
    token: SecretStr | None = None
    labels: list[str] = Field(default_factory=lambda: ["incident-action"])
    sync_interval_seconds: float = Field(300, gt=0)  # create new issues, and look for closed ones, this often
    remind_overdue: bool = True  # a chat reminder per overdue open action item, once a day

    @field_validator("repo")
    @classmethod
    def _owner_name(cls, value: str | None) -> str | None:
        if value is not None and (value.count("/") != 1 or value.startswith("/") or value.endswith("/")):
            raise ValueError(f"expected OWNER/NAME, e.g. acme/platform, not {value!r}")
        return value


class UiSettings(Section):
    """The read-only web board under /ui/ (behind ``api_token``, or a reverse proxy's identity header)."""

    identity_header: str | None = None  # e.g. X-Forwarded-User, set by an authenticating proxy in front
    refresh_seconds: float = Field(0.5, gt=0, le=60)  # how often the board asks for changes (a 304 when none)
