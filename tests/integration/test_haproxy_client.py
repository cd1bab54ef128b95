"""The HAProxy runtime client and LoadBalancer against a REAL HAProxy 2.6 on loopback.

Two apiserver stand-ins (threads with http.server) sit behind it: ``primary``
as a main server and ``bypass`` as a backup server, health-checked on /readyz.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from typing import Callable

import pytest

from bot.core.errors import ConfigError, IntegrationError
from integrations.clients.haproxy import (
    AdminCommand,
    AdminFlag,
    HAProxyLoadBalancer,
    LoadBalancer,
    OpState,
    RuntimeClient,
    TargetState,
    configured_state_file,
    parse_servers_state,
    save_server_state,
)
from tests.support.components import HAProxy, HAProxyBackend, StubApiserver, served_by, wait_until

pytest_plugins = ["tests.support.fixtures_components"]

BE = "kube_api"


@dataclass
class Lab:
    proxy: HAProxy
    primary: StubApiserver
    bypass: StubApiserver
    runtime: RuntimeClient
    lb: HAProxyLoadBalancer

    @property
    def url(self) -> str:
        return self.proxy.frontend_url(BE)

    def state(self, server: str):
        return next(s for s in self.runtime.show_servers_state(BE) if s.name == server)


@pytest.fixture
def lab(stub_apiserver_factory: Callable[..., StubApiserver], haproxy_factory: Callable[..., HAProxy]) -> Lab:
    primary = stub_apiserver_factory("primary")
    bypass = stub_apiserver_factory("bypass")
    proxy = haproxy_factory([HAProxyBackend(BE, {"primary": primary.address}, {"bypass": bypass.address})],
                            stats_tcp=True)
    proxy.wait_checked()
    runtime = RuntimeClient(proxy.socket_path)
    return Lab(proxy, primary, bypass, runtime, HAProxyLoadBalancer(runtime))


class Stream:
    """A long-lived request (like a watch) through the frontend, read line by line."""

    def __init__(self, address: tuple[str, int]) -> None:
        self.sock = socket.create_connection(address, timeout=3)
        self.sock.sendall(b"GET /watch HTTP/1.0\r\n\r\n")
        self.file = self.sock.makefile("rb")
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            byte = self.file.read(1)
            assert byte, "stream closed before the headers"
            head += byte
        self.server = next(l.split(b":", 1)[1].strip().decode() for l in head.split(b"\r\n")
                           if l.lower().startswith(b"x-served-by"))

    def next_line(self) -> bytes:
        return self.file.readline()

    def wait_closed(self, timeout: float = 5.0) -> bool:
        """Read until the connection ends (True) or ``timeout`` passes with data still flowing (False)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                line = self.file.readline()
            except (TimeoutError, socket.timeout):
                return False
            except OSError:  # reset by the proxy
                return True
            if not line:
                return True
        return False

    def close(self) -> None:
        self.file.close()
        self.sock.close()


def test_show_servers_state_and_show_stat_are_decoded(lab: Lab) -> None:
    states = {s.name: s for s in lab.runtime.show_servers_state(BE)}
    assert set(states) == {"primary", "bypass"}
    assert states["primary"].port == lab.primary.port and states["bypass"].port == lab.bypass.port
    for s in states.values():
        assert s.backend == BE and s.address == "127.0.0.1"
        assert s.op_state is OpState.RUNNING and s.admin_flags == AdminFlag.NONE
        assert s.admin is AdminCommand.READY and s.status == "UP" and s.takes_new_traffic

    rows = {(r.proxy, r.name): r for r in lab.runtime.show_stat()}
    assert rows[(BE, "primary")].kind == "server" and rows[(BE, "primary")].active
    assert rows[(BE, "bypass")].backup and not rows[(BE, "bypass")].active
    assert rows[(BE, "primary")].check_status == "L7OK"
    assert rows[(f"fe_{BE}", "FRONTEND")].status == "OPEN"

    servers = {s.name: s for s in lab.lb.list_servers(BE)}
    assert isinstance(lab.lb, LoadBalancer)
    assert servers["bypass"].backup and not servers["primary"].backup
    assert servers["primary"].healthy is True and servers["primary"].state is TargetState.READY
    assert lab.lb.read_states(BE) == {"primary": TargetState.READY, "bypass": TargetState.READY}

    # the same API over TCP
    tcp = RuntimeClient(lab.proxy.stats_address)
    assert tcp.address.port is not None
    assert tcp.show_info()["Pid"] == str(lab.proxy.pid)
    assert [s.name for s in tcp.show_servers_state(BE)] == ["primary", "bypass"]


