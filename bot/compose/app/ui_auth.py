"""Who may see the web board: the API token, once, then an HttpOnly cookie; or a reverse proxy's identity header.

The board shows incidents (titles, causes, timelines), so nothing under
``/ui/`` answers without proof:

* ``Authorization: Bearer <api_token>`` (scripts, kiosks that can set headers);
* ``?token=<api_token>`` once: answered with a redirect to the same page
  without the token and a cookie ``HttpOnly; SameSite=Strict`` holding an HMAC
  of the token (never the token itself), so the token leaves the address bar
  and the history at once;
* the ``ui.identity_header`` (e.g. ``X-Forwarded-User``) when an
  authenticating proxy in front sets it.

With neither ``api_token`` nor ``ui.identity_header`` configured the board is
open, like ``/api/*``: ``serve`` then binds to loopback only.  Tokens are
compared in constant time and never logged.
"""

from __future__ import annotations

import hashlib
import hmac
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import (
    JSONResponse,
    PlainTextResponse,
    RedirectResponse,
    Response,
)
from starlette.types import ASGIApp, Receive, Scope, Send

COOKIE = "incident_bot_ui"
_SESSION_LABEL = b"incident-bot web board session v1"


def session_value(token: str) -> str:
    return hmac.new(token.encode(), _SESSION_LABEL, hashlib.sha256).hexdigest()


class UiAuth:
    """ASGI middleware for the ``/ui`` mount; ``token`` is the API token, ``identity_header`` the proxy's."""

    def __init__(self, app: ASGIApp, token: str | None, identity_header: str | None) -> None:
        self.app = app
        self.token = token
        self.bearer = f"Bearer {token}".encode() if token else None
        self.cookie = session_value(token) if token else None
        self.identity_header = identity_header.lower().encode() if identity_header else None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or (self.token is None and self.identity_header is None):
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        headers = dict(scope.get("headers") or [])
        if self.identity_header and headers.get(self.identity_header, b"").strip():
            await self.app(scope, receive, send)
            return
        if self.bearer and hmac.compare_digest(headers.get(b"authorization", b""), self.bearer):
            await self.app(scope, receive, send)
            return
        if self.cookie and hmac.compare_digest(request.cookies.get(COOKIE, ""), self.cookie):
            await self.app(scope, receive, send)
            return
        given = request.query_params.get("token")
        if self.token and given is not None and hmac.compare_digest(given.encode(), self.token.encode()):
            await self._exchange(request)(scope, receive, send)
            return
        await self._denied(request, bool(given))(scope, receive, send)

    def _exchange(self, request: Request) -> Response:
        """The token from the address bar becomes a cookie; the redirect drops it from the URL."""
        rest = [(k, v) for k, v in request.query_params.multi_items() if k != "token"]
        target = request.url.path + (f"?{urlencode(rest)}" if rest else "")
        response = RedirectResponse(target, status_code=303)
        response.set_cookie(COOKIE, self.cookie or "", httponly=True, samesite="strict",
                            secure=request.url.scheme == "https", path="/ui")
        response.headers["Referrer-Policy"] = "no-referrer"
        response.headers["Cache-Control"] = "no-store"
        return response

    def _denied(self, request: Request, wrong: bool) -> Response:
        why = "that token is not valid" if wrong else "the web board needs the API token"
        how = ("open /ui/?token=<api_token> once (the browser keeps a cookie), or send Authorization: Bearer "
               "<api_token>" + (", or come through the proxy that sets the identity header" if self.identity_header else ""))
        headers = {"WWW-Authenticate": 'Bearer realm="incident-bot"', "Cache-Control": "no-store"}
        if "application/json" in request.headers.get("accept", "") or request.url.path.endswith(".json"):
            return JSONResponse({"error": f"{why}: {how}"}, status_code=401, headers=headers)
        return PlainTextResponse(f"401: {why}. To see it, {how}.\n", status_code=401, headers=headers)
