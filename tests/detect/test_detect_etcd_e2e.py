"""End to end with real components: etcd -> Prometheus (shipped fast rules) -> Alertmanager
(shipped receiver) -> the bot served by uvicorn -> chat.  A killed etcd member must be one
incident, announced within the 1-minute budget; its restart must be recorded."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from pydantic import SecretStr
from sqlalchemy import func, select

from bot.compose.app.bot import Bot, build_bot
from bot.core.config import Settings
from bot.core.store.models import Alert, Incident, OutboxMessage, TimelineEvent
from tests.conftest import make_settings
from tests.detect.serving import BotServer
from tests.support.components import Alertmanager, EtcdCluster, Prometheus, wait_until

TOKEN = "e2e-webhook-token"
DEPLOY = Path(__file__).resolve().parents[2] / "deploy"


class ShippedAlertmanager(Alertmanager):
    """Alertmanager on deploy/alertmanager/alertmanager.yml: the bot's URL, the token inline
    instead of a file, and the test timings (group_wait 0s, group_interval 1s)."""

    def config(self) -> dict[str, Any]:
        cfg = yaml.safe_load((DEPLOY / "alertmanager" / "alertmanager.yml").read_text())
        hook = cfg["receivers"][0]["webhook_configs"][0]
        hook["url"] = self.webhook_url
        hook["http_config"]["authorization"] = {"type": "Bearer", "credentials": self.bearer_token}
        cfg["route"].update(group_wait="0s", group_interval="1s")
        return cfg


@pytest.fixture
def e2e_settings(sqlite_url: str) -> Settings:
    settings = make_settings(sqlite_url)
    settings.webhook_token = SecretStr(TOKEN)
    return settings


@pytest.fixture
def served(e2e_settings: Settings) -> Iterator[BotServer]:
    bot = build_bot(e2e_settings, extensions=["bot.compose.app.webhooks"])
    with BotServer(bot, record_bodies=True) as server:
        yield server
    bot.close()


def rows(bot: Bot, model: Any, *where: Any) -> list[Any]:
    with bot.db.session() as s:
        return list(s.execute(select(model).where(*where).order_by(model.id)).scalars())


def count(bot: Bot, model: Any) -> int:
    with bot.db.session() as s:
        return s.execute(select(func.count()).select_from(model)).scalar_one()


def test_a_killed_etcd_member_is_one_incident_announced_within_a_minute(served: BotServer,
                                                                        etcd_cluster: EtcdCluster) -> None:
    bot = served.bot
    with ShippedAlertmanager(served.webhook_url, TOKEN) as am, \
            Prometheus({"etcd": etcd_cluster.metrics_targets},
                       rules=(DEPLOY / "prometheus" / "rules-fast.yml").read_text(), alertmanager=am.address) as prom:
        wait_until(lambda: len([r for r in prom.query('up{job="etcd"}') if r["value"][1] == "1"]) == 3,
                   timeout=20, what="Prometheus to scrape all three etcd members")
        killed_at = datetime.now(timezone.utc)
        etcd_cluster.kill("m3")

        (incident,) = wait_until(lambda: rows(bot, Incident), timeout=20, what="an incident from the webhook")
        incident = wait_until(lambda: rows(bot, Incident, Incident.notified_at.is_not(None)),  # type: ignore[union-attr]
                              timeout=10, what="the announcement to be delivered")[0]
        alerts = rows(bot, Alert)
        assert {a.alertname for a in alerts} >= {"EtcdMemberDown"}
        down = next(a for a in alerts if a.alertname == "EtcdMemberDown")
        assert down.labels["instance"] == etcd_cluster.member("m3").metrics_url.split("://", 1)[1]
        assert incident.started_at == min(a.starts_at for a in alerts), "T0 is the alerts' earliest startsAt"
        assert killed_at - timedelta(seconds=1) <= incident.started_at <= killed_at + timedelta(seconds=15)
        assert (incident.component, incident.severity, incident.source) == ("etcd", "sev1", "alertmanager")
        assert incident.notified_at - incident.started_at < timedelta(seconds=60), "the 1-minute budget"
        # the card's delivery stamps notified_at; the page is the next message of the incident, sent just after
        announced = wait_until(lambda: [m.kind for m in served.deliverer.messages() if m.incident_id == incident.id][:2]
                               == ["incident.card", "page"] or None, timeout=10, what="the card, then the page")
        assert announced

        # a webhook without the token is refused; Alertmanager's own delivery sent twice changes nothing
        first_body = served.recorder.bodies[0]  # type: ignore[union-attr]
        refused = httpx.post(served.webhook_url, content=first_body, headers={"Content-Type": "application/json"})
        assert refused.status_code == 401
        before = {m.__name__: count(bot, m) for m in (Incident, Alert, TimelineEvent, OutboxMessage)}
        again = httpx.post(served.webhook_url, content=first_body,
                           headers={"Content-Type": "application/json", "Authorization": f"Bearer {TOKEN}"})
        assert again.status_code == 200 and again.json()["stored"] == 0
        assert {m.__name__: count(bot, m) for m in (Incident, Alert, TimelineEvent, OutboxMessage)} == before

        etcd_cluster.restart("m3")
        wait_until(lambda: rows(bot, Alert) and all(a.status == "resolved" for a in rows(bot, Alert)),
                   timeout=20, what="Alertmanager to report the member's alerts resolved")
        resolved = rows(bot, TimelineEvent, TimelineEvent.kind == "alert.resolved")
        assert resolved and "EtcdMemberDown" in " ".join(e.text for e in resolved)
        offer = wait_until(lambda: [m for m in served.deliverer.messages("notice") if m.payload.get("offer") == "resolve"],
                           timeout=5, what="the offer to resolve")
        assert offer[0].payload["text"].startswith(f"All {len(rows(bot, Alert))} alert")
        assert len(rows(bot, Incident)) == 1
        assert rows(bot, Incident)[0].state == "notified", "a resolved alert is not proof of recovery"
