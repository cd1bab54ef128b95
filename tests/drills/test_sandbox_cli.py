"""`incident-bot sandbox`: a live control plane and the bot with the console chat; SIGTERM leaves nothing."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

from bot.compose.sandbox.processes import wait_until
from bot.compose.sandbox.sandbox import processes_under

BIN = Path(sys.executable).with_name("incident-bot")


def test_the_sandbox_chats_and_sigterm_removes_every_process_and_directory(tmp_path: Path) -> None:
    proc = subprocess.Popen([str(BIN), "sandbox", "--user", "alice"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, cwd=tmp_path,
                            env={**os.environ, "INCIDENT_BOT_CONFIG": ""})
    assert proc.stdin is not None and proc.stdout is not None
    try:
        lines: list[str] = []
        root: Path | None = None
        while not lines or "try a fault" not in lines[-1]:
            line = proc.stdout.readline()
            assert line, "the sandbox exited before it was up:\n" + "".join(lines)
            lines.append(line)
            if line.startswith("sandbox up in "):
                root = Path(line.split()[3])
        assert root is not None
        banner = "".join(lines)
        assert "load balancer:" in banner and "Prometheus:" in banner and "Alertmanager:" in banner
        assert processes_under(root), "the sandbox's components are running"

        proc.stdin.write("/incident declare rehearsal --cluster sandbox\n")
        proc.stdin.flush()
        while "Declared INC-1" not in (line := proc.stdout.readline()):
            assert line, "no answer to the declare line"

        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=60) == 130
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    wait_until(lambda: not processes_under(root), timeout=5, what="no process of the sandbox left")
    assert not root.exists()
