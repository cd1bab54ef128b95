"""Nothing under /ui is reachable without the API token (or the proxy's identity header), and no secret is shown."""

from __future__ import annotations

import httpx
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.compose.app.ui_auth import COOKIE
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.ui.conftest import EXTENSIONS, TOKEN, Served

PATHS = ["/ui/", "/ui/board/cards", "/ui/incidents/INC-1", "/ui/incidents/INC-1/export?format=html",
         "/ui/incidents/INC-1/export?format=json", "/ui/report", "/ui/report?since=7d", "/ui/static/board.js",
         "/ui/static/ui.css", "/ui/nowhere"]


def test_every_page_needs_the_token(chat: MemoryChat, live: Served) -> None:
    chat.say("alice", "/incident declare apiserver 5xx --cluster prod-1")
    with httpx.Client(base_url=live.url) as anonymous:
        for path in PATHS:
            answer = anonymous.get(path)
            assert answer.status_code == 401, path
            assert "apiserver 5xx" not in answer.text and TOKEN not in answer.text
        wrong = anonymous.get("/ui/?token=guess")
        assert wrong.status_code == 401 and wrong.text.startswith("401: that token is not valid.")
        assert anonymous.get("/ui/", headers={"Authorization": "Bearer guess"}).status_code == 401
        assert anonymous.get("/ui/", cookies={COOKIE: "forged"}).status_code == 401
    with httpx.Client(base_url=live.url, headers={"Authorization": f"Bearer {TOKEN}"}) as scripted:
        assert scripted.get("/ui/board/cards").status_code == 200


def test_the_token_is_exchanged_once_for_an_http_only_cookie(chat: MemoryChat, live: Served) -> None:
    chat.say("alice", "/incident declare apiserver 5xx --cluster prod-1")
    with httpx.Client(base_url=live.url) as browser_like:
        first = browser_like.get(f"/ui/incidents/INC-1?token={TOKEN}")
        assert first.status_code == 303 and first.headers["location"] == "/ui/incidents/INC-1"  # out of the address bar
        cookie = first.headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=strict" in cookie and "Path=/ui" in cookie and TOKEN not in cookie
        page = browser_like.get("/ui/incidents/INC-1")
        assert page.status_code == 200 and "apiserver 5xx" in page.text and TOKEN not in page.text
        assert page.headers["content-security-policy"].startswith("default-src 'none'; script-src 'self'")
        # the cookie opens /ui only: the API still wants its bearer token
        assert browser_like.get("/api/incidents").status_code == 401


def test_a_proxy_identity_header_is_accepted_when_configured(settings: Settings, clock: FakeClock) -> None:
    settings.api_token = SecretStr(TOKEN)
    settings.ui.identity_header = "X-Forwarded-User"
    bot = build_bot(settings, clock=clock, extensions=EXTENSIONS)
    try:
        client = TestClient(build_http_app(bot))
        assert client.get("/ui/").status_code == 401
        assert client.get("/ui/", headers={"X-Forwarded-User": ""}).status_code == 401
        assert client.get("/ui/", headers={"X-Forwarded-User": "alice@example.com"}).status_code == 200
    finally:
        bot.close()


def test_secrets_pasted_into_chat_never_reach_the_board(chat: MemoryChat, bot: Bot) -> None:
    bot.settings.slack.bot_token = SecretStr("xoxb-1111-2222-abcdefghijklmnop")
    chat.say("alice", "/incident declare token xoxb-1111-2222-abcdefghijklmnop leaked --cluster prod-1")
    chat.say("alice", "/incident cause password=hunter2hunter2 in a ConfigMap")
    client = TestClient(build_http_app(bot), headers={"Authorization": f"Bearer {TOKEN}"})
    for path in ("/ui/", "/ui/board/cards", "/ui/incidents/INC-1", "/ui/incidents/INC-1/export?format=md"):
        text = client.get(path).text
        assert "xoxb-1111-2222-abcdefghijklmnop" not in text and "hunter2hunter2" not in text, path
        assert "[REDACTED]" in text, path


def test_bad_input_is_a_4xx_with_a_sentence(chat: MemoryChat, bot: Bot) -> None:
    client = TestClient(build_http_app(bot), headers={"Authorization": f"Bearer {TOKEN}"})
    assert client.get("/ui/incidents/INC-9").json() == {"error": "there is no incident INC-9."}
    assert client.get("/ui/incidents/bogus").status_code == 400
    bad = client.get("/ui/report?since=yesterday")
    assert bad.status_code == 400 and "--since `yesterday`" in bad.json()["error"]
    chat.say("alice", "/incident declare apiserver 5xx")
    assert client.get("/ui/incidents/INC-1/export?format=pdf").json() == {
        "error": "format must be one of md, json, html, not `pdf`."}
