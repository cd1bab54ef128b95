"""The webhook in its own process (guard.own_process, serve's default): it answers, reports, restarts, and dies with serve.

The apiserver's side is a real mTLS client; the child is the real ``incident-bot guard-process`` that
``serve`` starts. Waiting here is for processes to start or stop, never for a timing goal.
"""

from __future__ import annotations

import json
import os
import re
import signal
import ssl
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from prometheus_client.exposition import generate_latest
from prometheus_client.registry import CollectorRegistry

from bot.compose.app.admission import GUARD_PROCESS
from bot.compose.app.bot import Bot, build_bot
from bot.compose.sandbox.pki import issue_certificate, make_pki, sandbox_users
from bot.compose.sandbox.processes import free_port
from bot.core.config import Settings
from tests.guard.conftest import CLUSTER, review
from tests.support.waiting import wait_for

ROOT = Path(__file__).resolve().parents[2]


def wait(predicate: Callable[[], Any], what: str) -> Any:
    return wait_for(predicate, what, timeout=60.0, every=0.05)  # a process starting or stopping


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    with open(f"/proc/{pid}/stat") as f:  # a zombie is gone as far as a caller is concerned
        return f.read().split(") ", 1)[1][0] != "Z"


class Tls:
    """The kube-apiserver's side: a CA the webhook's certificate chains to, and its client certificate."""

    def __init__(self, tmp_path: Path, settings: Settings) -> None:
        pki = make_pki(tmp_path / "pki", sandbox_users())
        cert, key = issue_certificate(pki, tmp_path / "guard", "incident-bot-webhook")
        client_cert, client_key = issue_certificate(pki, tmp_path / "guard", "kube-apiserver", client=True)
        settings.guard.port, settings.guard.tls_cert_path, settings.guard.tls_key_path = free_port(), str(cert), str(key)
        settings.guard.client_ca_path = str(pki.ca_cert)
        self.url = f"https://127.0.0.1:{settings.guard.port}/admission/{CLUSTER}"
        self.context = ssl.create_default_context(cafile=str(pki.ca_cert))
        self.context.load_cert_chain(str(client_cert), str(client_key))

    def ask(self, operation: str, resource: str, **kw: Any) -> dict[str, Any] | None:
        """The review's response, or None while nothing answers (the apiserver's failurePolicy Ignore case)."""
        try:
            with httpx.Client(verify=self.context, trust_env=False, timeout=5.0) as client:
                answer = client.post(self.url, content=json.dumps(review(operation, resource, **kw)))
        except httpx.HTTPError:
            return None
        return answer.json()["response"] if answer.status_code == 200 else None  # type: ignore[no-any-return]


def metrics(bot: Bot) -> str:
    registry = CollectorRegistry()

    class Source:
        def collect(self) -> Any:
            for source in bot.metric_sources:
                yield from source(bot)

    registry.register(Source())  # type: ignore[arg-type]
    return generate_latest(registry).decode()


def no_incident_decisions(bot: Bot) -> float:
    found = re.search(r'incident_bot_guard_decisions_total\{cluster="prod-1",decision="allow",'
                      r'reason="no-incident"\} ([0-9.]+)', metrics(bot))
    return float(found.group(1)) if found else 0.0


@pytest.fixture
def tls(tmp_path: Path, guard_settings: Settings) -> Tls:
    return Tls(tmp_path, guard_settings)


@pytest.fixture
def serving(guard_settings: Settings, tls: Tls) -> Iterator[Bot]:
    bot = build_bot(guard_settings)
    for hook in bot.on_start:
        hook()
    try:
        yield bot
    finally:
        bot.close()


