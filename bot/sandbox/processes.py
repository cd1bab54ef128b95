"""Real components on loopback: the sandbox's control plane and the integration tests' parts.

Each class starts real binaries (etcd, Prometheus, Alertmanager, HAProxy) on
free ephemeral ports inside its own temporary directory, waits until they
answer (polling with a deadline, never a fixed sleep), and on ``close()``
stops every process it started and removes the directory.  They are context
managers; the sandbox (``bot.sandbox.controlplane``) composes them, and the
pytest fixtures in ``tests/support/fixtures_components`` wrap them.

Several test runs share this machine, so no port is fixed: ports come from
binding port 0, are remembered so one process never hands the same port out
twice, and an etcd start that loses a port race is retried on new ports.
A last-resort ``atexit`` hook kills anything still running if a test run is
interrupted.
"""

from __future__ import annotations

import atexit
import csv
import io
import dataclasses
import http.server
import json
import shutil
import signal
import socket
import logging
import socketserver
import subprocess
import tempfile
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import httpx
import yaml

from integrations.etcd import EtcdClient, EtcdMemberSpec, LocalProcessController, with_cluster

T = TypeVar("T")

LOOPBACK = "127.0.0.1"
PROMETHEUS_BIN = "/usr/bin/prometheus"
PROMTOOL_BIN = "/usr/bin/promtool"
ALERTMANAGER_BIN = "/usr/bin/prometheus-alertmanager"
AMTOOL_BIN = "/usr/bin/amtool"
HAPROXY_BIN = "/usr/sbin/haproxy"


class ComponentError(RuntimeError):
    """A real component did not start or stop as expected (the message has its log tail)."""


# ---------------------------------------------------------------------------------------
# ports, waiting, processes


_handed_out: set[int] = set()
_ports_lock = threading.Lock()


def free_port(host: str = LOOPBACK) -> int:
    """A port that was free a moment ago (bind port 0), never the same twice in this process."""
    with _ports_lock:
        for _ in range(50):
            with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
                s.bind((host, 0))
                port = s.getsockname()[1]
            if port not in _handed_out:
                _handed_out.add(port)
                return port
    raise ComponentError("Could not find a free loopback port.")


def wait_until(
    predicate: Callable[[], T],
    *,
    timeout: float = 15.0,
    interval: float = 0.05,
    what: str = "condition",
) -> T:
    """Poll ``predicate`` until it returns something truthy; return it.

    Exceptions inside the predicate count as "not yet" (a port that is not
    open yet raises); the last one is reported if the deadline passes.
    """
    deadline = time.monotonic() + timeout
    last: object = None
    while True:
        try:
            value = predicate()
            if value:
                return value
            last = value
        except Exception as exc:  # noqa: BLE001 - "not yet" is any failure
            last = exc
        if time.monotonic() >= deadline:
            raise TimeoutError(f"Timed out after {timeout:g} s waiting for {what} (last: {last!r}).")
        time.sleep(interval)


_live: set[subprocess.Popen[bytes]] = set()
_live_lock = threading.Lock()


def _track(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.add(proc)


def _untrack(proc: subprocess.Popen[bytes]) -> None:
    with _live_lock:
        _live.discard(proc)


@atexit.register
def _kill_leftovers() -> None:
    with _live_lock:
        procs = list(_live)
    for proc in procs:
        if proc.poll() is None:
            proc.kill()
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass


def log_tail(path: Path, lines: int = 25) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


class _Process:
    """A child process with its output in a log file, stoppable with escalation."""

    def __init__(self, args: Sequence[str], log_path: Path, *, cwd: Path | None = None) -> None:
        self.args = list(args)
        self.log_path = log_path
        self._log = open(log_path, "ab")
        try:
            self.proc: subprocess.Popen[bytes] = subprocess.Popen(
                self.args, stdin=subprocess.DEVNULL, stdout=self._log, stderr=subprocess.STDOUT,
                cwd=cwd, start_new_session=True,
            )
        except OSError:
            self._log.close()
            raise
        _track(self.proc)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def running(self) -> bool:
        return self.proc.poll() is None

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 5.0) -> int | None:
        if self.proc.poll() is None:
            try:
                self.proc.send_signal(sig)
                self.proc.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
            except ProcessLookupError:
                pass
        _untrack(self.proc)
        self._log.close()
        return self.proc.returncode

    def check_alive(self, name: str) -> None:
        if self.proc.poll() is not None:
            raise ComponentError(f"{name} exited with {self.proc.returncode}:\n{log_tail(self.log_path)}")


