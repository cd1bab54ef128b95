"""The Slack app manifest asks for what the bot uses, and points at what it serves."""

from __future__ import annotations

from pathlib import Path

import yaml

from integrations.adapters.slack.modal import SHORTCUT_ID

MANIFEST = yaml.safe_load((Path(__file__).parents[2] / "manifest.yml").read_text())


def test_the_manifest_has_the_command_the_shortcut_and_one_request_url() -> None:
    command = MANIFEST["features"]["slash_commands"][0]
    assert command["command"] == "/incident" and command["url"].endswith("/slack/events")
    assert command["should_escape"] is True  # mentions arrive as <@U…|name>, which the bot understands
    assert MANIFEST["features"]["shortcuts"][0]["callback_id"] == SHORTCUT_ID
    assert MANIFEST["settings"]["interactivity"]["request_url"].endswith("/slack/events")
    assert MANIFEST["settings"]["event_subscriptions"]["bot_events"] == ["app_mention"]
    assert "socket_mode_enabled" in MANIFEST["settings"]


# the bot scope each Web API method the bot calls needs (https://api.slack.com/methods)
METHOD_SCOPES = {
    "chat.postMessage": "chat:write", "chat.update": "chat:write", "chat.postEphemeral": "chat:write",
    "conversations.create": "channels:manage", "conversations.invite": "channels:manage",
    "conversations.join": "channels:join", "conversations.open": "im:write",
    "conversations.list": "channels:read", "conversations.history": "channels:history",
    "conversations.replies": "channels:history",
    "users.lookupByEmail": "users:read.email", "users.info": "users:read",
    "views.open": None, "auth.test": None,  # a trigger_id / any token
}
# scopes that come with features rather than calls
FEATURE_SCOPES = {"commands",           # /incident and the shortcut
                  "app_mentions:read",  # the app_mention event
                  "chat:write.public"}  # posting in the incidents channel without joining it


def methods_called() -> set[str]:
    import re

    source = "".join(p.read_text() for p in (Path(__file__).parents[2] / "integrations" / "adapters" / "slack").glob("*.py"))
    return set(re.findall(r'"((?:chat|conversations|users|views|auth|channels|groups|im)\.[A-Za-z]+)"', source))


def test_the_manifest_asks_for_exactly_the_scopes_of_the_calls_the_bot_makes() -> None:
    called = methods_called()
    assert called <= set(METHOD_SCOPES), f"a new Web API method needs its scope here: {called - set(METHOD_SCOPES)}"
    needed = {METHOD_SCOPES[m] for m in called if METHOD_SCOPES[m]} | FEATURE_SCOPES
    assert set(MANIFEST["oauth_config"]["scopes"]["bot"]) == needed  # nothing unused (users:read, groups:write, ...)
