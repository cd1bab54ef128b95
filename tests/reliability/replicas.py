"""Several ``serve`` replicas' senders on one database, against a slow and unreliable Slack and pager.

Shared by the fast test (``tests/reliability/test_replicas_delivery.py``) and the
longer run (``benchmarks/reliability.py``): open incidents, let the replicas'
Slack and PagerDuty senders drain the outbox concurrently, then count what
people would see: posts per delivery key in Slack, pager incidents per
``dedup_key`` (one per bot incident) at the PagerDuty fake.
"""

from __future__ import annotations

import logging
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from bot.compose.app.bot import Bot, build_bot
from bot.core.store.models import OutboxMessage
from tests.conftest import make_settings
from tests.support.fake_pagers import FakePagerDuty
from tests.support.fake_slack import FakeSlack
from tests.support.postgres_server import PostgresServer

log = logging.getLogger(__name__)


@dataclass
class Figures:
    """What a delivery run produced, as people in Slack would count it."""

    messages: int = 0          # outbox messages queued for Slack
    calls: int = 0             # Web API calls tried (answered, refused, failed or answer lost)
    lost: int = 0              # messages never delivered (still pending or given up)
    duplicated: int = 0        # posts that exist twice for one delivery key
    extra_channels: int = 0    # channels beyond one per incident
    seconds: float = 0.0
    by_status: Counter[int] = field(default_factory=Counter)
    pages: int = 0             # outbox pages queued for PagerDuty
    pager_calls: int = 0       # Events API requests tried
    pager_status: Counter[int] = field(default_factory=Counter)
    pages_lost: int = 0        # pages never delivered, or incidents the pager never heard of
    pages_duplicated: int = 0  # pager incidents beyond one per dedup_key, and triggers sent twice by the bot
    errors_5xx: int = 0        # answers of the bot's own HTTP API with 5xx other than the promised 503

    def line(self) -> str:
        pager = ""
        if self.pages:
            pager = (f"; pages {self.pages}, PagerDuty calls tried {self.pager_calls} "
                     f"({', '.join(f'{k}: {v}' for k, v in sorted(self.pager_status.items()))}), "
                     f"pages lost {self.pages_lost}, pages duplicated {self.pages_duplicated}")
        return (f"messages {self.messages}, Slack calls tried {self.calls} "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(self.by_status.items()))}), lost {self.lost}, "
                f"duplicated {self.duplicated}, extra channels {self.extra_channels}{pager}, "
                f"{self.seconds:.1f} s")

    @property
    def clean(self) -> bool:
        """0 lost, 0 duplicated (Slack and pager), one channel per incident, no 5xx."""
        return (self.lost, self.duplicated, self.extra_channels, self.pages_lost, self.pages_duplicated,
                self.errors_5xx) == (0, 0, 0, 0, 0, 0)


PAGER_KEY = "R0UTINGKEY0RELIABILITY000000000"


def replica_bots(url: str, fake: FakeSlack, count: int, pager: FakePagerDuty | None = None) -> list[Bot]:
    bots = []
    for _ in range(count):
        settings = make_settings(url)
        settings.slack.bot_token = SecretStr("xoxb-replica")
        settings.slack.signing_secret = SecretStr("replica-secret")
        settings.slack.api_url = fake.api_url
        settings.slack.card_min_interval_seconds = 0
        settings.slack.request_timeout_seconds = 2
        if pager is not None:
            settings.paging.pagerduty.routing_key = SecretStr(pager.routing_key)
            settings.paging.pagerduty.events_url = pager.events_url
            settings.paging.pagerduty.timeout_seconds = 2
        bots.append(build_bot(settings))
    return bots


def unreliable_pager(seed: int, delay: float = 0.02) -> FakePagerDuty:
    """A PagerDuty Events v2 fake that is slow, refuses 10% of requests and loses 10% of answers."""
    pager = FakePagerDuty(PAGER_KEY, "unused-webhook-secret")
    pager.delay_seconds = delay
    pager.flaky(seed=seed, fail=0.1, lose=0.1)
    pager.start()
    return pager


