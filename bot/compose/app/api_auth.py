"""Bearer-token access to ``/api/*`` (incidents, timelines, post-mortem exports).

The API reveals incident details, so when ``api_token`` is set every
``/api/`` request must carry ``Authorization: Bearer <token>``; the other
endpoints authenticate themselves (Slack signs its requests, Alertmanager
presents the webhook token) or reveal nothing (health, metrics).  The check
is an ASGI middleware so routes that extensions add under ``/api/`` are
covered without knowing about it.  Tokens are compared in constant time and
never logged.
"""

from __future__ import annotations

import hmac
import ipaddress
import json

from starlette.types import ASGIApp, Receive, Scope, Send

PREFIX = "/api/"


class ApiTokenMiddleware:
    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.expected = f"Bearer {token}".encode() if token else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.expected is None or scope["type"] != "http" or not scope["path"].startswith(PREFIX):
            await self.app(scope, receive, send)
            return
        given = dict(scope.get("headers") or []).get(b"authorization", b"")
        if hmac.compare_digest(given, self.expected):
            await self.app(scope, receive, send)
            return
        why = "a bearer token is required" if not given else "the bearer token is not valid"
        body = json.dumps({"error": f"{why}: send Authorization: Bearer <api_token> "
                                    "(setting api_token, INCIDENT_BOT_API_TOKEN or INCIDENT_BOT_API_TOKEN_FILE)"}).encode()
        await send({"type": "http.response.start", "status": 401,
                    "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                                (b"www-authenticate", b'Bearer realm="incident-bot"')]})
        await send({"type": "http.response.body", "body": body})


def is_loopback(host: str) -> bool:
    """``localhost``, 127.0.0.0/8 and ::1 are reachable only from this machine (or pod)."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False
