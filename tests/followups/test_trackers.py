"""Action items reach GitHub or Jira (loopback fakes of their REST APIs) and close here when closed there."""

from __future__ import annotations

import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr

from bot.compose.app.bot import Bot
from bot.compose.app.followups import FollowUps, build_tracker
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config.surfaces import TicketSettings
from bot.core.errors import ConfigError
from bot.domain.export import export_incident
from tests.support.fake_trackers import FakeGitHub, FakeJira

TOKEN = "ghp_fakeTokenForTests0123456789abcdef"
JIRA_TOKEN = "ATATT3xFfGF0-jira-api-token-for-tests"


@pytest.fixture
def github() -> Iterator[FakeGitHub]:
    fake = FakeGitHub("acme/platform", TOKEN)
    yield fake
    fake.stop()


@pytest.fixture
def jira() -> Iterator[FakeJira]:
    fake = FakeJira("OPS", JIRA_TOKEN, email="bot@acme.example")
    yield fake
    fake.stop()


def worker(bot: Bot, tickets: TicketSettings) -> FollowUps:
    bot.settings.tickets = tickets
    return FollowUps(bot.db, bot.settings, bot.clock, build_tracker(tickets))


def items(bot: Bot) -> list[tuple[int, bool, str | None, str | None]]:
    with bot.db.session() as s:
        from bot.core.store.models import ActionItem

        return [(a.id, a.done, a.tracker_key, a.done_by) for a in s.query(ActionItem).order_by(ActionItem.id)]


def test_github_issues_are_filed_and_closing_one_closes_the_item(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                                 github: FakeGitHub) -> None:
    sync = worker(bot, TicketSettings(kind="github", url=github.url, repo="acme/platform", token=SecretStr(TOKEN)))
    chat.say("alice", "/incident declare etcd fsync latency --cluster prod-1")
    chat.say("alice", "/incident action add an fsync alert @dave due 2026-12-15 p1")
    chat.say("alice", "/incident action move etcd to local SSDs")
    assert sync.tick() == {"reminded": 0, "created": 2, "closed": 0, "failed": 0}
    method, path, headers, body = github.requests[0]
    assert (method, path) == ("POST", "/repos/acme/platform/issues")
    assert headers["authorization"] == f"Bearer {TOKEN}" and headers["x-github-api-version"] == "2022-11-28"
    assert body["title"] == "[INC-1] add an fsync alert"
    assert "Owner: @dave" in body["body"] and "Due: 2026-12-15" in body["body"]
    assert body["labels"] == ["incident-action", "p1"]
    assert sync.tick()["created"] == 0  # filed once
    github.close("1")
    clock.advance(60)
    assert sync.tick()["closed"] == 1
    assert items(bot) == [(1, True, "1", "github"), (2, False, "2", None)]
    md = export_incident(bot.db, bot.settings, "INC-1", fmt="md").content
    assert "[github 1](<https://github.invalid/acme/platform/issues/1>)" in md
    assert "action item #1 done: add an fsync alert (issue 1 closed in github)" in md


def test_jira_issues_use_basic_auth_and_the_done_status_category(chat: MemoryChat, bot: Bot, clock: FakeClock,
                                                                 jira: FakeJira) -> None:
    sync = worker(bot, TicketSettings(kind="jira", url=jira.url, project="OPS", email="bot@acme.example",
                                      token=SecretStr(JIRA_TOKEN)))
    chat.say("alice", "/incident declare apiserver 5xx")
    chat.say("alice", "/incident action add an APF schema for CI robots @erin")
    assert sync.tick()["created"] == 1
    method, path, headers, body = jira.requests[0]
    assert (method, path) == ("POST", "/rest/api/2/issue")
    assert headers["authorization"].startswith("Basic ")
    assert body["fields"]["project"] == {"key": "OPS"} and body["fields"]["issuetype"] == {"name": "Task"}
    assert sync.tick()["closed"] == 0  # "To Do" is not done
    jira.close("OPS-1")  # any status in the done category ("Won't Do" here) closes the item
    assert sync.tick()["closed"] == 1
    assert items(bot) == [(1, True, "OPS-1", "jira")]


def test_a_refused_credential_is_kept_on_the_item_and_never_shows_the_token(chat: MemoryChat, bot: Bot,
                                                                          github: FakeGitHub,
                                                                          caplog: pytest.LogCaptureFixture) -> None:
    sync = worker(bot, TicketSettings(kind="github", url=github.url, repo="acme/platform",
                                      token=SecretStr("ghp_wrong_token_value_000")))
    chat.say("alice", "/incident declare etcd fsync latency")
    chat.say("alice", "/incident action add an fsync alert")
    with caplog.at_level(logging.DEBUG):
        assert sync.tick()["failed"] == 1
    with bot.db.session() as s:
        from bot.core.store.models import ActionItem

        item = s.get(ActionItem, 1)
        assert item is not None and item.tracker_key is None
        assert item.tracker_error == "GitHub POST /repos/acme/platform/issues: HTTP 401 Bad credentials"
    assert "ghp_wrong_token_value_000" not in caplog.text
    # the next pass, with the right token, files it
    assert worker(bot, TicketSettings(kind="github", url=github.url, repo="acme/platform",
                                      token=SecretStr(TOKEN))).tick()["created"] == 1


def test_a_half_configured_tracker_stops_the_bot_naming_the_setting() -> None:
    with pytest.raises(ConfigError) as no_token:
        build_tracker(TicketSettings(kind="github", repo="acme/platform"))
    assert no_token.value.message.startswith("bad setting tickets.token: required when tickets.kind is github")
    with pytest.raises(ConfigError) as no_project:
        build_tracker(TicketSettings(kind="jira", url="https://acme.atlassian.net", token=SecretStr("x")))
    assert no_project.value.message.startswith("bad setting tickets.project")
