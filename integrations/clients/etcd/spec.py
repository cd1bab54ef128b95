"""What one etcd member *is*: its name, its URLs and where its data lives.

A member spec is plain data, shared by the client (which URLs to ask), the
snapshot restore (which ``--name``/``--initial-advertise-peer-urls`` to write
into a new data dir) and the process controllers (how to start it, on which
host).  Keeping it one frozen dataclass means a restore is just
``dataclasses.replace(spec, data_dir=new_dir)`` and nothing else changes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence
from urllib.parse import urlsplit

from bot.core.errors import ConfigError


@dataclass(frozen=True)
class EtcdMemberSpec:
    """One member of one etcd cluster.

    ``initial_cluster`` / ``initial_cluster_token`` / ``initial_cluster_state``
    are only read when a member starts from an *empty* data dir (etcd ignores
    them once the WAL exists), which is exactly the case after a snapshot
    restore into a new data dir.
    """

    name: str
    client_url: str
    peer_url: str
    data_dir: Path
    metrics_url: str | None = None
    host: str | None = None
    log_file: Path | None = None
    initial_cluster: str = ""
    initial_cluster_token: str = "etcd-cluster"
    initial_cluster_state: str = "new"
    extra_args: tuple[str, ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if not self.name:
            raise ConfigError("An etcd member needs a name (etcd --name).")
        for label, url in (("client_url", self.client_url), ("peer_url", self.peer_url)):
            _check_url(f"etcd member {self.name} {label}", url)
        if self.metrics_url:
            _check_url(f"etcd member {self.name} metrics_url", self.metrics_url)
        if self.initial_cluster_state not in ("new", "existing"):
            raise ConfigError(
                f"etcd member {self.name}: initial_cluster_state must be 'new' or 'existing', "
                f"not {self.initial_cluster_state!r}."
            )
        object.__setattr__(self, "data_dir", Path(self.data_dir))
        if self.log_file is not None:
            object.__setattr__(self, "log_file", Path(self.log_file))

    @property
    def effective_host(self) -> str:
        """The host to run commands on: ``host`` if set, else the client URL's host."""
        return self.host or (urlsplit(self.client_url).hostname or "localhost")

    def template_fields(self) -> dict[str, str]:
        """The member's fields as strings, for command templates (``{name}``, ``{host}``...)."""
        values = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        out = {k: ("" if v is None else (" ".join(v) if isinstance(v, tuple) else str(v))) for k, v in values.items()}
        out["host"] = self.effective_host
        return out

    def etcd_args(self) -> list[str]:
        """The command-line flags that start this member (without the binary).

        The metrics listener is separate from the client listener so that
        Prometheus scrapes (and ``/health`` probes) do not compete with client
        traffic, as in production kubeadm layouts.
        """
        args = [
            f"--name={self.name}",
            f"--data-dir={self.data_dir}",
            f"--listen-client-urls={self.client_url}",
            f"--advertise-client-urls={self.client_url}",
            f"--listen-peer-urls={self.peer_url}",
            f"--initial-advertise-peer-urls={self.peer_url}",
            f"--initial-cluster={self.initial_cluster or f'{self.name}={self.peer_url}'}",
            f"--initial-cluster-token={self.initial_cluster_token}",
            f"--initial-cluster-state={self.initial_cluster_state}",
            "--logger=zap",
            "--log-outputs=stderr",
        ]
        if self.metrics_url:
            args.append(f"--listen-metrics-urls={self.metrics_url}")
        args.extend(self.extra_args)
        return args


def initial_cluster(members: Sequence[EtcdMemberSpec]) -> str:
    """The ``--initial-cluster`` value: ``name=peer_url`` joined by commas."""
    return ",".join(f"{m.name}={m.peer_url}" for m in members)


def with_cluster(
    members: Sequence[EtcdMemberSpec], token: str, state: str = "new"
) -> list[EtcdMemberSpec]:
    """Return the members with ``initial_cluster``/token/state filled in consistently.

    Every member of a cluster must be started with the same initial-cluster
    string and token; building them in one place avoids a typo that makes one
    member form a cluster of its own.
    """
    names = [m.name for m in members]
    if len(set(names)) != len(names):
        raise ConfigError(f"etcd member names must be unique, got {names}.")
    ic = initial_cluster(members)
    return [
        dataclasses.replace(m, initial_cluster=ic, initial_cluster_token=token, initial_cluster_state=state)
        for m in members
    ]


def _check_url(label: str, url: str) -> None:
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.port is None:
        raise ConfigError(f"{label} must look like http://HOST:PORT, got {url!r}.")