def test_maint_on_the_main_server_sends_traffic_to_the_backup(lab: Lab) -> None:
    assert served_by(lab.url) == "primary"

    after = lab.lb.set_state(BE, "primary", "maint")
    assert after.state is TargetState.MAINT and not after.takes_new_traffic
    assert [served_by(lab.url) for _ in range(5)] == ["bypass"] * 5

    primary = lab.state("primary")
    assert primary.admin_flags & AdminFlag.FMAINT and primary.in_maintenance
    assert primary.op_state is OpState.STOPPED and primary.status == "MAINT"
    assert lab.lb.read_states(BE)["primary"] is TargetState.MAINT
    assert {r.name: r.status for r in lab.runtime.show_stat() if r.proxy == BE}["primary"] == "MAINT"

    lab.lb.set_state(BE, "primary", TargetState.READY)
    assert lab.state("primary").admin is AdminCommand.READY
    wait_until(lambda: served_by(lab.url) == "primary", timeout=5, what="traffic back on primary")


def test_drain_keeps_open_streams_while_maint_cuts_them(lab: Lab) -> None:
    stream = Stream(lab.proxy.frontend_address(BE))
    try:
        assert stream.server == "primary" and b"primary tick" in stream.next_line()

        lab.lb.set_state(BE, "primary", TargetState.DRAIN)
        primary = lab.state("primary")
        assert primary.admin_flags & AdminFlag.FDRAIN and primary.draining and not primary.in_maintenance
        assert primary.op_state is OpState.RUNNING and primary.status == "DRAIN"
        assert served_by(lab.url) == "bypass"  # new requests avoid the draining server ...
        for _ in range(3):  # ... while the open stream keeps flowing
            assert b"primary tick" in stream.next_line()

        lab.lb.close_sessions(BE, "primary")
        assert stream.wait_closed(timeout=5), "shutdown sessions did not cut the drained stream"
    finally:
        stream.close()

    lab.lb.set_state(BE, "primary", "ready")
    wait_until(lambda: served_by(lab.url) == "primary", timeout=5, what="traffic back on primary")
    stream = Stream(lab.proxy.frontend_address(BE))
    try:
        assert stream.server == "primary"
        lab.lb.set_state(BE, "primary", "maint")  # on-marked-down shutdown-sessions: the stream is cut
        assert stream.wait_closed(timeout=5), "maint did not cut the stream"
        assert served_by(lab.url) == "bypass"
    finally:
        stream.close()


def test_failing_readyz_fails_over_by_health_check(lab: Lab) -> None:
    lab.primary.ready = False
    wait_until(lambda: lab.state("primary").op_state is OpState.STOPPED, timeout=10, what="primary marked down")
    assert lab.state("primary").admin is AdminCommand.READY  # down by health, not by an operator
    assert served_by(lab.url) == "bypass"
    assert {s.name: s.healthy for s in lab.lb.list_servers(BE)}["primary"] is False

    lab.primary.ready = True
    wait_until(lambda: served_by(lab.url) == "primary", timeout=10, what="primary back after rise 1")


def test_runtime_errors_are_integration_errors(lab: Lab, tmp_path) -> None:
    with pytest.raises(IntegrationError, match="No such server"):
        lab.runtime.set_server_state(BE, "nope", "maint")
    with pytest.raises(IntegrationError, match="No such server"):
        lab.runtime.shutdown_sessions(BE, "nope")
    with pytest.raises(IntegrationError, match="find backend"):
        lab.runtime.show_servers_state("no_such_backend")
    with pytest.raises(IntegrationError, match="Unknown command"):
        lab.runtime.query("frobnicate")
    with pytest.raises(ConfigError, match="ready, drain or maint"):
        lab.lb.set_state(BE, "primary", "down")
    with pytest.raises(ConfigError):
        lab.runtime.set_server_state(BE, "primary; shutdown sessions server x/y", "maint")
    missing = tmp_path / "missing.sock"
    with pytest.raises(IntegrationError, match=str(missing)):
        RuntimeClient(missing).show_info()
    with pytest.raises(ConfigError):
        RuntimeClient("not an address")
    assert lab.state("primary").admin is AdminCommand.READY  # nothing changed by the failures


def test_maint_survives_a_restart_through_the_server_state_file(lab: Lab) -> None:
    state_file = configured_state_file(lab.proxy.config_path)
    assert state_file == lab.proxy.state_file
    lb = HAProxyLoadBalancer(lab.runtime, state_file=state_file)

    # control: a runtime change that is not dumped is lost by a restart
    lab.runtime.set_server_state(BE, "primary", "maint")
    lab.proxy.restart()
    assert lab.state("primary").admin is AdminCommand.READY

    lb.set_state(BE, "primary", "maint")  # also dumps the states into the file
    saved = {s.name: s for s in parse_servers_state(state_file.read_text())}
    assert saved["primary"].in_maintenance and saved["bypass"].admin is AdminCommand.READY

    old_pid = lab.proxy.pid
    lab.proxy.restart()
    assert lab.proxy.pid != old_pid
    assert lab.state("primary").in_maintenance
    assert served_by(lab.url) == "bypass"

    # and the way back: ready, dump, restart -> ready
    lab.runtime.set_server_state(BE, "primary", "ready")
    save_server_state(lab.runtime, state_file)
    lab.proxy.restart()
    assert lab.state("primary").admin is AdminCommand.READY
    wait_until(lambda: served_by(lab.url) == "primary", timeout=5, what="traffic back on primary")
