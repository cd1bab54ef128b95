"""What the benchmarks run as separate processes: ``incident-bot serve``, a no-op server, PostgreSQL.

A benchmark that runs the server in its own process as its load generator
measures the load generator too (one GIL for both), and a server without its
background workers (diagnosis, outbox senders, prober, watcher) flatters the
bot.  So every server here is a process started from the command line a user
would run, with all its workers, and the client only speaks HTTP to it.

PostgreSQL comes from ``tests/support/postgres_server.py`` (Debian's binaries,
a temporary directory, a free loopback port) with PostgreSQL's durable defaults
(``fsync``, ``synchronous_commit`` on), not the tests' fast settings: the bot's
guarantees need them in production (docs/trust-and-delivery.md), and a commit
that skips the WAL flush would flatter it.
"""

from __future__ import annotations

import os
import signal
import socket
import statistics
import subprocess
import sys
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

import httpx

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.support.postgres_server import PostgresServer  # noqa: E402

# a benchmark stopped with SIGTERM (timeout, kill) still stops its servers and PostgreSQL (finally blocks)
signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))

TOKEN = "bench-token"
HEADERS = {"Authorization": f"Bearer {TOKEN}", "Content-Type": "application/json"}
CLI = [sys.executable, "-m", "bot.compose.cli.main"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def pct(values: list[float], p: float) -> float:
    """The nearest-rank percentile (p99 of 100 values is the 99th smallest)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, int(round(p / 100 * len(ordered) + 0.5)) - 1))]


def describe(name: str, values_ms: list[float]) -> str:
    if not values_ms:
        return f"{name}: no samples"
    return (f"{name}: n={len(values_ms)} p50={pct(values_ms, 50):.1f} ms p95={pct(values_ms, 95):.1f} ms "
            f"p99={pct(values_ms, 99):.1f} ms max={max(values_ms):.1f} ms")


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def process_cpu(pid: int) -> float:
    """User + system CPU seconds of a live process, from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@dataclass
class Server:
    """A server process on a loopback port; ``cpu_seconds`` reads its user+system time from /proc."""

    name: str
    url: str
    process: subprocess.Popen[bytes]
    log_path: Path

    def cpu_seconds(self) -> float:
        return process_cpu(self.process.pid)

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(5)

    def log_tail(self, n: int = 2000) -> str:
        return self.log_path.read_text(errors="replace")[-n:] if self.log_path.exists() else ""


def _wait_ready(server: Server, path: str, seconds: float = 120.0) -> Server:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"{server.name} exited with {server.process.returncode}:\n{server.log_tail()}")
        try:
            if httpx.get(server.url + path, timeout=2).status_code == 200:
                return server
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    server.stop()
    raise RuntimeError(f"{server.name} did not answer {path} within {seconds:.0f} s:\n{server.log_tail()}")


def bot_env(database_url: str, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("INCIDENT_BOT_", "SLACK_"))}
    env.update({"INCIDENT_BOT_DATABASE_URL": database_url, "INCIDENT_BOT_WEBHOOK_TOKEN": TOKEN,
                "INCIDENT_BOT_ONCALL__ROTA": '["alice", "bob", "carol"]', "PYTHONPATH": str(ROOT)})
    env.update(extra or {})
    return env


def start_bot(name: str, database_url: str, workdir: Path, extra_env: dict[str, str] | None = None) -> Server:
    """``incident-bot serve`` with all its workers, as an operator starts it."""
    port = free_port()
    log_path = workdir / f"{name}.log"
    process = subprocess.Popen([*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)], cwd=workdir,
                               env=bot_env(database_url, extra_env), stdout=log_path.open("wb"),
                               stderr=subprocess.STDOUT)
    return _wait_ready(Server(name, f"http://127.0.0.1:{port}", process, log_path), "/readyz")


def start_noop(workdir: Path) -> Server:
    """A Starlette endpoint that reads the body and answers, under uvicorn: the framework's own cost."""
    port = free_port()
    log_path = workdir / "noop.log"
    process = subprocess.Popen([sys.executable, str(Path(__file__).with_name("noop_server.py")), str(port)],
                               cwd=workdir, stdout=log_path.open("wb"), stderr=subprocess.STDOUT)
    return _wait_ready(Server("no-op", f"http://127.0.0.1:{port}", process, log_path), "/healthz")


@dataclass
class Postgres:
    server: PostgresServer
    urls: list[str] = field(default_factory=list)

    def database(self, name: str) -> str:
        """A fresh database on the server (one per measured configuration)."""
        import psycopg

        with psycopg.connect(self.server.admin_url, autocommit=True) as conn:
            conn.execute(f'CREATE DATABASE "{name}"')
        url = self.server.admin_url.rsplit("/", 1)[0] + f"/{name}"
        self.urls.append(url)
        return url


@contextmanager
def postgres() -> Iterator[Postgres]:
    """A throwaway server with PostgreSQL's durable defaults (``fsync``, ``synchronous_commit``): a
    production server's commits wait for the WAL flush, and so do the bot's here (the tests' server
    skips it for speed)."""
    server = PostgresServer.start(durable=True)
    try:
        yield Postgres(server)
    finally:
        server.stop()


def migrate(database_url: str) -> None:
    """Create the schema before servers start (two replicas must not race the first upgrade)."""
    subprocess.run([*CLI, "db", "upgrade"], env=bot_env(database_url), check=True, capture_output=True,
                   cwd=ROOT)


def noop_app() -> Any:  # for noop_server.py; here so the two files agree on the route
    from starlette.applications import Starlette
    from starlette.requests import Request
    from starlette.responses import JSONResponse, PlainTextResponse
    from starlette.routing import Route

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        return JSONResponse({"received": len(body)})

    async def healthz(request: Request) -> PlainTextResponse:
        return PlainTextResponse("ok")

    return Starlette(routes=[Route("/webhooks/alertmanager", webhook, methods=["POST"]), Route("/healthz", healthz)])
