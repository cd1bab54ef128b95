"""The checks a black-box prober runs against one cluster.

Each builder takes an already-built client by duck type:

* apiserver: anything with ``health(endpoint) -> (ok, status, body, seconds)``
  (``integrations.clients.kubernetes.KubernetesClient``);
* write path: anything with ``write_probe(namespace) -> steps`` (the same client,
  built from the kubeconfig the bot writes with);
* etcd: anything with ``health(endpoint) -> (healthy, reason)`` and
  ``status(endpoint) -> (leader_id, member_id, raft_term, db_size, errors)``
  (``integrations.clients.etcd.EtcdClient``).

Target names are stable strings (``apiserver https://10.0.0.1:6443/readyz``):
they key the stored results and the ``/metrics`` series.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any


class ProbeFailed(Exception):
    """A check's answer was a failure (the message is the evidence)."""


@dataclass(frozen=True)
class Check:
    cluster: str
    target: str
    component: str
    run: Callable[[], str]


def _excerpt(text: str, limit: int = 200) -> str:
    one_line = " ".join((text or "").split())
    return one_line if len(one_line) <= limit else one_line[:limit - 3] + "..."


def apiserver_checks(cluster: str, url: str, client: Any, endpoints: tuple[str, ...] = ("readyz", "livez")) -> list[Check]:
    """``/readyz`` and ``/livez`` of one apiserver; a non-200 answer is a failure with its body."""

    def make(endpoint: str) -> Callable[[], str]:
        def run() -> str:
            health = client.health(endpoint)
            if not health.ok:
                raise ProbeFailed(f"/{endpoint} answered HTTP {health.status}: {_excerpt(health.body)}")
            return f"/{endpoint} HTTP {health.status}"
        return run

    base = url.rstrip("/")
    return [Check(cluster, f"apiserver {base}/{e}", "apiserver", make(e)) for e in endpoints]


def write_path_check(cluster: str, client: Any, namespace: str) -> Check:
    """Create, read back and delete a ConfigMap: the apiserver -> etcd write path works end to end."""

    def run() -> str:
        result = client.write_probe(namespace)
        return ", ".join(f"{s.operation} {s.seconds * 1000:.0f} ms" for s in result.steps)

    return Check(cluster, f"write-path {namespace}", "apiserver", run)


def etcd_checks(cluster: str, client: Any, endpoint: str) -> list[Check]:
    """``/health`` and ``/v3/maintenance/status`` of one etcd member."""

    def health() -> str:
        answer = client.health(endpoint)
        if not answer.healthy:
            raise ProbeFailed(f"/health: {answer.reason or 'unhealthy'}")
        return "/health true"

    def status() -> str:
        answer = client.status(endpoint)
        if answer.errors:
            raise ProbeFailed(f"status reports errors: {', '.join(answer.errors)}")
        if not answer.leader_id:
            raise ProbeFailed(f"member {answer.member_id:x} has no leader (raft term {answer.raft_term})")
        return (f"leader {answer.leader_id:x}{' (self)' if answer.leader_id == answer.member_id else ''}, "
                f"raft term {answer.raft_term}, db {answer.db_size} bytes")

    base = endpoint.rstrip("/")
    return [Check(cluster, f"etcd {base}/health", "etcd", health),
            Check(cluster, f"etcd {base}/status", "etcd", status)]
