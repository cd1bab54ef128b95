"""The drill command refuses what it must not do, with one clear line, before starting anything."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.compose.cli.main import main


def test_an_unknown_scenario_is_refused_with_the_known_ones(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["drill", "disk-full"]) == 2
    err = capsys.readouterr().err
    assert "unknown drill scenario `disk-full`" in err
    assert "etcd-quorum-loss" in err and "client-flood" in err


def test_a_cluster_not_marked_as_drill_target_is_never_touched(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("clusters:\n  prod-1:\n    prometheus_url: http://127.0.0.1:9\n")
    assert main(["--config", str(config), "drill", "etcd-member-down", "--cluster", "prod-1"]) == 2
    err = capsys.readouterr().err
    assert "cluster `prod-1` is not a drill target" in err and "drill_target: true" in err


def test_a_cluster_that_is_not_configured_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = tmp_path / "settings.yaml"
    config.write_text("clusters: {}\n")
    assert main(["--config", str(config), "drill", "client-flood", "--cluster", "staging"]) == 2
    assert "cluster `staging` is not configured" in capsys.readouterr().err
