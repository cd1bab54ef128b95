"""Slack people by e-mail: asked once, remembered; a miss asked again after ten minutes; the hand-kept map wins."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from bot.core.config.surfaces import SlackSettings
from integrations.adapters.slack.identity import MISS_TTL_SECONDS, Directory

NOW = datetime(2026, 11, 25, 3, 0, tzinfo=timezone.utc)


class Slack:
    """users.lookupByEmail and users.info over a small workspace, counting the calls."""

    def __init__(self) -> None:
        self.ids = {"alice@example.com": "U0ALICE"}
        self.asked: list[str] = []

    def by_email(self, email: str) -> str | None:
        self.asked.append(email)
        return self.ids.get(email)

    def email_of_id(self, user_id: str) -> str | None:
        self.asked.append(user_id)
        return {v: k for k, v in self.ids.items()}.get(user_id) or {"U0ZOE": "zoe@example.com"}.get(user_id)


def directory(slack: Slack, clock: list[datetime], users: dict[str, str] | None = None) -> Directory:
    return Directory(SlackSettings(users=users or {}), people={"alice": "alice@example.com", "bob": "bob@example.com"},
                     by_email=slack.by_email, email_of_id=slack.email_of_id, now=lambda: clock[0])


def test_a_name_is_found_by_its_e_mail_once_and_remembered() -> None:
    slack, clock = Slack(), [NOW]
    people = directory(slack, clock)
    assert [people.mention("alice"), people.mention("alice")] == ["<@U0ALICE>", "<@U0ALICE>"]
    assert slack.asked == ["alice@example.com"]
    assert people.name_of("U0ALICE") == "alice", "and the id names the person back"


def test_a_miss_is_asked_again_only_after_ten_minutes() -> None:
    slack, clock = Slack(), [NOW]
    people = directory(slack, clock)
    assert people.mention("bob") == "@bob", "not in the workspace yet: named, not mentioned"
    clock[0] = NOW + timedelta(seconds=MISS_TTL_SECONDS - 1)
    assert people.mention("bob") == "@bob" and slack.asked == ["bob@example.com"], "not asked again so soon"
    slack.ids["bob@example.com"] = "U0BOB"  # bob joins the workspace
    clock[0] = NOW + timedelta(seconds=MISS_TTL_SECONDS)
    assert people.mention("bob") == "<@U0BOB>" and slack.asked == ["bob@example.com", "bob@example.com"]


def test_the_hand_kept_map_wins_and_a_stranger_keeps_their_e_mail() -> None:
    slack, clock = Slack(), [NOW]
    people = directory(slack, clock, users={"alice": "U0OVERRIDE"})
    assert people.mention("alice") == "<@U0OVERRIDE>" and slack.asked == []
    assert people.name_of("U0ZOE") == "zoe@example.com", "not in oncall.people: known by the address Slack gave"
