"""The whole path from a terminal: `incident-bot console` piped, two people, a throttle on the stand-in."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from tests.support.apiserver import ApiServerStandIn

REPO = Path(__file__).resolve().parents[2]
SCRIPT = """\
/incident declare apiserver overloaded --severity sev1
/incident ack
/incident cause team-a noisy-controller floods LIST pods
/incident run throttle-client subject=serviceaccount:team-a/noisy-controller ttl=20m
/as bob
/incident approve RUN-1
/as alice
/incident approve RUN-1
"""


def test_a_throttle_from_the_console(apiserver: ApiServerStandIn, apiserver_kubeconfig: Path, tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_", "PROMETHEUS"))}
    env.update(INCIDENT_BOT_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}", KUBECONFIG=str(apiserver_kubeconfig),
               INCIDENT_BOT_ONCALL__ROTA="[alice, bob]", INCIDENT_BOT_DIAGNOSIS__AUTO="false")
    out = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "console", "--user", "alice"], input=SCRIPT,
                         capture_output=True, text=True, cwd=REPO, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    text = out.stdout
    assert "RUN-1 throttle-client (high risk) awaits approval" in text
    assert "only the commander @alice can approve RUN-1 (high risk)." in text
    assert "RUN-1 approved by @alice; it starts now." in text
    assert "RUN-1 throttle-client: step 3/3 create flow schema: done" in text
    assert "mitigating → mitigated by incident-bot" in text
    names = [f["metadata"]["name"] for f in apiserver.flow_schemas()]
    assert any(n.startswith("incident-bot-throttle-serviceaccount-team-a-noisy-controller-") for n in names)
