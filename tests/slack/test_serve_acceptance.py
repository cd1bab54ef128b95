"""Acceptance: the real `incident-bot serve` process against a loopback fake Slack."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

from tests.slack.conftest import APP_TOKEN, BOT_TOKEN
from tests.support import slack_signing
from tests.support.fake_slack import FakeSlack, FakeSocketMode


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait(check, timeout: float = 90.0):  # type: ignore[no-untyped-def]
    """Until ``check`` holds: a process starting or a message arriving, never a timing goal (a loaded machine
    takes 15 s and more to start serve)."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def test_serve_declares_posts_the_card_and_updates_it_on_ack(tmp_path: Path, fake_slack: FakeSlack) -> None:
    port = free_port()
    env = {**os.environ,
           "INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_SIGNING_SECRET": slack_signing.SECRET,
           "SLACK_API_URL": fake_slack.api_url,
           "INCIDENT_BOT_SLACK__USERS": "{alice: U0ALICE, bob: U0BOB}",
           "INCIDENT_BOT_SLACK__CARD_MIN_INTERVAL_SECONDS": "1",
           "INCIDENT_BOT_ONCALL__ROTA": "[alice, bob]"}
    env.pop("INCIDENT_BOT_CONFIG", None)
    proc = subprocess.Popen([sys.executable, "-m", "bot.compose.cli.main", "--log-level", "DEBUG", "serve",
                             "--port", str(port)], env=env, cwd=tmp_path,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    base = f"http://127.0.0.1:{port}"
    try:
        wait(lambda: serving(base))
        http = httpx.Client(timeout=10)
        started = time.monotonic()
        body, headers = slack_signing.slash_command("declare apiserver 5xx in prod-1 --severity sev1",
                                                    response_url=fake_slack.response_url("declare"))
        response = http.post(f"{base}/slack/events", content=body, headers=headers)
        assert response.status_code == 200 and time.monotonic() - started < 3

        card_post = wait(lambda: [c for c in fake_slack.answered("chat.postMessage") if c["body"].get("blocks")])[0]
        channel = fake_slack.wait_for("conversations.create")[0]["body"]["name"]
        assert channel == "inc-1-apiserver-5xx-in-prod-1"
        card = next(m for m in fake_slack.messages.values() if m["blocks"])
        assert card_post["body"]["channel"] == card["channel"]

        body, headers = slack_signing.slash_command("ack", user="U0BOB", channel=card["channel"],
                                                    response_url=fake_slack.response_url("ack"))
        assert http.post(f"{base}/slack/events", content=body, headers=headers).status_code == 200
        update = wait(lambda: [c for c in fake_slack.answered("chat.update") if "U0BOB" in str(c["body"]["blocks"])])
        assert update[0]["body"]["ts"] == card["ts"] and update[0]["body"]["channel"] == card["channel"]

        body, headers = slack_signing.slash_command("declare forged", response_url=fake_slack.response_url("f"),
                                                    secret="wrong")
        assert http.post(f"{base}/slack/events", content=body, headers=headers).status_code == 401
        assert http.get(f"{base}/api/incidents").json()["incidents"][0]["id"] == "INC-1"
        http.close()
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
    assert BOT_TOKEN not in output and slack_signing.SECRET not in output  # tokens never logged, even at DEBUG
    assert "Sending a request" in output  # (DEBUG logging really was on)


def serving(base: str) -> bool:
    """Does the bot at ``base`` answer /healthz (the deploy tests wait for a serve this way too)?"""
    try:
        return httpx.get(f"{base}/healthz", timeout=1).status_code == 200
    except httpx.HTTPError:
        return False


def test_serve_socket_mode_connects_out_and_answers(tmp_path: Path, fake_slack: FakeSlack) -> None:
    socket_server = FakeSocketMode()
    fake_slack.ws_url = socket_server.url
    port = free_port()
    env = {**os.environ, "INCIDENT_BOT_DATABASE_URL": f"sqlite:///{tmp_path / 'bot.db'}",
           "SLACK_BOT_TOKEN": BOT_TOKEN, "SLACK_APP_TOKEN": APP_TOKEN, "SLACK_API_URL": fake_slack.api_url}
    for name in ("INCIDENT_BOT_CONFIG", "SLACK_SIGNING_SECRET"):
        env.pop(name, None)
    proc = subprocess.Popen([sys.executable, "-m", "bot.compose.cli.main", "serve", "--socket-mode", "--port", str(port)],
                            env=env, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        assert wait(lambda: fake_slack.answered("apps.connections.open"))[0]["token_kind"] == "xapp"
        socket_server.to_send.put({
            "envelope_id": "env-7", "type": "slash_commands", "accepts_response_payload": True,
            "payload": {"team_id": "T0001", "channel_id": "C0GENERAL", "user_id": "U0BOB", "command": "/incident",
                        "text": "help ack", "response_url": fake_slack.response_url("sm"), "trigger_id": "1.2.3"}})
        wait(lambda: any(m.get("envelope_id") == "env-7" for m in socket_server.received))
        answer = wait(lambda: fake_slack.answered("response_url"))[0]["body"]
        assert answer["response_type"] == "ephemeral" and "/incident ack" in str(answer["blocks"])
        wait(lambda: serving(f"http://127.0.0.1:{port}"))  # the other endpoints still serve
        assert httpx.post(f"http://127.0.0.1:{port}/slack/events", content="x").status_code == 404  # no HTTP mode
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            output, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            output, _ = proc.communicate()
        socket_server.stop()
    assert APP_TOKEN not in output and BOT_TOKEN not in output
