"""`incident-bot sop`: authors validate procedures (file, line, reason) and try them on a cluster."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from bot.compose.cli.main import main
from bot.domain.diagnosis.library import BUILTIN_DIR
from tests.support.components import StubApiserver

BROKEN = """\
title: Broken on purpose
applies_to:
  alerts: [KubeAPIDown]
checks:
  - id: ready
    kind: http
    urls: "{{ cluster.apiservers.main }}"
    path: /readyz
  - id: load
    kind: graphite
    query: x
tree:
  start: down
  nodes:
    down:
      when: checks.ready.none_ok and checks.missing.value > 1
      then: failover
      else: nowhere
      unknown: escalate
conclusions:
  failover:
    cause: "main down {{ checks.ready.failed_count }"
    playbook: {name: failover-apiserver}
  escalate:
    cause: unknown
    escalate: true
"""


def test_validate_rejects_a_broken_procedure_naming_file_line_and_reason(tmp_path: Path) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text(BROKEN)
    result = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "sop", "validate", str(broken)],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [
        f"{broken}:10: check `load`: unknown kind 'graphite'; expected one of: promql, kubernetes, etcd, http, probe",
        f"{broken}:16: node `down` uses `checks.missing`, which is not a check",
        f"{broken}:18: node `down`: `else` goes to `nowhere`, which is neither a node nor a conclusion",
        f"{broken}:22: `conclusions.failover.cause`: jinja2 syntax error: unexpected '}}'",
    ]
    assert "Traceback" not in result.stderr and "4 problem(s)" in result.stderr


def test_validate_accepts_the_shipped_procedures(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["sop", "validate"]) == 0
    shipped = sorted(p.stem for p in BUILTIN_DIR.glob("*.yaml"))  # every file in sop/, as others add theirs
    assert {"apiserver-overload", "apiserver-unavailable", "control-plane-triage", "etcd-health"} <= set(shipped)
    assert capsys.readouterr().out.strip() == f"ok: {len(shipped)} procedure(s) valid: {', '.join(shipped)}"


def test_a_bad_yaml_file_is_one_line_with_its_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("title: x\nchecks: [\n  - id: a\n")
    assert main(["sop", "validate", str(bad)]) == 1
    out = capsys.readouterr().out.strip()
    assert out.startswith(f"{bad}:") and "not valid YAML" in out and "\n" not in out


@pytest.fixture
def config(tmp_path: Path) -> tuple[Path, dict]:
    servers = {"main": StubApiserver("main-1", ready=False).start(), "bypass": StubApiserver("bypass-1").start()}
    cfg = {"database_url": f"sqlite:///{tmp_path / 'bot.db'}",
           "clusters": {"prod-1": {"apiservers": {"main": [servers["main"].url], "bypass": [servers["bypass"].url]}}}}
    path = tmp_path / "bot.yaml"
    path.write_text(yaml.safe_dump(cfg))
    yield path, servers
    for s in servers.values():
        s.close()


def test_run_explains_the_checks_and_the_path(config, capsys: pytest.CaptureFixture[str]) -> None:
    path, servers = config
    assert main(["--config", str(path), "sop", "run", "apiserver-unavailable", "--cluster", "prod-1", "--explain"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("procedure apiserver-unavailable — Main apiservers down, bypass apiservers healthy")
    assert f"      GET {servers['main'].url}/readyz -> 500" in out
    assert "  ? etcd (etcd, 0.00s): unknown — no etcd members are configured for cluster prod-1 " \
           "(clusters.prod-1.etcd.members)" in out
    assert out[out.index("path:") + 1:out.index("path:") + 4] == [
        "  main_down: `checks.main.none_ok` is true → etcd_quorum",
        "  etcd_quorum: `checks.etcd.has_quorum and checks.etcd.one_leader` is unknown (check etcd is unknown: "
        "no etcd members are configured for cluster prod-1 (clusters.prod-1.etcd.members)) → bypass_ready",
        "  bypass_ready: `checks.bypass.any_ok` is true → failover",
    ]
    assert out[-1] == 'action: playbook failover-apiserver {"mode": "drain"}'


def test_run_against_an_incident_records_only_when_asked(config, capsys: pytest.CaptureFixture[str]) -> None:
    path, _ = config
    from bot.compose.app.bot import build_bot
    from bot.core.config import load_settings

    bot = build_bot(load_settings(path, environ={}))
    bot.services.incidents.declare("apiserver down", actor="alice", cluster="prod-1")
    bot.close()
    assert main(["--config", str(path), "sop", "run", "apiserver-unavailable", "--incident", "INC-1"]) == 0
    assert "conclusion: failover" in capsys.readouterr().out
    bot = build_bot(load_settings(path, environ={}))
    assert bot.services.incidents.get("INC-1").root_cause is None  # only looked
    bot.close()
    assert main(["--config", str(path), "sop", "run", "apiserver-unavailable", "--incident", "INC-1", "--record"]) == 0
    bot = build_bot(load_settings(path, environ={}))
    incident = bot.services.incidents.get("INC-1")
    bot.close()
    assert incident.state == "diagnosed" and incident.root_cause.startswith("the main apiservers are down")
    assert main(["sop", "run", "nope", "--cluster", "x"]) == 2
    assert "there is no procedure `nope`" in capsys.readouterr().err
