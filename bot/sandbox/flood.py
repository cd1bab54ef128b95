"""A real client flood, and a well-behaved client that measures what the flood does to others.

``Flood`` runs ``workers`` threads that LIST a namespace full of ConfigMaps as one service
account, back to back, each on its own keep-alive connection, until stopped: the real
kube-apiserver's API Priority and Fairness queues them and, past the queue limits, answers 429.
``Bystander`` sends one small GET every ``interval`` as another service account and records
each answer's status and latency, so the scorecard can show rejections and latency before and
after throttle-client. Both count by outcome; neither sleeps to time anything but its own pace.
"""

from __future__ import annotations

import ssl
import statistics
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx


@dataclass
class Tally:
    """Answers by status code and their latencies, thread-safe; ``window()`` cuts a period."""

    statuses: dict[int, int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, status: int | None, seconds: float) -> None:
        with self._lock:
            if status is None:
                self.errors += 1
            else:
                self.statuses[status] = self.statuses.get(status, 0) + 1
                self.latencies.append(seconds)

    def window(self) -> "Tally":
        """What was counted so far, handed over; counting starts again from zero."""
        with self._lock:
            out = Tally(dict(self.statuses), list(self.latencies), self.errors)
            self.statuses.clear()
            self.latencies.clear()
            self.errors = 0
        return out

    @property
    def total(self) -> int:
        return sum(self.statuses.values()) + self.errors

    def summary(self) -> dict[str, float | int]:
        ok = sum(n for code, n in self.statuses.items() if 200 <= code < 300)
        lat = sorted(self.latencies)
        return {
            "requests": self.total, "ok": ok, "rejected_429": self.statuses.get(429, 0),
            "other_errors": self.total - ok - self.statuses.get(429, 0),
            "p50_ms": round(statistics.median(lat) * 1000, 1) if lat else 0.0,
            "p99_ms": round(lat[min(len(lat) - 1, int(len(lat) * 0.99))] * 1000, 1) if lat else 0.0,
        }


class _Loop:
    def __init__(self, url: str, ca_file: Path, token: str, path: str, *, threads: int, interval: float,
                 timeout: float) -> None:
        self.url, self.path, self.interval, self.timeout = url, path, interval, timeout
        self.context = ssl.create_default_context(cafile=str(ca_file))
        self.headers = {"Authorization": f"Bearer {token}"}
        self.tally = Tally()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run, daemon=True, name=f"flood-{i}") for i in range(threads)]

    def _run(self) -> None:
        with httpx.Client(base_url=self.url, verify=self.context, headers=self.headers, trust_env=False,
                          timeout=self.timeout) as client:
            while not self._stop.is_set():
                began = time.monotonic()
                try:
                    response = client.get(self.path)
                    self.tally.add(response.status_code, time.monotonic() - began)
                except httpx.HTTPError:
                    self.tally.add(None, time.monotonic() - began)
                if self.interval:
                    self._stop.wait(self.interval)

    def start(self) -> "_Loop":
        for t in self._threads:
            t.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        for t in self._threads:
            t.join(timeout=self.timeout + 5)


class Flood(_Loop):
    """``workers`` threads of back-to-back LISTs as one client."""

    def __init__(self, url: str, ca_file: Path, token: str, namespace: str, *, workers: int = 48) -> None:
        super().__init__(url, ca_file, token, f"/api/v1/namespaces/{namespace}/configmaps",
                         threads=workers, interval=0.0, timeout=30.0)


class Bystander(_Loop):
    """One GET every ``interval`` seconds as a well-behaved client."""

    def __init__(self, url: str, ca_file: Path, token: str, namespace: str, name: str, *,
                 interval: float = 0.2) -> None:
        super().__init__(url, ca_file, token, f"/api/v1/namespaces/{namespace}/configmaps/{name}",
                         threads=1, interval=interval, timeout=10.0)
