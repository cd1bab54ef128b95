"""Starting and stopping etcd members: one protocol, two ways.

The restore playbook must stop every member, restore, and start them again;
*how* depends on the site (systemd over ssh, a static pod, a local process in
tests).  ``MemberController`` is the seam: the playbook only says
``stop(member)``.  ``LocalProcessController`` runs ``etcd`` as a child process
(tests, sandbox, drills); ``CommandController`` runs site-specific shell
command templates such as ``ssh {host} systemctl stop etcd``.
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
import threading
from pathlib import Path
from typing import IO, Mapping, Protocol, runtime_checkable

from bot.core import binaries
from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout

from .spec import EtcdMemberSpec


@runtime_checkable
class MemberController(Protocol):
    """Process control of etcd members."""

    def start(self, member: EtcdMemberSpec) -> None: ...

    def stop(self, member: EtcdMemberSpec) -> None: ...

    def is_running(self, member: EtcdMemberSpec) -> bool: ...


class LocalProcessController:
    """etcd members as child processes of this Python process.

    Logs go to ``member.log_file`` (default ``<data_dir>.log``) so that a
    failed start can be explained from the file.  ``stop`` sends SIGTERM and
    escalates to SIGKILL after ``stop_timeout`` seconds: a 3.4 leader whose
    followers are gone can hang ~7 s trying to transfer leadership.
    """

    def __init__(self, binary: str | None = None, *, stop_timeout: float = 5.0, env: Mapping[str, str] | None = None) -> None:
        # default: the etcd 3.6 that setup builds from its Go module (bot.core.binaries), else $PATH's
        self.binary = binary or binaries.find("etcd") or "etcd"
        self.stop_timeout = stop_timeout
        self.env = dict(env) if env else None
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._logs: dict[str, IO[bytes]] = {}
        self._lock = threading.Lock()

    def log_path(self, member: EtcdMemberSpec) -> Path:
        return member.log_file or member.data_dir.with_name(member.data_dir.name + ".log")

    def start(self, member: EtcdMemberSpec) -> None:
        with self._lock:
            if self._alive(member.name):
                raise IntegrationError(f"etcd member {member.name} is already running (pid {self._procs[member.name].pid}).")
            if not Path(self.binary).exists():
                raise ConfigError(f"The etcd binary {self.binary} does not exist.")
            log_path = self.log_path(member)
            log_path.parent.mkdir(parents=True, exist_ok=True)
            member.data_dir.parent.mkdir(parents=True, exist_ok=True)
            log = open(log_path, "ab")
            env = dict(os.environ)
            if self.env:
                env.update(self.env)
            try:
                proc = subprocess.Popen(
                    [self.binary, *member.etcd_args()],
                    stdin=subprocess.DEVNULL,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    env=env,
                    start_new_session=True,
                )
            except OSError as exc:
                log.close()
                raise IntegrationError(f"Cannot start etcd member {member.name}: {exc}.") from exc
            self._close_log(member.name)
            self._procs[member.name] = proc
            self._logs[member.name] = log

    def stop(self, member: EtcdMemberSpec, *, timeout: float | None = None) -> None:
        """SIGTERM, wait, then SIGKILL.  Stopping a member that is not running is a no-op."""
        self._signal_and_wait(member.name, signal.SIGTERM, self.stop_timeout if timeout is None else timeout)

    def kill(self, member: EtcdMemberSpec) -> None:
        """SIGKILL at once: a simulated crash (no leadership transfer, no clean WAL close)."""
        self._signal_and_wait(member.name, signal.SIGKILL, 0.0)

    def is_running(self, member: EtcdMemberSpec) -> bool:
        with self._lock:
            return self._alive(member.name)

    def pid(self, member: EtcdMemberSpec) -> int | None:
        with self._lock:
            return self._procs[member.name].pid if self._alive(member.name) else None

    def returncode(self, member: EtcdMemberSpec) -> int | None:
        """Exit status of a member that has exited (None while running or never started)."""
        with self._lock:
            proc = self._procs.get(member.name)
            return None if proc is None else proc.poll()

    def stop_all(self, *, kill: bool = False) -> None:
        """Stop every member this controller started (SIGKILL at once if ``kill``)."""
        for name in list(self._procs):
            self._signal_and_wait(name, signal.SIGKILL if kill else signal.SIGTERM, 0.0 if kill else self.stop_timeout)

    def _alive(self, name: str) -> bool:
        proc = self._procs.get(name)
        return proc is not None and proc.poll() is None

    def _signal_and_wait(self, name: str, sig: int, timeout: float) -> None:
        with self._lock:
            proc = self._procs.get(name)
        if proc is None:
            return
        if proc.poll() is None:
            try:
                proc.send_signal(sig)
            except ProcessLookupError:
                pass
            try:
                proc.wait(timeout=timeout if sig != signal.SIGKILL else 10.0)
            except subprocess.TimeoutExpired:
                proc.kill()
                try:
                    proc.wait(timeout=10.0)
                except subprocess.TimeoutExpired as exc:
                    raise IntegrationTimeout(f"etcd member {name} (pid {proc.pid}) did not exit after SIGKILL.") from exc
        with self._lock:
            self._close_log(name)

    def _close_log(self, name: str) -> None:
        log = self._logs.pop(name, None)
        if log is not None:
            log.close()


class CommandController:
    """Members controlled by shell command templates, e.g. over ssh.

    Templates use the member's fields: ``{name}``, ``{host}``, ``{client_url}``,
    ``{peer_url}``, ``{data_dir}``, ``{metrics_url}``...  Values are
    shell-quoted before substitution so that a data dir with a space (or a
    hostile name) cannot change the command.  Unknown placeholders are a
    configuration error at construction, not at 3 a.m.

    ``is_running`` maps exit 0 to running and the codes in
    ``not_running_codes`` (default 1 and 3, what ``systemctl is-active``
    uses) to stopped; any other code (ssh's 255, say) raises, because "I
    could not find out" must not read as "stopped".
    """

    def __init__(
        self,
        *,
        start: str,
        stop: str,
        is_running: str,
        timeout: float = 30.0,
        not_running_codes: tuple[int, ...] = (1, 3),
        shell: str = "/bin/sh",
    ) -> None:
        self.templates = {"start": start, "stop": stop, "is_running": is_running}
        allowed = set(_dummy_fields())
        for verb, template in self.templates.items():
            if not template or not template.strip():
                raise ConfigError(f"The etcd member '{verb}' command template is empty.")
            for field in _placeholders(template, verb):
                if field not in allowed:
                    raise ConfigError(
                        f"The etcd member '{verb}' command template uses {{{field}}}; "
                        f"known fields are {', '.join(sorted(allowed))}."
                    )
        self.timeout = timeout
        self.not_running_codes = tuple(not_running_codes)
        self.shell = shell

    def render(self, verb: str, member: EtcdMemberSpec) -> str:
        """The exact shell command that ``verb`` would run for ``member`` (for plans and logs)."""
        quoted = {k: shlex.quote(v) for k, v in member.template_fields().items()}
        return self.templates[verb].format_map(quoted)

    def start(self, member: EtcdMemberSpec) -> None:
        self._run("start", member, check=True)

    def stop(self, member: EtcdMemberSpec) -> None:
        self._run("stop", member, check=True)

    def is_running(self, member: EtcdMemberSpec) -> bool:
        code, stderr = self._run("is_running", member, check=False)
        if code == 0:
            return True
        if code in self.not_running_codes:
            return False
        raise IntegrationError(
            f"Could not tell whether etcd member {member.name} on {member.effective_host} runs "
            f"(exit {code}): {stderr or 'no output'}"
        )

    def _run(self, verb: str, member: EtcdMemberSpec, *, check: bool) -> tuple[int, str]:
        command = self.render(verb, member)
        try:
            proc = subprocess.Popen(
                [self.shell, "-c", command],
                stdin=subprocess.DEVNULL,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
                start_new_session=True,
            )
        except OSError as exc:
            raise IntegrationError(f"Cannot run '{command}' to {verb.replace('_', ' ')} etcd member {member.name}: {exc}.") from exc
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise IntegrationTimeout(
                f"'{command}' ({verb.replace('_', ' ')} etcd member {member.name}) did not finish within "
                f"{self.timeout:g} s and was killed."
            ) from exc
        # Keep the tail of stderr (else stdout): that is where ssh/systemctl say why.
        detail = " ".join((err.strip() or out.strip()).split())[-500:]
        if check and proc.returncode != 0:
            raise IntegrationError(
                f"'{command}' failed to {verb.replace('_', ' ')} etcd member {member.name} "
                f"(exit {proc.returncode}): {detail or 'no output'}"
            )
        return proc.returncode, detail


def _placeholders(template: str, verb: str) -> list[str]:
    try:
        return [field.split(".")[0].split("[")[0] for _, field, _, _ in string.Formatter().parse(template) if field]
    except ValueError as exc:
        raise ConfigError(f"The etcd member '{verb}' command template is malformed: {exc}.") from exc


def _dummy_fields() -> dict[str, str]:
    return EtcdMemberSpec(
        name="x", client_url="http://h:1", peer_url="http://h:2", data_dir=Path("/x")
    ).template_fields()
