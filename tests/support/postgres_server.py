"""A throwaway PostgreSQL server for one test session, started from Debian's binaries.

The machines start no database server, so the tests start their own: ``initdb`` into a temporary
directory with trust authentication, ``pg_ctl`` on a free loopback port, stopped and removed at the
end. PostgreSQL refuses to run as root, and CI runs as root: the server then runs as the
``postgres`` system user (``runuser -u postgres --``), owning its directory.
"""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path


class PostgresUnavailable(RuntimeError):
    """The PostgreSQL server binaries are missing or the server did not start (an install bug)."""


def _bin_dir() -> Path:
    for candidate in sorted(glob.glob("/usr/lib/postgresql/*/bin"), key=lambda p: int(p.split("/")[-2]), reverse=True):
        if (Path(candidate) / "pg_ctl").exists():
            return Path(candidate)
    found = shutil.which("pg_ctl")
    if found:
        return Path(found).resolve().parent
    raise PostgresUnavailable("pg_ctl not found: run ./scripts/setup.sh (it installs Debian's postgresql)")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class PostgresServer:
    """One running server; ``admin_url`` connects as the superuser ``postgres``."""

    directory: Path
    port: int
    bin_dir: Path
    as_user: str | None

    @property
    def admin_url(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def _run(self, *args: str) -> subprocess.CompletedProcess[str]:
        command = [str(self.bin_dir / args[0]), *args[1:]]
        if self.as_user:
            command = ["runuser", "-u", self.as_user, "--", *command]
        return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)

    def options(self, *, durable: bool) -> str:
        """``pg_ctl -o``: loopback only; PostgreSQL's durable defaults, or the tests' fast settings.

        The tests run without ``fsync`` and ``synchronous_commit`` (a crash may forget acknowledged
        commits, PostgreSQL's documented trade); benchmarks and restart tests need what a
        production server has.
        """
        safety = "on" if durable else "off"
        return (f"-c listen_addresses=127.0.0.1 -p {self.port} -k {self.directory} -c fsync={safety} "
                f"-c synchronous_commit={safety} -c full_page_writes={safety} -c max_connections=300")

    def restart(self, *, durable: bool) -> None:
        done = self._run("pg_ctl", "-D", str(self.directory / "data"), "-o", self.options(durable=durable),
                         "-m", "fast", "-l", str(self.directory / "server.log"), "-w", "restart")
        if done.returncode != 0:
            raise PostgresUnavailable(f"pg_ctl restart failed: {done.stderr.strip()}")

    @classmethod
    def start(cls, *, durable: bool = False) -> "PostgresServer":
        bin_dir = _bin_dir()
        as_user = "postgres" if os.geteuid() == 0 else None
        directory = Path(tempfile.mkdtemp(prefix="incident-bot-pg-"))
        if as_user:
            shutil.chown(directory, user=as_user, group=as_user)
        server = cls(directory=directory, port=_free_port(), bin_dir=bin_dir, as_user=as_user)
        data = str(directory / "data")
        init = server._run("initdb", "-D", data, "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8")
        if init.returncode != 0:
            server._remove()
            raise PostgresUnavailable(f"initdb failed: {init.stderr.strip()[-500:]}")
        started = server._run("pg_ctl", "-D", data, "-o", server.options(durable=durable), "-l",
                              str(directory / "server.log"), "-w", "start")
        if started.returncode != 0:
            log = (directory / "server.log").read_text(errors="replace")[-800:] if (directory / "server.log").exists() else ""
            server._remove()
            raise PostgresUnavailable(f"pg_ctl start failed: {started.stderr.strip()} {log}")
        return server

    def stop(self) -> None:
        self._run("pg_ctl", "-D", str(self.directory / "data"), "-m", "immediate", "-w", "stop")
        self._remove()

    def _remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)
