"""Settings as a deployment supplies them: secrets in files, stray variables, host/port/log level."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from bot.core.config import load_settings, secret
from bot.core.errors import ConfigError


def test_secrets_come_from_mounted_files(tmp_path: Path) -> None:
    (tmp_path / "slack-bot-token").write_text("xoxb-from-file\n")
    (tmp_path / "api-token").write_text("api-from-file")
    (tmp_path / "db").write_text("postgresql://bot:pw@db:5432/bot\n")
    settings = load_settings(environ={
        "SLACK_BOT_TOKEN_FILE": str(tmp_path / "slack-bot-token"),
        "INCIDENT_BOT_API_TOKEN_FILE": str(tmp_path / "api-token"),
        "INCIDENT_BOT_DATABASE_URL_FILE": str(tmp_path / "db"),
    })
    assert secret(settings.slack.bot_token) == "xoxb-from-file"  # the newline a file ends with is not part of it
    assert secret(settings.api_token) == "api-from-file"
    assert settings.database_url == "postgresql://bot:pw@db:5432/bot"


def test_an_unreadable_secret_file_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ={"SLACK_SIGNING_SECRET_FILE": str(tmp_path / "missing")})
    assert str(err.value).startswith(f"SLACK_SIGNING_SECRET_FILE: cannot read {tmp_path / 'missing'}")


def test_a_value_and_its_file_together_are_refused(tmp_path: Path) -> None:
    (tmp_path / "t").write_text("a")
    with pytest.raises(ConfigError, match="INCIDENT_BOT_API_TOKEN_FILE: INCIDENT_BOT_API_TOKEN is set too"):
        load_settings(environ={"INCIDENT_BOT_API_TOKEN": "b", "INCIDENT_BOT_API_TOKEN_FILE": str(tmp_path / "t")})


def test_a_stray_variable_is_a_warning_not_a_failed_start(caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.WARNING, logger="bot.core.config"):
        settings = load_settings(environ={"INCIDENT_BOT_NO_SUCH_THING": "1",
                                          "INCIDENT_BOT_SLACK__CHANEL": "#typo",
                                          "INCIDENT_BOT_CLUSTERS__PROD__KUBECONFIG": "/etc/kube/prod"})
    assert settings.clusters["prod"].kubeconfig == "/etc/kube/prod"  # mappings of named things still work
    warnings = [r.getMessage() for r in caplog.records]
    assert "environment variable INCIDENT_BOT_NO_SUCH_THING names no setting (no_such_thing); ignored" in warnings
    assert "environment variable INCIDENT_BOT_SLACK__CHANEL names no setting (slack.chanel); ignored" in warnings


def test_host_port_and_logging_from_the_environment() -> None:
    settings = load_settings(environ={"INCIDENT_BOT_HOST": "0.0.0.0", "INCIDENT_BOT_PORT": "9090",
                                      "INCIDENT_BOT_LOG_LEVEL": "info", "INCIDENT_BOT_LOG_FORMAT": "json"})
    assert (settings.host, settings.port, settings.log_level, settings.log_format) == ("0.0.0.0", 9090, "INFO", "json")
    with pytest.raises(ConfigError, match="bad setting log_level"):
        load_settings(environ={"INCIDENT_BOT_LOG_LEVEL": "loud"})
