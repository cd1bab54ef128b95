"""A minimal real Prometheus for tests: loopback, free port, temporary directory."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Sequence

import httpx
import yaml

PROMETHEUS_BIN = "/usr/bin/prometheus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrometheusProcess:
    def __init__(self, workdir: Path, scrape_targets: Sequence[str], *, job: str = "apiserver",
                 scrape_interval: str = "1s") -> None:
        self.workdir = Path(workdir)
        self.targets = list(scrape_targets)
        self.job = job
        self.scrape_interval = scrape_interval
        self.port: int | None = None
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self, timeout: float = 15.0) -> "PrometheusProcess":
        binary = shutil.which("prometheus") or PROMETHEUS_BIN
        self.workdir.mkdir(parents=True, exist_ok=True)
        config = {
            "global": {"scrape_interval": self.scrape_interval, "scrape_timeout": "500ms",
                       "evaluation_interval": "1s"},
            "scrape_configs": [{"job_name": self.job, "static_configs": [{"targets": self.targets}]}],
        }
        (self.workdir / "prometheus.yml").write_text(yaml.safe_dump(config))
        deadline = time.monotonic() + timeout
        for _attempt in range(3):  # the free port may be taken between probe and bind
            self.port = free_port()
            log = open(self.workdir / "prometheus.log", "wb")
            self.proc = subprocess.Popen(
                [binary, f"--config.file={self.workdir / 'prometheus.yml'}",
                 f"--storage.tsdb.path={self.workdir / 'data'}", "--storage.tsdb.retention.time=1h",
                 f"--web.listen-address=127.0.0.1:{self.port}", f"--web.external-url=http://127.0.0.1:{self.port}/"],
                stdout=log, stderr=subprocess.STDOUT, cwd=self.workdir)
            log.close()
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if httpx.get(f"{self.url}/-/ready", timeout=0.5).status_code == 200:
                        return self
                except httpx.HTTPError:
                    pass
                time.sleep(0.05)
            if self.proc.poll() is None:
                break
        self.stop()
        tail = (self.workdir / "prometheus.log").read_text(errors="replace")[-2000:]
        raise RuntimeError(f"prometheus did not become ready:\n{tail}")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.proc = None

    def __enter__(self) -> "PrometheusProcess":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
