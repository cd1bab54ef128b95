"""Approve / Reject on the card: a press is `/incident approve RUN-n` said by the presser."""

from __future__ import annotations

import logging

import pytest

from bot.core.store import outbox
from bot.core.store.messages import IncidentCard
from bot.core.store.models import Approval, ChatBinding, PlaybookRun
from bot.compose.app.bot import build_bot
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.slack.conftest import SlackServer
from tests.support.fake_slack import FakeSlack
from tests.support import slack_signing


def a_pending_run(slack: SlackServer) -> tuple[ChatBinding, PlaybookRun, dict]:
    """An incident with its home, then a run awaiting approval (as the engine would leave it)."""
    slack.answer_to(slack.command("declare apiserver LIST storm --severity sev1"))
    slack.answer_to(slack.command("ack INC-1"))  # alice is the commander
    clock = slack.bot.clock
    with slack.bot.db.session() as s:
        run = PlaybookRun(incident_id=1, playbook="apf-throttle", cluster="default", risk="low",
                          plan_hash="9f2c4e1d7a55b0c3", state="awaiting_approval", requested_by="bob",
                          requested_at=clock.now(), plan_text="limit ci-robots to 5 seats")
        s.add(run)
        s.flush()
        outbox.enqueue(s, IncidentCard(incident_id=1), incident_id=1, now=clock.now())
    fake = slack.fake

    def card_with_buttons() -> tuple[ChatBinding, dict] | None:
        with slack.bot.db.session() as s:
            home = s.query(ChatBinding).first()
        if home is None or home.card_ts is None:
            return None
        message = fake.messages.get((home.channel_id, home.card_ts))
        actions = [b for b in (message or {}).get("blocks") or [] if b["type"] == "actions"]
        return (home, actions[0]) if actions else None

    home, actions = slack.until(card_with_buttons)
    return home, run, actions


def press(slack: SlackServer, home: ChatBinding, action_id: str, value: str, user: str, name: str):  # type: ignore[no-untyped-def]
    return slack.post(slack_signing.block_actions(action_id, value, user=user, channel=home.channel_id,
                                                  message_ts=home.card_ts, response_url=slack.fake.response_url(name)))


def response(slack: SlackServer, name: str) -> dict:
    return slack.until(lambda: next((c["body"] for c in slack.fake.answered("response_url")
                                     if c["path"] == f"/response/{name}"), None))


def test_the_card_carries_approve_and_reject_for_a_pending_run(slack: SlackServer) -> None:
    home, run, actions = a_pending_run(slack)
    buttons = {e["action_id"]: e for e in actions["elements"]}
    # Approve carries the plan it was shown with (a stale button cannot approve a newer plan)
    assert buttons["run_approve"]["value"] == f"{run.id}:{run.plan_hash[:16]}"
    assert buttons["run_approve"]["style"] == "primary"
    assert buttons["run_reject"]["value"] == str(run.id) and buttons["run_reject"]["style"] == "danger"
    card = slack.fake.messages[(home.channel_id, home.card_ts)]
    assert "RUN-1 apf-throttle (low risk) awaits approval" in str(card["blocks"])


def test_a_press_by_someone_who_may_not_approve_is_refused_privately_and_changes_nothing(slack: SlackServer) -> None:
    home, run, _ = a_pending_run(slack)
    assert press(slack, home, "run_approve", str(run.id), "U0DAVE", "dave-press").status_code == 200
    refusal = response(slack, "dave-press")
    assert refusal["response_type"] == "ephemeral" and refusal["replace_original"] is False
    assert refusal["text"] == "only the commander <@U0ALICE> can approve RUN-1 (low risk)."
    with slack.bot.db.session() as s:
        assert s.get(PlaybookRun, run.id).state == "awaiting_approval"
        assert s.query(Approval).count() == 0


def test_the_commanders_press_approves_as_the_commander_and_the_buttons_go(slack: SlackServer) -> None:
    home, run, _ = a_pending_run(slack)
    press(slack, home, "run_approve", str(run.id), "U0ALICE", "alice-press")
    answer = response(slack, "alice-press")
    assert "RUN-1" in answer["text"]
    with slack.bot.db.session() as s:
        approvals = s.query(Approval).all()
        assert [(a.user, a.decision, a.plan_hash) for a in approvals] == [("alice", "approve", run.plan_hash)]
        assert s.get(PlaybookRun, run.id).state != "awaiting_approval"

    def card_without_buttons() -> bool:
        card = slack.fake.messages[(home.channel_id, home.card_ts)]
        return not any(b["type"] == "actions" for b in card["blocks"])

    slack.until(card_without_buttons)  # the same card, updated in place


def test_before_the_engine_is_there_a_press_is_refused_as_not_available(
        settings: Settings, clock: FakeClock, fake_slack: FakeSlack) -> None:
    bot = build_bot(settings, clock=clock, extensions=["integrations.adapters.slack.extension"])
    server = SlackServer(bot, fake_slack).start()
    try:
        home, run, _ = a_pending_run(server)
        press(server, home, "run_approve", str(run.id), "U0ALICE", "early")
        refusal = response(server, "early")
        assert refusal["response_type"] == "ephemeral"
        assert refusal["text"] == "`/incident approve` is not available yet in this build."
        with bot.db.session() as s:
            assert s.get(PlaybookRun, run.id).state == "awaiting_approval"
    finally:
        server.stop()
        bot.close()


def test_reject_runs_through_the_same_words(slack: SlackServer) -> None:
    home, run, _ = a_pending_run(slack)
    press(slack, home, "run_reject", str(run.id), "U0DAVE", "dave-reject")
    answer = response(slack, "dave-reject")
    assert answer["response_type"] == "ephemeral"
    with slack.bot.db.session() as s:
        assert s.get(PlaybookRun, run.id).state == "awaiting_approval"


def test_a_double_click_is_one_press(slack: SlackServer, caplog: pytest.LogCaptureFixture) -> None:
    home, run, _ = a_pending_run(slack)
    caplog.set_level(logging.INFO, logger="integrations.adapters.slack.listeners")
    press(slack, home, "run_approve", str(run.id), "U0DAVE", "first")
    press(slack, home, "run_approve", str(run.id), "U0DAVE", "second")
    response(slack, "first")
    slack.until(lambda: any("double click of run_approve by U0DAVE ignored" in r.getMessage() for r in caplog.records))
    slack.until(lambda: slack.pending() == 0)
    assert [c["path"] for c in slack.fake.answered("response_url")].count("/response/second") == 0


def test_a_forged_press_gets_401(slack: SlackServer) -> None:
    home, run, _ = a_pending_run(slack)
    body, headers = slack_signing.block_actions("run_approve", str(run.id), user="U0ALICE", channel=home.channel_id,
                                                message_ts=home.card_ts, response_url=slack.fake.response_url("x"),
                                                secret="forged")
    assert slack.post((body, headers)).status_code == 401
