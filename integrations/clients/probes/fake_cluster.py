"""A stand-in for the customer probes' view of a cluster: pods that a pretend scheduler binds.

``FakeWorkloadCluster`` answers ``create_object``/``get_object``/``request``/``watch`` like the
Kubernetes client for pods and nodes: a created pod is bound after ``schedule_after`` reads
(or watch steps) and runs after ``run_after`` more (``None``: never, a stuck scheduler or silent nodes), and
a DELETE removes it. Unit tests of the probes use it; the real thing is exercised against the
sandbox's kube-scheduler and kwok nodes.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass
class _Result:
    status: int
    body: Any

    def json(self) -> Any:
        return self.body


@dataclass
class FakeWorkloadCluster:
    schedule_after: int | None = 1
    run_after: int | None = 1
    nodes: dict[str, bool] = field(default_factory=lambda: {"node-1": True, "node-2": True})
    pods: dict[str, dict[str, Any]] = field(default_factory=dict)
    deleted: list[str] = field(default_factory=list)
    _reads: dict[str, int] = field(default_factory=dict)
    event_seconds: float = 0.05  # how long each step of a watched pod takes
    tick: Callable[[float], None] = lambda seconds: None  # advances the test's clock
    watches: int = 0

    def create_object(self, manifest: dict[str, Any], *, exist_ok: bool = False) -> dict[str, Any]:
        name = manifest["metadata"]["name"]
        self.pods[name] = {**manifest, "status": {"phase": "Pending"}}
        self._reads[name] = 0
        return self.pods[name]

    def get_object(self, api_version: str, kind: str, name: str, namespace: str | None = None) -> dict | None:
        pod = self.pods.get(name)
        if pod is None:
            return None
        self._reads[name] += 1
        reads = self._reads[name]
        if self.schedule_after is not None and reads >= self.schedule_after:
            pod["spec"]["nodeName"] = next(iter(self.nodes))
            if self.run_after is not None and reads >= self.schedule_after + self.run_after:
                pod["status"] = {"phase": "Running", "conditions": [{"type": "Ready", "status": "True"}]}
        return pod

    def watch(self, path: str, *, operation: str, query: dict[str, Any], seconds: float) -> Iterator[dict[str, Any]]:
        """The pod's changes as watch events: one per step of the pretend scheduler and node, each taking
        ``event_seconds`` on ``tick``; a pod that stops changing ends the stream at ``seconds`` (the server's
        ``timeoutSeconds``)."""
        self.watches += 1
        name = query["fieldSelector"].split("=", 1)[1]
        waited, last = 0.0, None
        while waited + self.event_seconds <= seconds:
            self.tick(self.event_seconds)
            waited += self.event_seconds
            pod = self.get_object("v1", "Pod", name)
            if pod is None:
                yield {"type": "DELETED", "object": last or {}}
                return
            state = repr(pod)
            if state != last:
                last = state
                yield {"type": "MODIFIED", "object": copy.deepcopy(pod)}
        self.tick(seconds - waited)

    def request(self, method: str, path: str, **kwargs: Any) -> _Result:
        if method == "DELETE":
            name = path.rsplit("/", 1)[-1]
            found = self.pods.pop(name, None)
            self.deleted.append(name)
            return _Result(200 if found else 404, {})
        if method == "GET" and path == "/api/v1/nodes":
            return _Result(200, {"items": [
                {"metadata": {"name": n}, "status": {"conditions": [{"type": "Ready", "status": "True" if ok else "Unknown"}]}}
                for n, ok in self.nodes.items()]})
        raise NotImplementedError(f"{method} {path}")
