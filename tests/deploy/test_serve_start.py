"""What an operator sees when `incident-bot serve` starts in a pod: one line that says how it is set up."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import uvicorn

from bot.compose.app.serve import stop_requests_reach

from tests.slack.test_serve_acceptance import free_port, serving, wait


KUBECONFIG = """apiVersion: v1
kind: Config
clusters: [{name: prod-1, cluster: {server: "https://10.0.0.10:6443"}}]
users: [{name: bot, user: {token: not-used-at-start}}]
contexts: [{name: prod-1, context: {cluster: prod-1, user: bot}}]
current-context: prod-1
"""


def start(tmp_path: Path, *args: str, **env: str) -> tuple[subprocess.Popen[str], Path, int]:
    port = free_port()
    log = tmp_path / "serve.log"
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_"))}
    environ.update({"INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
                    "INCIDENT_BOT_PORT": str(port), **env})
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "bot.compose.cli.main", *args, "serve"], env=environ,
                                cwd=tmp_path, stdout=out, stderr=subprocess.STDOUT, text=True)
    # generous: the start (imports, migrations) shares 2 cores with the other tests
    wait(lambda: "listening on" in log.read_text() or proc.poll() is not None, timeout=90)
    return proc, log, port


def stop(proc: subprocess.Popen[str]) -> None:
    proc.send_signal(signal.SIGINT)
    try:
        proc.wait(timeout=60)  # workers finish their turn; slow when the 2 cores are busy
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def test_the_first_line_says_where_it_listens_which_chat_database_and_clusters(tmp_path: Path) -> None:
    secret = tmp_path / "api-token"
    secret.write_text("tok-from-a-mounted-secret\n")
    kubeconfig = tmp_path / "prod-1.kubeconfig"  # as the chart mounts one per guarded cluster
    kubeconfig.write_text(KUBECONFIG)
    proc, log, port = start(
        tmp_path,
        INCIDENT_BOT_HOST="0.0.0.0", INCIDENT_BOT_API_TOKEN_FILE=str(secret),
        INCIDENT_BOT_CLUSTERS__PROD_1__KUBECONFIG=str(kubeconfig),
        SLACK_BOT_TOKEN="xoxb-set-but-nothing-else", INCIDENT_BOT_STRAY_SETTING="1")
    try:
        wait(lambda: serving(f"http://127.0.0.1:{port}"), timeout=60)
        api = httpx.get(f"http://127.0.0.1:{port}/api/incidents",
                        headers={"Authorization": "Bearer tok-from-a-mounted-secret"})
        assert api.status_code == 200
    finally:
        stop(proc)
    text = log.read_text()
    assert (f"incident-bot listening on http://0.0.0.0:{port}; chat: none; "
            f"database: sqlite:///{tmp_path / 'bot.db'}; clusters: prod_1; /api/*: bearer token required") in text
    assert "SLACK_BOT_TOKEN is set but neither SLACK_SIGNING_SECRET (HTTP mode) nor SLACK_APP_TOKEN" in text
    assert "environment variable INCIDENT_BOT_STRAY_SETTING names no setting (stray_setting); ignored" in text
    assert "xoxb-set-but-nothing-else" not in text and "tok-from-a-mounted-secret" not in text


def test_json_logs_are_one_object_a_line(tmp_path: Path) -> None:
    proc, log, _ = start(tmp_path, "--log-format", "json",
                         INCIDENT_BOT_DATABASE_URL=f"sqlite:///{tmp_path / 'bot.db'}")
    stop(proc)
    assert proc.returncode == 0
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    start_line = next(r for r in records if "listening on" in r["message"])
    assert start_line["level"] == "INFO" and start_line["logger"] == "bot.compose.app.serve"
    assert {"time", "level", "logger", "message"} <= set(records[0])


def test_a_stop_signal_that_comes_before_the_server_listens_stops_it_like_one_while_serving() -> None:
    """A pod deleted while it starts: the signal asks the server to stop; nothing is raised mid start-up."""
    server = uvicorn.Server(uvicorn.Config(app=None))
    default_term = signal.getsignal(signal.SIGTERM)
    with stop_requests_reach(server):
        signal.raise_signal(signal.SIGTERM)  # would kill the process, or raise mid start-up for SIGINT
        signal.raise_signal(signal.SIGINT)
        assert server.should_exit
    assert signal.getsignal(signal.SIGTERM) is default_term