def open_incidents(bot: Bot, count: int, notes: int) -> list[int]:
    ids = []
    for i in range(count):
        incident = bot.services.incidents.declare(f"fault {i} in prod-{i % 3}", actor="alice")
        for n in range(notes):
            bot.services.incidents.note(f"INC-{incident.id}", f"note {n} on fault {i}", actor="bob")
        ids.append(incident.id)  # type: ignore[arg-type]
    return ids


def drain(bots: list[Bot], timeout: float, chaos: Callable[[], None] | None = None) -> float:
    """Run every replica's Slack senders in their own threads until nothing is pending.

    ``chaos`` (e.g. a database restart) runs in its own thread once the senders started;
    a tick that fails meanwhile is logged and retried, as ``serve``'s worker runner does.
    """
    stop = threading.Event()
    senders = [s for b in bots for s in b.services.extras["slack"].senders]
    senders += [b.services.extras["pagerduty"] for b in bots if "pagerduty" in b.services.extras]

    def loop(sender: Any) -> None:
        while not stop.is_set():
            try:
                sender.tick()
            except Exception as exc:  # noqa: BLE001 (the database restarting: try again next tick)
                log.info("sender tick failed: %s", type(exc).__name__)
            stop.wait(0.02)

    threads = [threading.Thread(target=loop, args=(s,), daemon=True) for s in senders]
    chaos_thread = threading.Thread(target=chaos, daemon=True) if chaos is not None else None
    if chaos_thread is not None:
        threads.append(chaos_thread)
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while time.monotonic() - started < timeout:
            if chaos_thread is not None and chaos_thread.is_alive():  # it may still queue messages
                time.sleep(0.1)  # polling for the end of the chaos, not timing the bot
                continue
            try:
                with bots[0].db.session() as session:
                    if session.query(OutboxMessage).filter(OutboxMessage.status == "pending").count() == 0:
                        break
            except Exception:  # noqa: BLE001 (the database is restarting)
                pass
            time.sleep(0.1)  # polling the database for the end of the run, not timing the bot
    finally:
        stop.set()
        for t in threads:
            t.join(10)
    return time.monotonic() - started


def count(bots: list[Bot], fake: FakeSlack, incidents: int, seconds: float,
          pager: FakePagerDuty | None = None) -> Figures:
    with bots[0].db.session() as session:
        rows = session.query(OutboxMessage).filter(OutboxMessage.channel.in_(["chat", "slack"])).all()  # type: ignore[attr-defined]
        pages = session.query(OutboxMessage).filter(OutboxMessage.channel == "pagerduty").all()
    keys = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in fake.posts())
    keys.pop(None, None)
    figures = Figures(messages=len(rows), calls=len(fake.calls), seconds=seconds,
                      lost=sum(1 for r in rows if r.status != "sent"),
                      duplicated=sum(n - 1 for n in keys.values() if n > 1),
                      extra_channels=max(0, len(fake.channels) - incidents))
    figures.by_status.update(c["status"] for c in fake.calls)
    if pager is not None:
        count_pages(figures, pages, pager)
    return figures


def count_pages(figures: Figures, pages: list[OutboxMessage], pager: FakePagerDuty) -> None:
    """Pages as the on-call sees them: one pager incident per bot incident, each page triggered once.

    A trigger whose answer was lost (504) is rightly sent again and PagerDuty folds it into the
    open incident by ``dedup_key``; any trigger beyond that (two replicas delivering one page)
    counts as duplicated, as does a second pager incident for one key.
    """
    with pager.lock:
        requests = list(pager.requests)
        opened = dict(pager.opened)
    triggers = [r for r in requests if isinstance(r["body"], dict) and r["body"].get("event_action") == "trigger"]
    figures.pages = sum(1 for p in pages if p.kind == "page")
    figures.pager_calls = len(requests)
    figures.pager_status.update(r["status"] for r in requests)
    done = Counter(r["body"].get("dedup_key") for r in triggers if r["status"] in (202, 504))
    lost_answers = Counter(r["body"].get("dedup_key") for r in triggers if r["status"] == 504)
    expected = Counter(f"INC-{p.incident_id}" for p in pages if p.kind == "page")
    figures.pages_lost = sum(1 for p in pages if p.status != "sent") + sum(1 for k in expected if k not in opened)
    figures.pages_duplicated = sum(n - 1 for n in opened.values() if n > 1) + sum(
        max(0, done[k] - expected[k] - lost_answers[k]) for k in done)


