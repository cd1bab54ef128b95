"""Calls to Slack's Web API with the failures sorted for the outbox.

Every Slack error is HTTP 200 with ``{"ok": false, "error": code}`` except rate
limiting (429 with Retry-After).  The outbox must retry what may succeed later
(429, 5xx, timeouts, an unreachable Slack) and look at the rest: this module
turns the first kind into ``RetryLater`` and the second into ``SlackRefused``
carrying Slack's error code.  The client never retries or sleeps by itself:
the outbox owns time.
"""

from __future__ import annotations

import http.client
import socket
import urllib.error
from typing import Any

import httpx
from prometheus_client import Counter
from slack_sdk import WebClient
from slack_sdk.errors import SlackApiError, SlackRequestError

from bot.chat.delivery import RetryLater
from bot.core.config import secret
from bot.core.config.surfaces import SlackSettings
from bot.core.store.ratelimits import RateLimits

UNREACHABLE = (urllib.error.URLError, socket.timeout, TimeoutError, ConnectionError, http.client.HTTPException,
               SlackRequestError, OSError)
# per process (sum over replicas): is Slack answering the outbox, refusing it, or rate limiting it?
API_CALLS = Counter("incident_bot_slack_api_calls", "Slack Web API calls made by this process, by method and outcome.",
                    ["method", "outcome"])


SLACK_RESPONSE_HOSTS = frozenset({"hooks.slack.com", "hooks.slack-gov.com"})


FORM_METHODS = frozenset({"users.lookupByEmail", "users.info"})


class SlackRefused(Exception):
    """Slack answered ``ok: false`` with ``code`` (not a rate limit, not a server error)."""

    def __init__(self, method: str, code: str) -> None:
        super().__init__(f"{method}: {code}")
        self.method = method
        self.code = code


def _retry_after(headers: Any) -> float | None:
    try:
        value = headers.get("Retry-After") or headers.get("retry-after")
        return float(value) if value is not None else None
    except (TypeError, ValueError, AttributeError):
        return None


class SlackWeb:
    """The bot token's Web API, pointed at ``slack.api_url`` (a loopback fake in tests)."""

    def __init__(self, settings: SlackSettings, *, timeout: float | None = None,
                 limits: RateLimits | None = None) -> None:
        self.settings = settings
        self.limits = limits  # shared Retry-After per method (every replica); None: no memory of 429s
        seconds = timeout if timeout is not None else settings.request_timeout_seconds
        self.client = WebClient(token=secret(settings.bot_token), base_url=settings.api_url,
                                timeout=int(max(1, seconds)), retry_handlers=[])
        # one client for every response_url answer: a new one per answer built a TLS context each
        # time (two thirds of the reply sender's CPU while slash commands came every 100 ms)
        self.responses = httpx.Client(timeout=settings.request_timeout_seconds)

    def close(self) -> None:
        self.responses.close()

    def call(self, method: str, **args: Any) -> dict[str, Any]:
        outcome = "unexpected"
        key = f"slack:{method}"
        try:
            left = self.limits.wait(key) if self.limits is not None else None
            if left is not None:  # a 429 on this method, seen by any replica, still holds: do not call
                raise RetryLater(f"{method}: rate limited (Retry-After still running)", left)
            try:
                result = self._call(method, **args)
            except RetryLater as exc:
                if exc.rate_limited and exc.retry_after and self.limits is not None:
                    self.limits.hold(key, exc.retry_after)
                raise
            outcome = "ok"
            return result
        except RetryLater as exc:
            outcome = "rate_limited" if "rate limited" in str(exc) else "retry"
            raise
        except SlackRefused:
            outcome = "refused"
            raise
        finally:
            API_CALLS.labels(method=method, outcome=outcome).inc()

    def _call(self, method: str, **args: Any) -> dict[str, Any]:
        try:
            given = {k: v for k, v in args.items() if v is not None}
            # Slack's read methods (users.lookupByEmail, users.info) take form arguments, not JSON
            response = (self.client.api_call(method, data=given) if method in FORM_METHODS
                        else self.client.api_call(method, json=given))
        except SlackApiError as exc:
            status = exc.response.status_code
            if status == 429:
                raise RetryLater(f"{method}: rate limited", _retry_after(exc.response.headers),
                                 rate_limited=True) from None
            if status >= 500:
                raise RetryLater(f"{method}: Slack answered HTTP {status}", _retry_after(exc.response.headers)) from None
            data = exc.response.data if isinstance(exc.response.data, dict) else {}
            raise SlackRefused(method, str(data.get("error") or f"HTTP {status}")) from None
        except UNREACHABLE as exc:
            raise RetryLater(f"{method}: Slack unreachable ({type(exc).__name__})") from None
        return dict(response.data) if isinstance(response.data, dict) else {}

    def slack_hosted(self, url: str) -> bool:
        """``https://hooks.slack.com/...`` (or Slack's gov host), or the configured API's own host (a fake)."""
        try:
            target = httpx.URL(url)
            api = httpx.URL(self.settings.api_url)
        except (httpx.InvalidURL, TypeError, ValueError):
            return False
        if target.scheme == "https" and target.host in SLACK_RESPONSE_HOSTS and target.port in (None, 443):
            return True
        return (target.scheme, target.host, target.port) == (api.scheme, api.host, api.port)

    def respond(self, response_url: str, body: dict[str, Any]) -> dict[str, Any]:
        """POST to a slash command's or button's ``response_url`` (valid 30 minutes, 5 uses)."""
        if not self.slack_hosted(response_url):  # only Slack's own hosts get the answer (and the bot's words)
            raise SlackRefused("response_url", "not a Slack URL")
        try:
            response = self.responses.post(response_url, json=body)
        except httpx.HTTPError as exc:
            raise RetryLater(f"response_url: unreachable ({type(exc).__name__})") from None
        if response.status_code == 429 or response.status_code >= 500:
            raise RetryLater(f"response_url: HTTP {response.status_code}", _retry_after(response.headers))
        if response.status_code >= 400:
            raise SlackRefused("response_url", f"HTTP {response.status_code}")
        return {"response_url": "ok"}
