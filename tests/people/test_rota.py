"""Rotas per team and cluster: who is paged for which incident, hand-overs in the team's zone, overrides."""

from __future__ import annotations

from datetime import datetime, timezone

from bot.compose.app.bot import Bot
from bot.chat.memory import MemoryChat
from bot.core.config.people import OnCall, RotaOverride, Team
from bot.domain.slo import rota

UTC = timezone.utc


def teams() -> dict[str, Team]:
    return {
        "etcd": Team(members=["erin", "frank"], components=["etcd"], clusters=["prod-eu-*"]),
        "eu": Team(members=["gina", "hugo"], clusters=["prod-eu-*"], timezone="Europe/Berlin",
                   rotation_start=datetime(2026, 1, 5, 9, 0)),
    }


def paged_first(bot: Bot, incident_id: int) -> str:
    from bot.domain.slo.repage import first_page

    with bot.db.session() as s:
        return first_page(s, incident_id)[0]  # type: ignore[index]


def test_the_incident_pages_the_team_that_answers_for_its_cluster_and_component(bot: Bot) -> None:
    bot.settings.oncall.teams = teams()
    incidents = bot.services.incidents
    etcd = incidents.declare("etcd fsync slow", actor="alertmanager", cluster="prod-eu-1", component="etcd")
    eu = incidents.declare("apiserver 5xx", actor="alertmanager", cluster="prod-eu-2", component="apiserver")
    us = incidents.declare("apiserver 5xx", actor="alertmanager", cluster="prod-us-1", component="etcd")
    assert [paged_first(bot, i.id) for i in (etcd, eu, us)] == ["erin", "gina", "alice"]  # type: ignore[arg-type]


def test_hand_overs_keep_the_wall_clock_time_of_the_team_zone_across_daylight_saving() -> None:
    team = teams()["eu"]
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer (DST began on 2026-03-29)
    assert rota.on_duty(team, datetime(2026, 1, 12, 7, 59, tzinfo=UTC)).user == "gina"
    assert rota.on_duty(team, datetime(2026, 1, 12, 8, 0, tzinfo=UTC)).user == "hugo"
    summer = rota.on_duty(team, datetime(2026, 3, 30, 7, 0, tzinfo=UTC))
    assert rota.on_duty(team, datetime(2026, 3, 30, 6, 59, tzinfo=UTC)).user != summer.user
    assert summer.start == datetime(2026, 3, 30, 7, 0, tzinfo=UTC)


def test_an_override_covers_its_window_and_the_rota_resumes_after_it() -> None:
    oncall = OnCall(rota=["alice", "bob"], rotation_start=datetime(2026, 11, 23, tzinfo=UTC), rotation_hours=24,
                    overrides=[RotaOverride(user="dave", start=datetime(2026, 11, 25, 2, 0),
                                            end=datetime(2026, 11, 25, 6, 0))])
    team = rota.teams(oncall)["default"]
    before = rota.on_duty(team, datetime(2026, 11, 25, 1, 0, tzinfo=UTC))
    assert (before.user, before.end) == ("alice", datetime(2026, 11, 25, 2, 0, tzinfo=UTC)), "ends where dave starts"
    during = rota.on_duty(team, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert (during.user, during.override) == ("dave", True)
    after = rota.next_on_duty(team, datetime(2026, 11, 25, 3, 0, tzinfo=UTC))
    assert (after.user, after.start) == ("alice", datetime(2026, 11, 25, 6, 0, tzinfo=UTC))
    assert rota.primary(oncall, datetime(2026, 11, 25, 3, 0, tzinfo=UTC)) == "dave"
    assert rota.escalation_target(oncall, datetime(2026, 11, 25, 3, 0, tzinfo=UTC), 1) == "alice"


def test_oncall_in_chat_shows_who_is_on_now_and_next(chat: MemoryChat, bot: Bot) -> None:
    bot.settings.oncall.teams = teams()
    shown = chat.say("zoe", "/incident oncall eu")
    assert "eu (Europe/Berlin; clusters prod-eu-*): now @gina until Mon 2026-11-30 09:00 CET; " \
           "next @hugo from Mon 2026-11-30 09:00 CET" in shown
    everyone = chat.say("zoe", "/incident oncall")
    assert "default (UTC; everything else): now @alice until Mon 2026-11-30 00:00 UTC" in everyone
    assert "etcd (UTC; clusters prod-eu-*, components etcd): now @erin" in everyone
    assert chat.say("zoe", "/incident oncall sre") == \
        "there is no team `sre`; teams: default, etcd, eu. Usage: /incident oncall [team]"
    chat.say("zoe", "/incident declare etcd slow --cluster prod-eu-3")
    mine = chat.say("zoe", "/incident oncall")
    assert "On call for INC-1 (prod-eu-3)" in mine and "eu (Europe/Berlin" in mine and "default" not in mine


def test_a_bad_rota_setting_names_the_field() -> None:
    import pytest

    from bot.core.config import load_settings
    from bot.core.errors import ConfigError

    with pytest.raises(ConfigError, match=r"oncall\.teams\.eu\.members: List should have at least 1 item"):
        load_settings(environ={"INCIDENT_BOT_ONCALL__TEAMS": "{eu: {members: []}}"})


def test_an_override_is_read_on_the_teams_wall_clock() -> None:
    """`start: 2026-12-24T00:00` for a Berlin team is midnight in Berlin: 23:00 UTC the day before."""
    team = teams()["eu"].model_copy(update={"overrides": [
        RotaOverride(user="dave", start=datetime(2026, 12, 24, 0, 0), end=datetime(2026, 12, 27, 0, 0))]})
    assert rota.on_duty(team, datetime(2026, 12, 23, 22, 59, tzinfo=UTC)).user != "dave"
    during = rota.on_duty(team, datetime(2026, 12, 23, 23, 0, tzinfo=UTC))
    assert (during.user, during.override, during.end) == ("dave", True, datetime(2026, 12, 26, 23, 0, tzinfo=UTC))
    assert rota.on_duty(team, datetime(2026, 12, 26, 23, 0, tzinfo=UTC)).user in ("gina", "hugo"), "the rota resumes"


def test_oncall_marks_an_override_and_the_incident_of_a_component_gets_its_team(chat: MemoryChat, bot: Bot) -> None:
    bot.settings.oncall.teams = teams()
    bot.settings.oncall.teams["eu"] = teams()["eu"].model_copy(update={"overrides": [
        RotaOverride(user="dave", start=datetime(2026, 11, 25, 0, 0), end=datetime(2026, 11, 26, 0, 0))]})
    assert "eu (Europe/Berlin; clusters prod-eu-*): now @dave until Thu 2026-11-26 00:00 CET (override)" in \
        chat.say("zoe", "/incident oncall eu")
    chat.say("zoe", "/incident declare etcd slow --cluster prod-eu-3")
    with bot.db.session() as s:
        from bot.core.store.models import Incident
        s.get(Incident, 1).component = "etcd"  # type: ignore[union-attr]
    mine = chat.say("zoe", "/incident oncall", incident=1)
    assert "On call for INC-1 (prod-eu-3 / etcd)" in mine and "etcd (UTC" in mine and "eu (" not in mine
