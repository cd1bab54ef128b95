"""Running ``etcdctl`` / ``etcdutl`` as subprocesses, with timeouts and readable errors.

Some operations have no gateway equivalent in 3.4 (``endpoint hashkv``: the
gateway path is 404) or are file operations by nature (``snapshot restore``,
``snapshot status``), so they go through the CLI.  ``ETCDCTL_API=3`` is set
explicitly: it is the default from 3.4 but a stray ``ETCDCTL_API=2`` in an
operator's environment would otherwise change every command's meaning.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

from bot.core import binaries
from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout

DEFAULT_CLI_TIMEOUT = 30.0


def find_binary(name: str, explicit: str | os.PathLike[str] | None = None, *, near: str | None = None) -> str | None:
    """Locate a binary: an explicit path, then next to ``near`` (same install), then the Go build
    cache and ``$PATH`` (``bot.core.binaries``)."""
    if explicit:
        path = Path(explicit)
        return str(path) if path.exists() and os.access(path, os.X_OK) else None
    if near:
        sibling = Path(near).with_name(name)
        if sibling.exists() and os.access(sibling, os.X_OK):
            return str(sibling)
    return binaries.find(name)


@dataclass(frozen=True)
class CliResult:
    args: tuple[str, ...]
    returncode: int
    stdout: str
    stderr: str


def run_cli(
    args: Sequence[str],
    *,
    timeout: float = DEFAULT_CLI_TIMEOUT,
    what: str,
    check: bool = True,
    env: dict[str, str] | None = None,
) -> CliResult:
    """Run a command in its own process group; on timeout kill the whole group.

    ``what`` is the human description used in errors ("etcdctl snapshot save
    from http://10.0.0.1:2379").  The last meaningful stderr line goes into the
    error message because that is where etcdctl says what went wrong.
    """
    full_env = dict(os.environ)
    full_env["ETCDCTL_API"] = "3"
    if env:
        full_env.update(env)
    try:
        proc = subprocess.Popen(
            list(args),
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            text=True,
            env=full_env,
            start_new_session=True,
        )
    except FileNotFoundError as exc:
        raise ConfigError(f"Cannot run {what}: {args[0]} was not found.") from exc
    except OSError as exc:
        raise IntegrationError(f"Cannot run {what}: {exc}.") from exc
    try:
        out, err = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        _kill_group(proc)
        proc.communicate()
        raise IntegrationTimeout(f"{what} did not finish within {timeout:g} s and was killed.") from exc
    result = CliResult(tuple(args), proc.returncode, out, err)
    if check and proc.returncode != 0:
        raise IntegrationError(f"{what} failed (exit {proc.returncode}): {error_line(err, out)}")
    return result


def _kill_group(proc: subprocess.Popen[str]) -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        proc.kill()


_ERROR_LINE = re.compile(r"^(Error:|Failed|.*\berror\b)", re.IGNORECASE)


def error_line(stderr: str, stdout: str = "") -> str:
    """The most useful line of a failed etcd CLI's output.

    etcdctl logs zap JSON lines before the real ``Error: ...`` line; prefer
    the ``Error:`` line, then any non-JSON line, then whatever there is.
    """
    lines = [l.strip() for l in (stderr or "").splitlines() if l.strip()]
    for line in reversed(lines):
        if line.startswith("Error:"):
            return line[len("Error:"):].strip()
    for line in reversed(lines):
        if not line.startswith("{"):
            return line
    if lines:
        return lines[-1][:300]
    return (stdout or "").strip()[:300] or "no output"


def cli_version(binary: str, *, timeout: float = 10.0) -> tuple[int, int, int]:
    """``etcdctl version`` / ``etcdutl version`` as a (major, minor, patch) tuple."""
    res = run_cli([binary, "version"], timeout=timeout, what=f"{binary} version")
    match = re.search(r"version:\s*(\d+)\.(\d+)\.(\d+)", res.stdout)
    if not match:
        raise IntegrationError(f"Cannot read the version of {binary} from: {res.stdout.strip()[:200]!r}.")
    major, minor, patch = (int(x) for x in match.groups())
    return major, minor, patch
