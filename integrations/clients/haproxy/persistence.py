"""Keeping runtime changes across an HAProxy reload.

A reload starts a new process from the configuration, which knows nothing of
``set server ... state maint`` done at runtime: without help, a reload in the
middle of a failover silently sends traffic back to the broken primary.
HAProxy's answer is ``server-state-file`` (global) plus
``load-server-state-from-file global`` (defaults/backend): the new process
reads the file at start.  Nobody writes that file for you; whoever reloads
must dump ``show servers state`` into it first.  ``save_server_state`` does
that, atomically, so a reload never reads half a file.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path

from bot.core.errors import IntegrationError

from .runtime import RuntimeClient
from .states import parse_servers_state


def save_server_state(runtime: RuntimeClient, path: str | Path) -> Path:
    """Write ``show servers state`` (all backends) to ``path`` atomically; return the path.

    The dump is parsed before it is written, so an error sentence from the
    socket can never become the state file the next process loads.
    """
    path = Path(path)
    dump = runtime.query("show servers state")
    parse_servers_state(dump, source=f"HAProxy at {runtime.address}")
    if not dump.endswith("\n"):
        dump += "\n"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=path.name + ".", suffix=".tmp", dir=path.parent)
        with os.fdopen(fd, "w") as fh:
            fh.write(dump)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except OSError as exc:
        raise IntegrationError(f"Cannot write the HAProxy server state file {path}: {exc.strerror or exc}.") from exc
    return path


_GLOBAL = re.compile(r"^\s*global\b")
_SECTION = re.compile(r"^\s*(defaults|frontend|backend|listen|peers|resolvers|userlist|program|http-errors|ring|cache|mailers)\b")


def configured_state_file(config: str | Path) -> Path | None:
    """The global ``server-state-file`` of a configuration (text or path), resolved with ``server-state-base``.

    Returns ``None`` when the configuration has none, i.e. runtime changes
    will NOT survive a reload — worth telling the operator before a failover.
    """
    text = Path(config).read_text() if isinstance(config, Path) or (
        "\n" not in config and Path(config).is_file()
    ) else config
    in_global = False
    state_file: str | None = None
    base: str | None = None
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].rstrip()
        if not line.strip():
            continue
        if _GLOBAL.match(line):
            in_global = True
            continue
        if _SECTION.match(line):
            in_global = False
            continue
        if in_global:
            words = line.split()
            if words[0] == "server-state-file" and len(words) > 1:
                state_file = words[1]
            elif words[0] == "server-state-base" and len(words) > 1:
                base = words[1]
    if state_file is None:
        return None
    if base and not state_file.startswith("/"):
        return Path(base) / state_file
    return Path(state_file)
