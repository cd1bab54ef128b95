"""One sandbox: a private directory, a control plane, and the bot watching it.

``Sandbox`` is a context manager.  It makes a temporary directory, picks the
bot's port and a fresh webhook token, starts the control plane (whose
Alertmanager already points at the bot), writes the bot's settings, then
starts the bot.  ``close()`` stops the bot, then every component, then any
process still running from inside the sandbox directory (a restored etcd
member started by the restore playbook's own controller, for instance), and
removes the directory: nothing is left behind, whatever happened.
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import tempfile
import time
from pathlib import Path
from typing import Any

from bot.core.config import Settings
from bot.compose.sandbox import settings as sandbox_settings
from bot.compose.sandbox.controlplane import ControlPlane, ControlPlaneOptions
from bot.compose.sandbox.processes import LOOPBACK, free_port
from bot.compose.sandbox.runtime import BotRuntime, DelivererFactory
from bot.compose.sandbox.scenarios import seed_etcd

WEBHOOK_PATH = "/webhooks/alertmanager"


class Sandbox:
    def __init__(self, *, options: ControlPlaneOptions | None = None, deliverer_factory: DelivererFactory | None = None,
                 prefix: str = "incident-bot-sandbox-", overrides: dict[str, Any] | None = None) -> None:
        self.options = options or ControlPlaneOptions()
        self.deliverer_factory = deliverer_factory
        self.prefix = prefix
        self.overrides = overrides or {}
        self.root: Path | None = None
        self.plane: ControlPlane | None = None
        self.runtime: BotRuntime | None = None
        self.settings: Settings | None = None
        self.settings_path: Path | None = None

    def start(self) -> "Sandbox":
        self.root = Path(tempfile.mkdtemp(prefix=self.prefix))
        try:
            token = secrets.token_urlsafe(24)
            port = free_port()
            self.plane = ControlPlane(self.root, webhook_url=f"http://{LOOPBACK}:{port}{WEBHOOK_PATH}",
                                      webhook_token=token, options=self.options).start()
            seed_etcd(self.plane)  # before the bot's first snapshot: what a restore must bring back
            tree = sandbox_settings.sandbox_settings(
                self.plane, database_url=f"sqlite:///{self.root / 'incident-bot.db'}", webhook_token=token)
            tree = _merge(tree, self.overrides)
            self.settings = sandbox_settings.build(tree)
            self.settings_path = sandbox_settings.write(tree, self.root / "settings.yaml")
            etcd = self.plane.etcd
            assert etcd is not None
            # restore-etcd stops and starts the very members the sandbox started (one process controller)
            tools: dict[str, Any] = {"etcd_controller": lambda cluster: etcd.controller}
            if self.plane.customers is not None:  # restart-component restarts the sandbox's own processes
                components = self.plane.customers.components
                tools["component_controller"] = lambda cluster: components
            self.runtime = BotRuntime(self.settings, host=LOOPBACK, port=port, deliverer_factory=self.deliverer_factory,
                                      tools=tools).start()
            self.plane.wait_scraped()
        except BaseException:
            self.close()
            raise
        return self

    @property
    def bot(self) -> Any:
        assert self.runtime is not None and self.runtime.bot is not None
        return self.runtime.bot

    def close(self) -> None:
        """Stop the bot, the control plane and any stray process of the directory; remove it."""
        try:
            if self.runtime is not None:
                self.runtime.close()
        finally:
            try:
                if self.plane is not None:
                    self.plane.close()
            finally:
                if self.root is not None:
                    stop_processes_under(self.root)
                    shutil.rmtree(self.root, ignore_errors=True)
                self.runtime = None
                self.plane = None

    def __enter__(self) -> "Sandbox":
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.close()


def _merge(base: dict[str, Any], over: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, value in over.items():
        out[key] = _merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
    return out


def processes_under(root: Path) -> list[int]:
    """Pids of this user's processes whose command line names a path inside ``root``."""
    needle = str(root).encode()
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            if entry.stat().st_uid != os.getuid():
                continue
            cmdline = (entry / "cmdline").read_bytes()
            status = (entry / "status").read_text()
        except OSError:
            continue
        if needle in cmdline and "\nState:\tZ" not in status:
            found.append(int(entry.name))
    return found


def stop_processes_under(root: Path, timeout: float = 5.0) -> list[int]:
    """SIGTERM, then SIGKILL, every process started from inside ``root`` (by pid); returns their pids."""
    pids = processes_under(root)
    for sig in (signal.SIGTERM, signal.SIGKILL):
        for pid in pids:
            try:
                os.kill(pid, sig)
            except ProcessLookupError:
                pass
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and processes_under(root):
            time.sleep(0.05)
        if not processes_under(root):
            break
    return pids

