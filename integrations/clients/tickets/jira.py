"""Jira issues over the REST API v2 (Cloud and Data Center speak the same paths).

``POST /rest/api/2/issue`` creates (``fields.project.key``, ``summary``,
``description``, ``issuetype.name``, ``labels``); ``GET /rest/api/2/issue/{key}``
reads ``fields.status.statusCategory.key``, which is ``done`` for every
finished status whatever a workflow calls it.  Jira Cloud authenticates with
basic auth (account e-mail + API token); Data Center with a bearer personal
access token, used when no e-mail is given.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.clients.tickets import Ticket, TrackerError


class JiraIssues:
    name = "jira"

    def __init__(self, url: str, project: str, token: str, *, email: str | None = None, issue_type: str = "Task",
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None) -> None:
        self.url = url.rstrip("/")
        self.project = project
        self.issue_type = issue_type
        auth = httpx.BasicAuth(email, token) if email else None
        headers = {"Accept": "application/json", "User-Agent": "incident-bot"}
        if not email:
            headers["Authorization"] = f"Bearer {token}"
        self._client = httpx.Client(base_url=self.url, timeout=timeout, transport=transport, auth=auth,
                                    headers=headers)

    def create(self, title: str, body: str, labels: list[str]) -> Ticket:
        fields = {"project": {"key": self.project}, "summary": title[:250], "description": body,
                  "issuetype": {"name": self.issue_type}, "labels": [label.replace(" ", "-") for label in labels]}
        data = self._call("POST", "/rest/api/2/issue", json={"fields": fields})
        key = str(data["key"])
        return Ticket(key, f"{self.url}/browse/{key}")

    def is_closed(self, key: str) -> bool:
        data = self._call("GET", f"/rest/api/2/issue/{key}", params={"fields": "status"})
        status = (data.get("fields") or {}).get("status") or {}
        return (status.get("statusCategory") or {}).get("key") == "done"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:  # kwargs: httpx's request options
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TrackerError(f"Jira {method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                body = response.json()
                message = "; ".join(body.get("errorMessages") or []) or "; ".join(
                    f"{k}: {v}" for k, v in (body.get("errors") or {}).items())
            except ValueError:
                message = ""
            raise TrackerError(f"Jira {method} {path}: HTTP {response.status_code} {message}".rstrip())
        return response.json()

    def close(self) -> None:
        self._client.close()