class _Workdir:
    """A temporary directory owned by a component (removed on close) or given by the caller (kept)."""

    def __init__(self, workdir: str | Path | None, prefix: str) -> None:
        self.owned = workdir is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if workdir is None else Path(workdir)
        self.path.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        if self.owned and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


class _Component:
    """A started binary (or group of them) in its own work directory: ``with`` starts and cleans up."""

    _dir: _Workdir
    _proc: _Process | None = None

    def start(self):  # type: ignore[no-untyped-def]
        raise NotImplementedError

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM, timeout=10)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._dir.remove()

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False


# ---------------------------------------------------------------------------------------
# etcd


def etcd_healthy(url: str, timeout: float = 1.0) -> bool:
    """``GET /health`` says true (etcd 3.4 has no /readyz)."""
    try:
        resp = httpx.get(url.rstrip("/") + "/health", timeout=timeout, trust_env=False)
        return resp.status_code == 200 and resp.json().get("health") == "true"
    except (httpx.HTTPError, ValueError):
        return False


class EtcdCluster(_Component):
    """``n`` etcd members on loopback, each with client, peer and metrics ports.

    Members are started through ``integrations.etcd.LocalProcessController``
    (``self.controller``), so tests can also use it directly.  ``members`` are
    the ``EtcdMemberSpec``s; ``endpoints`` their client URLs;
    ``metrics_targets`` the ``host:port`` Prometheus should scrape.
    """

    def __init__(
        self,
        n: int = 3,
        *,
        workdir: str | Path | None = None,
        token: str | None = None,
        binary: str | None = None,
        start_timeout: float = 30.0,
        extra_args: Sequence[str] = (),
    ) -> None:
        if n < 1:
            raise ValueError("An etcd cluster needs at least one member.")
        self.n = n
        self._dir = _Workdir(workdir, "ib-etcd-")
        self.workdir = self._dir.path
        self.token = token or f"ib-test-{uuid.uuid4().hex[:8]}"
        self.start_timeout = start_timeout
        self.extra_args = tuple(extra_args)
        self.controller = LocalProcessController(binary, stop_timeout=5.0)
        self.members: list[EtcdMemberSpec] = self._new_specs()

    # -- specs --------------------------------------------------------------------

    def _new_specs(self, data_root: Path | None = None, token: str | None = None) -> list[EtcdMemberSpec]:
        root = data_root or self.workdir
        specs = []
        for i in range(1, self.n + 1):
            specs.append(
                EtcdMemberSpec(
                    name=f"m{i}",
                    client_url=f"http://{LOOPBACK}:{free_port()}",
                    peer_url=f"http://{LOOPBACK}:{free_port()}",
                    metrics_url=f"http://{LOOPBACK}:{free_port()}",
                    data_dir=root / f"m{i}.etcd",
                    log_file=root / f"m{i}.log",
                    extra_args=self.extra_args,
                )
            )
        return with_cluster(specs, token or self.token)

    def respec(self, data_root: str | Path, token: str) -> list[EtcdMemberSpec]:
        """The same members (names, ports) with data dirs under ``data_root`` and a new token — a restore's target."""
        root = Path(data_root)
        root.mkdir(parents=True, exist_ok=True)
        moved = [
            dataclasses.replace(m, data_dir=root / m.data_dir.name, log_file=root / (m.name + ".log"))
            for m in self.members
        ]
        return with_cluster(moved, token)

    @property
    def endpoints(self) -> list[str]:
        return [m.client_url for m in self.members]

    @property
    def metrics_targets(self) -> list[str]:
        return [m.metrics_url.split("://", 1)[1] for m in self.members if m.metrics_url]

    def member(self, which: int | str | EtcdMemberSpec) -> EtcdMemberSpec:
        """A member by index (0-based), name (``m2``) or spec."""
        if isinstance(which, EtcdMemberSpec):
            return which
        if isinstance(which, int):
            return self.members[which]
        for m in self.members:
            if m.name == which:
                return m
        raise KeyError(which)

    def client(self, **kwargs: Any) -> EtcdClient:
        return EtcdClient(self.endpoints, **kwargs)

    # -- lifecycle ----------------------------------------------------------------

    def start(self, members: Sequence[EtcdMemberSpec] | None = None, *, attempts: int = 3) -> "EtcdCluster":
        """Start all members (or the given specs, which then become ``members``) and wait until healthy.

        A fresh cluster whose start lost a port race ("address already in
        use": another test run grabbed a port) is retried on new ports.
        Restored members (given ``members``) are not retried: their ports
        are part of their data.
        """
        if members is not None:
            self.members = list(members)
            attempts = 1
        for attempt in range(1, attempts + 1):
            for m in self.members:
                self.controller.start(m)
            try:
                self.wait_healthy()
                return self
            except ComponentError as exc:
                self.controller.stop_all(kill=True)
                port_race = "address already in use" in str(exc)
                if not port_race or attempt == attempts:
                    raise
                for m in self.members:
                    shutil.rmtree(m.data_dir, ignore_errors=True)
                self.members = self._new_specs()
        return self

    def wait_healthy(self, members: Iterable[EtcdMemberSpec | int | str] | None = None, *, timeout: float | None = None) -> None:
        """Poll ``/health`` of the members (all by default) until every one says true."""
        chosen = [self.member(m) for m in members] if members is not None else list(self.members)
        deadline = time.monotonic() + (timeout or self.start_timeout)
        pending = list(chosen)
        while pending:
            for m in pending:
                code = self.controller.returncode(m)
                if code is not None:
                    raise ComponentError(
                        f"etcd member {m.name} exited with {code}:\n{log_tail(self.controller.log_path(m))}"
                    )
            # In parallel: while the cluster forms, /health of a member blocks ~1 s.
            with ThreadPoolExecutor(max_workers=len(pending)) as pool:
                healthy = list(pool.map(lambda m: etcd_healthy(m.client_url, timeout=1.0), pending))
            pending = [m for m, ok in zip(pending, healthy) if not ok]
            if not pending:
                return
            if time.monotonic() >= deadline:
                tails = "\n".join(f"--- {m.name}:\n{log_tail(self.controller.log_path(m), 10)}" for m in pending)
                raise ComponentError(f"etcd members {[m.name for m in pending]} not healthy in time.\n{tails}")
            time.sleep(0.05)

    def kill(self, which: int | str | EtcdMemberSpec) -> EtcdMemberSpec:
        """SIGKILL one member (a crash)."""
        m = self.member(which)
        self.controller.kill(m)
        return m

    def stop_member(self, which: int | str | EtcdMemberSpec, *, timeout: float = 5.0) -> EtcdMemberSpec:
        """SIGTERM one member (SIGKILL after ``timeout``)."""
        m = self.member(which)
        self.controller.stop(m, timeout=timeout)
        return m

    def restart(self, which: int | str | EtcdMemberSpec, *, wait: bool = True) -> EtcdMemberSpec:
        """Start a stopped/killed member again on its data dir, and wait until it is healthy."""
        m = self.member(which)
        if self.controller.is_running(m):
            self.controller.stop(m)
        self.controller.start(m)
        if wait:
            self.wait_healthy([m])
        return m

    def pid(self, which: int | str | EtcdMemberSpec) -> int | None:
        return self.controller.pid(self.member(which))

    def stop_all(self, *, kill: bool = True) -> None:
        """Stop every member (SIGKILL by default: fast, and the data is thrown away anyway)."""
        self.controller.stop_all(kill=kill)

    def stop(self) -> None:
        self.stop_all(kill=True)


