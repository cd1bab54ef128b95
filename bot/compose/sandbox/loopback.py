"""Tiny loopback HTTP servers for the tests: a plain-HTTP apiserver stand-in behind HAProxy
(``/readyz`` switchable, ``/who`` says which server answered) and a webhook recorder."""

from __future__ import annotations

import http.server
import json
import logging
import socketserver
import threading
import time
from typing import Any, Callable, Self

from bot.compose.sandbox.process_base import LOOPBACK



class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    owner: Any = None  # the loopback server this one serves for; its handlers answer from its state

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up on a stream is normal here (failover cuts watches); log the rest."""
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        logging.getLogger(__name__).warning("loopback server request from %s failed", client_address, exc_info=True)


def _owner(handler: http.server.BaseHTTPRequestHandler) -> Any:
    """The loopback server a request came to (``handler.server`` is typed as any socketserver)."""
    server = handler.server
    assert isinstance(server, _ThreadingServer)
    return server.owner


class _LoopbackServer:
    """An ``http.server`` in a thread on a free loopback port."""

    handler_class: type[http.server.BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server = _ThreadingServer((LOOPBACK, 0), self.handler_class)
        self._server.owner = self
        self.port = self._server.server_address[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.address}"
        self._thread: threading.Thread | None = None

    def start(self) -> Self:
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ApiserverHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        owner: StubApiserver = _owner(self)
        path = self.path.split("?", 1)[0]
        owner.count_hit(path)
        if path in ("/readyz", "/livez", "/healthz"):
            ok = owner.ready if path == "/readyz" else True
            self._send(200 if ok else 500, b"ok" if ok else b"[-]etcd failed: not ready", "text/plain")
        elif path == "/watch":
            self._stream(owner)
        else:
            self._send(200, json.dumps({"server": owner.name, "path": path}).encode(), "application/json")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        owner: StubApiserver = _owner(self)
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("X-Served-By", owner.name)
        self.send_header("Connection", "close")
        self.end_headers()
        self.wfile.write(body)

    def _stream(self, owner: "StubApiserver") -> None:
        """A watch-like endless response: one line per tick until the client or the server goes."""
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("X-Served-By", owner.name)
        self.end_headers()
        try:
            while not owner.closing.is_set():
                self.wfile.write(f"{owner.name} tick\n".encode())
                self.wfile.flush()
                owner.closing.wait(0.05)
        except OSError:
            pass


class StubApiserver(_LoopbackServer):
    """A kube-apiserver stand-in: ``/readyz`` (200, or 500 when ``ready`` is False), ``/livez``,
    ``/watch`` (an endless stream of ``<name> tick`` lines) and any other path answering
    ``{"server": name}``.  Every answer carries ``X-Served-By: <name>``."""

    handler_class = _ApiserverHandler

    def __init__(self, name: str, *, ready: bool = True) -> None:
        self.name = name
        self.ready = ready
        self.hits: dict[str, int] = {}
        self._lock = threading.Lock()
        self.closing = threading.Event()  # set by close(): the endless /watch streams end
        super().__init__()

    def count_hit(self, path: str) -> None:
        """One more request for ``path`` (the handler threads count concurrently)."""
        with self._lock:
            self.hits[path] = self.hits.get(path, 0) + 1

    def close(self) -> None:
        self.closing.set()
        super().close()


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        owner: WebhookRecorder = _owner(self)
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        owner.record({"path": self.path, "headers": dict(self.headers.items()), "body": payload})
        self.send_response(200)
        self.send_header("Content-Length", "0")
        self.end_headers()


class WebhookRecorder(_LoopbackServer):
    """Records every POST (path, headers, JSON body): a stand-in for the bot's webhook endpoint."""

    handler_class = _WebhookHandler

    def __init__(self, path: str = "/webhooks/alertmanager") -> None:
        self.path = path
        self.requests: list[dict[str, Any]] = []
        self._cond = threading.Condition()
        super().__init__()
        self.webhook_url = self.url + path

    def record(self, request: dict[str, Any]) -> None:
        """Keep one received request and wake whoever waits for it (called from the handler threads)."""
        with self._cond:
            self.requests.append(request)
            self._cond.notify_all()

    def wait_for(self, predicate: Callable[[dict[str, Any]], bool], *, timeout: float = 15.0) -> dict[str, Any]:
        """The first recorded request matching ``predicate``, waiting up to ``timeout`` for it."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while True:
                for req in self.requests:
                    if predicate(req):
                        return req
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise TimeoutError(f"No matching webhook within {timeout:g} s; got {len(self.requests)} requests.")
                self._cond.wait(remaining)
