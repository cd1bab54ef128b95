"""The black-box prober against real endpoints: an apiserver stand-in and a real etcd cluster.

Ticks are driven by the test with the bot's fake clock (no sleeps); the probes themselves
are real HTTP requests."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import select

from bot.compose.app.bot import Bot, build_bot
from bot.compose.app.metrics import render_metrics
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.config.detection import ProbeCluster
from bot.domain.incidents.alert_payload import parse_notification
from bot.domain.incidents.probe_findings import ProbeWorker
from bot.core.store.models import Incident, ProbeResult, TimelineEvent
from tests.conftest import T0
from tests.detect.payloads import alert, webhook
from tests.support.apiserver import ApiServerStandIn
from tests.support.components import EtcdCluster

EXTENSIONS = ["bot.compose.app.webhooks", "bot.compose.app.probing"]


@pytest.fixture
def probing_bot(settings: Settings, clock: FakeClock) -> Iterator[Bot]:
    holder: list[Bot] = []

    def make(**clusters: ProbeCluster) -> Bot:
        settings.probes.clusters = clusters
        settings.probes.timeout_seconds = 2
        holder.append(build_bot(settings, clock=clock, extensions=EXTENSIONS))
        return holder[-1]

    yield make  # type: ignore[misc]
    for b in holder:
        b.close()


def prober(bot: Bot) -> ProbeWorker:
    return bot.services.extras["prober"]


def incidents(bot: Bot) -> list[Incident]:
    with bot.db.session() as s:
        return list(s.execute(select(Incident).order_by(Incident.id)).scalars())


def results(bot: Bot) -> dict[str, ProbeResult]:
    with bot.db.session() as s:
        return {r.target: r for r in s.execute(select(ProbeResult)).scalars()}


def events(bot: Bot, kind: str) -> list[TimelineEvent]:
    with bot.db.session() as s:
        return list(s.execute(select(TimelineEvent).where(TimelineEvent.kind == kind)).scalars())


def test_a_failing_apiserver_confirmed_by_a_re_probe_opens_an_incident_from_the_first_failure(
        probing_bot, apiserver: ApiServerStandIn, apiserver_kubeconfig: Path, clock: FakeClock) -> None:
    bot = probing_bot(**{"prod-1": ProbeCluster(apiservers=[apiserver.url], kubeconfig=str(apiserver_kubeconfig))})
    healthy = prober(bot).tick()
    assert [o.ok for o in healthy.outcomes] == [True, True, True]
    stored = results(bot)
    assert set(stored) == {f"apiserver {apiserver.url}/readyz", f"apiserver {apiserver.url}/livez",
                           "write-path incident-bot-probe"}
    assert stored["write-path incident-bot-probe"].detail.startswith("ensure-namespace ")
    assert all(r.latency_ms > 0 for r in stored.values())
    metrics = render_metrics(bot)
    assert f'incident_bot_probe_up{{cluster="prod-1",component="apiserver",target="apiserver {apiserver.url}/readyz"}} 1.0' in metrics
    assert "incident_bot_probe_latency_seconds{" in metrics

    apiserver.set_healthy(False)
    first_failure = clock.now()
    assert prober(bot).tick().opened == [] and incidents(bot) == [], "one failure is a suspicion"
    clock.advance(10)
    confirmed = prober(bot).tick()
    (incident,) = incidents(bot)
    assert confirmed.opened == [incident.id]
    assert incident.started_at == first_failure == T0, "T0 is the first failed probe"
    assert (incident.source, incident.cluster, incident.component, incident.group_key) == \
        ("prober", "prod-1", "apiserver", "prod-1/apiserver")
    (detected,) = events(bot, "incident.detected")
    evidence = detected.data["evidence"]["probes"]
    assert {e["target"] for e in evidence} == {f"apiserver {apiserver.url}/readyz", f"apiserver {apiserver.url}/livez"}
    assert all("answered HTTP 500" in e["detail"] and e["consecutive_failures"] == 2 for e in evidence)
    assert 'incident_bot_probe_consecutive_failures{cluster="prod-1"' in render_metrics(bot)

    clock.advance(10)
    assert prober(bot).tick().opened == [], "a failure already reported opens nothing new"
    apiserver.set_healthy(True)
    clock.advance(10)
    recovered = prober(bot).tick()
    assert sorted(recovered.recovered) == sorted(e["target"] for e in evidence)
    (event,) = events(bot, "probe.recovered")
    assert "answers again" in event.text
    assert incidents(bot)[0].state in ("detected", "notified"), "recovery is evidence, not a resolution"


def test_a_single_failed_probe_that_recovers_opens_nothing(probing_bot, apiserver: ApiServerStandIn,
                                                           clock: FakeClock) -> None:
    bot = probing_bot(**{"prod-1": ProbeCluster(apiservers=[apiserver.url])})
    apiserver.set_healthy(False)
    prober(bot).tick()
    apiserver.set_healthy(True)
    clock.advance(10)
    prober(bot).tick()
    apiserver.set_healthy(False)
    clock.advance(10)
    prober(bot).tick()
    assert incidents(bot) == []
    assert all(r.consecutive_failures == 1 for r in results(bot).values())


def test_a_dead_etcd_member_seen_by_probes_and_alerts_is_one_incident(probing_bot, etcd_cluster: EtcdCluster,
                                                                      clock: FakeClock) -> None:
    bot = probing_bot(**{"default": ProbeCluster(etcd=etcd_cluster.endpoints)})
    assert all(o.ok for o in prober(bot).tick().outcomes)
    assert "leader" in results(bot)[f"etcd {etcd_cluster.endpoints[0]}/status"].detail
    dead = etcd_cluster.kill("m3").client_url
    etcd_cluster.wait_healthy(["m1", "m2"])  # if m3 led, the survivors answer unhealthy until they elect
    clock.advance(10)
    first_failure = clock.now()
    prober(bot).tick()
    clock.advance(10)
    opened = prober(bot).tick().opened
    (incident,) = incidents(bot)
    assert opened == [incident.id] and incident.component == "etcd" and incident.started_at == first_failure
    failing = sorted(t for t, r in results(bot).items() if not r.ok)
    assert failing == [f"etcd {dead}/health", f"etcd {dead}/status"]

    # Alertmanager reports the same member: it joins the prober's incident
    ingest = bot.services.extras["alerts"].ingest
    joined = ingest(parse_notification(webhook(alert("EtcdMemberDown", first_failure - timedelta(seconds=3),
                                                     instance="m3", job="etcd"))))
    assert joined.opened == [] and joined.joined == {incident.id: 1}
    assert incidents(bot)[0].started_at == first_failure - timedelta(seconds=3)

    etcd_cluster.restart("m3")
    clock.advance(10)
    assert sorted(prober(bot).tick().recovered) == failing
    assert len(incidents(bot)) == 1
