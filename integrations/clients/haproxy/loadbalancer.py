"""The load balancer seam: what a failover playbook needs, whatever the LB is.

The bypass playbook only needs to list the servers of a group, put one in
maint/drain/ready, read the states back and cut open sessions.  HAProxy is
the first implementation; a cloud load balancer (target groups with
register/deregister) can implement the same protocol without the playbook
changing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol, runtime_checkable

from bot.core.errors import ConfigError, IntegrationError

from .persistence import save_server_state
from .runtime import RuntimeClient
from .states import AdminCommand, ServerState


# What the operator asks of a server: take traffic (ready), finish what it has (drain), or take
# none (maint).  These are HAProxy's words; another kind of load balancer maps its own onto them.
TargetState = AdminCommand


@dataclass(frozen=True)
class LBServer:
    """One server of a group, as any load balancer can describe it."""

    group: str
    name: str
    address: str
    state: TargetState  # the administrative state
    healthy: bool | None  # health checks' view; None when the LB does not check
    backup: bool
    takes_new_traffic: bool
    detail: str = ""  # LB-specific status text, e.g. "UP", "MAINT", "L7OK"


@runtime_checkable
class LoadBalancer(Protocol):
    def list_servers(self, group: str) -> list[LBServer]: ...

    def read_states(self, group: str) -> dict[str, TargetState]: ...

    def set_state(self, group: str, server: str, state: TargetState | str) -> LBServer: ...

    def close_sessions(self, group: str, server: str) -> None: ...


class HAProxyLoadBalancer:
    """``LoadBalancer`` over the HAProxy runtime API.  A group is a backend.

    ``set_state`` reads the state back and raises if HAProxy did not take it;
    with ``state_file`` set it also dumps the server states there, so a
    reload keeps the change (see ``persistence``).
    """

    def __init__(self, runtime: RuntimeClient | str | Path, *, state_file: str | Path | None = None) -> None:
        self.runtime = runtime if isinstance(runtime, RuntimeClient) else RuntimeClient(runtime)
        self.state_file = Path(state_file) if state_file else None

    def list_servers(self, group: str) -> list[LBServer]:
        states = self.runtime.show_servers_state(group)
        stats = {(r.proxy, r.name): r for r in self.runtime.show_stat() if r.is_server}
        out = []
        for s in states:
            row = stats.get((s.backend, s.name))
            out.append(
                LBServer(
                    group=s.backend,
                    name=s.name,
                    address=f"{s.address}:{s.port}" if s.port else s.address,
                    state=s.admin,
                    healthy=_healthy(s, row.check_status if row else ""),
                    backup=bool(row and row.backup),
                    takes_new_traffic=s.takes_new_traffic,
                    detail=" ".join(x for x in (row.status if row else s.status, row.check_status if row else "") if x),
                )
            )
        return out

    def read_states(self, group: str) -> dict[str, TargetState]:
        return {s.name: s.admin for s in self.runtime.show_servers_state(group)}

    def server_state(self, group: str, server: str) -> ServerState:
        for s in self.runtime.show_servers_state(group):
            if s.name == server:
                return s
        raise IntegrationError(f"HAProxy at {self.runtime.address} has no server {server} in backend {group}.")

    def set_state(self, group: str, server: str, state: TargetState | str) -> LBServer:
        wanted = TargetState.parse(state)
        self.runtime.set_server_state(group, server, wanted)
        after = self.server_state(group, server)
        if after.admin.value != wanted.value:
            raise IntegrationError(
                f"HAProxy at {self.runtime.address} accepted 'state {wanted.value}' for {group}/{server} "
                f"but reports it as {after.admin.value} (admin flags {int(after.admin_flags):#x})."
            )
        if self.state_file is not None:
            save_server_state(self.runtime, self.state_file)
        for s in self.list_servers(group):
            if s.name == server:
                return s
        raise IntegrationError(f"HAProxy at {self.runtime.address} lost server {group}/{server} after the change.")

    def close_sessions(self, group: str, server: str) -> None:
        self.runtime.shutdown_sessions(group, server)


def _healthy(state: ServerState, check_status: str) -> bool | None:
    """Health as the checks see it; None for a server without checks or in maint (checks paused)."""
    if state.in_maintenance:
        return None
    if check_status in ("", "UNK", "INI"):
        return None  # no check configured, or none finished yet
    return state.is_up
