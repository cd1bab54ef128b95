"""`/incident` in Slack: signed slash commands in, a home, a live card and answers out."""

from __future__ import annotations

import time

from bot.core.store.models import ChatBinding, Incident, TimelineEvent
from tests.slack.conftest import SlackServer
from tests.support import slack_signing


def counts(slack: SlackServer) -> tuple[int, int]:
    with slack.bot.db.session() as s:
        return s.query(Incident).count(), s.query(TimelineEvent).count()


def card_texts(message: dict) -> str:
    return "\n".join(str(b) for b in message["blocks"])


def test_declare_is_acked_at_once_gets_a_channel_a_card_and_a_page(slack: SlackServer) -> None:
    fake = slack.fake
    started = time.monotonic()
    response = slack.command("declare apiserver 5xx in prod-1 --severity sev1")
    assert response.status_code == 200
    assert time.monotonic() - started < 3
    answer = slack.answer_to(response)
    assert answer["text"] == "Declared INC-1: apiserver 5xx in prod-1 (sev1, cluster default)."
    assert answer["response_type"] == "in_channel"  # everyone in the channel should know

    created = fake.wait_for("conversations.create")[0]["body"]
    assert created["name"] == "inc-1-apiserver-5xx-in-prod-1"
    channel = next(iter(fake.channels))
    invited = fake.wait_for("conversations.invite")[0]["body"]
    assert set(invited["users"].split(",")) >= {"U0CAROL", "U0ALICE"}  # configured responders + the declarer

    card = slack.until(lambda: fake.messages.get((channel, fake.answered("chat.postMessage")[0]["body"].get("ts", ""))) or
                       next((m for m in fake.messages.values() if m["channel"] == channel and m["blocks"]), None))
    assert card["blocks"][0]["type"] == "header"
    assert "INC-1 apiserver 5xx in prod-1" in card["blocks"][0]["text"]["text"]
    with slack.bot.db.session() as s:
        binding = s.query(ChatBinding).one()
    assert (binding.channel_id, binding.card_ts, binding.thread_ts) == (channel, card["ts"], card["ts"])

    # the on-call commander (alice this week) gets a DM and a mention in the home
    slack.until(lambda: fake.answered("conversations.open"))
    dm = slack.until(lambda: [c for c in fake.answered("chat.postMessage") if c["body"]["channel"] == "DU0ALICE"])
    assert "You are paged: INC-1 apiserver 5xx in prod-1 (sev1)" in dm[0]["body"]["text"]
    mention = slack.until(lambda: [c for c in fake.answered("chat.postMessage")
                                   if c["body"]["channel"] == channel and "<@U0ALICE> is paged" in c["body"]["text"]])
    assert mention
    assert slack.bot.services.incidents.get(1).notified_at is not None  # the first delivery stamped it


def test_the_same_card_is_updated_when_someone_acks_from_the_channel(slack: SlackServer) -> None:
    fake = slack.fake
    slack.answer_to(slack.command("declare etcd quorum lost"))
    binding = slack.until(lambda: _binding(slack))
    response = slack.command("ack", user="U0BOB", channel=binding.channel_id)  # INC is implicit in its channel
    assert response.status_code == 200
    assert slack.answer_to(response)["text"] == "<@U0BOB> is now commander of INC-1."

    def updated() -> dict | None:
        message = fake.messages[(binding.channel_id, binding.card_ts)]
        return message if message["updates"] and "U0BOB" in card_texts(message) else None

    card = slack.until(updated)
    assert fake.answered("chat.update")[-1]["body"]["ts"] == binding.card_ts  # in place, not a new message
    assert "<@U0BOB>" in card_texts(card)
    cards = [m for m in fake.messages.values() if m["blocks"] and m["channel"] == binding.channel_id]
    assert len(cards) == 1
    # the timeline goes to the card's thread
    thread = slack.until(lambda: [m for m in fake.messages.values() if m["thread_ts"] == binding.card_ts
                                  and "now commander" in (m["text"] or "")])
    assert "<@U0BOB> is now commander" in thread[0]["text"]


