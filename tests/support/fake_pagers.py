"""Loopback stand-ins for PagerDuty (Events API v2, webhooks v3) and Opsgenie (Alert API, Webhook integration).

Neither service is reachable here, so these small HTTP servers answer the
requests the bot makes the way the services document them, and keep the
state a person would see in their UI:

- PagerDuty ``POST /v2/enqueue``: 202 ``{"status": "success", "message":
  "Event processed", "dedup_key": ...}``; 400 ``{"status": "invalid event",
  "errors": [...]}`` for an unknown routing key, a missing ``payload.summary``
  / ``source`` / ``severity`` or an unknown ``event_action``.  One incident per
  ``dedup_key`` while it is open; a trigger on an open key is appended to it.
- Opsgenie ``POST /v2/alerts`` and ``POST /v2/alerts/{alias}/close?identifierType=alias``
  with ``Authorization: GenieKey <key>``: 202 ``{"result": "Request will be
  processed", "took": ..., "requestId": ...}``; 401 for a wrong key, 422 for a
  missing ``message``.  One open alert per alias; a create on an open alias
  raises its count.

Both can be told to fail (HTTP 429 with Retry-After, or 500) for a while, or to be
slow and flaky (``delay_seconds``; ``flaky``: a seeded share of requests refused with
500 before any work, another share done but answered 504, the answer lost).  The
outgoing webhooks are built by ``acknowledgement``: the exact body and headers
the service would POST (PagerDuty signed with ``X-PagerDuty-Signature``).
"""

from __future__ import annotations

import hashlib
import hmac
import itertools
import json
import random
import threading
import time
import uuid
from abc import ABC, abstractmethod
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlparse


class _LoopbackJSON(ABC):
    """A threaded loopback server whose subclass answers ``handle(method, path, query, headers, body)``."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.failure: tuple[int, int | None] | None = None  # (status, retry_after) for the next requests
        self.lock = threading.Lock()
        self.delay_seconds = 0.0  # every request takes this long (a slow service)
        self.chaos: tuple[random.Random, float, float] | None = None  # (rng, P(500 before work), P(lost answer))
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                raw = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                url = urlparse(self.path)
                try:
                    body = json.loads(raw or b"null")
                except ValueError:
                    body = None
                if fake.delay_seconds:
                    time.sleep(fake.delay_seconds)  # slow on purpose (the bot's clock is not involved)
                with fake.lock:
                    record = {"path": url.path, "query": parse_qs(url.query), "body": body,
                              "headers": dict(self.headers), "status": 0}
                    fake.requests.append(record)
                    roll_fail, roll_lose = fake._roll()
                    if fake.failure is not None:
                        status, retry = fake.failure
                        answer, extra = {"message": "failing on purpose"}, ({"Retry-After": str(retry)} if retry else {})
                    elif roll_fail:  # refused before doing anything
                        status, answer, extra = 500, {"message": "internal error (chaos)"}, {}
                    else:
                        status, answer = fake.handle(url.path, parse_qs(url.query), dict(self.headers), body)
                        extra = {}
                        if roll_lose:  # the work is done, the answer never arrives (a gateway timeout)
                            status, answer = 504, {"message": "gateway timeout (chaos)"}
                    record["status"] = status
                data = json.dumps(answer).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in extra.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def start(self) -> "_LoopbackJSON":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def fail(self, status: int = 429, retry_after: int | None = 30) -> None:
        self.failure = (status, retry_after)

    def flaky(self, seed: int, *, fail: float = 0.1, lose: float = 0.1) -> None:
        """From now on each request fails with probability ``fail`` (HTTP 500, nothing done) or loses its
        answer with probability ``lose`` (done, then HTTP 504); seeded, so a run repeats."""
        self.chaos = (random.Random(seed), fail, lose)

    def _roll(self) -> tuple[bool, bool]:
        """(fail, lose) for one request; called with ``lock`` held."""
        if self.chaos is None:
            return False, False
        rng, fail, lose = self.chaos
        draw = rng.random()
        return draw < fail, fail <= draw < fail + lose

    def heal(self) -> None:
        self.failure = None

    @abstractmethod
    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, Any]]:
        """Answer one request of the service's API: (status, JSON body)."""


