"""A runaway client deleting Pods as fast as it can, as its own process (``python -m bot.compose.sandbox.deleter``).

The mass-delete drill's fault: a namespace janitor gone wrong. It LISTs the Pods of a namespace
once, then ``--workers`` threads DELETE them one by one, back to back, each on its own keep-alive
connection, as one user (the token comes in the environment, ``DELETER_TOKEN``, never on the
command line). It writes one line per answer (wall-clock time, status, latency, Pod) to ``--out``,
so the drill can count what the apiserver let through and what the admission guard denied. Like
the flood (``bot.compose.sandbox.flood``), it is a process, not threads of the drill's: its cost is not
booked to the bot through the GIL.
"""

from __future__ import annotations

import argparse
import os
import queue
import signal
import ssl
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import httpx


class DeleterProcess:
    def __init__(self, *, url: str, ca_file: Path, token: str, namespace: str, out: Path, workers: int = 4) -> None:
        self.out = out
        self.args = [sys.executable, "-m", "bot.compose.sandbox.deleter", "--url", url, "--ca", str(ca_file),
                     "--namespace", namespace, "--out", str(out), "--workers", str(workers)]
        self.env = {**os.environ, "DELETER_TOKEN": token}
        self._proc: subprocess.Popen[bytes] | None = None

    def start(self) -> DeleterProcess:
        self.out.write_text("")
        self._proc = subprocess.Popen(self.args, env=self.env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                      stderr=subprocess.DEVNULL, start_new_session=True)
        return self

    def finished(self) -> bool:
        return self._proc is None or self._proc.poll() is not None

    def stop(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.send_signal(signal.SIGTERM)
            try:
                self._proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._proc.kill()
                self._proc.wait(timeout=5)
        self._proc = None

    def answers(self) -> list[tuple[float, int, float, str]]:
        rows = []
        for line in self.out.read_text().splitlines():
            parts = line.split()
            if len(parts) == 4:
                rows.append((float(parts[0]), int(parts[1]), float(parts[2]), parts[3]))
        return rows

    def summary(self) -> dict[str, int | float]:
        rows = self.answers()
        ok = [r for r in rows if 200 <= r[1] < 300]
        denied = [r for r in rows if r[1] == 403]
        return {"deletes_sent": len(rows), "deletes_accepted": len(ok), "deletes_denied": len(denied),
                "other_answers": len(rows) - len(ok) - len(denied),
                "seconds_to_first_denial": round(denied[0][0] - rows[0][0], 3) if denied and rows else -1}


def _run(args: argparse.Namespace) -> int:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    context = ssl.create_default_context(cafile=args.ca)
    headers = {"Authorization": f"Bearer {os.environ['DELETER_TOKEN']}"}
    base = f"/api/v1/namespaces/{args.namespace}/pods"
    with httpx.Client(base_url=args.url, verify=context, trust_env=False, timeout=30.0, headers=headers) as client:
        names = [p["metadata"]["name"] for p in client.get(base).json().get("items", [])]
    todo: queue.Queue[str] = queue.Queue()
    for name in names:
        todo.put(name)
    lock = threading.Lock()
    with open(args.out, "a", buffering=1, encoding="ascii") as sink:
        _delete_all(args, context, headers, base, todo, lock, sink, stop)
    return 0


def _delete_all(args: argparse.Namespace, context: ssl.SSLContext, headers: dict[str, str], base: str,
                todo: queue.Queue[str], lock: threading.Lock, sink: Any, stop: threading.Event) -> None:
    def loop() -> None:
        with httpx.Client(base_url=args.url, verify=context, trust_env=False, timeout=30.0, headers=headers) as c:
            while not stop.is_set():
                try:
                    name = todo.get_nowait()
                except queue.Empty:
                    return
                began = time.monotonic()
                try:
                    status = c.delete(f"{base}/{name}").status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    sink.write(f"{time.time():.3f} {status} {time.monotonic() - began:.4f} {name}\n")

    threads = [threading.Thread(target=loop, daemon=True) for _ in range(args.workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="a drill's runaway client: delete every Pod of a namespace")
    parser.add_argument("--url", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--namespace", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--workers", type=int, default=4)
    return _run(parser.parse_args(argv))


if __name__ == "__main__":
    raise SystemExit(main())
