"""The HTTP API as an outsider meets it: free text redacted like the export, odd ids, a database away.

Every answer is a 4xx/503 with a sentence or a redacted document; never a 500 or a secret.
"""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlmodel import create_engine
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.core.clock import FakeClock
from tests.detect.payloads import alert, webhook

HOOK_TOKEN = "hook-token-for-tests"


@pytest.fixture
def client(bot: Bot) -> Iterator[TestClient]:
    with TestClient(build_http_app(bot), raise_server_exceptions=False) as c:
        yield c


def test_api_titles_and_causes_are_redacted_as_the_export_redacts_them(client: TestClient, bot: Bot) -> None:
    bot.services.incidents.declare("login broken, password=hunter2 in the logs", actor="alice")
    listing = client.get("/api/incidents")
    one = client.get("/api/incidents/INC-1")
    export = client.get("/api/incidents/INC-1/export?format=json")
    assert listing.status_code == one.status_code == export.status_code == 200
    for answer in (listing, one, export):
        assert "hunter2" not in answer.text
    assert json.loads(export.text)["incident"]["title"] == one.json()["title"] == listing.json()["incidents"][0]["title"]


@pytest.mark.parametrize("ref", ["INC-99999999999999999999", "INC-2147483648", "99999999999999999999999999"])
def test_an_incident_number_past_any_id_is_404_with_a_sentence(client: TestClient, ref: str) -> None:
    for path in (f"/api/incidents/{ref}", f"/api/incidents/{ref}/export?format=md"):
        answer = client.get(path)
        assert answer.status_code == 404, answer.text
        assert "there is no incident" in answer.json()["error"]


def test_deeply_nested_webhook_json_is_400_naming_the_body(bot: Bot, client: TestClient) -> None:
    bot.settings.webhook_token = SecretStr(HOOK_TOKEN)
    body = "[" * 100_000 + "]" * 100_000
    answer = client.post("/webhooks/alertmanager", content=body,
                         headers={"Authorization": f"Bearer {HOOK_TOKEN}", "Content-Type": "application/json"})
    assert answer.status_code == 400 and "(body)" in answer.json()["error"]


def test_the_webhook_answers_503_while_the_database_is_away(bot: Bot, client: TestClient, clock: FakeClock) -> None:
    bot.settings.webhook_token = SecretStr(HOOK_TOKEN)
    bot.db.engine = create_engine("sqlite:////nonexistent-dir/for/sure/incident-bot.db")  # the database is gone
    payload = webhook(alert("EtcdNoLeader", clock.now(), cluster="prod", job="etcd"))
    answer = client.post("/webhooks/alertmanager", json=payload, headers={"Authorization": f"Bearer {HOOK_TOKEN}"})
    assert answer.status_code == 503, answer.text
    assert answer.json() == {"error": "the database is unavailable; retry shortly"}
