"""Opsgenie's outgoing Webhook integration: an alert action (``Acknowledge``, ``Close``, ...) as JSON.

Opsgenie does not sign these requests; the integration sends custom headers
instead, so the bot expects ``Authorization: Bearer <paging.opsgenie.webhook_token>``
(checked in constant time by the receiving endpoint).  The payload
(https://docs.opsgenie.com/docs/webhook-integration) names the action, the
alert (with the ``alias`` the bot gave it) and the user who acted.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class AlertAction:
    action: str
    alias: str | None
    alert_id: str | None
    username: str | None


def parse(payload: Any) -> AlertAction:
    """Read a Webhook integration payload; raises ValueError naming the field that is wrong."""
    if not isinstance(payload, dict):
        raise ValueError("(body): expected a JSON object (an Opsgenie webhook payload)")
    action = payload.get("action")
    if not isinstance(action, str) or not action:
        raise ValueError("action: expected a string such as Acknowledge")
    alert = payload.get("alert")
    if not isinstance(alert, dict):
        raise ValueError("alert: expected an object")

    def text(name: str) -> str | None:
        value = alert.get(name)
        return value if isinstance(value, str) and value else None

    return AlertAction(action=action, alias=text("alias"), alert_id=text("alertId"), username=text("username"))