# ---------------------------------------------------------------------------------------
# Prometheus and Alertmanager


def _as_yaml(value: str | Mapping[str, Any]) -> str:
    return value if isinstance(value, str) else yaml.safe_dump(dict(value), sort_keys=False)


class Prometheus(_Component):
    """Prometheus with 1 s scrape and evaluation intervals and ``--web.enable-lifecycle``.

    ``scrape_targets`` maps job name → ``host:port`` targets; ``rules`` is a
    rules file (YAML text or dict); ``alertmanager`` is the Alertmanager's
    ``host:port``.  The config is checked with ``promtool`` before start so a
    bad rule fails with promtool's sentence, not a timeout.

    Expect the first scrape results about 5-6 s after start, not 1 s:
    Prometheus's discovery manager hands targets to the scrape manager on a
    5 s tick (there is no flag for it in 2.42).  Start it early in a test.
    """

    def __init__(
        self,
        scrape_targets: Mapping[str, Sequence[str]] | None = None,
        *,
        rules: str | Mapping[str, Any] | None = None,
        alertmanager: str | None = None,
        workdir: str | Path | None = None,
        extra_config: Mapping[str, Any] | None = None,
        start_timeout: float = 30.0,
    ) -> None:
        self._dir = _Workdir(workdir, "ib-prom-")
        self.workdir = self._dir.path
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.scrape_targets = {k: list(v) for k, v in (scrape_targets or {}).items()}
        self.rules = rules
        self.alertmanager = alertmanager
        self.extra_config = dict(extra_config or {})
        self.start_timeout = start_timeout
        self.config_path = self.workdir / "prometheus.yml"
        self.rules_path = self.workdir / "rules.yml"
        self._proc: _Process | None = None

    def config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {
            "global": {"scrape_interval": "1s", "scrape_timeout": "800ms", "evaluation_interval": "1s"},
            "scrape_configs": [
                {"job_name": job, "static_configs": [{"targets": targets}]} for job, targets in self.scrape_targets.items()
            ],
        }
        if self.rules is not None:
            cfg["rule_files"] = [str(self.rules_path)]
        if self.alertmanager:
            cfg["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [self.alertmanager]}]}]}
        cfg.update(self.extra_config)
        return cfg

    def write_config(self) -> None:
        if self.rules is not None:
            self.rules_path.write_text(_as_yaml(self.rules))
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))

    def check_config(self) -> str:
        self.write_config()
        res = subprocess.run(
            [PROMTOOL_BIN, "check", "config", str(self.config_path)], capture_output=True, text=True, timeout=30
        )
        if res.returncode != 0:
            raise ComponentError(f"promtool check config failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def start(self) -> "Prometheus":
        self.check_config()
        self._proc = _Process(
            [
                PROMETHEUS_BIN,
                f"--config.file={self.config_path}",
                f"--storage.tsdb.path={self.workdir / 'data'}",
                "--storage.tsdb.retention.time=1h",
                f"--web.listen-address={LOOPBACK}:{self.port}",
                f"--web.external-url={self.url}/",
                "--web.enable-lifecycle",
                "--log.level=warn",
            ],
            self.workdir / "prometheus.log",
        )
        wait_until(lambda: self._proc.check_alive("prometheus") or _http_ok(self.url + "/-/ready"),
                   timeout=self.start_timeout, what=f"Prometheus at {self.url} to be ready")
        return self

    def reload(self) -> None:
        """Rewrite the config and ``POST /-/reload`` (lifecycle API)."""
        self.check_config()
        resp = httpx.post(self.url + "/-/reload", timeout=10, trust_env=False)
        if resp.status_code != 200:
            raise ComponentError(f"Prometheus reload failed: HTTP {resp.status_code} {resp.text}")

    def query(self, expr: str) -> list[dict[str, Any]]:
        """An instant query; the ``result`` list of the answer."""
        resp = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=5, trust_env=False)
        resp.raise_for_status()
        return resp.json()["data"]["result"]



