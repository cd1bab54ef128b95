"""The scorecard books the bot's own time to the bot: from the webhook's arrival on, its timeouts, its pauses.

What an operator reads on a drill's scorecard: "bot 0.1s, waiting 2.4s (Prometheus, Alertmanager)". If
the bot's ingest queue, its diagnosis timeouts or its repeat sleeps were booked as *waiting*, the card
would flatter the bot. These build the stages from stored timestamps (no sandbox) and check the split.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import pytest

from bot.compose.sandbox.scorecard import CheckSpan, build_stages, split_check_time
from bot.core.config.budgets import Budgets

T0 = datetime(2026, 11, 30, 12, 0, 0, tzinfo=timezone.utc)


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


@dataclass
class FakeIncident:
    severity: str = "sev2"
    source: str = "alertmanager"
    detected_at: datetime | None = None
    notified_at: datetime | None = None
    diagnosed_at: datetime | None = None
    mitigated_at: datetime | None = None


@dataclass
class FakeAlert:
    starts_at: datetime
    received_at: datetime


def stages(incident: FakeIncident, alert: FakeAlert | None, checks: list[CheckSpan] = []) -> dict:  # noqa: B006
    built = build_stages(fault_at=T0, incident=incident, budgets=Budgets(), first_alert=alert, step_seconds=None,
                         mitigation_expected=False, checks=checks)
    return {s.name: s for s in built}


def test_from_the_webhooks_arrival_on_the_time_is_the_bots_not_alertmanagers() -> None:
    # Prometheus fired at 1.5 s, Alertmanager delivered at 1.7 s; the bot queued and declared at 2.9 s,
    # the card reached chat at 3.2 s
    incident = FakeIncident(detected_at=at(2.9), notified_at=at(3.2))
    notify = stages(incident, FakeAlert(starts_at=at(1.5), received_at=at(1.7)))["notify"]
    assert notify.elapsed == pytest.approx(3.2)
    assert notify.waiting_seconds == pytest.approx(1.7)
    assert notify.bot_seconds == pytest.approx(1.5)  # 1.2 s to declare + 0.3 s to deliver: all the bot's
    assert "Prometheus 1.5s" in notify.waiting_on and "Alertmanager 0.2s" in notify.waiting_on
    assert "webhook to declared 1.2s" in notify.bot_on and "declared to card delivered 0.3s" in notify.bot_on


def test_a_prober_detection_has_no_webhook_and_is_booked_from_detection() -> None:
    incident = FakeIncident(source="prober", detected_at=at(4.0), notified_at=at(4.5))
    notify = stages(incident, None)["notify"]
    assert notify.waiting_seconds == pytest.approx(4.0) and notify.bot_seconds == pytest.approx(0.5)
    assert "prober" in notify.waiting_on


def test_checks_that_never_answered_and_repeat_pauses_are_the_bots_time() -> None:
    incident = FakeIncident(detected_at=at(1.0), notified_at=at(2.0), diagnosed_at=at(6.0))
    checks = [
        CheckSpan(asked=at(2.0), answered=at(2.5), known=True),  # Prometheus answered in 0.5 s
        CheckSpan(asked=at(2.0), answered=at(4.0), known=False),  # a dead member: the bot's 2 s timeout
        CheckSpan(asked=at(2.0), answered=at(5.9), known=True, slept=3.0),  # 3 answers, 2 pauses of 1.5 s
    ]
    diagnose = stages(incident, FakeAlert(at(0.5), at(0.9)), checks)["diagnose"]
    # components worked from 2.0 to 2.9 (the repeated check's answers, its pauses taken off): 0.9 s of 4 s
    assert diagnose.waiting_seconds == pytest.approx(0.9)
    assert diagnose.bot_seconds == pytest.approx(3.1)
    assert "timeouts) 2.0s" in diagnose.bot_on and "repeat pauses 3.0s" in diagnose.bot_on


def test_parallel_checks_count_once_and_only_inside_the_stage() -> None:
    spans = [CheckSpan(asked=at(0.0), answered=at(3.0), known=True),  # began before the stage: clipped
             CheckSpan(asked=at(2.0), answered=at(4.0), known=True),  # overlaps the first
             CheckSpan(asked=at(6.0), answered=at(9.0), known=True)]  # ends after the stage: clipped
    split = split_check_time(spans, at(1.0), at(7.0))
    assert split.components == pytest.approx(3.0 + 1.0)  # 1.0-4.0 and 6.0-7.0
    assert split.timeouts == 0.0 and split.sleeps == 0.0


def test_the_rendered_card_names_what_the_bots_share_was_spent_on() -> None:
    from bot.compose.sandbox.scorecard import Scorecard

    incident = FakeIncident(detected_at=at(2.9), notified_at=at(3.2), diagnosed_at=at(5.0))
    card = Scorecard("client-flood", "-> throttle-client", "INC-1", T0,
                     stages=list(stages(incident, FakeAlert(at(1.5), at(1.7))).values()))
    text = card.render()
    assert "bot: webhook to declared 1.2s" in text
    assert card.as_json()["stages"][0]["bot_on"].startswith("webhook to declared")
