"""The outside world as steps see it: clients per cluster, built lazily and cached.

Steps never build clients themselves: the toolbox does, from settings
(``clusters.NAME.kubeconfig`` / ``kube_context``, else ``KUBECONFIG``), so
tests hand the engine a toolbox pointing at stand-ins.  A factory given to
the constructor replaces the default for one kind of client.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from bot.core.config import Settings


class Toolbox:
    def __init__(self, settings: Settings, *, kubernetes: Callable[[str], Any] | None = None,
                 **factories: Callable[[str], Any]) -> None:
        self.settings = settings
        self._factories: dict[str, Callable[[str], Any]] = dict(factories)
        self._factories["kubernetes"] = kubernetes or self._connect_kubernetes
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def get(self, kind: str, cluster: str) -> Any:
        with self._lock:
            key = (kind, cluster)
            if key not in self._cache:
                factory = self._factories.get(kind)
                if factory is None:
                    raise LookupError(f"no {kind} client is configured")
                self._cache[key] = factory(cluster)
            return self._cache[key]

    def kubernetes(self, cluster: str) -> Any:
        return self.get("kubernetes", cluster)

    def _connect_kubernetes(self, cluster: str) -> Any:
        from integrations.clients.kubernetes import connect

        endpoints = self.settings.clusters.get(cluster) if hasattr(self.settings, "clusters") else None
        kubeconfig = (getattr(endpoints, "kubeconfig", None) if endpoints else None) or self.settings.kubeconfig
        context = getattr(endpoints, "kube_context", None) if endpoints else None
        return connect(kubeconfig, context)

    def close(self) -> None:
        with self._lock:
            for client in self._cache.values():
                close = getattr(client, "close", None)
                if callable(close):
                    close()
            self._cache.clear()
