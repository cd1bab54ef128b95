"""A control plane made of real parts, and a bot wired to it.

``lab``: HAProxy (real) in front of two loopback apiserver stand-ins (``main``
and ``bypass``, the latter a ``backup`` server), a real 3-member etcd
cluster, and a bot on a temporary database whose ``clusters.prod`` section
points at them.  The engine's toolbox hands the playbooks the test's etcd
process controller, so members the playbook starts are the test's children
and are stopped at teardown.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from bot.compose.app.bot import Bot, build_bot
from bot.chat.handlers_playbooks import install
from bot.chat.memory import MemoryChat
from bot.core.clock import FakeClock
from bot.core.config.clusters import (
    ClusterEndpoints,
    EtcdEndpoints,
    EtcdMemberSettings,
    EtcdRestoreSettings,
    EtcdSnapshotSettings,
    LoadBalancerSettings,
)
from playbooks.engine import Engine, Toolbox
from tests.conftest import make_settings
from tests.support.components import EtcdCluster, HAProxy, HAProxyBackend, StubApiserver

ROOT = Path(__file__).resolve().parents[2]
BACKEND = "kube_api_servers"
CLUSTER = "prod"


class Crash(BaseException):
    """Raised by an engine hook: the process 'dies' there (nothing after it runs)."""


@dataclass
class Lab:
    tmp: Path
    main: StubApiserver
    bypass: StubApiserver
    haproxy: HAProxy
    etcd: EtcdCluster
    bot: Bot
    chat: MemoryChat
    clock: FakeClock
    engine: Engine
    cleanups: list[Callable[[], None]] = field(default_factory=list)

    @property
    def frontend(self) -> str:
        return self.haproxy.frontend_url(BACKEND)

    def tools(self, *, test_controller: bool = True) -> Toolbox:
        factories: dict[str, Any] = {"database": lambda _c: self.bot.db, "clock": lambda _c: self.clock}
        if test_controller:  # else the controller comes from settings (etcd.restore.controller)
            factories["etcd_controller"] = lambda _c: self.etcd.controller
        return Toolbox(self.bot.settings, **factories)

    def new_engine(self, *, test_controller: bool = True) -> Engine:
        """A fresh engine (new executor, new owner id) on the same database: a restarted process."""
        self.engine = install(self.bot, tools=self.tools(test_controller=test_controller))
        return self.engine

    def pause_worker(self) -> None:
        """Approvals through chat then leave the run ``approved`` for another process to start."""
        self.bot.workers[:] = [w for w in self.bot.workers if getattr(w, "name", None) != "playbooks"]

    def run_and_kill(self, run_id: int, label: str) -> subprocess.CompletedProcess[str]:
        """Start the approved run in a separate engine process that SIGKILLs itself at ``label``."""
        config = self.tmp / "settings.json"
        config.write_text(self.bot.settings.model_dump_json())
        return subprocess.run([sys.executable, "-m", "tests.playbooks_real.engine_proc", str(config),
                               self.clock.now().isoformat(), str(run_id), label],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)

    def incident(self, title: str, commander: str = "alice") -> None:
        """Declare, take command and record a cause: the incident is ``diagnosed``, ready for a playbook."""
        self.chat.say(commander, f"/incident declare {title} --severity sev1 --cluster {CLUSTER}")
        self.chat.say(commander, "/incident ack")
        self.chat.say(commander, f"/incident cause {title}")

    def run_row(self, run_id: int) -> Any:
        return self.engine.service.get(run_id)

    def timeline_texts(self) -> list[str]:
        from sqlalchemy import select

        from bot.core.store.models import TimelineEvent

        with self.bot.db.session() as s:
            return [e.text for e in s.execute(select(TimelineEvent).order_by(TimelineEvent.id)).scalars()]


@pytest.fixture
def lab(tmp_path: Path, clock: FakeClock, stub_apiserver_factory: Callable[..., StubApiserver],
        haproxy_factory: Callable[..., HAProxy], etcd_cluster: EtcdCluster) -> Iterator[Lab]:
    main = stub_apiserver_factory("main")
    bypass = stub_apiserver_factory("bypass")
    proxy = haproxy_factory([HAProxyBackend(BACKEND, {"main": main.address}, {"bypass": bypass.address})])
    proxy.wait_checked()
    snapdir = tmp_path / "snapshots"
    settings = make_settings(f"sqlite:///{tmp_path / 'bot.db'}")
    settings.diagnosis.auto = False  # the tests drive the playbooks by hand
    settings.clusters = {CLUSTER: ClusterEndpoints(
        loadbalancer=LoadBalancerSettings(runtime=str(proxy.socket_path), backend=BACKEND, main=["main"],
                                          bypass=["bypass"], state_file=str(proxy.state_file),
                                          frontend_url=proxy.frontend_url(BACKEND), server_scheme="http"),
        etcd=EtcdEndpoints(
            members=etcd_cluster.endpoints,
            snapshots=EtcdSnapshotSettings(dir=str(snapdir)),
            restore=EtcdRestoreSettings(
                members=[EtcdMemberSettings(name=m.name, client_url=m.client_url, peer_url=m.peer_url,
                                            data_dir=str(m.data_dir), metrics_url=m.metrics_url)
                         for m in etcd_cluster.members],
                data_root=str(tmp_path / "restored"), apiservers="lb", health_timeout_seconds=30),
        ),
    )}
    bot = build_bot(settings, clock=clock)
    chat = MemoryChat(bot.dispatcher, workers=bot.workers)
    lab = Lab(tmp_path, main, bypass, proxy, etcd_cluster, bot, chat, clock, engine=None)  # type: ignore[arg-type]
    lab.new_engine()
    try:
        yield lab
    finally:
        bot.close()
