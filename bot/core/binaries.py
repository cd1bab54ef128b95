"""Where the Go-built components live: the build cache first, then ``$PATH``.

``scripts/build-go.sh`` builds kube-apiserver, kube-controller-manager, kube-scheduler, etcd,
etcdctl, etcdutl and helm from their Go modules into a cache outside the repository
(``$INCIDENT_BOT_CACHE/bin``, by default ``~/.cache/incident-bot/bin``). Everything that starts
or calls one of them asks here, so that a fresh clone, CI and an installed wheel find the same
binaries, and an operator can point ``INCIDENT_BOT_BIN_DIR`` at their own.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path


def cache_dir() -> Path:
    explicit = os.environ.get("INCIDENT_BOT_CACHE")
    if explicit:
        return Path(explicit)
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "incident-bot"


def search_dirs() -> list[Path]:
    """The directories searched before ``$PATH``, most specific first."""
    dirs = [Path(os.environ["INCIDENT_BOT_BIN_DIR"])] if os.environ.get("INCIDENT_BOT_BIN_DIR") else []
    return dirs + [cache_dir() / "bin"]


def find(name: str) -> str | None:
    """The path of binary ``name``, or None when neither the cache nor ``$PATH`` has it."""
    for directory in search_dirs():
        candidate = directory / name
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return str(candidate)
    return shutil.which(name)


def require(name: str) -> str:
    """The path of ``name``; a missing one is an install bug, named with the command that fixes it."""
    found = find(name)
    if found is None:
        raise FileNotFoundError(
            f"{name} not found in {', '.join(str(d) for d in search_dirs())} or $PATH: "
            f"run ./scripts/setup.sh (it builds {name} from its Go module)")
    return found