class Alertmanager(_Component):
    """Alertmanager 0.25 with one webhook receiver, fast grouping and no clustering.

    ``group_wait: 0s`` / ``group_interval: 1s`` make a firing alert reach the
    webhook within about a second; ``--cluster.listen-address=`` (empty)
    turns gossip off so nothing binds :9094.  With ``bearer_token`` the
    webhook carries ``Authorization: Bearer <token>`` (``http_config.
    authorization.credentials``), what the bot's webhook endpoint demands.
    The config is checked with ``amtool check-config`` before start.
    """

    def __init__(
        self,
        webhook_url: str,
        bearer_token: str | None = None,
        *,
        workdir: str | Path | None = None,
        send_resolved: bool = True,
        group_by: Sequence[str] = ("alertname", "job"),
        repeat_interval: str = "1h",
        start_timeout: float = 30.0,
    ) -> None:
        self._dir = _Workdir(workdir, "ib-am-")
        self.workdir = self._dir.path
        self.port = free_port()
        self.url = f"http://{LOOPBACK}:{self.port}"
        self.address = f"{LOOPBACK}:{self.port}"
        self.webhook_url = webhook_url
        self.bearer_token = bearer_token
        self.send_resolved = send_resolved
        self.group_by = list(group_by)
        self.repeat_interval = repeat_interval
        self.start_timeout = start_timeout
        self.config_path = self.workdir / "alertmanager.yml"
        self._proc: _Process | None = None

    def config(self) -> dict[str, Any]:
        webhook: dict[str, Any] = {"url": self.webhook_url, "send_resolved": self.send_resolved, "max_alerts": 0}
        if self.bearer_token:
            webhook["http_config"] = {"authorization": {"credentials": self.bearer_token}}
        return {
            "global": {"resolve_timeout": "5m"},
            "route": {
                "receiver": "incident-bot",
                "group_by": self.group_by,
                "group_wait": "0s",
                "group_interval": "1s",
                "repeat_interval": self.repeat_interval,
            },
            "receivers": [{"name": "incident-bot", "webhook_configs": [webhook]}],
        }

    def check_config(self) -> str:
        self.config_path.write_text(yaml.safe_dump(self.config(), sort_keys=False))
        res = subprocess.run([AMTOOL_BIN, "check-config", str(self.config_path)], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise ComponentError(f"amtool check-config failed:\n{res.stdout}\n{res.stderr}")
        return res.stdout

    def start(self) -> "Alertmanager":
        self.check_config()
        self._proc = _Process(
            [
                ALERTMANAGER_BIN,
                f"--config.file={self.config_path}",
                f"--storage.path={self.workdir / 'data'}",
                f"--web.listen-address={self.address}",
                f"--web.external-url={self.url}/",
                "--cluster.listen-address=",
                "--log.level=warn",
            ],
            self.workdir / "alertmanager.log",
        )
        wait_until(lambda: self._proc.check_alive("alertmanager") or _http_ok(self.url + "/-/ready"),
                   timeout=self.start_timeout, what=f"Alertmanager at {self.url} to be ready")
        return self

    def alerts(self) -> list[dict[str, Any]]:
        resp = httpx.get(self.url + "/api/v2/alerts", timeout=5, trust_env=False)
        resp.raise_for_status()
        return resp.json()



# ---------------------------------------------------------------------------------------
# small loopback HTTP servers: apiserver stand-ins and a webhook recorder


class _ThreadingServer(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request: object, client_address: object) -> None:
        """A client hanging up on a stream is normal here (failover cuts watches); log the rest."""
        import sys

        if isinstance(sys.exc_info()[1], (BrokenPipeError, ConnectionResetError)):
            return
        logging.getLogger(__name__).warning("loopback server request from %s failed", client_address, exc_info=True)


class _LoopbackServer:
    """An ``http.server`` in a thread on a free loopback port."""

    handler_class: type[http.server.BaseHTTPRequestHandler]

    def __init__(self) -> None:
        self._server = _ThreadingServer((LOOPBACK, 0), self.handler_class)
        self._server.owner = self  # type: ignore[attr-defined]
        self.port = self._server.server_address[1]
        self.address = f"{LOOPBACK}:{self.port}"
        self.url = f"http://{self.address}"
        self._thread: threading.Thread | None = None

    def start(self):  # type: ignore[no-untyped-def]
        self._thread = threading.Thread(target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):  # type: ignore[no-untyped-def]
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


class _ApiserverHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:  # keep test output clean
        pass

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        owner: StubApiserver = self.server.owner  # type: ignore[attr-defined]
        path = self.path.split("?", 1)[0]
        with owner._lock:
            owner.hits[path] = owner.hits.get(path, 0) + 1
        if path in ("/readyz", "/livez", "/healthz"):
            ok = owner.ready if path == "/readyz" else True
            self._send(200 if ok else 500, b"ok" if ok else b"[-]etcd failed: not ready", "text/plain")
        elif path == "/watch":
            self._stream(owner)
        else:
            self._send(200, json.dumps({"server": owner.name, "path": path}).encode(), "application/json")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        owner: StubApiserver = self.server.owner  # type: ignore[attr-defined]
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
            while not owner._closing.is_set():
                self.wfile.write(f"{owner.name} tick\n".encode())
                self.wfile.flush()
                owner._closing.wait(0.05)
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
        self._closing = threading.Event()
        super().__init__()

    def close(self) -> None:
        self._closing.set()
        super().close()


class _WebhookHandler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.0"

    def log_message(self, *args: Any) -> None:
        pass

    def do_POST(self) -> None:  # noqa: N802
        owner: WebhookRecorder = self.server.owner  # type: ignore[attr-defined]
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        try:
            payload: Any = json.loads(body)
        except ValueError:
            payload = body.decode(errors="replace")
        with owner._cond:
            owner.requests.append({"path": self.path, "headers": dict(self.headers.items()), "body": payload})
            owner._cond.notify_all()
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


# ---------------------------------------------------------------------------------------
# HAProxy


@dataclasses.dataclass
class HAProxyBackend:
    """A backend with main servers and backup (bypass) servers, each ``name -> host:port``."""

    name: str
    servers: Mapping[str, str]
    backups: Mapping[str, str] = dataclasses.field(default_factory=dict)
    check_path: str = "/readyz"
    check_ssl: bool = False  # TLS servers (kube-apiserver): health checks over TLS, certificate not verified


class HAProxy(_Component):
    """HAProxy 2.6 in the foreground (``-db``) with an admin stats socket and a server-state-file.

    Each backend gets a frontend on a free port (``frontend_url(name)``).
    Health checks: ``option httpchk GET /readyz``, ``inter 1s fall 2 rise 1``;
    ``on-marked-down shutdown-sessions`` as in production.  The state file is
    loaded at start (``load-server-state-from-file global``), so
    ``restart()`` after ``save_server_state`` keeps runtime changes.
    """

    def __init__(
        self,
        backends: Sequence[HAProxyBackend],
        *,
        mode: str = "tcp",
        workdir: str | Path | None = None,
        start_timeout: float = 15.0,
        stats_tcp: bool = False,
    ) -> None:
        if not backends:
            raise ValueError("HAProxy needs at least one backend.")
        self._dir = _Workdir(workdir, "ib-haproxy-")
        self.workdir = self._dir.path
        self.backends = list(backends)
        self.mode = mode
        self.start_timeout = start_timeout
        self.frontend_ports = {b.name: free_port() for b in self.backends}
        #: with ``stats_tcp`` the runtime API also listens on TCP at ``stats_address``
        self.stats_address: str | None = f"{LOOPBACK}:{free_port()}" if stats_tcp else None
        self.socket_path = self.workdir / "admin.sock"
        self.state_file = self.workdir / "server-state"
        self.config_path = self.workdir / "haproxy.cfg"
        self._proc: _Process | None = None
        self._starts = 0

    def frontend_url(self, backend: str | None = None) -> str:
        return f"http://{LOOPBACK}:{self.frontend_ports[backend or self.backends[0].name]}"

    def frontend_address(self, backend: str | None = None) -> tuple[str, int]:
        return LOOPBACK, self.frontend_ports[backend or self.backends[0].name]

    def config_text(self) -> str:
        lines = [
            "global",
            f"    stats socket {self.socket_path} mode 600 level admin",
            *([f"    stats socket ipv4@{self.stats_address} level admin"] if self.stats_address else []),
            "    stats timeout 30s",
            f"    server-state-file {self.state_file}",
            "",
            "defaults",
            f"    mode {self.mode}",
            "    timeout connect 1s",
            "    timeout client 30s",
            "    timeout server 30s",
            "    load-server-state-from-file global",
            "",
        ]
        for b in self.backends:
            lines += [
                f"frontend fe_{b.name}",
                f"    bind {LOOPBACK}:{self.frontend_ports[b.name]}",
                f"    default_backend {b.name}",
                "",
                f"backend {b.name}",
                f"    option httpchk GET {b.check_path}",
                "    http-check expect status 200",
                "    default-server inter 1s fall 2 rise 1 on-marked-down shutdown-sessions",
            ]
            ssl = " check-ssl verify none" if b.check_ssl else ""
            lines += [f"    server {name} {addr} check{ssl}" for name, addr in b.servers.items()]
            lines += [f"    server {name} {addr} check{ssl} backup" for name, addr in b.backups.items()]
            lines.append("")
        return "\n".join(lines)

    def check_config(self) -> None:
        self.config_path.write_text(self.config_text())
        res = subprocess.run([HAPROXY_BIN, "-c", "-f", str(self.config_path)], capture_output=True, text=True, timeout=30)
        if res.returncode != 0:
            raise ComponentError(f"haproxy -c failed:\n{res.stdout}\n{res.stderr}")

    def start(self) -> "HAProxy":
        self.check_config()
        if self.socket_path.exists():
            self.socket_path.unlink()
        self._starts += 1
        self._proc = _Process([HAPROXY_BIN, "-f", str(self.config_path), "-db"], self.workdir / f"haproxy.{self._starts}.log")
        wait_until(lambda: self._proc.check_alive("haproxy") or self._socket_answers(),
                   timeout=self.start_timeout, what="the HAProxy admin socket")
        return self

    def _socket_answers(self) -> bool:
        try:
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1.0)
                s.connect(str(self.socket_path))
                s.sendall(b"show info\n")
                data = s.recv(4096)
            return b"Pid:" in data
        except OSError:
            return False

    def server_stats(self) -> dict[tuple[str, str], dict[str, str]]:
        """``show stat`` rows of servers as raw CSV dicts keyed by (backend, server), read directly."""
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(2.0)
            s.connect(str(self.socket_path))
            s.sendall(b"show stat\n")
            data = b""
            while block := s.recv(65536):
                data += block
        text = data.decode().lstrip("# ")
        rows = list(csv.DictReader(io.StringIO(text)))
        return {(r["pxname"], r["svname"]): r for r in rows if r.get("type") == "2"}

    def wait_checked(self, timeout: float = 10.0) -> None:
        """Wait until every server has finished at least one health check (no ``INI`` status)."""
        wait_until(
            lambda: all(r["check_status"] not in ("", "INI") for r in self.server_stats().values()),
            timeout=timeout,
            what="HAProxy's first health checks",
        )

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc is not None and self._proc.running() else None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM, timeout=5)
            self._proc = None

    def restart(self) -> "HAProxy":
        """Stop and start again: a new process that reads ``server-state-file`` at start."""
        self.stop()
        return self.start()



def http_get_via(url: str, path: str = "/who", *, timeout: float = 2.0) -> httpx.Response:
    """One GET on a fresh connection (so a TCP-mode LB picks a server anew for each call)."""
    with httpx.Client(timeout=timeout, trust_env=False, headers={"Connection": "close"}) as c:
        return c.get(url + path)


def served_by(url: str, path: str = "/who", *, timeout: float = 2.0) -> str:
    """Which stand-in answered a GET through ``url`` (its ``X-Served-By`` header)."""
    return http_get_via(url, path, timeout=timeout).headers.get("X-Served-By", "")
