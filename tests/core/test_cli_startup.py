"""The command line loads only what the command in hand uses (start-up is imports, mostly)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

PROBE = """
import sys
from bot.compose.cli.main import main
try:
    code = main(sys.argv[1:])
except SystemExit as exc:  # --version and --help exit from argparse
    code = exc.code
heavy = sorted(m for m in ("kubernetes", "slack_bolt", "alembic", "bot.compose.sandbox.scenarios", "playbooks",
                           "integrations.adapters.slack", "bot.compose.app.bot") if m in sys.modules)
print("LOADED", ",".join(heavy), file=sys.stderr)
sys.exit(code)
"""


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-c", PROBE, *args], capture_output=True, text=True, env=full_env,
                          timeout=120)


def loaded(result: subprocess.CompletedProcess[str]) -> str:
    return next(line for line in result.stderr.splitlines() if line.startswith("LOADED")).removeprefix("LOADED").strip()


def test_version_and_help_load_no_subcommand_machinery() -> None:
    version = run("--version")
    assert version.stdout.startswith("incident-bot ") and loaded(version) == ""
    helped = run("--help")
    assert "drill" in helped.stdout and "export" in helped.stdout and loaded(helped) == ""


def test_a_subcommand_s_own_help_is_still_complete() -> None:
    drill = run("drill", "--help")
    assert "client-flood" in drill.stdout  # the scenarios are listed when drill is the command


def test_export_reads_the_store_without_building_the_bot(tmp_path: Path) -> None:
    env = {"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}"}
    subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "console", "--user", "alice"], env={**os.environ, **env},
                   input="/incident declare etcd slow\n", capture_output=True, text=True, timeout=120, check=True)
    exported = run("export", "INC-1", "--format", "md", env=env)
    assert exported.returncode == 0, exported.stderr
    assert exported.stdout.startswith("# INC-1 post-mortem: etcd slow")
    assert loaded(exported) == ""


def test_export_of_a_store_never_upgraded_says_what_to_do(tmp_path: Path) -> None:
    exported = run("export", "INC-1", env={"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'empty.db'}"})
    assert exported.returncode == 2
    assert "run `incident-bot db upgrade` first" in exported.stderr and "Traceback" not in exported.stderr