@dataclass
class HttpTally:
    """The bot's HTTP answers to Alertmanager while the database restarts."""

    alerts: int = 0                 # alerts posted (each retried on 503 until accepted)
    by_status: Counter[int] = field(default_factory=Counter)

    @property
    def errors_5xx(self) -> int:
        """5xx other than the promised 503 (Alertmanager retries a 503; a 500 would be a bug)."""
        return sum(n for status, n in self.by_status.items() if status >= 500 and status != 503)


def post_alerts_while(bots: list[Bot], tally: HttpTally, disturbance: Callable[[], None], *,
                      before: int = 2, during: int = 4, after: int = 2, retry_for: float = 120.0) -> Callable[[], None]:
    """A chaos step: Alertmanager webhooks to the replicas' HTTP apps before, during and after ``disturbance``.

    Each alert opens an incident (its own cluster) whose card and page go through the
    outbox; a 503 is retried as Alertmanager does, so every alert must end up stored.
    """
    from datetime import datetime, timezone

    from starlette.testclient import TestClient

    from bot.compose.app.http import build_http_app
    from tests.detect.payloads import alert, webhook

    clients = [TestClient(build_http_app(b), raise_server_exceptions=False) for b in bots]

    def post(n: int) -> None:
        token = bots[0].settings.webhook_token
        headers = {"Authorization": f"Bearer {token.get_secret_value()}"} if token else {}
        body = webhook(alert(f"Chaos{n}", datetime.now(timezone.utc), cluster=f"chaos-{n}", job="etcd",
                             instance="m1"))
        deadline = time.monotonic() + retry_for
        while True:
            answer = clients[n % len(clients)].post("/webhooks/alertmanager", json=body, headers=headers)
            tally.by_status[answer.status_code] += 1
            if answer.status_code != 503 or time.monotonic() > deadline:
                break
            time.sleep(0.2)  # Alertmanager's retry, compressed
        tally.alerts += 1

    def chaos() -> None:
        for n in range(before):
            post(n)
        worker = threading.Thread(target=disturbance, daemon=True)
        worker.start()
        n = before
        while (worker.is_alive() or n < before + during) and n < before + 4 * during:
            post(n)  # keep posting while the database is away
            n += 1
            time.sleep(0.2)  # spread the posts over the restart
        worker.join(180)
        for m in range(n, n + after):
            post(m)

    return chaos


def restart_postgres(server: PostgresServer) -> subprocess.CompletedProcess[str]:
    """PostgreSQL stopped hard (``-m immediate``: no checkpoint, connections cut) and started again.

    ``-l`` matters: without a log file the restarted server inherits pg_ctl's stdout, so the
    caller waiting for pg_ctl's output would wait for the server to exit.
    """
    data = server.directory / "data"
    return server._run("pg_ctl", "-D", str(data), "-m", "immediate", "-l", str(server.directory / "server.log"),
                       "-w", "restart")


def make_durable(server: PostgresServer) -> None:
    """Restart the throwaway server with PostgreSQL's durable defaults (fsync, synchronous_commit on).

    The test servers run with ``synchronous_commit=off`` for speed: a crash (``-m immediate``)
    may then forget commits already acknowledged, which is PostgreSQL's documented trade and
    would show up here as alerts lost and pages delivered twice. A restart test needs the
    durability a production server has.
    """
    server.restart(durable=True)
