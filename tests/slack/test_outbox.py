"""Everything said to Slack goes through the outbox: retried, ordered per incident, coalesced.

Time is the bot's FakeClock; the test drives the senders' ``tick()`` itself, so
"Slack rate-limits us for a minute" takes no minute.
"""

from __future__ import annotations

from datetime import timedelta

import pytest

from bot.compose.app.bot import Bot
from bot.chat.dispatcher import ChatContext
from bot.core.clock import FakeClock
from bot.core.store.models import ChatBinding, OutboxMessage
from bot.core.config import Settings
from tests.slack.conftest import slack_settings
from tests.support.fake_slack import FakeSlack


@pytest.fixture
def settings(database_url: str, fake_slack: FakeSlack) -> Settings:
    """These run on SQLite and on PostgreSQL (claims and row locks differ)."""
    return slack_settings(database_url, fake_slack)


def say(bot: Bot, user: str, line: str, incident: int | None = None) -> str:
    return bot.dispatcher.handle(ChatContext(user=user, adapter="slack", incident_id=incident), line).text


def tick(bot: Bot) -> int:
    return sum(sender.tick() for sender in bot.services.extras["slack"].senders)


def home(bot: Bot) -> ChatBinding:
    with bot.db.session() as s:
        return s.query(ChatBinding).one()


def thread_lines(fake: FakeSlack, ts: str) -> list[str]:
    return [m["text"] for m in fake.messages.values() if m["thread_ts"] == ts]


def outbox_rows(bot: Bot) -> list[OutboxMessage]:
    with bot.db.session() as s:
        return list(s.query(OutboxMessage).order_by(OutboxMessage.id))


