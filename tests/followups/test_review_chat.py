"""After the incident, in chat: the post-mortem's written sections, action items with owner and due date, finding incidents."""

from __future__ import annotations

import json

import jsonschema

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.domain.export import export_incident
from bot.domain.export.api import SCHEMA_V1_PATH
from bot.domain.export.reading import load
from bot.domain.export.render import html
from bot.core.store.models import ActionItem, TimelineEvent


def export(bot: Bot, fmt: str, ref: str = "INC-1") -> str:
    return export_incident(bot.db, bot.settings, ref, fmt=fmt).content


def test_the_review_is_written_from_chat_and_empty_sections_are_prompted(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare apiserver 5xx in prod-1 --cluster prod-1")
    md = export(bot, "md")
    assert "_Nobody has written this yet._ Who or what was affected, how badly and for how long? " \
           "`/incident impact <text>`" in md
    assert chat.say("alice", "/incident impact 30% of LIST calls failed for 9 minutes") == \
        "Added to impact of INC-1's post-mortem."
    assert chat.say("dave", "/incident factor no APF schema for CI robots") == \
        "Added to contributing factors of INC-1's post-mortem."
    assert chat.say("erin", "/incident went-well the LIST latency alert fired within 40s") == \
        "Added to what went well of INC-1's post-mortem."
    assert chat.say("alice", "/incident lesson CI robots need their own priority level") == \
        "Added to lessons learned of INC-1's post-mortem."
    md = export(bot, "md")
    assert "## Impact\n\n- 30% of LIST calls failed for 9 minutes — @alice, 2026-11-25 03:00:00" in md
    assert "## Contributing factors\n\n- no APF schema for CI robots — @dave" in md
    assert "Nobody has written this yet" not in md
    doc = json.loads(export(bot, "json"))
    assert [w["text"] for w in doc["review"]["went_well"]] == ["the LIST latency alert fired within 40s"]
    assert doc["review_prompts"] == []
    assert chat.say("alice", "/incident lesson") == \
        "`/incident lesson` needs text. Usage: /incident lesson <text> [INC]"


def test_action_items_take_an_owner_a_due_date_and_a_priority(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd fsync latency")
    assert chat.say("alice", "/incident action add an fsync alert @dave due 2026-12-15 p1") == \
        "Action item #1 added to INC-1: add an fsync alert (@dave, due 2026-12-15, p1)."
    assert chat.say("alice", "/incident action move etcd to local SSDs") == "Action item #2 added to INC-1."
    with bot.db.session() as s:
        before = s.query(ActionItem).count(), s.query(TimelineEvent).count()
    for line, answer in {
        "/incident action fix it due 15/12/2026": "due date `15/12/2026` is not a date; write due YYYY-MM-DD, e.g. "
            "due 2026-12-15. Usage: /incident action <text> [@owner] [due YYYY-MM-DD] [p1|p2|p3] [INC]",
        "/incident action fix it due 2026-11-01": "due date 2026-11-01 is in the past (today is 2026-11-25). "
            "Usage: /incident action <text> [@owner] [due YYYY-MM-DD] [p1|p2|p3] [INC]",
        "/incident action @dave p1": "an action item needs text, e.g. `/incident action add an alert on etcd fsync "
            "@dave`. Usage: /incident action <text> [@owner] [due YYYY-MM-DD] [p1|p2|p3] [INC]",
    }.items():
        assert chat.say("alice", line) == answer
    with bot.db.session() as s:
        assert (s.query(ActionItem).count(), s.query(TimelineEvent).count()) == before
    doc = json.loads(export(bot, "json"))
    first = doc["action_items"][0]
    assert (first["owner"], first["due_on"], first["priority"], first["overdue"]) == ("dave", "2026-12-15", "p1", False)
    page = export(bot, "html")
    assert "<td data-label=\"Owner\">@dave</td>" in page and "nobody yet" in page


def test_an_overdue_action_item_is_reminded_in_chat_once_a_day(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd fsync latency")
    chat.say("alice", "/incident action add an fsync alert @dave due 2026-11-26")
    clock.advance(86400)  # the due day itself: not late yet
    chat.pump()
    assert not [m for m in chat.deliverer.delivered if "Overdue" in m.payload.get("text", "")]
    clock.advance(86400)
    chat.pump()
    chat.pump()  # a second tick the same day reminds nobody again
    reminders = [m.payload["text"] for m in chat.deliverer.delivered if "Overdue" in m.payload.get("text", "")]
    assert reminders == [("Overdue action item #1 of INC-1: add an fsync alert — owner @dave, due 2026-11-26 "
                          "(1 day late). Done? `/incident action done 1 INC-1`")]
    assert json.loads(export(bot, "json"))["action_items"][0]["overdue"] is True
    clock.advance(86400)
    chat.pump()
    assert len([m for m in chat.deliverer.delivered if "Overdue" in m.payload.get("text", "")]) == 2
    chat.say("dave", "/incident action done 1 INC-1")
    clock.advance(86400)
    chat.pump()
    assert len([m for m in chat.deliverer.delivered if "Overdue" in m.payload.get("text", "")]) == 2


def test_list_filters_by_state_cluster_age_and_text(chat: MemoryChat, bot: Bot, clock: FakeClock) -> None:
    chat.say("alice", "/incident declare etcd fsync latency --cluster prod-1")
    chat.say("alice", "/incident ack")
    chat.say("alice", "/incident resolve")
    clock.advance(8 * 86400)
    chat.say("bob", "/incident declare apiserver 5xx --cluster prod-2")
    chat.say("bob", "/incident note the LIST storm came from a CI robot")
    chat.say("carol", "/incident declare scheduler stuck --cluster prod-1")
    assert chat.say("alice", "/incident list") == ("Active incidents\n  • INC-3 [notified] sev2 prod-1: scheduler stuck\n"
                                                  "  • INC-2 [notified] sev2 prod-2: apiserver 5xx")
    assert "INC-1 [resolved]" in chat.say("alice", "/incident list --all")
    assert "INC-1" not in chat.say("alice", "/incident list --all --since 7d")
    assert chat.say("alice", "/incident list --all --cluster prod-1 --state resolved") == \
        "1 incident(s) match\n  • INC-1 [resolved] sev2 prod-1: etcd fsync latency"
    assert chat.say("alice", "/incident list --all ci robot") == "1 incident(s) match\n  • INC-2 [notified] sev2 prod-2: apiserver 5xx"
    assert chat.say("alice", "/incident list --all --since 3 days") == \
        "--since `3` is neither an age (30m, 24h, 7d, 2w) nor a date (YYYY-MM-DD)."
    assert chat.say("alice", "/incident list --state sleeping").startswith("--state must be one of detected, notified")


def as_version_1(value: object, node: dict, schema: dict) -> object:  # type: ignore[type-arg]
    """``value`` pruned to what the v1 schema ``node`` allows (fields added since v2 dropped, at every depth)."""
    if "$ref" in node:
        node = schema["$defs"][node["$ref"].rsplit("/", 1)[1]]
    if isinstance(value, dict) and "properties" in node:
        return {k: as_version_1(v, node["properties"][k], schema) for k, v in value.items() if k in node["properties"]}
    if isinstance(value, list) and isinstance(node.get("items"), dict):
        return [as_version_1(v, node["items"], schema) for v in value]
    return value


def test_a_version_1_document_is_still_read_and_rendered(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd fsync latency")
    chat.say("alice", "/incident action add an fsync alert @dave")
    v2 = json.loads(export(bot, "json"))
    v1_schema = json.loads(SCHEMA_V1_PATH.read_text())
    v1 = as_version_1(v2, v1_schema, v1_schema)  # exactly what a version 1 export had
    v1["schema_version"], v1["$schema"] = "1", "https://incident-bot.invalid/schema/postmortem-v1.json"  # type: ignore[index]
    assert "summary" not in v1["timeline"][0] and "owner" in v1["action_items"][0]  # type: ignore[index]
    jsonschema.validators.validator_for(v1_schema)(v1_schema).validate(v1)  # a genuine v1 document

    upgraded = load(json.dumps(v1))
    assert upgraded["schema_version"] == "2"
    assert upgraded["timeline"][0]["summary"].startswith("severity=sev2; cluster=default")
    assert len(upgraded["review_prompts"]) == 4
    page = html(upgraded)
    assert "Nobody has written this yet" in page and "add an fsync alert" in page


def test_resolving_asks_for_the_sections_nobody_has_written(chat: MemoryChat, bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd fsync latency")
    chat.say("alice", "/incident ack")
    chat.say("alice", "/incident impact writes slow for 4 minutes")
    chat.say("alice", "/incident lesson fsync alerts need a lower threshold")
    assert chat.say("alice", "/incident resolve") == "INC-1 is resolved."
    notices = [m.payload["text"] for m in chat.deliverer.delivered if m.kind == "notice"]
    assert notices == [("INC-1 is resolved. For its post-mortem, nobody has written yet: contributing factors "
                        "(`/incident factor <text>`); what went well (`/incident went-well <text>`).")]
