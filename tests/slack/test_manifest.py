"""The Slack app manifest asks for what the bot uses, and points at what it serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from integrations.slack.modal import SHORTCUT_ID

MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())


def test_the_manifest_has_the_command_the_shortcut_and_one_request_url() -> None:
    command = MANIFEST["features"]["slash_commands"][0]
    assert command["command"] == "/incident" and command["url"].endswith("/slack/events")
    assert command["should_escape"] is True  # mentions arrive as <@U…|name>, which the bot understands
    assert MANIFEST["features"]["shortcuts"][0]["callback_id"] == SHORTCUT_ID
    assert MANIFEST["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert MANIFEST["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert "socket_mode_enabled" in MANIFEST["settings"]


def test_the_manifest_asks_for_the_scopes_of_every_call_the_bot_makes() -> None:
    scopes = set(MANIFEST["oauth_config"]["scopes"]["bot"])
    assert scopes >= {"commands", "chat:write", "channels:manage", "channels:read", "channels:join", "groups:write",
                      "im:write", "users:read", "app_mentions:read"}
