"""``show servers state``: the numeric server states, decoded.

The dump is what HAProxy writes into its ``server-state-file``, so it is also
the format that persists runtime changes across reloads.  ``srv_op_state`` is
an enum and ``srv_admin_state`` a bitmask (HAProxy 2.6 management guide,
section "show servers state"); exposing them as ``OpState``/``AdminFlag`` and
the derived ``admin`` word (ready/drain/maint) keeps the magic numbers here.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field
from typing import Any

from bot.core.errors import ConfigError, IntegrationError


class OpState(enum.IntEnum):
    """``srv_op_state``."""

    STOPPED = 0  # down
    STARTING = 1  # up, warming up (slowstart)
    RUNNING = 2  # fully up
    STOPPING = 3  # up but soft-stopping (e.g. check answered 404 with http-check disable-on-404)


class AdminFlag(enum.IntFlag):
    """``srv_admin_state`` bits."""

    NONE = 0
    FMAINT = 0x01  # forced into maintenance (runtime API / stats page)
    IMAINT = 0x02  # maintenance inherited from a tracked server
    CMAINT = 0x04  # maintenance from the configuration ('disabled')
    FDRAIN = 0x08  # forced drain
    IDRAIN = 0x10  # drain inherited from a tracked server
    RMAINT = 0x20  # maintenance because the address did not resolve
    HMAINT = 0x40  # FQDN set from the stats socket


#: HAProxy's own SRV_ADMF_MAINT / SRV_ADMF_DRAIN groupings.
MAINT_FLAGS = AdminFlag.FMAINT | AdminFlag.IMAINT | AdminFlag.CMAINT | AdminFlag.RMAINT
DRAIN_FLAGS = AdminFlag.FDRAIN | AdminFlag.IDRAIN


class AdminCommand(str, enum.Enum):
    """The three words ``set server be/srv state`` accepts."""

    READY = "ready"
    DRAIN = "drain"
    MAINT = "maint"

    @classmethod
    def parse(cls, value: "AdminCommand | str") -> "AdminCommand":
        if isinstance(value, AdminCommand):
            return value
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            raise ConfigError(f"A load balancer server state must be ready, drain or maint, not {value!r}.") from None


def admin_word(flags: AdminFlag) -> AdminCommand:
    """Collapse the bitmask into the word an operator uses: maint beats drain beats ready."""
    if flags & MAINT_FLAGS:
        return AdminCommand.MAINT
    if flags & DRAIN_FLAGS:
        return AdminCommand.DRAIN
    return AdminCommand.READY


@dataclass(frozen=True)
class ServerState:
    """One server line of ``show servers state``."""

    backend: str
    backend_id: int
    name: str
    server_id: int
    address: str
    port: int | None
    op_state: OpState
    admin_flags: AdminFlag
    weight: int
    initial_weight: int
    seconds_since_change: int
    check_status: int
    check_result: int
    raw: dict[str, str] = field(default_factory=dict, compare=False, repr=False)

    @property
    def admin(self) -> AdminCommand:
        return admin_word(self.admin_flags)

    @property
    def in_maintenance(self) -> bool:
        return bool(self.admin_flags & MAINT_FLAGS)

    @property
    def draining(self) -> bool:
        return bool(self.admin_flags & DRAIN_FLAGS) and not self.in_maintenance

    @property
    def is_up(self) -> bool:
        """Operationally up (checks pass or are absent), regardless of admin state."""
        return self.op_state in (OpState.RUNNING, OpState.STARTING, OpState.STOPPING)

    @property
    def takes_new_traffic(self) -> bool:
        """Would load balancing pick this server for a new connection?"""
        return self.op_state in (OpState.RUNNING, OpState.STARTING) and self.admin is AdminCommand.READY and self.weight > 0

    @property
    def status(self) -> str:
        """The word ``show stat`` would print: MAINT, DRAIN, UP, DOWN, NOLB, STARTING."""
        if self.in_maintenance:
            return "MAINT"
        if self.admin is AdminCommand.DRAIN:
            return "DRAIN"
        return {OpState.RUNNING: "UP", OpState.STOPPED: "DOWN", OpState.STOPPING: "NOLB", OpState.STARTING: "STARTING"}[self.op_state]


def parse_servers_state(text: str, *, source: str = "HAProxy") -> list[ServerState]:
    """Parse a ``show servers state`` dump (or a server-state-file), format version 1."""
    lines = [l for l in text.splitlines() if l.strip()]
    if not lines:
        return []
    if lines[0].strip() != "1":
        raise IntegrationError(f"{source} returned a server state dump of unknown format {lines[0].strip()[:40]!r} (expected 1).")
    header: list[str] | None = None
    out: list[ServerState] = []
    for line in lines[1:]:
        if line.startswith("#"):
            if header is None:
                header = line.lstrip("#").split()
            continue
        if header is None:
            raise IntegrationError(f"{source} returned a server state dump without a header line.")
        values = line.split()
        if len(values) < len(header):
            values += [""] * (len(header) - len(values))
        row = dict(zip(header, values))
        try:
            out.append(_server_state(row))
        except (KeyError, ValueError) as exc:
            raise IntegrationError(f"{source} returned a server state line that cannot be read: {line[:200]!r} ({exc}).") from exc
    return out


def _server_state(row: dict[str, Any]) -> ServerState:
    port = row.get("srv_port")
    return ServerState(
        backend=row["be_name"],
        backend_id=int(row["be_id"]),
        name=row["srv_name"],
        server_id=int(row["srv_id"]),
        address=row["srv_addr"],
        port=int(port) if port and port.isdigit() and int(port) > 0 else None,
        op_state=OpState(int(row["srv_op_state"])),
        admin_flags=AdminFlag(int(row["srv_admin_state"])),
        weight=int(row.get("srv_uweight") or 0),
        initial_weight=int(row.get("srv_iweight") or 0),
        seconds_since_change=int(row.get("srv_time_since_last_change") or 0),
        check_status=int(row.get("srv_check_status") or 0),
        check_result=int(row.get("srv_check_result") or 0),
        raw=dict(row),
    )
