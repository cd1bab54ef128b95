"""The OpenAPI document: valid OpenAPI 3.1, served, and exactly the endpoints `serve` answers."""

from __future__ import annotations

from openapi_spec_validator import validate
from pydantic import SecretStr
from starlette.routing import Mount, Route
from starlette.testclient import TestClient

from bot.compose.app.bot import build_bot
from bot.compose.app.http import build_http_app
from bot.compose.app.openapi import document
from bot.core.clock import FakeClock
from tests.conftest import make_settings


def test_the_document_is_valid_openapi_3_1() -> None:
    validate(document())  # raises with the offending path when it is not


def test_every_endpoint_serve_answers_is_declared_and_nothing_else(sqlite_url: str) -> None:
    settings = make_settings(sqlite_url)
    settings.slack.bot_token = SecretStr("xoxb-test")
    settings.slack.signing_secret = SecretStr("secret")
    bot = build_bot(settings, clock=FakeClock())
    try:
        app = build_http_app(bot)
        served = {(method.lower(), route.path) for route in app.routes if isinstance(route, Route)
                  for method in (route.methods or ()) if method != "HEAD"}
        declared = {(method, path) for path, ops in document()["paths"].items() for method in ops}
        assert served == declared
        assert all(m.path == "/ui" for m in app.routes if isinstance(m, Mount))  # the browser UI: HTML pages
        with TestClient(app) as client:
            answer = client.get("/openapi.json")
        assert answer.status_code == 200 and answer.json()["openapi"] == "3.1.0"
    finally:
        bot.close()