def test_a_minute_of_429_loses_nothing_and_keeps_the_order(slack_bot: Bot, fake_slack: FakeSlack,
                                                              clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    say(bot, "alice", "/incident declare etcd leader flapping --severity sev1")
    fake.fail(429, retry_after=20)  # Slack: "slow down", for a minute
    outage_ends = clock.now() + timedelta(seconds=60)
    n = 0
    while clock.now() < outage_ends:
        n += 1
        say(bot, "bob", f"/incident note observation {n}", incident=1)
        tick(bot)
        clock.advance(5)
    refused = [c for c in fake.calls if c["status"] == 429]
    assert 1 <= len(refused) <= 4  # Retry-After honoured: no hammering while limited
    fake.heal()
    for _ in range(20):
        tick(bot)
        clock.advance(5)
    assert all(row.status == "sent" for row in outbox_rows(bot))
    lines = thread_lines(fake, home(bot).card_ts)
    notes = [line for line in lines if "observation" in line]
    assert [note.split("observation ")[1] for note in notes] == [str(i) for i in range(1, n + 1)]
    assert len([m for m in fake.messages.values() if m["blocks"]]) == 1  # one card, never duplicated


def test_notified_at_is_when_slack_took_the_announcement_not_when_it_was_queued(
        slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    declared_at = clock.now()
    fake.fail(500, retry_after=None)
    say(bot, "alice", "/incident declare scheduler stuck")
    tick(bot)
    assert bot.services.incidents.get(1).notified_at is None
    clock.advance(30)
    fake.heal()
    for _ in range(10):
        tick(bot)
        clock.advance(1)
    notified = bot.services.incidents.get(1).notified_at
    assert notified is not None and notified - declared_at >= timedelta(seconds=30)


def test_a_hanging_slack_is_a_retry_not_a_stuck_worker(slack_bot: Bot, fake_slack: FakeSlack,
                                                       clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    fake.fail(hang=True, methods={"conversations.create"})
    say(bot, "alice", "/incident declare apiserver latency")
    assert tick(bot) == 0  # the call timed out (slack.request_timeout_seconds) and was put back
    (card, *_rest) = outbox_rows(bot)
    assert card.status == "pending" and "unreachable" in (card.last_error or "")
    fake.heal()
    clock.advance(60)
    for _ in range(5):
        tick(bot)
        clock.advance(1)
    assert all(row.status == "sent" for row in outbox_rows(bot))


def test_card_updates_are_coalesced_to_one_per_interval(slack_bot: Bot, fake_slack: FakeSlack,
                                                       clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    bot.settings.slack.card_min_interval_seconds = 3
    say(bot, "alice", "/incident declare kubelet flood")
    tick(bot)
    start = clock.now()
    for i in range(30):  # 30 changes in 3 seconds
        say(bot, "alice", f"/incident assign responder @user{i}", incident=1)
        tick(bot)
        clock.advance(0.1)
    updates = fake.answered("chat.update")
    assert len(updates) <= 2, len(updates)
    clock.advance(3)
    for _ in range(3):
        tick(bot)
        clock.advance(3)
    assert clock.now() - start < timedelta(seconds=20)
    card = fake.messages[(home(bot).channel_id, home(bot).card_ts)]
    assert "@user29" in str(card["blocks"])  # the last change is shown
    assert len(fake.answered("chat.update")) <= 4
    # and the timeline still has every assignment, in order
    lines = [line for line in thread_lines(fake, home(bot).card_ts) if "is now responder" in line]
    assert [line.split("@user")[1].split(" ")[0] for line in lines] == [str(i) for i in range(30)]


def test_a_card_deleted_in_slack_is_posted_again(slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    say(bot, "alice", "/incident declare dns errors")
    tick(bot)
    old = home(bot)
    del fake.messages[(old.channel_id, old.card_ts)]
    say(bot, "alice", "/incident ack", incident=1)
    tick(bot)
    new = home(bot)
    assert new.card_ts != old.card_ts
    assert "@alice" not in str(fake.messages[(new.channel_id, new.card_ts)]["blocks"])  # a mention, not text
    assert "<@U0ALICE>" in str(fake.messages[(new.channel_id, new.card_ts)]["blocks"])


def test_a_page_is_a_dm_and_a_mention_and_a_retry_does_not_dm_twice(slack_bot: Bot, fake_slack: FakeSlack,
                                                                    clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    say(bot, "carol", "/incident declare etcd disk full")
    fake.fail(429, retry_after=5, methods={"chat.postMessage"})
    tick(bot)  # the card cannot be posted: everything of INC-1 waits behind it
    fake.heal()
    fake.fail(429, retry_after=5, methods={"chat.update"})  # irrelevant to pages
    clock.advance(6)
    tick(bot)
    fake.heal()
    for _ in range(5):
        clock.advance(6)
        tick(bot)
    dms = [c for c in fake.answered("chat.postMessage") if c["body"]["channel"].startswith("D")]
    assert len(dms) == 1 and dms[0]["body"]["channel"] == "DU0ALICE"
    mentions = [c for c in fake.answered("chat.postMessage") if "<@U0ALICE> is paged" in c["body"]["text"]]
    assert len(mentions) == 1
    invites = ",".join(c["body"]["users"] for c in fake.answered("conversations.invite"))
    assert "U0ALICE" in invites and "U0CAROL" in invites


def test_unknown_people_are_named_not_lost(slack_bot: Bot, fake_slack: FakeSlack, clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    bot.settings.oncall.rota = ["zed"]  # nobody told the bot zed's Slack id
    say(bot, "alice", "/incident declare etcd slow")
    for _ in range(3):
        tick(bot)
    assert fake.answered("conversations.open") == []
    assert any("@zed is paged" in c["body"]["text"] for c in fake.answered("chat.postMessage"))
    page = next(r for r in outbox_rows(bot) if r.kind == "page")
    assert page.status == "sent" and "slack.users" in page.result["note"]


def test_delivery_records_are_forgotten_after_slack_stops_retrying(slack_bot: Bot, clock: FakeClock) -> None:
    from integrations.adapters.slack import dedupe

    assert dedupe.first_time(slack_bot.db, "slack:event:Ev1", source="slack", now=clock.now())
    assert not dedupe.first_time(slack_bot.db, "slack:event:Ev1", source="slack", now=clock.now())
    pruner = next(w for w in slack_bot.workers if isinstance(w, dedupe.Pruner))
    clock.advance(hours=2)
    assert pruner.tick() == 0
    clock.advance(days=1)
    assert pruner.tick() == 1
    assert dedupe.first_time(slack_bot.db, "slack:event:Ev1", source="slack", now=clock.now())


def test_a_channel_home_is_announced_once_in_the_incidents_channel(slack_bot: Bot, fake_slack: FakeSlack,
                                                                   clock: FakeClock) -> None:
    bot, fake = slack_bot, fake_slack
    bot.settings.slack.incidents_channel = "C0INCIDENTS"
    say(bot, "alice", "/incident declare <!here> payments 500s")
    tick(bot)
    say(bot, "alice", "/incident ack", incident=1)
    tick(bot)
    announcements = [c["body"]["text"] for c in fake.answered("chat.postMessage")
                     if c["body"]["channel"] == "C0INCIDENTS"]
    assert announcements == [f"📣 INC-1 &lt;!here&gt; payments 500s (sev2) — <#{home(bot).channel_id}>"]


def test_a_malformed_stored_message_is_failed_and_slack_goes_on(slack_bot: Bot, fake_slack: FakeSlack,
                                                                clock: FakeClock) -> None:
    """A row that does not fit its declaration (an old bug's, a hand edit's) is reported, not retried forever."""
    bot, fake = slack_bot, fake_slack
    say(bot, "alice", "/incident declare etcd leader flapping --severity sev1")
    tick(bot)
    with bot.db.session() as s:
        s.add(OutboxMessage(incident_id=1, channel="chat", kind="notice", payload={"txt": "typo'd key"},
                            created_at=clock.now(), not_before=clock.now()))
    say(bot, "bob", "/incident note leader moved to etcd-2", incident=1)
    tick(bot)
    assert "leader moved to etcd-2" in " ".join(thread_lines(fake, home(bot).thread_ts))  # type: ignore[arg-type]  # posted above
    failed = [r for r in outbox_rows(bot) if r.status == "failed"]
    assert [(r.kind, r.last_error) for r in failed] == [("notice", "outbox message notice: field 'text' is missing.")]
    assert bot.services.extras["slack"].deliverer.surface.handled() == {
        "incident.card", "timeline.post", "page", "notice", "slack.reply"}
