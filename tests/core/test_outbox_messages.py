"""The outbox's typed messages: every kind survives the store, old rows still deliver, bad ones are reported.

A stored message that does not fit its declaration must neither crash the sender
nor vanish: it is marked failed with a sentence naming the field, and the
incident's later messages go on being delivered.
"""

from __future__ import annotations

import io
from datetime import datetime
from typing import Any

import pytest

from bot.compose.app.bot import Bot
from bot.compose.app.pager import PagerDeliverer
from bot.compose.app.paging import OpsgenieDeliverer, PagerDutyDeliverer
from bot.chat.console import ConsoleDeliverer
from bot.chat.memory import MemoryChat
from bot.chat.surface import Surface, handle, not_here
from bot.core.store import outbox
from bot.core.store.messages import (KINDS, IncidentCard, MalformedMessage, Message, Notice, Page, PageClose, SlackReply,
                                TimelinePost, decode)
from bot.core.store.models import OutboxMessage, TimelineEvent
from integrations.clients.opsgenie.alerts import OpsgenieAlerts
from integrations.clients.pagerduty.events import PagerDutyEvents

EXAMPLES: list[Message] = [
    IncidentCard(incident_id=1),
    IncidentCard(incident_id=1, announce=True, notifies=True),
    TimelinePost(event_id=7),
    Page(user="alice", reason="INC-1 etcd quorum lost (sev1)", level=2, notifies=True),
    PageClose(reason="INC-1 resolved"),
    Notice(text="INC-1 alerts: 3 firing", incident_id=1),
    Notice(text="@bob RUN-4 throttle-client: expired", user="bob", run_id=4, offer="resolve"),
    SlackReply(message={"text": "Declared INC-1", "blocks": [{"type": "section"}]}, ephemeral=True, user="U0ALICE",
               channel="C0GENERAL", response_url="https://hooks.slack.test/1", thread_ts="1700000000.000100"),
]

# Payloads exactly as the writers stored them before the declarations existed (every key they wrote).
LEGACY: list[tuple[str, dict[str, Any], Message]] = [
    ("incident.card", {"incident_id": 3, "announce": True, "notifies": True},
     IncidentCard(incident_id=3, announce=True, notifies=True)),
    ("timeline.post", {"event_id": 12}, TimelinePost(event_id=12)),
    ("page", {"user": "carol", "reason": "diagnosis needs you", "notifies": False, "level": 0},
     Page(user="carol", reason="diagnosis needs you")),
    ("page.close", {"reason": "resolved"}, PageClose(reason="resolved")),
    ("notice", {"text": "Overdue action item #2", "user": None}, Notice(text="Overdue action item #2")),
    ("notice", {"text": "All 3 alerts resolved", "incident_id": 3, "offer": "resolve", "user": "alice"},
     Notice(text="All 3 alerts resolved", incident_id=3, offer="resolve", user="alice")),
    ("slack.reply", {"message": {"text": "ok"}, "ephemeral": False, "user": "U1", "channel": None,
                     "response_url": None, "thread_ts": None}, SlackReply(message={"text": "ok"}, user="U1")),
]


def test_the_examples_cover_every_declared_kind() -> None:
    assert {m.kind for m in EXAMPLES} == set(KINDS)


@pytest.mark.parametrize("message", EXAMPLES, ids=lambda m: f"{m.kind}:{sorted(m.to_payload())}")
def test_every_kind_survives_the_store_unchanged(bot: Bot, message: Message) -> None:
    now = bot.clock.now()
    with bot.db.session() as s:
        row = outbox.enqueue(s, message, now=now, channel="roundtrip")
        assert row is not None
        row_id = row.id
    with bot.db.reading() as s:
        stored = s.get(OutboxMessage, row_id)
        assert stored is not None and stored.kind == message.kind
        assert decode(stored.kind, stored.payload) == message


@pytest.mark.parametrize("kind,payload,expected", LEGACY, ids=[f"{k}-{i}" for i, (k, _, _) in enumerate(LEGACY)])
def test_rows_written_before_the_declarations_still_decode(kind: str, payload: dict[str, Any],
                                                           expected: Message) -> None:
    assert decode(kind, payload) == expected


def test_a_key_a_newer_replica_added_is_ignored_not_refused() -> None:
    assert decode("page", {"user": "alice", "reason": "r", "escalation_policy": "P1"}) == Page(user="alice", reason="r")


def test_the_stored_keys_are_the_ones_the_deliverers_of_older_replicas_read() -> None:
    assert Page(user="alice", reason="r").to_payload() == {"user": "alice", "reason": "r", "level": 0}
    assert IncidentCard(incident_id=4, announce=True, notifies=True).to_payload() == {
        "incident_id": 4, "announce": True, "notifies": True}
    assert Notice(text="hi").to_payload() == {"text": "hi"}


@pytest.mark.parametrize("kind,payload,field,says", [
    ("page", {"reason": "etcd down"}, "user", "field 'user' is missing"),
    ("page", {"user": 42, "reason": "etcd down"}, "user", "field 'user' must be a string, not int"),
    ("page", {"user": "a", "reason": "r", "level": "high"}, "level", "field 'level' must be an integer, not str"),
    ("incident.card", {"incident_id": "7"}, "incident_id", "field 'incident_id' must be an integer, not str"),
    ("incident.card", {"incident_id": 7, "announce": "yes"}, "announce", "must be true or false"),
    ("notice", {"text": "x", "user": ["bob"]}, "user", "must be a string or null, not list"),
    ("slack.reply", {"message": "ok"}, "message", "must be an object, not str"),
    ("timeline.post", ["event", 3], "(payload)", "the payload is list, not an object"),
    ("card", {"incident_id": 1}, "kind", "kind 'card' is not declared"),
])
def test_a_payload_that_does_not_fit_names_the_field(kind: str, payload: Any, field: str, says: str) -> None:
    with pytest.raises(MalformedMessage) as raised:
        decode(kind, payload)
    assert raised.value.field == field
    assert says in str(raised.value)


