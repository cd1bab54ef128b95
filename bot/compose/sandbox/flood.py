"""A real client flood, and a well-behaved client that measures what the flood does to others.

Both run as their own processes (``python -m bot.compose.sandbox.flood``), never as threads of the bot's
process: a flood of Python threads in the drill's process would slow the bot through the GIL and
book the client's cost to the bot. ``flood`` runs ``--workers`` threads that LIST a namespace full
of ConfigMaps as one service account, back to back, each on its own keep-alive connection: the
real kube-apiserver's API Priority and Fairness queues them and, past the queue limits, answers
429. ``bystander`` sends one small GET every ``--interval`` seconds as another service account.
Each writes one line per answer (wall-clock time, status, latency) to ``--out``; the drill reads
any period back with ``ClientProcess.summary(since, until)``. The token comes in the environment
(``FLOOD_TOKEN``), never on the command line.

A drill starts the flood *held* (``--hold``): the process starts, imports its libraries and loads the CA,
says ``ready`` and waits for ``go`` on its stdin. The interpreter's start-up (a second or more on a
loaded machine) is then not counted as the fault's first seconds: the flood starts when the drill
says go, and the drill stamps the fault at that moment.
"""

from __future__ import annotations

import argparse
import os
import signal
import ssl
import statistics
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx


def _summarise(rows: list[tuple[float, int, float]]) -> dict[str, float | int | str]:
    statuses: dict[int, int] = {}
    for _, status, _ in rows:
        statuses[status] = statuses.get(status, 0) + 1
    ok = sum(n for code, n in statuses.items() if 200 <= code < 300)
    lat = sorted(r[2] for r in rows if r[1] > 0)
    return {
        "requests": len(rows), "ok": ok, "rejected_429": statuses.get(429, 0),
        "other_errors": len(rows) - ok - statuses.get(429, 0),
        "statuses": ",".join(f"{'error' if c == 0 else c}x{n}" for c, n in sorted(statuses.items())) or "-",
        "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else 0.0,
        "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else 0.0,
    }


class ClientProcess:
    """The parent's handle: start the client process, stop it, summarise any period of its answers."""

    def __init__(self, mode: str, *, url: str, ca_file: Path, token: str, path: str, out: Path,
                 workers: int = 1, interval: float = 0.0) -> None:
        self.out = out
        self.args = [sys.executable, "-m", "bot.compose.sandbox.flood", mode, "--url", url, "--ca", str(ca_file),
                     "--path", path, "--out", str(out), "--workers", str(workers), "--interval", str(interval)]
        self.env = {**os.environ, "FLOOD_TOKEN": token}
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self, *, hold: bool = False, ready_timeout: float = 60.0) -> "ClientProcess":
        """Start the client; with ``hold`` it is ready (imports done, clients built) but sends nothing
        until ``go``."""
        self.out.write_text("")
        pipe = subprocess.PIPE if hold else subprocess.DEVNULL
        self._proc = subprocess.Popen(self.args + (["--hold"] if hold else []), env=self.env, stdin=pipe,
                                      stdout=pipe, stderr=subprocess.DEVNULL, start_new_session=True)
        if hold:
            self._await_ready(ready_timeout)
        return self

    def _await_ready(self, timeout: float) -> None:
        proc = self._proc
        assert proc is not None and proc.stdout is not None
        stdout = proc.stdout
        said: list[bytes] = []
        reader = threading.Thread(target=lambda: said.append(stdout.readline()), daemon=True)
        reader.start()
        reader.join(timeout)
        if not said or said[0].strip() != b"ready":
            code = proc.poll()
            self.stop()
            heard = f"it said {said[0][:80]!r}" if said else f"no answer, exit code {code}"
            raise RuntimeError(f"the {self.args[3]} client did not get ready within {timeout:.0f}s ({heard})")

    def go(self) -> float:
        """Release a held client; the wall-clock time it was told to go."""
        proc = self._proc
        if proc is None or proc.stdin is None:
            raise RuntimeError("go() needs a client started with hold=True")
        at = time.time()
        proc.stdin.write(b"go\n")
        proc.stdin.flush()
        return at

    def stop(self) -> None:
        if self._proc is not None and self._proc.stdin is not None:
            self._proc.stdin.close()  # a held client that never got its go ends on the closed stdin
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def rows(self) -> list[tuple[float, int, float]]:
        out = []
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 3:
                out.append((float(parts[0]), int(parts[1]), float(parts[2])))
        return out

    def summary(self, since: float, until: float | None = None) -> dict[str, float | int | str]:
        """The answers received between ``since`` and ``until`` (wall-clock seconds)."""
        end = until if until is not None else float("inf")
        return _summarise([r for r in self.rows() if since <= r[0] < end])


def flood(url: str, ca_file: Path, token: str, namespace: str, out: Path, *, workers: int = 48) -> ClientProcess:
    """Back-to-back LISTs of ``namespace``'s ConfigMaps from ``workers`` connections as one client."""
    return ClientProcess("flood", url=url, ca_file=ca_file, token=token, out=out, workers=workers,
                         path=f"/api/v1/namespaces/{namespace}/configmaps")


def bystander(url: str, ca_file: Path, token: str, namespace: str, name: str, out: Path, *,
              interval: float = 0.2) -> ClientProcess:
    """One GET of a ConfigMap every ``interval`` seconds as a well-behaved client."""
    return ClientProcess("bystander", url=url, ca_file=ca_file, token=token, out=out, interval=interval,
                         path=f"/api/v1/namespaces/{namespace}/configmaps/{name}")


# -- the client process ------------------------------------------------------------------------


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    context = ssl.create_default_context(cafile=args.ca)
    lock = threading.Lock()
    sink = open(args.out, "a", buffering=1, encoding="ascii")
    timeout = 30.0 if args.mode == "flood" else 10.0

    def loop() -> None:
        with httpx.Client(base_url=args.url, verify=context, trust_env=False, timeout=timeout,
                          headers={"Authorization": f"Bearer {os.environ['FLOOD_TOKEN']}"}) as client:
            while not stop.is_set():
                began = time.monotonic()
                try:
                    status = client.get(args.path).status_code
                except httpx.HTTPError:
                    status = 0
                line = f"{time.time():.3f} {status} {time.monotonic() - began:.4f}\n"
                with lock:
                    sink.write(line)
                if args.interval:
                    stop.wait(args.interval)

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(args.workers)]
    if args.hold:  # ready: everything imported and built; the flood starts on the drill's word
        print("ready", flush=True)
        if sys.stdin.readline().strip() != "go":
            return 1
    for t in threads:
        t.start()
    stop.wait()
    for t in threads:
        t.join(timeout=timeout + 1)
    sink.close()
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a drill's API client (flood or bystander)")
    parser.add_argument("mode", choices=("flood", "bystander"))
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--path", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--interval", type=float, default=0.0)
    parser.add_argument("--hold", action="store_true", help="say ready, then wait for `go` on stdin")
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
