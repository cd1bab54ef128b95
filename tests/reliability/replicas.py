"""Several ``serve`` replicas' Slack senders on one database, against a slow and unreliable Slack.

Shared by the fast test (``tests/reliability/test_replicas_delivery.py``) and the
longer run (``benchmarks/reliability.py``): open incidents, let the replicas
drain the outbox concurrently, then count what people would see in Slack.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import SecretStr

from bot.app.bot import Bot, build_bot
from bot.store.models import OutboxMessage
from tests.conftest import make_settings
from tests.support.fake_slack import FakeSlack

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

    def line(self) -> str:
        return (f"messages {self.messages}, Slack calls tried {self.calls} "
                f"({', '.join(f'{k}: {v}' for k, v in sorted(self.by_status.items()))}), lost {self.lost}, "
                f"duplicated {self.duplicated}, extra channels {self.extra_channels}, {self.seconds:.1f} s")


def replica_bots(url: str, fake: FakeSlack, count: int) -> list[Bot]:
    bots = []
    for _ in range(count):
        settings = make_settings(url)
        settings.slack.bot_token = SecretStr("xoxb-replica")
        settings.slack.signing_secret = SecretStr("replica-secret")
        settings.slack.api_url = fake.api_url
        settings.slack.card_min_interval_seconds = 0
        settings.slack.request_timeout_seconds = 2
        bots.append(build_bot(settings))
    return bots


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

    def loop(sender: Any) -> None:
        while not stop.is_set():
            try:
                sender.tick()
            except Exception as exc:  # noqa: BLE001 (the database restarting: try again next tick)
                log.info("sender tick failed: %s", type(exc).__name__)
            stop.wait(0.02)

    threads = [threading.Thread(target=loop, args=(s,), daemon=True) for s in senders]
    if chaos is not None:
        threads.append(threading.Thread(target=chaos, daemon=True))
    started = time.monotonic()
    for t in threads:
        t.start()
    try:
        while time.monotonic() - started < timeout:
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


def count(bots: list[Bot], fake: FakeSlack, incidents: int, seconds: float) -> Figures:
    with bots[0].db.session() as session:
        rows = session.query(OutboxMessage).filter(OutboxMessage.channel.in_(["chat", "slack"])).all()  # type: ignore[attr-defined]
    keys = Counter(((m.get("metadata") or {}).get("event_payload") or {}).get("key") for m in fake.posts())
    keys.pop(None, None)
    figures = Figures(messages=len(rows), calls=len(fake.calls), seconds=seconds,
                      lost=sum(1 for r in rows if r.status != "sent"),
                      duplicated=sum(n - 1 for n in keys.values() if n > 1),
                      extra_channels=max(0, len(fake.channels) - incidents))
    figures.by_status.update(c["status"] for c in fake.calls)
    return figures
