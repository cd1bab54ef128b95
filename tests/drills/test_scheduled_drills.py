"""Scheduled drills in `serve`: the scenarios in turn, at the interval, the verdict posted to chat;
and never on a cluster that is not a drill target."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import select

from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.core.config import Settings
from bot.core.errors import ConfigError
from bot.compose.sandbox.drill import DrillResult
from bot.compose.sandbox.scheduled import DrillScheduler
from bot.compose.sandbox.scorecard import Scorecard, Stage
from bot.core.store.models import OutboxMessage


def _notices(bot) -> list[str]:  # type: ignore[no-untyped-def]
    with bot.db.session() as session:
        rows = session.execute(select(OutboxMessage).where(OutboxMessage.kind == "notice")
                               .order_by(OutboxMessage.id)).scalars().all()
        return [r.payload["text"] for r in rows]


def _scheduled(settings: Settings, tmp_path: Path, scenarios: list[str], interval: float) -> Settings:
    settings.drills.enabled = True
    settings.drills.scenarios = scenarios
    settings.drills.interval_seconds = interval
    settings.drills.out_dir = str(tmp_path / "drills")
    return settings


def test_serve_refuses_a_schedule_on_a_cluster_that_is_not_a_drill_target(settings: Settings, clock: FakeClock) -> None:
    settings.drills.enabled = True
    settings.drills.cluster = "prod-1"
    settings.clusters = Settings.model_validate({"clusters": {"prod-1": {"prometheus_url": "http://127.0.0.1:9"}}}).clusters

    with pytest.raises(ConfigError) as refused:
        build_bot(settings, clock=clock)

    assert "cluster `prod-1` is not a drill target" in str(refused.value)


def test_serve_refuses_an_unknown_scenario_in_the_schedule(settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    _scheduled(settings, tmp_path, ["etcd-member-down", "disk-full"], 3600)

    with pytest.raises(ConfigError) as refused:
        build_bot(settings, clock=clock)

    assert "drills.scenarios" in str(refused.value) and "disk-full" in str(refused.value)


def test_scenarios_run_in_turn_once_per_interval_and_the_verdict_is_posted(
        settings: Settings, clock: FakeClock, tmp_path: Path) -> None:
    _scheduled(settings, tmp_path, ["etcd-member-down", "client-flood"], 3600)
    bot = build_bot(settings, clock=clock, extensions=[])
    ran: list[str] = []

    def runner(name: str, out_dir: Path) -> DrillResult:  # records the call; the real drill is tested below
        ran.append(name)
        card = Scorecard(name, "-", "INC-1", clock.now(),
                         stages=[Stage("notify", 2.5, 60, 5), Stage("diagnose", 4.0, 300, 15),
                                 Stage("mitigate", None, 600, 60, applicable=False)])
        return DrillResult(card, out_dir)

    scheduler = DrillScheduler(bot.db, settings, clock, runner=runner)
    assert scheduler.tick() == "etcd-member-down"
    assert scheduler.tick() is None  # not due again yet
    clock.advance(3599)
    assert scheduler.tick() is None
    clock.advance(1)
    assert scheduler.tick() == "client-flood"
    clock.advance(3600)
    assert scheduler.tick() == "etcd-member-down"  # round again

    assert ran == ["etcd-member-down", "client-flood", "etcd-member-down"]
    first = _notices(bot)[0]
    assert first.startswith("Scheduled drill etcd-member-down: PASSED.")
    assert "notify 2.5s (met)" in first and "mitigate n/a (n/a)" in first
    bot.close()


def test_a_scheduled_drill_runs_for_real_and_reports(settings: Settings, tmp_path: Path) -> None:
    from bot.core.clock import SystemClock

    _scheduled(settings, tmp_path, ["client-flood"], 3600)
    bot = build_bot(settings, extensions=[])
    scheduler = DrillScheduler(bot.db, settings, SystemClock())

    assert scheduler.tick() == "client-flood"

    notice = _notices(bot)[0]
    assert notice.startswith("Scheduled drill client-flood: PASSED."), notice
    reports = list((tmp_path / "drills").glob("*-client-flood"))
    assert len(reports) == 1 and (reports[0] / "postmortem.md").is_file() and (reports[0] / "scorecard.txt").is_file()
    bot.close()
