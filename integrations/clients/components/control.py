"""``ComponentController``: start, stop, restart a component by name; and two implementations.

``CommandComponentController`` runs site templates with ``{component}`` (shell-quoted) such as
``ssh cp-1 sudo systemctl restart {component}``. Its ``is_running`` maps exit 0 to running and
1 or 3 (``systemctl is-active``) to stopped; any other code raises, because "could not find
out" must never read as "stopped". ``FakeComponents`` records what was asked, for unit tests.
"""

from __future__ import annotations

import os
import shlex
import signal
import string
import subprocess
from typing import Protocol, runtime_checkable

from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout


@runtime_checkable
class ComponentController(Protocol):
    """What a playbook may do to a control-plane component."""

    def start(self, name: str) -> None: ...

    def stop(self, name: str) -> None: ...

    def restart(self, name: str) -> None: ...

    def is_running(self, name: str) -> bool: ...


class CommandComponentController:
    """Components controlled by shell command templates; ``restart`` is stop then start."""

    def __init__(self, *, start: str, stop: str, is_running: str, timeout: float = 60.0,
                 not_running_codes: tuple[int, ...] = (1, 3), shell: str = "/bin/sh") -> None:
        self.templates = {"start": start, "stop": stop, "is_running": is_running}
        for verb, template in self.templates.items():
            if not template or not template.strip():
                raise ConfigError(f"The component '{verb}' command template is empty.")
            try:
                fields = [f for _, f, _, _ in string.Formatter().parse(template) if f]
            except ValueError as exc:
                raise ConfigError(f"The component '{verb}' command template is malformed: {exc}.") from exc
            unknown = sorted(set(fields) - {"component"})
            if unknown:
                raise ConfigError(f"The component '{verb}' command template uses {{{unknown[0]}}}; "
                                  f"the only field is {{component}}.")
        self.timeout = timeout
        self.not_running_codes = tuple(not_running_codes)
        self.shell = shell

    def render(self, verb: str, name: str) -> str:
        """The exact command ``verb`` runs for ``name`` (shown in plans)."""
        return self.templates[verb].format(component=shlex.quote(name))

    def start(self, name: str) -> None:
        self._run("start", name, check=True)

    def stop(self, name: str) -> None:
        self._run("stop", name, check=True)

    def restart(self, name: str) -> None:
        self.stop(name)
        self.start(name)

    def is_running(self, name: str) -> bool:
        code, detail = self._run("is_running", name, check=False)
        if code == 0:
            return True
        if code in self.not_running_codes:
            return False
        raise IntegrationError(f"Could not tell whether {name} runs (exit {code}): {detail or 'no output'}")

    def _run(self, verb: str, name: str, *, check: bool) -> tuple[int, str]:
        command = self.render(verb, name)
        try:
            proc = subprocess.Popen([self.shell, "-c", command], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.PIPE, text=True, start_new_session=True)
        except OSError as exc:
            raise IntegrationError(f"Cannot run '{command}' to {verb.replace('_', ' ')} {name}: {exc}.") from exc
        try:
            out, err = proc.communicate(timeout=self.timeout)
        except subprocess.TimeoutExpired as exc:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            proc.communicate()
            raise IntegrationTimeout(f"'{command}' ({verb.replace('_', ' ')} {name}) did not finish within "
                                     f"{self.timeout:g} s and was killed.") from exc
        detail = " ".join((err.strip() or out.strip()).split())[-500:]
        if check and proc.returncode != 0:
            raise IntegrationError(f"'{command}' failed to {verb.replace('_', ' ')} {name} "
                                   f"(exit {proc.returncode}): {detail or 'no output'}")
        return proc.returncode, detail


class FakeComponents:
    """In-memory components: ``running`` by name, every call recorded in ``calls``."""

    def __init__(self, running: dict[str, bool] | None = None) -> None:
        self.running = dict(running or {})
        self.calls: list[tuple[str, str]] = []

    def _known(self, name: str) -> None:
        if name not in self.running:
            raise IntegrationError(f"no component `{name}` here; known: {', '.join(self.running)}")

    def start(self, name: str) -> None:
        self._known(name)
        self.calls.append(("start", name))
        self.running[name] = True

    def stop(self, name: str) -> None:
        self._known(name)
        self.calls.append(("stop", name))
        self.running[name] = False

    def restart(self, name: str) -> None:
        self._known(name)
        self.calls.append(("restart", name))
        self.running[name] = True

    def is_running(self, name: str) -> bool:
        self._known(name)
        return self.running[name]
