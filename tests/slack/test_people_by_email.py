"""Slack people found by e-mail (users.lookupByEmail, users.info) instead of a hand-kept id map."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.core.clock import FakeClock
from bot.core.config import Settings
from tests.slack.conftest import SlackServer, slack_settings
from tests.support.fake_slack import FakeSlack

PEOPLE = {"alice": "alice@example.com", "bob": "bob@example.com", "carol": "carol@example.com"}


@pytest.fixture
def settings(sqlite_url: str, fake_slack: FakeSlack) -> Settings:
    s = slack_settings(sqlite_url, fake_slack)
    s.slack.users = {}  # nobody mapped by hand
    s.oncall.people = dict(PEOPLE)
    for user_id, name in (("U0ALICE", "alice"), ("U0BOB", "bob"), ("U0CAROL", "carol"), ("U0ZOE", "zoe")):
        fake_slack.add_user(user_id, name, f"{name}@example.com")
    return s


@pytest.fixture
def slack(settings: Settings, clock: FakeClock, fake_slack: FakeSlack) -> Iterator[SlackServer]:
    bot: Bot = build_bot(settings, clock=clock)
    server = SlackServer(bot, fake_slack).start()
    yield server
    server.stop()
    bot.close()


def test_the_on_call_is_paged_by_the_slack_id_of_their_e_mail(slack: SlackServer) -> None:
    fake = slack.fake
    answer = slack.answer_to(slack.command("declare etcd quorum lost --severity sev1", user="U0CAROL"))
    assert answer["text"] == "Declared INC-1: etcd quorum lost (sev1, cluster default)."
    dm = slack.until(lambda: [c for c in fake.answered("chat.postMessage") if c["body"]["channel"] == "DU0ALICE"])
    assert "You are paged: INC-1 etcd quorum lost (sev1)" in dm[0]["body"]["text"]
    lookups = [c["body"]["email"] for c in fake.answered("users.lookupByEmail")]
    assert "alice@example.com" in lookups and lookups.count("alice@example.com") == 1, "asked once, then remembered"
    timeline = slack.bot.services.incidents.timeline(1)[1]
    assert timeline[0].actor == "carol", "the author of a command is named by their e-mail"


def test_ack_from_slack_names_the_person_and_a_stranger_keeps_their_e_mail(slack: SlackServer) -> None:
    slack.answer_to(slack.command("declare etcd quorum lost", user="U0CAROL"))
    assert slack.answer_to(slack.command("ack INC-1", user="U0BOB"))["text"] == "<@U0BOB> is now commander of INC-1."
    assert slack.bot.services.incidents.get(1).acknowledged_by == "bob"
    noted = slack.answer_to(slack.command("note INC-1 looking at etcd", user="U0ZOE"))
    assert noted["text"] == "Noted on INC-1."
    assert slack.bot.services.incidents.timeline(1)[1][-1].actor == "zoe@example.com"
