"""A unix-socket relay that holds every connection a fixed time before passing it on.

HAProxy's runtime API answers a command on loopback in well under a millisecond,
so a playbook step made of a few runtime commands (persist-state: one ``show
servers state``) is over before anyone watching the database from outside can see
it running.  The serve-kill tests put this relay between the bot and HAProxy's
socket, as a load balancer on a busy host a few network hops away would be: each
command then takes at least ``lag`` seconds, and "SIGKILL inside that step" is a
point the test can aim at instead of a race.  Nothing in the bytes is changed.
"""

from __future__ import annotations

import shutil
import socket
import tempfile
import threading
from pathlib import Path
from typing import Self


class LaggingUnixRelay:
    """Listens on ``path``; each accepted connection waits ``lag`` seconds, then is piped to ``target``.

    ``path`` is in a directory of its own under /tmp: a unix socket's path must fit in 107 bytes,
    which pytest's per-test directories can exceed."""

    def __init__(self, target: Path, *, lag: float) -> None:
        self.target, self.lag = target, lag
        self._dir = Path(tempfile.mkdtemp(prefix="lb-relay-"))
        self.path = self._dir / "runtime.sock"
        self._server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._closing = threading.Event()
        self._accepter = threading.Thread(target=self._accept, name="lagging-relay", daemon=True)

    def start(self) -> Self:
        self._server.bind(str(self.path))
        self._server.listen(64)
        self._accepter.start()
        return self

    def close(self) -> None:
        self._closing.set()
        self._server.close()  # accept() in the accepter thread fails and the thread ends
        self._accepter.join(timeout=5)
        shutil.rmtree(self._dir, ignore_errors=True)

    def _accept(self) -> None:
        while not self._closing.is_set():
            try:
                client, _ = self._server.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        # the lag is the latency being simulated (the client's bytes wait in the kernel's buffer meanwhile)
        if self._closing.wait(self.lag):
            client.close()
            return
        try:
            upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            upstream.connect(str(self.target))
        except OSError:
            client.close()
            return
        back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
        back.start()
        _pipe(client, upstream)
        back.join(timeout=30)
        client.close()
        upstream.close()


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    """Copy until ``source`` ends, then end ``sink``'s writing side (HAProxy answers once the command is in)."""
    try:
        while block := source.recv(65536):
            sink.sendall(block)
    except OSError:
        pass
    try:
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass
