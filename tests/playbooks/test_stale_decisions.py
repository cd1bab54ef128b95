"""Decisions on requests that are no longer what they were: expired, or re-planned since they were read."""

from __future__ import annotations

from pathlib import Path

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.store.models import Approval, PlaybookRun
from playbooks.engine import Engine
from tests.playbooks.conftest import diagnosed_incident


def lines(path: Path) -> list[str]:
    return path.read_text().splitlines() if path.exists() else []


def test_a_request_past_its_time_to_live_cannot_be_approved_even_before_the_sweep(
        pb_bot: Bot, engine: Engine, clock: FakeClock, target: Path) -> None:
    chat = MemoryChat(pb_bot.dispatcher)  # no worker ticks between lines: the sweep has not run
    diagnosed_incident(chat, "alice")
    assert chat.say("bob", f"/incident run write-file path={target}").startswith("RUN-1 write-file")
    clock.advance(pb_bot.settings.playbooks.request_ttl_seconds + 1)

    answer = chat.say("alice", "/incident approve RUN-1")
    assert answer.startswith("RUN-1 expired: nobody approved it within the request's time to live")
    assert engine.service.get(1).state == "expired"
    for worker in pb_bot.workers:  # the worker finds nothing to execute
        worker.tick()
    assert lines(target) == []
    with pb_bot.db.session() as s:
        assert s.query(Approval).count() == 0


def test_an_approval_names_the_plan_it_read_and_a_changed_plan_refuses_it(
        pchat: MemoryChat, pb_bot: Bot, engine: Engine, target: Path) -> None:
    diagnosed_incident(pchat, "alice")
    pchat.say("bob", f"/incident run write-file path={target}")
    seen = engine.service.get(1).plan_hash
    with pb_bot.db.session() as s:  # re-planned after alice read it
        run = s.get(PlaybookRun, 1)
        run.plan_hash = "f" * 64
        s.add(run)

    answer = pchat.say("alice", f"/incident approve RUN-1 --plan {seen[:12]}")
    assert answer.startswith("RUN-1's plan changed since you saw it") and answer.endswith("Nothing was approved.")
    assert engine.service.get(1).state == "awaiting_approval" and lines(target) == []
    assert pchat.say("alice", "/incident approve RUN-1 --plan ffffffffffff") == "RUN-1 approved by @alice; it starts now."


def test_a_run_number_past_any_id_is_not_found_not_a_crash(pchat: MemoryChat) -> None:
    assert pchat.say("alice", "/incident approve RUN-99999999999999999999") == (
        "there is no run RUN-99999999999999999999; run numbers stop at 2147483647.")
