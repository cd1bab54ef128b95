"""Opsgenie Alert API: create an alert for the paged person, close it when the incident resolves.

Requests are asynchronous on Opsgenie's side: ``POST /v2/alerts`` answers 202
``{"result": "Request will be processed", "requestId": ...}``.  The bot names
its alert with an ``alias`` (Opsgenie's de-duplication key: one open alert per
alias), so a re-page adds to the open alert and ``close_alert`` finds it by alias
(https://docs.opsgenie.com/docs/alert-api).  Failures are sorted like the
PagerDuty client's: 429/5xx/unreachable retry, other 4xx refused.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

import httpx

from integrations.clients.pagers import post_json

MESSAGE_MAX = 130
PRIORITIES = ("P1", "P2", "P3", "P4", "P5")


class OpsgenieAlerts:
    def __init__(self, api_key: str, api_url: str, *, timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        self.base = api_url.rstrip("/")
        self.client = httpx.Client(timeout=timeout, transport=transport, trust_env=False,
                                   headers={"Authorization": f"GenieKey {api_key}"})

    def create(self, *, alias: str, message: str, responders: list[str], priority: str = "P1",
               description: str | None = None, details: dict[str, str] | None = None,
               entity: str | None = None, tags: list[str] | None = None) -> dict[str, Any]:
        """Open (or add to) the alert ``alias``; ``responders`` are Opsgenie usernames (e-mail addresses)."""
        body: dict[str, Any] = {
            "message": message[:MESSAGE_MAX], "alias": alias[:512], "source": "incident-bot",
            "priority": priority if priority in PRIORITIES else "P1",
            "responders": [{"type": "user", "username": r} for r in responders],
        }
        for key, value in (("description", description), ("details", details), ("entity", entity), ("tags", tags)):
            if value:
                body[key] = value
        response = post_json(self.client, f"{self.base}/v2/alerts", body, "Opsgenie Alert API")
        return {"status": response.status_code, "request_id": _request_id(response)}

    def close_alert(self, alias: str, *, note: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"source": "incident-bot", **({"note": note} if note else {})}
        response = post_json(self.client, f"{self.base}/v2/alerts/{quote(alias, safe='')}/close", body,
                             "Opsgenie Alert API", params={"identifierType": "alias"})
        return {"status": response.status_code, "request_id": _request_id(response)}

    def close(self) -> None:
        self.client.close()


def _request_id(response: httpx.Response) -> str | None:
    try:
        return response.json().get("requestId")
    except (ValueError, AttributeError):
        return None
