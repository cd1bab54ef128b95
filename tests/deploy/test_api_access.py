"""/api/* behind a bearer token, and serve refusing to expose it without one."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot
from bot.compose.app.http import build_http_app
from bot.compose.cli.main import main
from bot.core.config import Settings
from tests.conftest import make_settings

TOKEN = "api-token-for-tests"


@pytest.fixture
def settings(sqlite_url: str) -> Settings:
    s = make_settings(sqlite_url)
    s.api_token = SecretStr(TOKEN)
    return s


@pytest.fixture
def client(bot: Bot) -> Iterator[TestClient]:
    with TestClient(build_http_app(bot)) as c:
        yield c


def test_the_api_answers_only_with_the_token(client: TestClient, bot: Bot) -> None:
    bot.services.incidents.declare("etcd slow", actor="alice")
    for path in ("/api/incidents", "/api/incidents/INC-1", "/api/incidents/INC-1/export?format=json"):
        anonymous = client.get(path)
        assert anonymous.status_code == 401
        assert anonymous.headers["www-authenticate"].startswith("Bearer")
        assert "a bearer token is required" in anonymous.json()["error"]
        wrong = client.get(path, headers={"Authorization": "Bearer guess"})
        assert wrong.status_code == 401 and "not valid" in wrong.json()["error"]
        assert TOKEN not in anonymous.text + wrong.text  # the answer never echoes the secret
        assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    listing = client.get("/api/incidents", headers={"Authorization": f"Bearer {TOKEN}"}).json()
    assert [i["title"] for i in listing["incidents"]] == ["etcd slow"]


def test_health_and_metrics_stay_open_for_probes_and_scrapers(client: TestClient) -> None:
    assert client.get("/healthz").status_code == 200
    assert client.get("/readyz").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_without_a_configured_token_the_api_is_open_on_loopback(sqlite_url: str, clock) -> None:  # type: ignore[no-untyped-def]
    from bot.compose.app.bot import build_bot

    bot = build_bot(make_settings(sqlite_url), clock=clock)
    try:
        with TestClient(build_http_app(bot)) as c:
            assert c.get("/api/incidents").status_code == 200
    finally:
        bot.close()


@pytest.mark.parametrize("host", ["0.0.0.0", "10.1.2.3", "::"])
def test_serve_refuses_to_expose_the_api_without_a_token(host: str, sqlite_url: str,
                                                         capsys: pytest.CaptureFixture[str],
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("INCIDENT_BOT_API_TOKEN", raising=False)
    assert main(["--database-url", sqlite_url, "serve", "--host", host]) == 2
    err = capsys.readouterr().err
    assert f"--host {host}: other machines could read every incident through /api/* without a token" in err
    assert "--allow-unauthenticated-api" in err
