"""PagerDuty Events API v2: ``POST /v2/enqueue`` with a routing key, an action and a ``dedup_key``.

One PagerDuty incident per ``dedup_key``: a second trigger with the same key
is appended to the open incident (a re-page), ``resolve`` closes it.  The
answers (https://developer.pagerduty.com/docs/events-api-v2/overview):
202 ``{"status": "success", "dedup_key": ...}``; 400 an invalid event (not
worth repeating as is); 429 throttled; 5xx try again.  This client sorts them
into ``PagerRetry`` (try later) and ``PagerRefused`` (look at it); it never
sleeps or retries by itself (the outbox owns time).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import httpx

from integrations.clients.pagers import post_json

SEVERITIES = ("critical", "error", "warning", "info")
SUMMARY_MAX = 1024


@dataclass(frozen=True)
class Event:
    """One Events API v2 event; ``payload`` only for triggers."""

    action: Literal["trigger", "acknowledge", "resolve"]
    dedup_key: str
    summary: str = ""
    source: str = "incident-bot"
    severity: str = "critical"
    component: str | None = None
    group: str | None = None
    details: dict[str, Any] | None = None

    def body(self, routing_key: str) -> dict[str, Any]:
        body: dict[str, Any] = {"routing_key": routing_key, "event_action": self.action, "dedup_key": self.dedup_key}
        if self.action == "trigger":
            payload: dict[str, Any] = {"summary": self.summary[:SUMMARY_MAX] or self.dedup_key, "source": self.source,
                                       "severity": self.severity if self.severity in SEVERITIES else "critical"}
            if self.component:
                payload["component"] = self.component
            if self.group:
                payload["group"] = self.group
            if self.details:
                payload["custom_details"] = self.details
            body["payload"] = payload
        return body


class PagerDutyEvents:
    """The Events API v2 of one service integration (its routing key never leaves this object)."""

    def __init__(self, routing_key: str, url: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self._routing_key = routing_key
        self.url = url
        self.client = httpx.Client(timeout=timeout, transport=transport, trust_env=False)

    def send(self, event: Event) -> dict[str, Any]:
        response = post_json(self.client, self.url, event.body(self._routing_key), "PagerDuty Events API")
        try:
            answer = response.json()
        except ValueError:
            answer = {}
        return {"status": response.status_code, "dedup_key": answer.get("dedup_key", event.dedup_key)}

    def close(self) -> None:
        self.client.close()