def test_a_writer_that_builds_a_bad_message_fails_before_anything_is_stored(bot: Bot) -> None:
    with pytest.raises(MalformedMessage, match="field 'reason' must be a string, not NoneType"):
        with bot.db.session() as s:
            outbox.enqueue(s, Page(user="alice", reason=None), now=bot.clock.now())  # type: ignore[arg-type]  # the mistake under test
    with bot.db.reading() as s:
        assert s.query(OutboxMessage).count() == 0


def _store_raw(bot: Bot, kind: str, payload: Any, incident_id: int | None, now: datetime) -> int:
    """A row as a buggy (or much older) writer left it, bypassing the declarations."""
    with bot.db.session() as s:
        row = OutboxMessage(incident_id=incident_id, channel="chat", kind=kind, payload=payload, created_at=now,
                            not_before=now)
        s.add(row)
        s.flush()
        assert row.id is not None
        return row.id


def test_a_malformed_stored_message_is_failed_with_its_reason_and_holds_nothing_back(chat: MemoryChat,
                                                                                     bot: Bot) -> None:
    chat.say("alice", "/incident declare etcd quorum lost --severity sev1")
    bad = _store_raw(bot, "page", {"user": 42, "reason": "etcd down"}, 1, bot.clock.now())
    unknown = _store_raw(bot, "pager.sms", {"text": "hi"}, 1, bot.clock.now())
    before = len(chat.deliverer.delivered)
    chat.say("bob", "/incident note leader elections every 3s")  # queued after the bad rows, same incident
    assert [m.kind for m in chat.deliverer.delivered[before:]][-1] == "timeline.post"  # the note reached chat
    note = chat.deliverer.messages[-1]
    assert isinstance(note, TimelinePost)
    with bot.db.reading() as s:
        assert s.get(TimelineEvent, note.event_id).text == "leader elections every 3s"  # type: ignore[union-attr]  # delivered: it exists
    with bot.db.reading() as s:
        rows = {r.id: r for r in s.query(OutboxMessage).filter(OutboxMessage.id.in_([bad, unknown]))}  # type: ignore[union-attr]  # SQLModel column
    assert rows[bad].status == "failed"
    assert rows[bad].last_error == "outbox message page: field 'user' must be a string, not int (42)."
    assert rows[unknown].status == "failed" and "kind 'pager.sms' is not declared" in (rows[unknown].last_error or "")
    chat.pump()  # failed is final: never tried again
    with bot.db.reading() as s:
        assert s.get(OutboxMessage, bad).attempts == 1  # type: ignore[union-attr]  # it exists: read above
        assert outbox.pending_count(s, "chat") == 0


def test_the_console_prints_the_typed_messages_and_skips_a_malformed_one(bot: Bot) -> None:
    out = io.StringIO()
    console = ConsoleDeliverer(bot.dispatcher, out)
    chat = MemoryChat(bot.dispatcher, workers=bot.workers)
    chat.sender.deliverer = console  # type: ignore[assignment]  # the console is the surface under test
    chat.say("alice", "/incident declare apiserver 5xx --severity sev1")
    _store_raw(bot, "notice", {"text": None}, 1, bot.clock.now())
    with bot.db.session() as s:
        outbox.enqueue(s, Notice(text="INC-1 alerts: 2 firing"), incident_id=1, now=bot.clock.now())
    chat.pump()
    printed = out.getvalue()
    assert "📣 " in printed and "apiserver 5xx" in printed
    assert "📟 page @alice:" in printed
    assert "🔔 INC-1 alerts: 2 firing" in printed
    assert "🔔 None" not in printed


def test_every_surface_routes_every_kind(bot: Bot) -> None:
    pagerduty = PagerDutyEvents("key", "http://127.0.0.1:9/v2/enqueue")
    opsgenie = OpsgenieAlerts("key", "http://127.0.0.1:9")
    try:
        surfaces = {
            "console": ConsoleDeliverer(bot.dispatcher, io.StringIO()).surface,
            "pager": PagerDeliverer("http://127.0.0.1:9/page").surface,
            "pagerduty": PagerDutyDeliverer(bot, pagerduty).surface,
            "opsgenie": OpsgenieDeliverer(bot, opsgenie).surface,
        }
    finally:
        pagerduty.close()
        opsgenie.close()
    assert {name: s.handled() for name, s in surfaces.items()} == {
        "console": {"incident.card", "timeline.post", "page", "notice"},
        "pager": {"page"},
        "pagerduty": {"page", "page.close"},
        "opsgenie": {"page", "page.close"},
    }
    row = OutboxMessage(kind="incident.card", payload={"incident_id": 1})
    assert surfaces["pager"].deliver(row, IncidentCard(incident_id=1)) == {
        "skipped": "incident.card: a chat message; the webhook only pages"}


def test_a_surface_that_forgets_a_kind_is_refused_when_it_is_built() -> None:
    with pytest.raises(TypeError, match="surface partial: no handler for page.close, slack.reply"):
        Surface("partial", [
            handle(IncidentCard, lambda row, m: {}), handle(TimelinePost, lambda row, m: {}),
            handle(Page, lambda row, m: {}), not_here(Notice, "not shown"),
        ])
