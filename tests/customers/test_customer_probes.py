"""Customer probes as the on-call sees them: a stuck scheduler becomes an incident about workloads
whose evidence names the stage the pod stuck in, and `/incident slo` shows the budget it burned.

The probes run against ``FakeWorkloadCluster`` (pods bound by a pretend scheduler) with a fake
clock for their waits; the same probes against the real kube-scheduler and kwok nodes run in the
scheduler-down drill (``tests/drills/test_customer_drills.py``).
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlalchemy import select

from bot.compose.app.bot import Bot
from bot.compose.app.metrics import render_metrics
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.incidents.probe_findings import ProbeRecorder, ProbeWorker
from bot.core.store.models import Incident, TimelineEvent
from integrations.clients.probes import ProbeFailed, pod_check
from integrations.clients.probes.customer import nodes_check, run_pod_probe
from integrations.clients.probes.fake_cluster import FakeWorkloadCluster

NS = "incident-bot-probe"


class Ticking:
    """A monotonic clock the probe's waits advance instead of sleeping."""

    def __init__(self) -> None:
        self.now = 0.0

    def sleep(self, seconds: float) -> None:
        self.now += seconds

    def __call__(self) -> float:
        return self.now


def test_a_pod_that_is_scheduled_and_runs_reports_each_stage_and_is_deleted() -> None:
    tick = Ticking()
    cluster = FakeWorkloadCluster(schedule_after=2, run_after=2, tick=tick.sleep)
    stages = run_pod_probe(cluster, NS, deadline_seconds=5, monotonic=tick)
    assert stages.node == "node-1"
    assert stages.accepted == 0 and stages.scheduled == pytest.approx(0.10) and stages.running == pytest.approx(0.20)
    assert stages.text() == "accepted 0 ms, scheduled 100 ms on node-1, running 200 ms"
    assert cluster.pods == {} and len(cluster.deleted) == 1, "the probe pod is removed after the probe"
    assert (stages.requests, cluster.watches) == (3, 1), "create, one watch, delete: the apiserver is not polled"


def test_a_pod_nobody_schedules_fails_naming_the_stage_and_is_still_deleted() -> None:
    tick = Ticking()
    cluster = FakeWorkloadCluster(schedule_after=None, tick=tick.sleep)
    with pytest.raises(ProbeFailed) as failed:
        run_pod_probe(cluster, NS, deadline_seconds=5, monotonic=tick)
    assert str(failed.value).startswith("pod not scheduled within 5 s (no node assigned; no scheduling decision "
                                        "recorded: is a scheduler running?)")
    assert tick.now <= 5, "the probe gives up at its deadline"
    assert cluster.pods == {}


def test_a_pod_bound_to_a_silent_node_fails_as_not_running() -> None:
    tick = Ticking()
    cluster = FakeWorkloadCluster(schedule_after=1, run_after=None, tick=tick.sleep)
    with pytest.raises(ProbeFailed, match=r"pod scheduled on node-1 but not running within 3 s \(phase Pending\)"):
        run_pod_probe(cluster, NS, deadline_seconds=3, monotonic=tick)


def test_nodes_probe_fails_when_too_many_nodes_are_not_ready() -> None:
    cluster = FakeWorkloadCluster(nodes={f"n{i}": i >= 3 for i in range(10)})
    with pytest.raises(ProbeFailed, match=r"^7/10 nodes Ready; not ready: n0, n1, n2$"):
        nodes_check("prod-1", cluster).run()
    cluster.nodes = {f"n{i}": i >= 1 for i in range(10)}
    assert nodes_check("prod-1", cluster).run() == "9/10 nodes Ready", "one node in ten is within the tolerance"


@pytest.fixture
def customer_prober(bot: Bot) -> Iterator[tuple[ProbeWorker, FakeWorkloadCluster]]:
    tick = Ticking()
    cluster = FakeWorkloadCluster(tick=tick.sleep)
    check = pod_check("prod-1", cluster, NS, deadline_seconds=5)

    def probe() -> str:  # the real check with the waits on the test's clock
        return run_pod_probe(cluster, NS, deadline_seconds=5, monotonic=tick).text()

    recorder = ProbeRecorder(bot.db, bot.settings, bot.clock, bot.services.incidents)
    worker = ProbeWorker(recorder, lambda: [type(check)(check.cluster, check.target, check.component, probe)],
                         interval=10, timeout=30, name="customer-prober")
    yield worker, cluster


def test_a_stuck_scheduler_opens_a_workloads_incident_from_the_first_failed_pod_probe(
        customer_prober: tuple[ProbeWorker, FakeWorkloadCluster], bot: Bot, clock: FakeClock,
        chat: MemoryChat) -> None:
    worker, cluster = customer_prober
    for _ in range(3):
        assert all(o.ok for o in worker.tick().outcomes)
        clock.advance(10)
    cluster.schedule_after = None  # the scheduler stops binding pods
    first_failure = clock.now()
    assert worker.tick().opened == [], "one failed probe is a suspicion"
    clock.advance(10)
    confirmed = worker.tick()
    with bot.db.session() as s:
        (incident,) = s.execute(select(Incident)).scalars()
        detected = s.execute(select(TimelineEvent).where(TimelineEvent.kind == "incident.detected")).scalars().one()
    assert confirmed.opened == [incident.id]
    assert (incident.cluster, incident.component, incident.started_at) == ("prod-1", "workloads", first_failure)
    (evidence,) = detected.data["evidence"]["probes"]
    assert evidence["target"] == f"pod {NS}" and "pod not scheduled within 5 s" in evidence["detail"]

    metrics = render_metrics(bot)
    labels = f'cluster="prod-1",component="workloads",target="pod {NS}"'
    assert f"incident_bot_probe_runs_total{{{labels}}} 5.0" in metrics
    assert f"incident_bot_probe_failures_total{{{labels}}} 2.0" in metrics

    answer = chat.say("alice", "/incident slo --cluster prod-1")
    assert answer.splitlines()[0] == "Error budgets on prod-1, last 30d"
    assert "• prod-1 pod-creation (objective 99.90%): 60.000% good of 5 probes, budget left -39900%, burning 400.0x in the last hour" in answer
    assert "• prod-1 pod-latency (objective 99.00%): 60.000% good of 5 probes, budget left -3900%" in answer


def test_slo_with_no_probes_and_bad_window_answer_in_one_line(chat: MemoryChat, bot: Bot) -> None:
    assert chat.say("bob", "/incident slo") == (
        "No probe results in the last 30d: no customer probes are configured "
        "(probes.clusters.NAME.customer_probes) or none has run yet.")
    answer = chat.say("bob", "/incident slo --window soon")
    assert "--window `soon` is neither an age (30m, 24h, 7d, 2w) nor a date (YYYY-MM-DD)." in answer


def test_the_budget_window_forgets_old_failures(customer_prober: tuple[ProbeWorker, FakeWorkloadCluster],
                                                clock: FakeClock, chat: MemoryChat) -> None:
    worker, cluster = customer_prober
    cluster.schedule_after = None
    worker.tick()
    cluster.schedule_after = 1
    clock.advance(timedelta(days=2).total_seconds())
    for _ in range(4):
        worker.tick()
        clock.advance(10)
    assert "4 probes, budget left 100%" in chat.say("alice", "/incident slo --window 1d")
    assert "80.000% good of 5 probes" in chat.say("alice", "/incident slo --window 7d")