def test_the_webhook_answers_from_its_own_process_and_serve_counts_its_decisions(serving: Bot, tls: Tls) -> None:
    process = serving.services.extras.need(GUARD_PROCESS)
    assert "guard" not in serving.services.extras  # serve itself decides nothing
    assert wait(lambda: tls.ask("CREATE", "configmaps", namespace="apps"), "the child's first answer")["allowed"]
    assert process.pid is not None and process.pid != os.getpid()
    assert tls.ask("DELETE", "pods", namespace="apps", user="bob")["allowed"]
    # the child reports its counts in batches: the two decisions may arrive in two reports
    no_incident = 'incident_bot_guard_decisions_total{cluster="prod-1",decision="allow",reason="no-incident"} 1.0'
    wait(lambda: 'decision="allow",reason="outside-lists"' in metrics(serving) and no_incident in metrics(serving),
         "the child's reports of both decisions")
    text = metrics(serving)
    assert "incident_bot_guard_process_up 1.0" in text
    assert no_incident in text


def test_a_killed_guard_process_is_started_again_and_its_counts_are_kept(serving: Bot, tls: Tls) -> None:
    process = serving.services.extras.need(GUARD_PROCESS)
    wait(lambda: tls.ask("DELETE", "pods", namespace="apps"), "the first child's answer")
    # a retried ask (a slow answer on a loaded machine) is decided twice: count what the first child reported
    before = wait(lambda: no_incident_decisions(serving), "the first child's report")
    first = process.pid
    os.kill(first, signal.SIGKILL)
    wait(lambda: process.pid not in (None, first), "a second child")
    wait(lambda: tls.ask("DELETE", "pods", namespace="apps"), "the second child's answer")
    wait(lambda: no_incident_decisions(serving) > before, "both children's decisions counted")
    assert "incident_bot_guard_process_restarts_total 1.0" in metrics(serving)


def test_stopping_serve_stops_its_guard_process(guard_settings: Settings, tls: Tls) -> None:
    bot = build_bot(guard_settings)
    for hook in bot.on_start:
        hook()
    process = bot.services.extras.need(GUARD_PROCESS)
    pid = wait(lambda: process.pid, "the child")
    bot.close()
    assert not alive(pid)
    assert tls.ask("CREATE", "configmaps", namespace="apps") is None


def test_a_sigkilled_serve_leaves_no_guard_process_behind(guard_settings: Settings, tls: Tls, tmp_path: Path) -> None:
    """The next serve must find the webhook's port free: the child dies with its parent."""
    env = {**os.environ, "INCIDENT_BOT_DATABASE_URL": guard_settings.database_url,
           "INCIDENT_BOT_DEFAULT_CLUSTER": CLUSTER, "INCIDENT_BOT_GUARD__ENABLED": "true",
           "INCIDENT_BOT_GUARD__PORT": str(guard_settings.guard.port),
           "INCIDENT_BOT_GUARD__TLS_CERT_PATH": str(guard_settings.guard.tls_cert_path),
           "INCIDENT_BOT_GUARD__TLS_KEY_PATH": str(guard_settings.guard.tls_key_path),
           "INCIDENT_BOT_GUARD__CLIENT_CA_PATH": str(guard_settings.guard.client_ca_path)}
    serve = subprocess.Popen([sys.executable, "-m", "bot.compose.cli.main", "serve", "--port", str(free_port())],
                             cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        wait(lambda: tls.ask("CREATE", "configmaps", namespace="apps"), "serve's guard process to answer")
        children = [int(pid) for task in Path(f"/proc/{serve.pid}/task").iterdir()
                    for pid in (task / "children").read_text().split()]
        assert children
        serve.kill()
        serve.wait()
        try:
            wait(lambda: not any(alive(pid) for pid in children), "the guard process to follow serve")
        except AssertionError:  # say which process outlived serve, and what it is (a CI run saw one once)
            left = {pid: Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ")[:200]
                    for pid in children if alive(pid)}
            raise AssertionError(f"the guard process did not follow serve: still alive {left}") from None
        assert tls.ask("CREATE", "configmaps", namespace="apps") is None
    finally:
        if serve.poll() is None:
            serve.kill()


def test_guard_process_refuses_to_run_without_serve() -> None:
    started = subprocess.run([sys.executable, "-m", "bot.compose.cli.main", "guard-process", "--parent-pid", "1"],
                             cwd=ROOT, input=b"", capture_output=True, timeout=60)
    assert started.returncode == 2
    assert b"serve starts this process itself" in started.stderr
    assert b"Traceback" not in started.stderr
