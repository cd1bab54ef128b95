"""GitHub Issues over the REST API (https://docs.github.com/en/rest/issues/issues).

``POST /repos/{owner}/{repo}/issues`` creates, ``GET /repos/{owner}/{repo}/issues/{number}``
reads ``state`` ("open" or "closed").  Authentication is a bearer token
(fine-grained or classic PAT, or an app installation token); GitHub Enterprise
Server is the same API under ``https://HOST/api/v3``.
"""

from __future__ import annotations

from typing import Any

import httpx

from integrations.clients.tickets import Ticket, TrackerError

API_VERSION = "2022-11-28"


class GitHubIssues:
    name = "github"

    def __init__(self, repo: str, token: str, *, api_url: str = "https://api.github.com", timeout: float = 10.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        if repo.count("/") != 1:
            raise ValueError("repo must be OWNER/NAME")
        self.repo = repo
        self._client = httpx.Client(
            base_url=api_url.rstrip("/"), timeout=timeout, transport=transport,
            headers={"Authorization": f"Bearer {token}", "Accept": "application/vnd.github+json",
                     "X-GitHub-Api-Version": API_VERSION, "User-Agent": "incident-bot"},
        )

    def create(self, title: str, body: str, labels: list[str]) -> Ticket:
        data = self._call("POST", f"/repos/{self.repo}/issues", json={"title": title, "body": body, "labels": labels})
        return Ticket(str(data["number"]), str(data.get("html_url") or ""))

    def is_closed(self, key: str) -> bool:
        return self._call("GET", f"/repos/{self.repo}/issues/{key}").get("state") == "closed"

    def _call(self, method: str, path: str, **kwargs: Any) -> dict[str, Any]:  # kwargs: httpx's request options
        try:
            response = self._client.request(method, path, **kwargs)
        except httpx.HTTPError as exc:
            raise TrackerError(f"GitHub {method} {path}: {type(exc).__name__}") from None
        if response.status_code >= 400:
            try:
                message = response.json().get("message", "")
            except ValueError:
                message = ""
            raise TrackerError(f"GitHub {method} {path}: HTTP {response.status_code} {message}".rstrip())
        return response.json()

    def close(self) -> None:
        self._client.close()
