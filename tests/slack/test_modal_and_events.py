"""The declare modal, the global shortcut, app mentions and Slack's event retries."""

from __future__ import annotations

import json

from bot.core.store.models import ChatBinding, Incident
from integrations.adapters.slack import homes
from tests.slack.conftest import SlackServer
from tests.support import slack_signing


def values(title: str, severity: str = "sev2", cluster: str | None = None) -> dict:
    return {
        "title": {"value": {"type": "plain_text_input", "value": title}},
        "severity": {"value": {"type": "static_select", "selected_option": {"value": severity}}},
        "cluster": {"value": {"type": "plain_text_input", "value": cluster}},
    }


def incidents(slack: SlackServer) -> list[Incident]:
    with slack.bot.db.session() as s:
        return list(s.query(Incident))


def test_declare_without_a_title_opens_the_modal(slack: SlackServer) -> None:
    response = slack.command("declare --severity sev1")
    assert response.status_code == 200
    opened = slack.fake.wait_for("views.open")[0]["body"]
    assert opened["trigger_id"].endswith(".trigger")
    view = opened["view"]
    assert view["callback_id"] == "declare_modal"
    assert view["blocks"][1]["element"]["initial_option"]["value"] == "sev1"
    assert view["private_metadata"] == "C0GENERAL"
    assert incidents(slack) == []


def test_the_global_shortcut_opens_the_modal(slack: SlackServer) -> None:
    assert slack.post(slack_signing.shortcut("declare_incident", user="U0BOB")).status_code == 200
    assert slack.fake.wait_for("views.open")[0]["body"]["view"]["callback_id"] == "declare_modal"


def test_a_bad_submission_shows_errors_in_the_form_and_declares_nothing(slack: SlackServer) -> None:
    response = slack.post(slack_signing.view_submission(values("", "sev9", "two words"), user="U0BOB"))
    assert response.status_code == 200
    answer = response.json()
    assert answer["response_action"] == "errors"
    assert set(answer["errors"]) == {"title", "severity", "cluster"}
    assert incidents(slack) == []


def test_a_good_submission_declares_as_the_submitter(slack: SlackServer) -> None:
    response = slack.post(slack_signing.view_submission(values("etcd quorum lost", "sev1", "prod-2"), user="U0BOB",
                                                        private_metadata="C0GENERAL"))
    assert response.status_code == 200 and response.text == ""  # the modal closes
    incident = slack.until(lambda: incidents(slack))[0]
    assert (incident.title, incident.severity, incident.cluster) == ("etcd quorum lost", "sev1", "prod-2")
    reply = slack.until(lambda: [c for c in slack.fake.answered("chat.postMessage")
                                 if c["body"]["channel"] == "C0GENERAL"])
    assert reply[0]["body"]["text"] == "Declared INC-1: etcd quorum lost (sev1, cluster prod-2)."
    timeline = slack.bot.services.incidents.timeline(1)[1]
    assert timeline[0].actor == "bob"


def test_url_verification_is_answered(slack: SlackServer) -> None:
    body = json.dumps({"token": "x", "challenge": "abc123", "type": "url_verification"})
    response = slack.post((body, {"Content-Type": "application/json", **slack_signing.sign(body)}))
    assert response.status_code == 200 and response.json() == {"challenge": "abc123"}


def test_a_mention_in_the_incident_thread_and_its_retries_act_once(slack: SlackServer) -> None:
    slack.bot.settings.slack.home = "thread"
    slack.bot.settings.slack.incidents_channel = "C0INCIDENTS"
    slack.answer_to(slack.command("declare ingress 502s"))
    card_ts = slack.until(lambda: (homes.binding(slack.bot.db, 1) or ChatBinding()).card_ts)
    mention = {"type": "app_mention", "user": "U0BOB", "text": "<@U0BOT> note upstream resets from lb-3",
               "ts": "1700000001.000100", "thread_ts": card_ts, "channel": "C0INCIDENTS",
               "event_ts": "1700000001.000100"}
    first = slack.post(slack_signing.event(mention, event_id="Ev001"))
    retry1 = slack.post(slack_signing.event(mention, event_id="Ev001", retry_num=1))
    retry2 = slack.post(slack_signing.event(mention, event_id="Ev001", retry_num=2))
    assert [r.status_code for r in (first, retry1, retry2)] == [200, 200, 200]
    reply = slack.until(lambda: [c for c in slack.fake.answered("chat.postMessage")
                                 if c["body"]["text"] == "Noted on INC-1."])
    assert reply[0]["body"]["thread_ts"] == card_ts  # the answer stays in the thread
    slack.until(lambda: slack.pending() == 0)
    notes = [e for e in slack.bot.services.incidents.timeline(1)[1] if e.kind == "note"]
    assert [n.text for n in notes] == ["upstream resets from lb-3"]


def test_other_events_are_acked_and_malformed_signed_bodies_get_400(slack: SlackServer) -> None:
    reaction = {"type": "reaction_added", "user": "U0BOB", "reaction": "eyes", "event_ts": "1700000002.000100",
                "item": {"type": "message", "channel": "C0GENERAL", "ts": "1700000000.000100"}}
    assert slack.post(slack_signing.event(reaction, event_id="Ev002")).status_code == 200
    body = "payload=not-json"
    response = slack.post((body, {"Content-Type": "application/x-www-form-urlencoded", **slack_signing.sign(body)}))
    assert response.status_code == 400 and "not a Slack request body" in response.json()["error"]
    assert incidents(slack) == []
    assert {c["method"] for c in slack.fake.calls} <= {"auth.test"}  # who the bot is; nothing said
