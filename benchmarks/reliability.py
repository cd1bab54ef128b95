#!/usr/bin/env python3
"""The long reliability run: replicas, SIGKILLed ``serve``, and fuzzing, with the figures printed.

Not part of the test run (takes a few minutes on 2 cores); the fast versions
are in ``tests/reliability/``.  Four parts:

1. **Replicas**: two and three ``serve`` replicas' Slack and PagerDuty senders
   on one PostgreSQL (a throwaway server), against a fake Slack and a fake
   PagerDuty Events v2 that are slow, fail (HTTP 500, nothing done) and lose
   answers (work done, HTTP 504); once more with PostgreSQL stopped hard and
   started again (``pg_ctl restart -m immediate``, durable settings) while
   Alertmanager webhooks keep arriving at the replicas' HTTP apps.
2. **SIGKILL of serve**: ``incident-bot serve`` as a real process with Slack
   configured (HTTP mode, outbox senders running) receives Alertmanager
   webhooks that open incidents while Slack is slow; it is killed with
   SIGKILL mid-delivery several times and restarted, then left to drain.
3. **Fuzz**: the schema-driven HTTP fuzz tests with many more examples.
4. **Playbooks**: ``serve`` SIGKILLed inside and after every step of every
   shipped playbook but restore-etcd, on SQLite and PostgreSQL (the ``long``
   tests of ``tests/reliability/test_serve_kill.py``).

Each part prints deliveries tried, lost, duplicated (and 5xx for the fuzz);
the expected figures are 0 lost, 0 duplicated, 0 5xx.

    .venv/bin/python benchmarks/reliability.py [--incidents 30] [--kills 4] [--fuzz-examples 400]
        [--parts replicas,sigkill,fuzz,playbooks]
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from datetime import datetime, timezone
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from pydantic import SecretStr  # noqa: E402
from sqlalchemy import create_engine  # noqa: E402

from bot.core.store.models import Incident  # noqa: E402

from tests.detect.payloads import alert, webhook  # noqa: E402
from tests.reliability.replicas import (  # noqa: E402
    HttpTally,
    count,
    drain,
    make_durable,
    open_incidents,
    post_alerts_while,
    replica_bots,
    restart_postgres,
    unreliable_pager,
)
from tests.support.fake_slack import FakeSlack  # noqa: E402
from tests.support.postgres_server import PostgresServer  # noqa: E402

HOOK_TOKEN = "reliability-webhook-token"


def replicas(server: PostgresServer, replicas_count: int, incidents: int, restart: bool = False) -> bool:
    """Replicas' Slack and PagerDuty senders on one fresh database; with ``restart``, PostgreSQL is
    stopped hard and started again while Alertmanager webhooks keep arriving at the replicas."""
    name = f"ib_rel_{uuid.uuid4().hex[:8]}"
    admin = create_engine(server.admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    url = server.admin_url.rsplit("/", 1)[0] + f"/{name}"
    fake = FakeSlack().start()
    fake.delay_seconds = 0.05
    fake.flaky(seed=replicas_count, fail=0.1, lose=0.1)
    pager = unreliable_pager(seed=replicas_count, delay=0.05)
    bots = replica_bots(url, fake, replicas_count, pager=pager)
    tally = HttpTally()
    try:
        opened = open_incidents(bots[0], incidents, notes=3)
        chaos = None
        if restart:
            for bot in bots:
                bot.settings.webhook_token = SecretStr(HOOK_TOKEN)

            def disturbance() -> None:
                time.sleep(1.0)  # into the run, while deliveries are in flight
                done = restart_postgres(server)
                if done.returncode != 0:
                    raise RuntimeError(f"pg_ctl restart failed: {done.stderr}")

            chaos = post_alerts_while(bots, tally, disturbance, before=3, during=8, after=3)
        seconds = drain(bots, timeout=900, chaos=chaos)
        with bots[0].db.session() as session:
            stored = session.query(Incident).filter(Incident.cluster.like("chaos-%")).count()  # type: ignore[union-attr]
        figures = count(bots, fake, len(opened) + stored, seconds, pager=pager)
        figures.errors_5xx = tally.errors_5xx
        alerts_lost = tally.alerts - stored
    finally:
        for bot in bots:
            bot.close()
        fake.stop()
        pager.stop()
    extra = ""
    if restart:
        extra = (f"; PostgreSQL restarted mid-run: {tally.alerts} alerts posted, {alerts_lost} lost, "
                 f"HTTP answers {dict(sorted(tally.by_status.items()))}, 5xx other than 503: {tally.errors_5xx}")
    print(f"  {replicas_count} replicas, {incidents} incidents: {figures.line()}{extra}")
    return figures.clean and alerts_lost == 0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_serve(env: dict[str, str], port: int, log: Path) -> subprocess.Popen[bytes]:
    process = subprocess.Popen([sys.executable, "-m", "bot.compose.cli.main", "serve", "--port", str(port)], cwd=ROOT,
                               env=env, stdout=subprocess.DEVNULL, stderr=log.open("ab"))
    deadline = time.monotonic() + 300  # a loaded 2-core machine can take minutes to import and migrate
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=1).status_code == 200:
                return process
        except httpx.HTTPError:
            time.sleep(0.2)  # waiting for a process to start listening
    process.kill()
    process.wait(30)
    raise RuntimeError(f"serve did not start; see {log}")


def sigkill_serve(incidents: int, kills: int) -> bool:
    work = Path(tempfile.mkdtemp(prefix="ib-rel-"))
    fake = FakeSlack().start()
    fake.delay_seconds = 0.25  # slow Slack: deliveries are in flight when the kill comes
    db_url = f"sqlite:///{work / 'bot.db'}"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_"))}
    env.update({"INCIDENT_BOT_DATABASE_URL": db_url, "SLACK_BOT_TOKEN": "xoxb-reliability",
                "SLACK_SIGNING_SECRET": "reliability-secret", "SLACK_API_URL": fake.api_url,
                "INCIDENT_BOT_WEBHOOK_TOKEN": HOOK_TOKEN, "INCIDENT_BOT_SLACK__CARD_MIN_INTERVAL_SECONDS": "0"})
    port, log = free_port(), work / "serve.log"
    process = start_serve(env, port, log)
    now = datetime.now(timezone.utc)
    sent = 0
    try:
        for k in range(kills):
            for i in range(incidents // kills):
                body = webhook(alert(f"Fault{k}x{i}", now, cluster=f"c{k}-{i}", job="etcd", instance="m1"))
                answer = httpx.post(f"http://127.0.0.1:{port}/webhooks/alertmanager", json=body,
                                    headers={"Authorization": f"Bearer {HOOK_TOKEN}"}, timeout=30)
                assert answer.status_code == 200, answer.text
                sent += 1
            time.sleep(1.0)  # let the senders get into the batch before the kill
            process.send_signal(signal.SIGKILL)
            process.wait(30)
            process = start_serve(env, port, log)
        from bot.core.store.db import Database
        from bot.core.store.models import OutboxMessage

        db = Database(db_url)
        deadline = time.monotonic() + 600
        while time.monotonic() < deadline:
            with db.session() as session:
                if session.query(OutboxMessage).filter(OutboxMessage.status == "pending").count() == 0:
                    break
            time.sleep(0.5)  # polling the database for the end of the run
        with db.session() as session:
            rows = session.query(OutboxMessage).all()
        db.dispose()
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)
        fake.stop()
    keys = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in fake.posts())
    keys.pop(None, None)
    lost = sum(1 for r in rows if r.channel in ("chat", "slack") and r.status != "sent")
    duplicated = sum(n - 1 for n in keys.values() if n > 1)
    statuses = Counter(c["status"] for c in fake.calls)
    print(f"  serve SIGKILLed {kills} times mid-delivery, {sent} webhooks: outbox messages {len(rows)}, "
          f"Slack calls tried {len(fake.calls)} ({dict(statuses)}), lost {lost}, duplicated {duplicated}, "
          f"channels {len(fake.channels)} for {sent} incidents (log: {log})")
    return lost == 0 and duplicated == 0 and len(fake.channels) == sent


def fuzz(examples: int) -> bool:
    import pytest

    os.environ["INCIDENT_BOT_FUZZ_EXAMPLES"] = str(examples)
    code = pytest.main(["-q", "-p", "no:cacheprovider", str(ROOT / "tests/reliability/test_fuzz_http.py"),
                        str(ROOT / "tests/reliability/test_fuzz_grammar.py")])
    from tests.reliability.test_fuzz_http import TALLY

    requests = sum(v for k, v in TALLY.items() if not k.startswith("status"))
    fivexx = TALLY.get("status 5xx", 0)
    print(f"  fuzz: {requests} generated HTTP requests over {sum(1 for k in TALLY if not k.startswith('status'))} "
          f"endpoints, by class {json.dumps({k: v for k, v in TALLY.items() if k.startswith('status')})}, "
          f"5xx {fivexx}; pytest exit {int(code)}")
    return int(code) == 0 and fivexx == 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--incidents", type=int, default=30)
    parser.add_argument("--kills", type=int, default=4)
    parser.add_argument("--fuzz-examples", type=int, default=400)
    parser.add_argument("--parts", default="replicas,sigkill,fuzz,playbooks",
                        help="comma-separated: replicas, sigkill, fuzz, playbooks")
    args = parser.parse_args()
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]  # each figure as it is measured
    parts = set(args.parts.split(","))
    results = []
    if "replicas" in parts:
        results.append(run_replicas(args.incidents))
    if "sigkill" in parts:
        print("serve killed with SIGKILL while its outbox senders deliver (SQLite, Slack 250 ms per call):")
        results.append(sigkill_serve(args.incidents, args.kills))
    if "fuzz" in parts:
        print("Schema-driven fuzzing of every endpoint (openapi.json) and of the chat grammar:")
        results.append(fuzz(args.fuzz_examples))
    if "playbooks" in parts:
        print("serve SIGKILLed inside and after every step of every playbook (SQLite, PostgreSQL):")
        results.append(playbook_kills())
    print("PASS" if all(results) else "FAIL")
    return 0 if all(results) else 1


def playbook_kills() -> bool:
    """The full kill matrix; each test prints its kills, where they landed, and the message figures."""
    code = subprocess.run([sys.executable, "-m", "pytest", "-q", "-s", "-p", "no:cacheprovider", "-m", "long",
                           str(ROOT / "tests/reliability/test_serve_kill.py")], cwd=ROOT, check=False).returncode
    print(f"  pytest exit {code}")
    return code == 0


def run_replicas(incidents: int) -> bool:
    results = []
    print("Replicas on PostgreSQL; Slack and PagerDuty slow (50 ms), failing (10%) and losing answers (10%):")
    server = PostgresServer.start()
    try:
        for n in (2, 3):
            results.append(replicas(server, n, incidents))
        make_durable(server)  # a crash must not forget acknowledged commits (see make_durable)
        results.append(replicas(server, 3, incidents, restart=True))
    finally:
        server.stop()
    return all(results)


if __name__ == "__main__":
    sys.exit(main())