def test_answers_only_the_caller_needs_are_ephemeral(slack: SlackServer) -> None:
    help_answer = slack.answer_to(slack.command(""))
    assert help_answer["response_type"] == "ephemeral"
    assert "declare" in str(help_answer["blocks"])
    bad = slack.answer_to(slack.command("declare --severity sev9 db down"))
    assert bad["response_type"] == "ephemeral"
    assert "`--severity` must be one of sev1, sev2, sev3, not `sev9`." in bad["text"]
    unknown = slack.answer_to(slack.command("status"))  # not inside an incident's channel
    assert unknown["response_type"] == "ephemeral"
    assert "which incident?" in unknown["text"]
    assert counts(slack) == (0, 0)


def test_a_forged_or_stale_request_gets_401_and_changes_nothing(slack: SlackServer) -> None:
    url = slack.fake.response_url("forged")
    forged = slack_signing.slash_command("declare forged outage", response_url=url, secret="not-the-secret")
    assert slack.post(forged).status_code == 401
    stale = slack_signing.slash_command("declare stale outage", response_url=url, timestamp=int(time.time()) - 301)
    assert slack.post(stale).status_code == 401
    body, headers = slack_signing.slash_command("declare tampered", response_url=url)
    tampered = (body.replace("tampered", "tampered+more"), headers)
    assert slack.post(tampered).status_code == 401
    slack.tick()  # bolt refuses before any listener runs: there is nothing to deliver
    assert counts(slack) == (0, 0)
    assert slack.fake.calls == []


def test_mentions_in_commands_are_people_of_the_bot(slack: SlackServer) -> None:
    slack.answer_to(slack.command("declare dns flapping"))
    binding = slack.until(lambda: _binding(slack))
    answer = slack.answer_to(slack.command("assign scribe <@U0DAVE|dave>", channel=binding.channel_id))
    assert answer["text"] == "<@U0DAVE> is now scribe of INC-1."
    view = slack.bot.services.incidents.view(1)
    assert view.roles["scribe"] == ["dave"]
    # dave joins the channel on the next card update
    slack.until(lambda: any("U0DAVE" in c["body"]["users"] for c in slack.fake.answered("conversations.invite")))


def test_thread_home_in_the_incidents_channel(slack: SlackServer) -> None:
    slack.bot.settings.slack.home = "thread"
    slack.bot.settings.slack.incidents_channel = "C0INCIDENTS"
    slack.answer_to(slack.command("declare kubelet flood"))
    binding = slack.until(lambda: _binding(slack))
    assert binding.channel_id == "C0INCIDENTS"
    assert binding.thread_ts == binding.card_ts
    assert slack.fake.answered("conversations.create") == []
    note = slack.answer_to(slack.command("note pods pending INC-1", user="U0BOB", channel="C0INCIDENTS"))
    assert note["text"] == "Noted on INC-1."
    line = slack.until(lambda: [m for m in slack.fake.messages.values()
                                if m["thread_ts"] == binding.card_ts and "pods pending" in (m["text"] or "")])
    assert line[0]["channel"] == "C0INCIDENTS"


def _binding(slack: SlackServer) -> ChatBinding | None:
    with slack.bot.db.session() as s:
        row = s.query(ChatBinding).first()
    return row if row is not None and row.card_ts else None


def test_commands_are_acked_in_time_while_slacks_api_hangs(slack: SlackServer) -> None:
    slack.fake.fail(hang=True)  # requests still arrive, but the Web API does not answer
    for text in ("declare api down --severity sev1", "list"):
        started = time.monotonic()
        assert slack.command(text).status_code == 200
        assert time.monotonic() - started < 3
    slack.until(lambda: counts(slack)[0] == 1)  # the work was done; the answers wait in the outbox
    slack.fake.heal()