class FakePagerDuty(_LoopbackJSON):
    ACTIONS = ("trigger", "acknowledge", "resolve")
    SEVERITIES = ("critical", "error", "warning", "info")

    def __init__(self, routing_key: str, webhook_secret: str) -> None:
        super().__init__()
        self.routing_key = routing_key
        self.webhook_secret = webhook_secret
        self.incidents: dict[str, dict[str, Any]] = {}  # dedup_key -> the open (or last) incident
        self.opened: dict[str, int] = {}  # dedup_key -> incidents opened for it (a person is notified per open)
        self._numbers = itertools.count(1)

    @property
    def events_url(self) -> str:
        return self.url + "/v2/enqueue"

    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, Any]]:
        if path != "/v2/enqueue":
            return 404, {"status": "not found"}
        errors = []
        if not isinstance(body, dict):
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": ["not JSON"]}
        if body.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        action = body.get("event_action")
        if action not in self.ACTIONS:
            errors.append("'event_action' is invalid")
        payload = body.get("payload") if isinstance(body.get("payload"), dict) else {}
        if action == "trigger":
            for field in ("summary", "source", "severity"):
                if not payload.get(field):
                    errors.append(f"'payload.{field}' is missing or blank")
            if payload.get("severity") and payload["severity"] not in self.SEVERITIES:
                errors.append("'payload.severity' is invalid")
        if action in ("acknowledge", "resolve") and not body.get("dedup_key"):
            errors.append("'dedup_key' is required")
        if errors:
            return 400, {"status": "invalid event", "message": "Event object is invalid", "errors": errors}
        key = body.get("dedup_key") or uuid.uuid4().hex
        incident = self.incidents.get(key)
        if action == "trigger":
            if incident is None or incident["status"] == "resolved":
                incident = {"number": next(self._numbers), "id": f"P{uuid.uuid4().hex[:6].upper()}",
                            "status": "triggered", "title": payload["summary"], "severity": payload["severity"],
                            "log": []}
                self.incidents[key] = incident
                self.opened[key] = self.opened.get(key, 0) + 1
            incident["log"].append(body)
        elif incident is not None and incident["status"] != "resolved":
            incident["status"] = "acknowledged" if action == "acknowledge" else "resolved"
            incident["log"].append(body)
        return 202, {"status": "success", "message": "Event processed", "dedup_key": key}

    def acknowledgement(self, dedup_key: str, *, by: str = "Tenex Engineer",
                        secret: str | None = None) -> tuple[bytes, dict[str, str]]:
        """The webhook v3 delivery PagerDuty sends when ``by`` acknowledges the incident of ``dedup_key``."""
        incident = self.incidents[dedup_key]
        incident["status"] = "acknowledged"
        payload = {"event": {
            "id": uuid.uuid4().hex, "event_type": "incident.acknowledged", "resource_type": "incident",
            "occurred_at": "2026-11-25T03:01:05.000Z",
            "agent": {"html_url": "https://acme.pagerduty.com/users/PLH1HKV", "id": "PLH1HKV",
                      "self": "https://api.pagerduty.com/users/PLH1HKV", "summary": by, "type": "user_reference"},
            "client": None,
            "data": {"id": incident["id"], "type": "incident", "number": incident["number"],
                     "self": f"https://api.pagerduty.com/incidents/{incident['id']}",
                     "html_url": f"https://acme.pagerduty.com/incidents/{incident['id']}",
                     "status": "acknowledged", "incident_key": dedup_key, "title": incident["title"],
                     "urgency": "high", "resolve_reason": None}}}
        body = json.dumps(payload).encode()
        signature = "v1=" + hmac.new((secret or self.webhook_secret).encode(), body, hashlib.sha256).hexdigest()
        return body, {"Content-Type": "application/json", "X-PagerDuty-Signature": signature,
                      "X-Webhook-Id": payload["event"]["id"], "User-Agent": "PagerDuty-Webhook/V3.0"}


class FakeOpsgenie(_LoopbackJSON):
    def __init__(self, api_key: str) -> None:
        super().__init__()
        self.api_key = api_key
        self.alerts: dict[str, dict[str, Any]] = {}  # alias -> the open (or last) alert
        self._tiny = itertools.count(1)

    def _answer(self, status: int = 202) -> tuple[int, dict[str, Any]]:
        return status, {"result": "Request will be processed", "took": 0.01, "requestId": str(uuid.uuid4())}

    def handle(self, path: str, query: dict[str, list[str]], headers: dict[str, str],
               body: Any) -> tuple[int, dict[str, Any]]:
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if auth != f"GenieKey {self.api_key}":
            return 401, {"message": "Could not authenticate", "took": 0.0, "requestId": str(uuid.uuid4())}
        if not isinstance(body, dict):
            return 422, {"message": "Request body is not processable", "took": 0.0, "requestId": str(uuid.uuid4())}
        if path == "/v2/alerts":
            if not body.get("message"):
                return 422, {"message": "Request body is not processable. Please check the errors.",
                             "errors": {"message": "Message can not be empty."}, "took": 0.0,
                             "requestId": str(uuid.uuid4())}
            alias = body.get("alias") or uuid.uuid4().hex
            alert = self.alerts.get(alias)
            if alert is None or alert["status"] == "closed":
                alert = {"tinyId": str(next(self._tiny)), "alertId": str(uuid.uuid4()), "status": "open",
                         "message": body["message"], "priority": body.get("priority", "P3"), "count": 0,
                         "responders": [], "acknowledged": False}
                self.alerts[alias] = alert
            alert["count"] += 1
            alert["responders"] += [r.get("username") for r in body.get("responders", []) if r.get("username")]
            return self._answer()
        if path.startswith("/v2/alerts/") and path.endswith("/close"):
            alias = unquote(path[len("/v2/alerts/"):-len("/close")])
            if query.get("identifierType") != ["alias"] or alias not in self.alerts:
                return self._answer()  # Opsgenie processes closes asynchronously: an unknown alert is no error here
            self.alerts[alias]["status"] = "closed"
            return self._answer()
        return 404, {"message": "not found"}

    def acknowledgement(self, alias: str, *, username: str, token: str) -> tuple[bytes, dict[str, str]]:
        """The Webhook integration's POST when ``username`` acknowledges the alert ``alias``."""
        alert = self.alerts[alias]
        alert["acknowledged"] = True
        payload = {"action": "Acknowledge",
                   "alert": {"alertId": alert["alertId"], "message": alert["message"], "tags": [], "tinyId": alert["tinyId"],
                             "entity": "", "alias": alias, "createdAt": 1764039600000, "updatedAt": 1764039665000,
                             "username": username, "userId": str(uuid.uuid4()), "description": ""},
                   "source": {"name": "", "type": "mobile"}, "integrationName": "incident-bot",
                   "integrationId": str(uuid.uuid4()), "integrationType": "Webhook"}
        return json.dumps(payload).encode(), {"Content-Type": "application/json", "Authorization": f"Bearer {token}"}
