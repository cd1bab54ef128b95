"""The HAProxy runtime API (the "stats socket"), over a unix socket or TCP.

One command per connection, no ``prompt`` mode: the socket closes after the
answer, so reading to EOF is the whole protocol and a half-read answer can
never leak into the next command.  Commands that change state answer with an
empty line on success and with a sentence on failure ("No such server.",
"Permission denied" ...); ``command()`` turns such sentences into
``IntegrationError`` so callers never parse them.
"""

from __future__ import annotations

import socket
import time
from dataclasses import dataclass
from pathlib import Path

from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout

from .stat import StatRow, parse_show_stat
from .states import AdminCommand, ServerState, parse_servers_state

DEFAULT_TIMEOUT = 2.0


@dataclass(frozen=True)
class RuntimeAddress:
    """Where the runtime API listens: a unix socket path, or host and port."""

    unix_path: str | None = None
    host: str | None = None
    port: int | None = None

    @classmethod
    def parse(cls, address: str | Path) -> "RuntimeAddress":
        """``/run/haproxy/admin.sock``, ``unix:/path``, ``host:port``, ``tcp:host:port`` or ``ipv4@host:port``."""
        text = str(address).strip()
        if not text:
            raise ConfigError("The HAProxy runtime API address is empty; give a socket path or host:port.")
        for prefix in ("unix:", "unix@"):
            if text.startswith(prefix):
                return cls(unix_path=text[len(prefix):])
        if "/" in text:
            return cls(unix_path=text)
        for prefix in ("tcp:", "ipv4@", "tcp@"):
            if text.startswith(prefix):
                text = text[len(prefix):]
        host, sep, port = text.rpartition(":")
        if not sep or not port.isdigit():
            raise ConfigError(f"The HAProxy runtime API address {address!r} is neither a socket path nor host:port.")
        return cls(host=host.strip("[]") or "127.0.0.1", port=int(port))

    def __str__(self) -> str:
        return self.unix_path if self.unix_path else f"{self.host}:{self.port}"


class RuntimeClient:
    """Send runtime API commands to one HAProxy process."""

    def __init__(self, address: str | Path, *, timeout: float = DEFAULT_TIMEOUT) -> None:
        self.address = RuntimeAddress.parse(address)
        self.timeout = timeout

    def __repr__(self) -> str:
        return f"RuntimeClient({str(self.address)!r})"

    # -- transport -----------------------------------------------------------------

    def raw(self, command: str) -> str:
        """Send one command, return the whole answer text (nothing interpreted)."""
        if "\n" in command:
            raise ConfigError("A HAProxy runtime command must be one line.")
        where = f"HAProxy runtime API at {self.address}"
        deadline = time.monotonic() + self.timeout
        try:
            if self.address.unix_path:
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                sock.connect(self.address.unix_path)
            else:
                sock = socket.create_connection((self.address.host, self.address.port), timeout=self.timeout)
        except (socket.timeout, TimeoutError) as exc:
            raise IntegrationTimeout(f"{where} did not accept a connection within {self.timeout:g} s.") from exc
        except FileNotFoundError as exc:
            raise IntegrationError(f"{where} is unreachable: the socket file does not exist (is HAProxy running?).") from exc
        except PermissionError as exc:
            raise IntegrationError(f"{where} is unreachable: permission denied on the socket.") from exc
        except OSError as exc:
            raise IntegrationError(f"{where} is unreachable: {exc.strerror or exc}.") from exc
        chunks: list[bytes] = []
        try:
            with sock:
                sock.sendall(command.encode() + b"\n")
                while True:
                    remaining = deadline - time.monotonic()
                    if remaining <= 0:
                        raise socket.timeout()
                    sock.settimeout(remaining)
                    block = sock.recv(65536)
                    if not block:
                        break
                    chunks.append(block)
        except (socket.timeout, TimeoutError) as exc:
            raise IntegrationTimeout(f"{where} did not finish answering '{command}' within {self.timeout:g} s.") from exc
        except OSError as exc:
            raise IntegrationError(f"{where} broke the connection during '{command}': {exc.strerror or exc}.") from exc
        return b"".join(chunks).decode(errors="replace")

    def command(self, command: str) -> None:
        """Run a command that answers nothing on success; any text is the error."""
        answer = self.raw(command).strip()
        if answer:
            raise IntegrationError(f"HAProxy at {self.address} refused '{command}': {_one_line(answer)}")

    def query(self, command: str) -> str:
        """Run a read command; an answer that is a known error sentence raises."""
        answer = self.raw(command)
        stripped = answer.strip()
        if _looks_like_error(stripped):
            raise IntegrationError(f"HAProxy at {self.address} refused '{command}': {_one_line(stripped)}")
        return answer

    # -- typed commands --------------------------------------------------------------

    def show_servers_state(self, backend: str | None = None) -> list[ServerState]:
        """``show servers state [backend]`` parsed; op/admin states decoded."""
        cmd = "show servers state" + (f" {_name(backend, 'backend')}" if backend else "")
        return parse_servers_state(self.query(cmd), source=f"HAProxy at {self.address}")

    def show_stat(self) -> list[StatRow]:
        """``show stat`` (CSV) parsed into rows for frontends, backends and servers."""
        return parse_show_stat(self.query("show stat"), source=f"HAProxy at {self.address}")

    def set_server_state(self, backend: str, server: str, state: AdminCommand | str) -> None:
        """``set server be/srv state ready|drain|maint``."""
        value = AdminCommand.parse(state)
        self.command(f"set server {_name(backend, 'backend')}/{_name(server, 'server')} state {value.value}")

    def shutdown_sessions(self, backend: str, server: str) -> None:
        """``shutdown sessions server be/srv``: cut the server's open sessions (clients reconnect via the LB)."""
        self.command(f"shutdown sessions server {_name(backend, 'backend')}/{_name(server, 'server')}")

    def show_info(self) -> dict[str, str]:
        """``show info`` as a dict (Version, Pid, Uptime_sec ...); also a cheap liveness probe."""
        info: dict[str, str] = {}
        for line in self.query("show info").splitlines():
            key, sep, value = line.partition(":")
            if sep:
                info[key.strip()] = value.strip()
        return info


_ERROR_STARTS = (
    "unknown command",
    "no such",
    "permission denied",
    "can't find",
    "require",
    "'set server",
    "'show",
    "invalid",
    "unexpected",
)


def _looks_like_error(text: str) -> bool:
    first = text.splitlines()[0].lower() if text else ""
    return any(first.startswith(s) for s in _ERROR_STARTS)


def _one_line(text: str) -> str:
    lines = [l.strip() for l in text.splitlines() if l.strip()]
    return " ".join(lines)[:300]


def _name(value: str, what: str) -> str:
    """Backend/server names go into a command line: reject spaces, ';' and '/'."""
    if not value or any(c in value for c in " \t;/\n\r"):
        raise ConfigError(f"HAProxy {what} name {value!r} is not valid (no spaces, ';' or '/').")
    return value
