"""Requests exactly as Slack sends them: raw bodies signed with v0 HMAC-SHA256.

``sign`` is Slack's scheme (research/slack.md §1.1): ``v0=`` + hex HMAC of
``v0:<timestamp>:<raw body>`` keyed by the signing secret.  The builders return
the raw body and headers; tests POST them to ``/slack/events`` unchanged.
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import time
from typing import Any
from urllib.parse import urlencode

SECRET = "test-signing-secret"
_ids = itertools.count(1)


def sign(body: str, timestamp: int | None = None, secret: str = SECRET) -> dict[str, str]:
    ts = str(int(time.time()) if timestamp is None else timestamp)
    digest = hmac.new(secret.encode(), f"v0:{ts}:{body}".encode(), hashlib.sha256).hexdigest()
    return {"X-Slack-Request-Timestamp": ts, "X-Slack-Signature": f"v0={digest}"}


def form(fields: dict[str, Any], **sign_args: Any) -> tuple[str, dict[str, str]]:
    body = urlencode(fields)
    return body, {"Content-Type": "application/x-www-form-urlencoded", **sign(body, **sign_args)}


def slash_command(text: str, *, user: str = "U0ALICE", channel: str = "C0GENERAL", response_url: str,
                  command: str = "/incident", **sign_args: Any) -> tuple[str, dict[str, str]]:
    n = next(_ids)
    return form({
        "token": "deprecated-verification-token", "team_id": "T0001", "team_domain": "example",
        "channel_id": channel, "channel_name": "general", "user_id": user, "user_name": user.lower(),
        "command": command, "text": text, "api_app_id": "A0APP", "is_enterprise_install": "false",
        "response_url": response_url, "trigger_id": f"{n}.1.trigger",
    }, **sign_args)


def interactive(payload: dict[str, Any], **sign_args: Any) -> tuple[str, dict[str, str]]:
    return form({"payload": json.dumps(payload)}, **sign_args)


def block_actions(action_id: str, value: str, *, user: str, channel: str, message_ts: str, response_url: str,
                  **sign_args: Any) -> tuple[str, dict[str, str]]:
    n = next(_ids)
    return interactive({
        "type": "block_actions", "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "api_app_id": "A0APP", "token": "deprecated-verification-token", "trigger_id": f"{n}.2.trigger",
        "team": {"id": "T0001", "domain": "example"},
        "container": {"type": "message", "message_ts": message_ts, "channel_id": channel, "is_ephemeral": False},
        "channel": {"id": channel, "name": "incident"},
        "message": {"type": "message", "ts": message_ts, "bot_id": "B0BOT", "text": "card"},
        "state": {"values": {}}, "response_url": response_url,
        "actions": [{"action_id": action_id, "block_id": f"run-{value}", "type": "button", "value": value,
                     "text": {"type": "plain_text", "text": action_id}, "action_ts": f"{time.time():.6f}"}],
    }, **sign_args)


def view_submission(values: dict[str, dict[str, Any]], *, user: str, callback_id: str = "declare_modal",
                    private_metadata: str = "", **sign_args: Any) -> tuple[str, dict[str, str]]:
    return interactive({
        "type": "view_submission", "team": {"id": "T0001", "domain": "example"},
        "user": {"id": user, "username": user.lower(), "team_id": "T0001"}, "api_app_id": "A0APP",
        "token": "deprecated-verification-token", "trigger_id": f"{next(_ids)}.3.trigger",
        "view": {"id": "V0001", "team_id": "T0001", "type": "modal", "callback_id": callback_id,
                 "private_metadata": private_metadata, "hash": "h1",
                 "state": {"values": values}}, "response_urls": [],
    }, **sign_args)


def shortcut(callback_id: str, *, user: str, **sign_args: Any) -> tuple[str, dict[str, str]]:
    return interactive({
        "type": "shortcut", "token": "deprecated-verification-token", "action_ts": f"{time.time():.6f}",
        "team": {"id": "T0001", "domain": "example"}, "user": {"id": user, "username": user.lower(), "team_id": "T0001"},
        "callback_id": callback_id, "trigger_id": f"{next(_ids)}.4.trigger",
    }, **sign_args)


def event(inner: dict[str, Any], *, event_id: str, retry_num: int | None = None,
          **sign_args: Any) -> tuple[str, dict[str, str]]:
    body = json.dumps({
        "token": "deprecated-verification-token", "team_id": "T0001", "api_app_id": "A0APP", "type": "event_callback",
        "event_id": event_id, "event_time": int(time.time()),
        "authorizations": [{"team_id": "T0001", "user_id": "U0BOT", "is_bot": True}], "event": inner,
    })
    headers = {"Content-Type": "application/json", **sign(body, **sign_args)}
    if retry_num:
        headers.update({"X-Slack-Retry-Num": str(retry_num), "X-Slack-Retry-Reason": "http_timeout"})
    return body, headers
