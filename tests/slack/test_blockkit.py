"""A long incident still fits Slack's limits: cut gracefully, never refused by Slack."""

from __future__ import annotations

from typing import Any

from slack_sdk.models.blocks import Block

from bot.compose.app.bot import Bot
from bot.chat import cards
from bot.chat.dispatcher import ChatContext
from bot.chat.handlers_core import card_for
from bot.chat.messages import Bullets, Buttons, Button, Code, Fields, Heading, Paragraph, Reply
from bot.core.store.models import PlaybookRun
from integrations.adapters.slack.blockkit import MAX_BLOCKS, blocks_of, message_of, mrkdwn


def assert_within_limits(blocks: list[dict[str, Any]]) -> None:
    assert 1 <= len(blocks) <= MAX_BLOCKS
    for raw in blocks:
        if raw["type"] == "header":
            assert len(raw["text"]["text"]) <= 150
        if raw["type"] == "section":
            if "text" in raw:
                assert len(raw["text"]["text"]) <= 3000
            assert len(raw.get("fields", [])) <= 10
        Block.parse(raw).to_dict()  # slack_sdk's own validation (raises SlackObjectFormationError)
    assert sum(len(str(b)) for b in blocks) < 40000


def test_a_card_for_a_long_incident_fits_and_says_what_was_cut(bot: Bot) -> None:
    say = lambda user, line: bot.dispatcher.handle(ChatContext(user=user, adapter="slack", incident_id=1), line)  # noqa: E731
    say("alice", "/incident declare " + "apiserver-and-etcd-meltdown " * 7)
    for i in range(40):
        say("alice", f"/incident assign responder @responder-{i:02d}")
    say("alice", "/incident cause " + "etcd fsync latency ballooned on member-2 because the disk filled up; " * 80)
    with bot.db.session() as s:
        for i in range(40):
            s.add(PlaybookRun(incident_id=1, playbook=f"playbook-{i}", risk="high", plan_hash=f"{i:040d}",
                              state="awaiting_approval", requested_by="bob", requested_at=bot.clock.now()))
    card = card_for(bot.dispatcher, 1)
    blocks = blocks_of(card)
    assert_within_limits(blocks)
    assert blocks[0]["type"] == "header" and blocks[0]["text"]["text"].endswith("…")
    assert blocks[-1]["type"] == "context" and "not shown here" in blocks[-1]["elements"][0]["text"]
    assert any(b["type"] == "actions" for b in blocks)  # the first pending runs keep their buttons


def test_a_long_timeline_is_split_into_sections_and_cut(bot: Bot) -> None:
    incident = bot.services.incidents.declare("db down", actor="alice")
    for i in range(300):
        bot.services.incidents.note(incident.id, f"observation {i}: " + "x" * 150, actor="bob")
    reply = cards.timeline_reply(*bot.services.incidents.timeline(incident.id))
    assert_within_limits(blocks_of(reply))


def test_every_neutral_block_has_a_valid_block_kit_form() -> None:
    reply = Reply(text="x" * 5000, blocks=[
        Heading("h" * 300), Paragraph("p" * 7000), Fields(tuple((f"k{i}", "v" * 3000) for i in range(23))),
        Bullets(tuple("b" * 4000 for _ in range(3))), Code("line\n" * 2000), Buttons(tuple(
            Button("L" * 100, f"act_{i}", "v" * 3000, "primary") for i in range(30)), block_id="b" * 300),
    ])
    message = message_of(reply)
    assert len(message["text"]) <= 3000
    assert_within_limits(message["blocks"])


def test_user_text_cannot_inject_mentions_or_links_and_known_people_are_mentioned() -> None:
    people = {"alice": "U0ALICE"}.get
    assert mrkdwn("<!channel> look at <http://evil|this> & @alice, @nobody", people) == \
        "&lt;!channel&gt; look at &lt;http://evil|this&gt; &amp; <@U0ALICE>, @nobody"
    assert mrkdwn("mail ops@example.com", people) == "mail ops@example.com"
