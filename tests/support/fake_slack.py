"""A loopback stand-in for Slack's Web API (and response_url), recording every call.

No open-source server speaks Slack's Web API (research/slack.md, part 7), so
this small HTTP server answers the methods the bot uses the way Slack does:
``{"ok": true, ...}`` with increasing message timestamps, ``ok: false`` codes
for bad input (``message_not_found``, ``name_taken``, ``not_authed``), and on
demand HTTP 429 with Retry-After, HTTP 500, or no answer at all (a hang).
Bound to 127.0.0.1 on a free port, so test runs never collide.
"""

from __future__ import annotations

import itertools
import json
import queue
import random
import threading
import time
from collections.abc import Callable, Iterable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs

from websockets.sync.server import ServerConnection, serve



class _QuietServer(ThreadingHTTPServer):
    """The bot hanging up on a deliberately hanging answer is expected, not an error to print."""

    def handle_error(self, request: object, client_address: object) -> None:
        import sys

        if not isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError, TimeoutError)):
            super().handle_error(request, client_address)  # type: ignore[arg-type]

class FakeSlack:
    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []  # every request, answered or refused
        self.messages: dict[tuple[str, str], dict[str, Any]] = {}  # (channel, ts) -> message
        self.channels: dict[str, dict[str, Any]] = {}
        self.users: dict[str, dict[str, Any]] = {}  # id -> user object (users.lookupByEmail, users.info)
        self.ws_url: str | None = None
        self.failure: dict[str, Any] | None = None  # {"status", "retry_after", "methods", "hang"}
        self.delay_seconds = 0.0  # every Web API call takes this long (a slow Slack)
        self.lose_answers: dict[str, int] = {}  # method -> how many more answers to lose after doing the work
        self.chaos: tuple[random.Random, float, float] | None = None  # (rng, P(500 before work), P(lost answer))
        self._ts = itertools.count(1)
        self._channel_ids = itertools.count(100)
        self._lock = threading.Lock()
        self._released = threading.Event()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length).decode()
                status, headers, body = fake._handle(self.path, dict(self.headers), raw)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json; charset=utf-8")
                self.send_header("Content-Length", str(len(data)))
                for k, v in headers.items():
                    self.send_header(k, v)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST  # noqa: N815

        self.server = _QuietServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, args=(0.05,), daemon=True)

    # -- lifecycle -------------------------------------------------------------
    def start(self) -> "FakeSlack":
        self.thread.start()
        return self

    def stop(self) -> None:
        self._released.set()
        self.server.shutdown()
        self.server.server_close()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/api/"

    def response_url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.port}/response/{name}"

    # -- failure injection -------------------------------------------------------
    def fail(self, status: int = 429, *, retry_after: int | None = 30, methods: Iterable[str] | None = None,
             hang: bool = False) -> None:
        """Answer ``status`` (or hang until ``heal``) for these methods (all when None)."""
        self._released.clear()
        self.failure = {"status": status, "retry_after": retry_after, "methods": set(methods) if methods else None,
                        "hang": hang}

    def lose_answer(self, method: str, times: int = 1) -> None:
        """Do the next ``times`` calls of ``method`` but lose their answers (HTTP 504)."""
        with self._lock:
            self.lose_answers[method] = self.lose_answers.get(method, 0) + times

    def flaky(self, seed: int, *, fail: float = 0.1, lose: float = 0.1) -> None:
        """From now on each Web API call fails with probability ``fail`` (HTTP 500, nothing done) or
        loses its answer with probability ``lose`` (done, then HTTP 504); seeded, so a run repeats."""
        self.chaos = (random.Random(seed), fail, lose)

    def _roll(self) -> tuple[bool, bool]:
        with self._lock:
            if self.chaos is None:
                return False, False
            rng, fail, lose = self.chaos
            draw = rng.random()
            return draw < fail, fail <= draw < fail + lose

    def posts(self, channel: str | None = None) -> list[dict[str, Any]]:
        """Messages that exist in Slack now (what people see), oldest first."""
        with self._lock:
            return sorted((m for (c, _), m in self.messages.items() if channel is None or c == channel),
                          key=lambda m: m["ts"])

    def add_user(self, user_id: str, name: str, email: str) -> None:
        """A member of the workspace, as users.info and users.lookupByEmail describe one."""
        self.users[user_id] = {"id": user_id, "team_id": "T0001", "name": name, "deleted": False,
                               "real_name": name.title(), "profile": {"email": email, "real_name": name.title()}}

    def heal(self) -> None:
        self.failure = None
        self._released.set()

    # -- reading what happened -----------------------------------------------------
    def answered(self, method: str | None = None) -> list[dict[str, Any]]:
        with self._lock:
            return [c for c in self.calls if c["status"] == 200 and (method is None or c["method"] == method)]

    def wait_for(self, method: str, count: int = 1, timeout: float = 10.0,
                 where: Callable[[dict[str, Any]], bool] | None = None) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        while True:
            found = [c for c in self.answered(method) if where is None or where(c["body"])]
            if len(found) >= count:
                return found
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} {method} call(s), got {len(found)}: "
                                     f"{[c['method'] for c in self.calls]}")
            time.sleep(0.02)

    # -- the API -----------------------------------------------------------------
    def _handle(self, path: str, headers: dict[str, str], raw: str) -> tuple[int, dict[str, str], dict[str, Any]]:
        body = _parse(headers, raw)
        auth = {k.lower(): v for k, v in headers.items()}.get("authorization", "")
        if path.startswith("/response/"):
            method = "response_url"
        else:
            method = path.split("/api/", 1)[-1].strip("/")
        failure = self.failure
        if failure and (failure["methods"] is None or method in failure["methods"]):
            self._record(method, body, failure["status"] if not failure["hang"] else 0, auth)
            if failure["hang"]:
                self._released.wait(60)
                return 500, {}, {"ok": False, "error": "fatal_error"}
            extra = {"Retry-After": str(failure["retry_after"])} if failure["retry_after"] is not None else {}
            error = "ratelimited" if failure["status"] == 429 else "fatal_error"
            return failure["status"], extra, {"ok": False, "error": error}
        if method == "response_url":
            self._record(method, body, 200, auth, path=path)
            return 200, {}, {"ok": True}
        token_ok = auth.startswith("Bearer xoxb-") or (auth.startswith("Bearer xapp-") and method == "apps.connections.open")
        if not token_ok:
            self._record(method, body, 200, auth, ok=False)
            return 200, {}, {"ok": False, "error": "not_authed"}
        if self.delay_seconds:
            time.sleep(self.delay_seconds)  # the fake is slow on purpose (the bot's clock is not involved)
        roll_fail, roll_lose = self._roll()
        if roll_fail:  # refused before doing anything (Slack's 500)
            self._record(method, body, 500, auth)
            return 500, {}, {"ok": False, "error": "fatal_error"}
        answer = self._answer(method, body)
        with self._lock:
            lose = self.lose_answers.get(method, 0)
            if lose:
                self.lose_answers[method] = lose - 1
        # a lost answer is recorded as 504: the work was done, the bot never heard (answered() skips it)
        self._record(method, body, 504 if lose or roll_lose else 200, auth, ok=answer.get("ok", False))
        if lose or roll_lose:  # the work is done, the answer never arrives (a gateway timeout on the way back)
            return 504, {}, {"ok": False, "error": "gateway_timeout"}
        return 200, {}, answer

    def _record(self, method: str, body: dict[str, Any], status: int, auth: str, ok: bool = True,
                path: str | None = None) -> None:
        with self._lock:
            self.calls.append({"method": method, "body": body, "status": status, "ok": ok, "path": path,
                               "token_kind": auth.split(" ")[-1][:4] if auth else None})

    def _answer(self, method: str, body: dict[str, Any]) -> dict[str, Any]:
        with self._lock:
            if method == "auth.test":
                return {"ok": True, "url": "https://example.slack.com/", "team": "Example", "user": "incident-bot",
                        "team_id": "T0001", "user_id": "U0BOT", "bot_id": "B0BOT", "is_enterprise_install": False}
            if method in ("chat.postMessage", "chat.postEphemeral"):
                channel = str(body.get("channel", ""))
                if not channel:
                    return {"ok": False, "error": "channel_not_found"}
                if not body.get("text") and not body.get("blocks"):
                    return {"ok": False, "error": "no_text"}
                ts = f"1700000000.{next(self._ts):06d}"
                if method == "chat.postEphemeral":
                    return {"ok": True, "message_ts": ts}
                message = {"ts": ts, "channel": channel, "text": body.get("text"), "blocks": body.get("blocks"),
                           "thread_ts": body.get("thread_ts"), "updates": 0, "metadata": body.get("metadata")}
                self.messages[(channel, ts)] = message
                return {"ok": True, "channel": channel, "ts": ts, "message": message}
            if method == "chat.update":
                key = (str(body.get("channel")), str(body.get("ts")))
                if key not in self.messages:
                    return {"ok": False, "error": "message_not_found"}
                self.messages[key].update(text=body.get("text"), blocks=body.get("blocks"))
                self.messages[key]["updates"] += 1
                return {"ok": True, "channel": key[0], "ts": key[1], "text": body.get("text")}
            if method == "conversations.create":
                name = str(body.get("name", ""))
                if any(c["name"] == name for c in self.channels.values()):
                    return {"ok": False, "error": "name_taken"}
                channel_id = f"C{next(self._channel_ids)}"
                self.channels[channel_id] = {"id": channel_id, "name": name, "members": ["U0BOT"]}
                return {"ok": True, "channel": dict(self.channels[channel_id], is_channel=True)}
            if method == "conversations.invite":
                channel = self.channels.get(str(body.get("channel")))
                if channel is None:
                    return {"ok": False, "error": "channel_not_found"}
                channel["members"] += [u for u in str(body.get("users", "")).split(",") if u]
                return {"ok": True, "channel": {"id": channel["id"]}}
            if method == "conversations.list":  # one page is enough for the tests' few channels
                return {"ok": True, "channels": [dict(c, is_channel=True) for c in self.channels.values()],
                        "response_metadata": {"next_cursor": ""}}
            if method in ("conversations.history", "conversations.replies"):
                channel, thread = str(body.get("channel", "")), body.get("ts")
                found = [m for (c, _), m in self.messages.items() if c == channel
                         and (method == "conversations.history" or m["ts"] == thread or m["thread_ts"] == thread)]
                shown = [{k: v for k, v in m.items() if k != "metadata" or body.get("include_all_metadata")}
                         for m in sorted(found, key=lambda m: m["ts"], reverse=method == "conversations.history")]
                return {"ok": True, "messages": shown, "has_more": False}
            if method == "conversations.open":
                return {"ok": True, "channel": {"id": "D" + str(body.get("users", "")).split(",")[0]}}
            if method == "conversations.join":
                return {"ok": True, "channel": {"id": body.get("channel")}}
            if method == "views.open":
                if not body.get("trigger_id"):
                    return {"ok": False, "error": "invalid_trigger_id"}
                view = body.get("view") or {}
                return {"ok": True, "view": {"id": "V0001", "callback_id": view.get("callback_id"), "hash": "h1"}}
            if method == "users.lookupByEmail":
                email = str(body.get("email", "")).lower()
                found = next((u for u in self.users.values() if u["profile"]["email"].lower() == email), None)
                return {"ok": True, "user": found} if found else {"ok": False, "error": "users_not_found"}
            if method == "users.info":
                found = self.users.get(str(body.get("user", "")))
                return {"ok": True, "user": found} if found else {"ok": False, "error": "user_not_found"}
            if method == "apps.connections.open":
                if not self.ws_url:
                    return {"ok": False, "error": "no_websocket"}
                return {"ok": True, "url": self.ws_url}
            return {"ok": False, "error": "unknown_method"}


