"""HAProxy 2.6 in front of the apiservers: backends with main and backup servers, health checks
(over TLS for kube-apiservers), an admin socket for the runtime API, a server-state file."""

from __future__ import annotations

import csv
import io
import dataclasses
import signal
import socket
import subprocess
from pathlib import Path
from typing import Mapping, Sequence

import httpx

from bot.compose.sandbox.process_base import LOOPBACK, Component, ComponentError, Process, Workdir, free_port, wait_until


HAPROXY_BIN = "/usr/sbin/haproxy"


@dataclasses.dataclass
class HAProxyBackend:
    """A backend with main servers and backup (bypass) servers, each ``name -> host:port``."""

    name: str
    servers: Mapping[str, str]
    backups: Mapping[str, str] = dataclasses.field(default_factory=dict)
    check_path: str = "/readyz"
    check_ssl: bool = False  # TLS servers (kube-apiserver): health checks over TLS, certificate not verified


class HAProxy(Component):
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
        self._dir = Workdir(workdir, "ib-haproxy-")
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
        self._proc: Process | None = None
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
        proc = self._proc = Process([HAPROXY_BIN, "-f", str(self.config_path), "-db"],
                                    self.workdir / f"haproxy.{self._starts}.log")
        wait_until(lambda: proc.alive_and("haproxy", self._socket_answers),
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
