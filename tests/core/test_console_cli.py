"""The command line as a new user meets it: help, the console driven by a pipe, bad config."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

TRANSCRIPT = """\
# a whole incident, as a script would drive it
/incident declare apiserver 5xx in prod-1 --severity sev1
/incident ack
/incident note error rate at 40 %
/incident cause a CI robot floods LIST pods
/incident mitigated throttled with APF
/incident resolve
/incident status
/incident frobnicate
/incident declare
/incident cancel
/incident note INC-404 hello
/incident status INC-404
"""


def cli(*args: str, stdin: str = "", env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_"))}
    full_env.update(env or {})
    return subprocess.run([sys.executable, "-m", "bot.compose.cli.main", *args], input=stdin, capture_output=True,
                          text=True, env=full_env, timeout=120)


def test_help_lists_every_command() -> None:
    out = cli("--help").stdout
    for name in ("serve", "console", "export", "sop", "playbooks", "db", "sandbox", "drill"):
        assert name in out


def test_a_piped_transcript_runs_an_incident_and_a_second_console_sees_it(tmp_path: Path) -> None:
    env = {"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}", "USER": "alice"}
    first = cli("console", "--user", "alice", stdin=TRANSCRIPT, env=env)
    assert first.returncode == 0, first.stderr
    out = first.stdout
    assert "Declared INC-1: apiserver 5xx in prod-1 (sev1, cluster default)." in out
    assert "INC-1 is resolved." in out
    # a real process on the wall clock: the seconds depend on the machine, the verdicts do not
    for stage, budget in (("notified", "1m00s"), ("diagnosed", "5m00s"), ("mitigated", "10m00s")):
        assert re.search(rf"✓ {stage} in \d+s \(budget {budget}\): met", out), stage
    assert "unknown command `frobnicate`" in out
    assert "INC-1 is resolved, so `cancel` is not possible now. Possible now: `close`, `reopen`." in out
    assert "there is no incident INC-404." in out
    assert "Traceback" not in out + first.stderr

    second = cli("console", "--user", "bob", stdin="/incident list\n/incident timeline INC-1\n", env=env)
    assert second.returncode == 0, second.stderr
    assert "No active incidents." in second.stdout
    for expected in ("opened by alice", "@alice is now commander", "error rate at 40 %",
                     "root cause: a CI robot floods LIST pods", "mitigated → resolved by alice"):
        assert expected in second.stdout
    assert "Declared INC-2" not in second.stdout


def test_bad_configuration_fails_with_one_line_naming_the_setting(tmp_path: Path) -> None:
    result = cli("console", env={"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'b.db'}",
                                 "INCIDENT_BOT_BUDGETS__DEFAULT__NOTIFY": "soon"})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "incident-bot: bad setting budgets.default.notify: Input should be a valid number, unable to parse string as a number"]
    bad_url = cli("console", env={"INCIDENT_BOT_DATABASE_URL": "mysql://x"})
    assert bad_url.stderr.strip() == "incident-bot: bad setting database_url: Value error, expected a sqlite:/// or postgresql:// URL"


def test_db_upgrade_migrates_and_reports(tmp_path: Path) -> None:
    env = {"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'm.db'}"}
    first = cli("db", "upgrade", env=env)
    assert first.returncode == 0 and "empty ->" in first.stdout
    assert "head" in cli("db", "current", env=env).stdout
