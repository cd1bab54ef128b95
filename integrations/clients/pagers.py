"""What every paging service's HTTP API has in common: how its answers are sorted for the outbox.

PagerDuty and Opsgenie both answer 2xx for an accepted request, 429 when
throttled (with ``Retry-After``), 5xx when they fail, another 4xx when the
request itself is wrong.  The clients raise ``PagerRetry`` for what may
succeed later and ``PagerRefused`` for the rest; they never sleep or retry by
themselves (the outbox owns time).
"""

from __future__ import annotations

from typing import Any

import httpx


class PagerError(Exception):
    """A pager did not take the request."""


class PagerRetry(PagerError):
    """Throttled, a server error or unreachable: the same request may succeed later."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.retry_after = retry_after


class PagerRefused(PagerError):
    """The request itself was refused (bad key, invalid event)."""


def retry_after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers.get("Retry-After", ""))
    except ValueError:
        return None


def post_json(client: httpx.Client, url: str, body: dict[str, Any], what: str, **kwargs: Any) -> httpx.Response:
    """POST and sort the failure: 429/5xx/unreachable -> PagerRetry, other 4xx -> PagerRefused."""
    try:
        response = client.post(url, json=body, **kwargs)
    except httpx.HTTPError as exc:
        raise PagerRetry(f"{what} unreachable: {exc.__class__.__name__}") from None
    if response.status_code == 429 or response.status_code >= 500:
        raise PagerRetry(f"{what} answered HTTP {response.status_code}", retry_after(response))
    if response.status_code >= 300:
        raise PagerRefused(f"{what} refused: HTTP {response.status_code} {response.text[:300]}")
    return response