def _parse(headers: dict[str, str], raw: str) -> dict[str, Any]:
    content_type = {k.lower(): v for k, v in headers.items()}.get("content-type", "")
    if not raw:
        return {}
    if "json" in content_type:
        try:
            return json.loads(raw)
        except ValueError:
            return {"_raw": raw}
    parsed = {k: v[0] for k, v in parse_qs(raw).items()}
    for key in ("blocks", "view"):
        if isinstance(parsed.get(key), str):
            try:
                parsed[key] = json.loads(parsed[key])
            except ValueError:
                pass
    return parsed


class FakeSocketMode:
    """Slack's side of a Socket Mode connection: hello, then envelopes; records the acks."""

    def __init__(self) -> None:
        self.to_send: "queue.Queue[dict[str, Any]]" = queue.Queue()
        self.received: list[dict[str, Any]] = []
        self.server = serve(self._session, "127.0.0.1", 0)
        self.port = self.server.socket.getsockname()[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/link"

    def _session(self, ws: ServerConnection) -> None:
        ws.send(json.dumps({"type": "hello", "num_connections": 1,
                            "connection_info": {"app_id": "A0APP"}, "debug_info": {"host": "fake"}}))
        while True:
            try:
                envelope = self.to_send.get(timeout=0.05)
                ws.send(json.dumps(envelope))
            except queue.Empty:
                pass
            try:
                message = ws.recv(timeout=0.05)
            except TimeoutError:
                continue
            except Exception:
                return
            self.received.append(json.loads(message))

    def stop(self) -> None:
        self.server.shutdown()
