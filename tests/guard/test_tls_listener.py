"""The webhook's own TLS listener: the apiservers trust it through the CA, and only they may call it."""

from __future__ import annotations

import json
import ssl
import time
from pathlib import Path

import httpx
import pytest

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.compose.sandbox.pki import issue_certificate, make_pki, sandbox_users
from bot.compose.sandbox.processes import free_port
from tests.guard.conftest import review


def test_only_a_client_with_a_certificate_from_the_ca_gets_an_answer(guard_settings: Settings, clock: FakeClock,
                                                                     tmp_path: Path) -> None:
    pki = make_pki(tmp_path / "pki", sandbox_users())
    cert, key = issue_certificate(pki, tmp_path / "guard", "incident-bot-webhook")
    client_cert, client_key = issue_certificate(pki, tmp_path / "guard", "kube-apiserver", client=True)
    guard = guard_settings.guard
    guard.port, guard.tls_cert_path, guard.tls_key_path = free_port(), str(cert), str(key)
    guard.client_ca_path = str(pki.ca_cert)
    guard.own_process = False  # the listener in a thread of this process (test_guard_process.py: in its own)
    bot = build_bot(guard_settings, clock=clock)
    listener = bot.services.extras["guard_listener"]
    try:
        for hook in bot.on_start:
            hook()
        deadline = time.monotonic() + 10
        while not listener.started and time.monotonic() < deadline:
            time.sleep(0.02)  # waiting for a server thread to bind, not for timing
        url = f"https://127.0.0.1:{guard.port}/admission/prod-1"
        body = json.dumps(review("CREATE", "configmaps", namespace="apps"))
        trusted = ssl.create_default_context(cafile=str(pki.ca_cert))
        trusted.load_cert_chain(str(client_cert), str(client_key))
        with httpx.Client(verify=trusted, trust_env=False) as apiserver:
            answer = apiserver.post(url, content=body)
        assert answer.status_code == 200 and answer.json()["response"]["allowed"] is True
        anonymous = ssl.create_default_context(cafile=str(pki.ca_cert))
        with httpx.Client(verify=anonymous, trust_env=False) as stranger, pytest.raises(httpx.HTTPError):
            stranger.post(url, content=body).raise_for_status()
    finally:
        bot.close()
