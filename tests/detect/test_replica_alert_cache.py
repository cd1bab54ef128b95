"""Two replicas behind one load balancer: each remembers what it stored, the database decides."""

from __future__ import annotations

from datetime import timedelta

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.domain.incidents.alert_payload import parse_notification
from bot.core.store.models import Alert
from tests.conftest import T0, make_settings
from tests.detect.payloads import alert, webhook


def test_an_alert_firing_again_on_the_replica_that_saw_it_first_is_firing(database_url: str) -> None:
    bot = build_bot(make_settings(database_url), clock=FakeClock(T0), extensions=["bot.compose.app.webhooks"])
    try:
        kind = type(bot.services.extras["alerts"])
        a, b = (kind(bot.db, bot.settings, bot.clock, bot.services.incidents) for _ in range(2))
        firing = webhook(alert("EtcdNoLeader", T0, job="etcd", instance="m1"))
        resolved = webhook(alert("EtcdNoLeader", T0, status="resolved", ends=T0 + timedelta(seconds=40),
                                 job="etcd", instance="m1"))
        assert a.ingest(parse_notification(firing)).stored == 1
        b.ingest(parse_notification(resolved))
        again = a.ingest(parse_notification(firing))  # replica A remembers "firing" from before
        assert again.unchanged == 0
        with bot.db.session() as s:
            assert [row.status for row in s.query(Alert)] == ["firing"]
        assert a.ingest(parse_notification(firing)).unchanged == 1  # a true re-send is still "unchanged"
    finally:
        bot.close()
