"""A real etcd 3.6 cluster on loopback (members started through ``integrations.clients.etcd``'s
process controller, so that restore-etcd drives the very processes the sandbox started)."""

from __future__ import annotations

import dataclasses
import shutil
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any, Iterable, Sequence

import httpx

from bot.compose.sandbox.process_base import LOOPBACK, Component, ComponentError, Workdir, free_port, log_tail
from integrations.clients.etcd import EtcdClient, EtcdMemberSpec, LocalProcessController, with_cluster



def etcd_healthy(url: str, timeout: float = 1.0) -> bool:
    """``GET /health`` says true (etcd 3.4 has no /readyz)."""
    try:
        resp = httpx.get(url.rstrip("/") + "/health", timeout=timeout, trust_env=False)
        return resp.status_code == 200 and resp.json().get("health") == "true"
    except (httpx.HTTPError, ValueError):
        return False


class EtcdCluster(Component):
    """``n`` etcd members on loopback, each with client, peer and metrics ports.

    Members are started through ``integrations.clients.etcd.LocalProcessController``
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
        self._dir = Workdir(workdir, "ib-etcd-")
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
