"""Schema-driven fuzzing of every HTTP endpoint: whatever arrives, the answer is never a 5xx.

The requests are generated from ``GET /openapi.json`` (``bot.compose.app.openapi``):
each declared operation gets path and query parameters, headers and bodies
drawn from its schemas, mixed with wrong types, odd Unicode, huge numbers and
deep nesting; half carry valid credentials (the bearer tokens, or a real Slack
signature over the generated body), so the code behind authentication is
fuzzed too.  ``benchmarks/reliability.py`` runs the same with more examples
and prints the totals.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from pydantic import SecretStr
from starlette.testclient import TestClient

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.http import build_http_app
from bot.compose.app.openapi import OPERATIONS, Operation
from bot.core.clock import FakeClock
from tests.conftest import make_settings
from tests.reliability.schema_strategies import ODD_TEXT, from_schema
from tests.support import slack_signing
from tests.support.fake_slack import FakeSlack

API_TOKEN, HOOK_TOKEN = "fuzz-api-token", "fuzz-webhook-token"
# per endpoint: 40 in every test run; benchmarks/reliability.py sets INCIDENT_BOT_FUZZ_EXAMPLES higher
EXAMPLES = int(os.environ.get("INCIDENT_BOT_FUZZ_EXAMPLES", "40"))
TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module")
def fuzz_client(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[TestClient, Bot]]:
    fake = FakeSlack().start()
    settings = make_settings(f"sqlite:///{tmp_path_factory.mktemp('fuzz') / 'bot.db'}")
    settings.api_token = SecretStr(API_TOKEN)
    settings.webhook_token = SecretStr(HOOK_TOKEN)
    settings.slack.bot_token = SecretStr("xoxb-fuzz")
    settings.slack.signing_secret = SecretStr(slack_signing.SECRET)
    settings.slack.api_url = fake.api_url
    bot = build_bot(settings, clock=FakeClock())
    bot.services.incidents.declare("a known incident", actor="alice")
    try:
        with TestClient(build_http_app(bot), raise_server_exceptions=False) as client:
            yield client, bot
    finally:
        bot.close()
        fake.stop()


def credentials(op: Operation, body: bytes, good: bool) -> dict[str, str]:
    if not op.security or not good:
        return {}
    scheme = op.security[0]
    if scheme == "slack_signature":
        return slack_signing.sign(body.decode("utf-8", errors="replace"))
    token = API_TOKEN if scheme == "api_token" else HOOK_TOKEN
    return {"Authorization": f"Bearer {token}"}


@st.composite
def requests_for(draw: st.DrawFn, op: Operation) -> tuple[str, str, dict[str, str], bytes]:
    path = op.path
    query: dict[str, str] = {}
    headers: dict[str, str] = {}
    for param in op.params:
        value = draw(from_schema(param.get("schema") or {}) if draw(st.booleans()) else ODD_TEXT)
        text = value if isinstance(value, str) else json.dumps(value)
        if param["in"] == "path":
            path = path.replace("{" + param["name"] + "}", quote(text, safe="") or "x")
        elif param["in"] == "query" and draw(st.booleans()):
            query[param["name"]] = text
        elif param["in"] == "header":
            headers[param["name"]] = text.encode("utf-8", errors="replace").decode("latin-1")
    body = b""
    if op.body:
        media, schema = draw(st.sampled_from(sorted(op.body.items())))
        headers["Content-Type"] = media
        if media == "application/x-www-form-urlencoded":
            fields = draw(from_schema(schema))
            pairs = fields.items() if isinstance(fields, dict) else [("payload", fields)]
            body = "&".join(f"{quote(str(k))}={quote(v if isinstance(v, str) else json.dumps(v))}"
                            for k, v in pairs).encode()
        else:
            body = json.dumps(draw(from_schema(schema))).encode()
        if draw(st.integers(0, 9)) == 0:  # now and then: not JSON / not a form at all
            body = draw(st.binary(max_size=64))
    good = draw(st.booleans())
    headers.update(credentials(op, body, good))
    if query:
        path += "?" + "&".join(f"{quote(k)}={quote(v, safe='')}" for k, v in query.items())
    return op.method.upper(), path, headers, body


def check(response: Any, op: Operation) -> None:
    TALLY[f"{op.method} {op.path}"] += 1
    TALLY[f"status {response.status_code // 100}xx"] += 1
    assert response.status_code < 500, f"{op.method} {op.path}: {response.status_code} {response.text[:300]}"
    assert "Traceback" not in response.text
    if response.status_code >= 400 and response.headers.get("content-type", "").startswith("application/json"):
        assert isinstance(response.json().get("error"), str) and response.json()["error"]


@pytest.mark.parametrize("op", OPERATIONS, ids=lambda op: f"{op.method} {op.path}")
def test_no_generated_request_gets_a_5xx(fuzz_client: tuple[TestClient, Bot], op: Operation) -> None:
    client, _ = fuzz_client

    @settings(max_examples=EXAMPLES, deadline=None, database=None, print_blob=True,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much])
    @given(requests_for(op))
    def one(request: tuple[str, str, dict[str, str], bytes]) -> None:
        method, path, headers, body = request
        raw = {k: v.encode("latin-1", errors="replace") for k, v in headers.items()}  # any bytes, as on the wire
        check(client.request(method, path, headers=raw, content=body or None), op)  # type: ignore[arg-type]

    one()


def test_the_document_the_fuzzer_reads_is_the_one_served(fuzz_client: tuple[TestClient, Bot]) -> None:
    from bot.compose.app.openapi import document

    client, _ = fuzz_client
    served = client.get("/openapi.json")
    assert served.status_code == 200 and served.json() == json.loads(json.dumps(document()))
