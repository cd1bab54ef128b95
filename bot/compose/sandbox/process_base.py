"""The groundwork of every real component the sandbox and the tests start.

Ports come from binding port 0 and are remembered so one process never hands the same port out
twice; waiting is polling with a deadline (never a fixed sleep); a child process logs to a file
and is stopped with escalation; a component owns its work directory. A last-resort ``atexit``
hook kills anything still running if a test run is interrupted.
"""

from __future__ import annotations

import atexit
import shutil
import signal
import socket
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Callable, Self, Sequence, TypeVar

import httpx

T = TypeVar("T")

LOOPBACK = "127.0.0.1"


class ComponentError(RuntimeError):
    """A real component did not start or stop as expected (the message has its log tail)."""




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


class Process:
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

    def alive_and(self, name: str, probe: Callable[[], bool]) -> bool:
        """``probe()``, raising at once if the process has exited: a dead binary fails now, not at the timeout."""
        self.check_alive(name)
        return probe()


class Workdir:
    """A temporary directory owned by a component (removed on close) or given by the caller (kept)."""

    def __init__(self, workdir: str | Path | None, prefix: str) -> None:
        self.owned = workdir is None
        self.path = Path(tempfile.mkdtemp(prefix=prefix)) if workdir is None else Path(workdir)
        self.path.mkdir(parents=True, exist_ok=True)

    def remove(self) -> None:
        if self.owned and self.path.exists():
            shutil.rmtree(self.path, ignore_errors=True)


class Component:
    """A started binary (or group of them) in its own work directory: ``with`` starts and cleans up."""

    _dir: Workdir
    _proc: Process | None = None

    def start(self) -> Self:
        raise NotImplementedError

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM, timeout=10)

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._dir.remove()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def http_ok(url: str, timeout: float = 1.0) -> bool:
    try:
        return httpx.get(url, timeout=timeout, trust_env=False).status_code == 200
    except httpx.HTTPError:
        return False
