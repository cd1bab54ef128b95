"""Settings: YAML, environment overrides, and one clear line for bad values."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.core.config import load_settings
from bot.core.errors import ConfigError


def test_environment_overrides_the_file(tmp_path: Path) -> None:
    file = tmp_path / "bot.yaml"
    file.write_text("budgets:\n  default: {notify: 45}\noncall:\n  rota: [alice, bob]\n")
    settings = load_settings(file, environ={"INCIDENT_BOT_BUDGETS__DEFAULT__NOTIFY": "30",
                                            "PROMETHEUS_URL": "http://127.0.0.1:9090",
                                            "SLACK_BOT_TOKEN": "xoxb-secret"})
    assert settings.budgets.default.notify == 30
    assert settings.oncall.rota == ["alice", "bob"]
    assert settings.prometheus_url == "http://127.0.0.1:9090"
    assert "xoxb-secret" not in repr(settings)  # secrets never show in a repr or a log


@pytest.mark.parametrize(("environ", "message"), [
    ({"INCIDENT_BOT_WATCHER_INTERVAL_SECONDS": "-1"},
     "bad setting watcher_interval_seconds: Input should be greater than 0"),
    ({"INCIDENT_BOT_PORT": "0"}, "bad setting port: Input should be greater than or equal to 1"),
])
def test_a_bad_value_names_the_setting(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(environ=environ)
    assert str(err.value) == message


def test_a_missing_or_broken_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="not found"):
        load_settings(tmp_path / "nope.yaml", environ={})
    broken = tmp_path / "broken.yaml"
    broken.write_text("budgets: [")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_settings(broken, environ={})
