"""Slack's Request URL under attack: replays, malformed signatures, huge bodies, stale buttons.

Every request here is what an attacker (or a confused proxy) could send to
``POST /slack/events``; the bot answers 4xx with a sentence, runs nothing
twice, and never shows a traceback.
"""

from __future__ import annotations

import pytest

from bot.core.store.models import Approval, Incident, PlaybookRun
from tests.slack.conftest import SlackServer
from tests.slack.test_buttons import a_pending_run, press, response
from tests.support import slack_signing


def incidents(slack: SlackServer) -> int:
    with slack.bot.db.session() as s:
        return s.query(Incident).count()


def test_a_replayed_signed_declare_makes_one_incident(slack: SlackServer) -> None:
    signed = slack_signing.slash_command("declare etcd is down --severity sev1", user="U0ALICE",
                                         channel="C0GENERAL", response_url=slack.fake.response_url("once"))
    answers = [slack.post(signed) for _ in range(5)]
    assert [a.status_code for a in answers] == [200] * 5
    response(slack, "once")
    slack.until(lambda: slack.pending() == 0)
    assert incidents(slack) == 1
    assert [c["path"] for c in slack.fake.answered("response_url")].count("/response/once") == 1


@pytest.mark.parametrize("timestamp", ["abc", "", "1.5e9", "１２３", "-5", "99999999999999999999"])
def test_a_malformed_timestamp_is_401_not_a_traceback(slack: SlackServer, timestamp: str) -> None:
    body, headers = slack_signing.slash_command("declare forged", response_url=slack.fake.response_url("f"))
    headers = {**headers, "X-Slack-Request-Timestamp": timestamp}
    answer = slack.http.post(slack.url, content=body.encode("utf-8"),
                             headers={k: v.encode("utf-8") for k, v in headers.items()})  # type: ignore[misc]
    assert answer.status_code == 401
    assert "X-Slack-Request-Timestamp" in answer.json()["error"]
    assert incidents(slack) == 0


def test_a_signature_with_non_ascii_bytes_is_401(slack: SlackServer) -> None:
    body, headers = slack_signing.slash_command("declare forged", response_url=slack.fake.response_url("f"))
    headers = {**headers, "X-Slack-Signature": "v0=\u00e9" + headers["X-Slack-Signature"][4:]}
    answer = slack.http.post(slack.url, content=body.encode(),
                             headers={k: v.encode("utf-8") for k, v in headers.items()})  # type: ignore[misc]
    assert answer.status_code == 401 and incidents(slack) == 0


def test_an_unsigned_huge_body_is_refused_before_it_is_read_whole(slack: SlackServer) -> None:
    chunk = b"x" * (1024 * 1024)

    def stream():  # 64 MiB offered in chunks; the bot stops reading after its 1 MiB limit
        for _ in range(64):
            yield chunk

    answer = slack.http.post(slack.url, content=stream(), headers={"Content-Type": "text/plain"})
    assert answer.status_code == 413
    assert "larger than" in answer.json()["error"]


@pytest.mark.parametrize("body", [
    "payload=%7B%7D",                                    # signed JSON payload without a type
    "payload=%5B1%2C2%5D",                               # a list, not an object
    "payload=not-json",                                  # not JSON at all
    "payload=" + "%5B" * 5000 + "%5D" * 5000,            # nested past Python's recursion limit
    '{"type": "event_callback"}',                        # an event without its event
    "%ff%fe=%ff",                                        # bytes that are not UTF-8 once decoded
])
def test_signed_but_malformed_payloads_get_400_not_500(slack: SlackServer, body: str) -> None:
    content_type = "application/json" if body.startswith("{") else "application/x-www-form-urlencoded"
    answer = slack.post((body, {"Content-Type": content_type, **slack_signing.sign(body)}))
    assert 400 <= answer.status_code < 500 or answer.status_code == 200, answer.text
    assert "Traceback" not in answer.text


def test_a_stale_approve_button_cannot_approve_a_changed_plan(slack: SlackServer) -> None:
    home, run, actions = a_pending_run(slack)
    shown = next(e for e in actions["elements"] if e["action_id"] == "run_approve")["value"]
    with slack.bot.db.session() as s:  # the plan was recomputed after the card was drawn
        row = s.get(PlaybookRun, run.id)
        row.plan_hash, row.plan_text = "0b5e7a11c0ffee42", "limit ci-robots to 1 seat"
        s.add(row)
    press(slack, home, "run_approve", shown, "U0ALICE", "stale")
    refusal = response(slack, "stale")
    assert refusal["response_type"] == "ephemeral"
    assert "plan changed since you saw it" in refusal["text"] and "Nothing was approved" in refusal["text"]
    with slack.bot.db.session() as s:
        assert s.query(Approval).count() == 0
        assert s.get(PlaybookRun, run.id).state == "awaiting_approval"


def test_the_current_approve_button_approves_the_plan_it_shows(slack: SlackServer) -> None:
    home, run, actions = a_pending_run(slack)
    shown = next(e for e in actions["elements"] if e["action_id"] == "run_approve")["value"]
    press(slack, home, "run_approve", shown, "U0ALICE", "fresh")
    assert "approved" in response(slack, "fresh")["text"]
    with slack.bot.db.session() as s:
        assert [(a.user, a.plan_hash) for a in s.query(Approval)] == [("alice", run.plan_hash)]


def test_an_answer_never_goes_to_a_response_url_outside_slack(slack: SlackServer) -> None:
    signed = slack_signing.slash_command("help", user="U0ALICE", channel="C0GENERAL",
                                         response_url="http://127.0.0.2:9/steal-the-answer")
    assert slack.post(signed).status_code == 200
    slack.until(lambda: slack.fake.answered("chat.postEphemeral"))  # answered through the Web API instead
    slack.until(lambda: slack.pending() == 0)
    assert not slack.fake.answered("response_url")
    with slack.bot.db.session() as s:
        from bot.core.store.models import OutboxMessage
        assert all("127.0.0.2" not in str(m.result) for m in s.query(OutboxMessage))
