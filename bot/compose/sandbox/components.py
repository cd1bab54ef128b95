"""Control-plane components as local processes: kube-scheduler, kube-controller-manager, kwok.

The apiservers and etcd have their own classes; the components that only *use* the API (the
scheduler, the controller-manager, the simulated kubelets) are all alike: one binary, a
kubeconfig, a log, and maybe a ``/healthz`` on a secure port. ``ComponentProcess`` is that one
shape, and ``LocalComponents`` is the sandbox's side of the playbooks' component controller
(``integrations.clients.components``): ``stop``/``start``/``restart``/``is_running`` by name, plus the
faults a drill injects (``freeze``: SIGSTOP, a process that holds its port and its pid but
answers nothing and renews no lease, which is how a stuck scheduler looks from outside).
"""

from __future__ import annotations

import signal
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import httpx

from bot.core.errors import IntegrationError
from bot.compose.sandbox.process_base import ComponentError, Process, log_tail, wait_until


class ComponentProcess:
    """One long-running component: ``args()`` builds its command line anew at every start."""

    def __init__(self, name: str, args: Callable[[], Sequence[str]], workdir: Path, *,
                 health_url: str | None = None, ca_file: Path | None = None) -> None:
        self.name = name
        self._args = args
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.log_path = self.workdir / f"{name}.log"
        self.health_url = health_url
        self.ca_file = ca_file
        self._proc: Process | None = None
        self.frozen = False
        self.started_seconds: float | None = None

    def start(self, *, timeout: float = 60.0) -> "ComponentProcess":
        """Start and, when it has a health URL, wait for ``/healthz`` to answer ok."""
        if self.running():
            raise ComponentError(f"{self.name} is already running (pid {self.pid})")
        began = time.monotonic()
        proc = self._proc = Process(list(self._args()), self.log_path)
        self.frozen = False
        if self.health_url:
            try:
                wait_until(lambda: proc.alive_and(self.name, self.healthy),
                           timeout=timeout, interval=0.25, what=f"{self.name} to answer {self.health_url}")
            except Exception as exc:
                self.kill()
                raise ComponentError(f"{self.name} did not become healthy: {exc}\n{log_tail(self.log_path)}") from exc
        self.started_seconds = time.monotonic() - began
        return self

    def healthy(self, timeout: float = 1.0) -> bool:
        """``/healthz`` answers 200 ``ok`` (the components serve TLS with a self-signed certificate)."""
        if not self.health_url:
            return self.running()
        try:
            with httpx.Client(verify=False, timeout=timeout, trust_env=False) as client:  # noqa: S501 - loopback, self-signed
                return client.get(self.health_url).status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.running() else None

    def freeze(self) -> None:
        """SIGSTOP: the process stays, answers nothing, renews no lease (a stuck component)."""
        if self._proc is None or not self._proc.running():
            raise ComponentError(f"{self.name} is not running")
        self._proc.proc.send_signal(signal.SIGSTOP)
        self.frozen = True

    def thaw(self) -> None:
        if self._proc is not None and self._proc.running():
            self._proc.proc.send_signal(signal.SIGCONT)
        self.frozen = False

    def stop(self, timeout: float = 10.0) -> None:
        if self._proc is not None:
            if self.frozen:  # a stopped process cannot act on SIGTERM
                self._proc.stop(signal.SIGKILL, timeout=timeout)
            else:
                self._proc.stop(signal.SIGTERM, timeout=timeout)
            self._proc = None
            self.frozen = False

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGKILL, timeout=5)
            self._proc = None
            self.frozen = False


class LocalComponents:
    """The sandbox's components by name, controlled as the playbooks' component controller."""

    def __init__(self) -> None:
        self._by_name: dict[str, ComponentProcess] = {}
        self._lock = threading.Lock()

    def add(self, component: ComponentProcess) -> ComponentProcess:
        self._by_name[component.name] = component
        return component

    def __getitem__(self, name: str) -> ComponentProcess:
        return self._by_name[name]

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def names(self) -> list[str]:
        return list(self._by_name)

    def _get(self, name: str) -> ComponentProcess:
        try:
            return self._by_name[name]
        except KeyError:
            raise IntegrationError(f"no component `{name}` here; known: {', '.join(self._by_name)}") from None

    # -- integrations.clients.components.ComponentController ------------------------------------
    def is_running(self, name: str) -> bool:
        component = self._get(name)
        return component.running() and not component.frozen

    def healthy(self, name: str) -> bool:
        component = self._get(name)
        return not component.frozen and component.healthy()

    def stop(self, name: str) -> None:
        with self._lock:
            self._get(name).stop()

    def start(self, name: str) -> None:
        with self._lock:
            self._get(name).start()

    def restart(self, name: str) -> None:
        with self._lock:
            component = self._get(name)
            component.stop()
            component.start()

    def close(self) -> None:
        for component in reversed(list(self._by_name.values())):
            try:
                component.stop()
            except Exception:  # best effort on the way down
                component.kill()


def https_health(port: int) -> str:
    return f"https://127.0.0.1:{port}/healthz"

