"""A real kube-apiserver process on loopback, built from the ``k8s.io/kubernetes`` Go module.

The sandbox runs two main apiservers and one bypass apiserver on the same etcd, and the tests
run one per test session. Each serves TLS on a free port with the sandbox's certificates
(``bot.compose.sandbox.pki``), authenticates static bearer tokens, authorizes with RBAC, and keeps API
Priority and Fairness on with small concurrency limits, so that a flood on 2 cores is queued
and rejected for real. It is ready when ``/readyz`` answers 200.
"""

from __future__ import annotations

import signal
import ssl
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import httpx
import yaml

from bot.core import binaries
from bot.compose.sandbox.pki import ADMIN, ClusterPKI
from bot.compose.sandbox.process_base import LOOPBACK, ComponentError, Process, Workdir, free_port, log_tail, wait_until

SERVICE_ACCOUNT_ISSUER = "https://kubernetes.default.svc.cluster.local"


@dataclass(frozen=True)
class ApiserverLimits:
    """APF's total concurrency is the sum of the two in-flight limits, shared by priority levels."""

    max_requests_inflight: int = 10
    max_mutating_requests_inflight: int = 5


class KubeApiserver:
    """One kube-apiserver process: ``start()`` waits for ``/readyz``; ``stop()``/``kill()`` end it."""

    def __init__(self, name: str, *, etcd_servers: Sequence[str], pki: ClusterPKI, workdir: Path,
                 limits: ApiserverLimits | None = None, extra_args: Sequence[str] = (),
                 service_account_admission: bool = False) -> None:
        self.name = name
        self.etcd_servers = list(etcd_servers)
        self.pki = pki
        self._dir = Workdir(workdir, f"ib-{name}-")
        self.workdir = self._dir.path
        self.limits = limits or ApiserverLimits()
        self.extra_args = list(extra_args)
        self.service_account_admission = service_account_admission
        self.host = LOOPBACK
        self.port = free_port()
        self._proc: Process | None = None
        self.started_seconds: float | None = None

    @property
    def url(self) -> str:
        return f"https://{self.host}:{self.port}"

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def args(self) -> list[str]:
        admission = [] if self.service_account_admission else ["--disable-admission-plugins=ServiceAccount"]
        return [
            binaries.require("kube-apiserver"),
            f"--etcd-servers={','.join(self.etcd_servers)}",
            f"--bind-address={self.host}", f"--advertise-address={self.host}", f"--secure-port={self.port}",
            f"--tls-cert-file={self.pki.serving_cert}", f"--tls-private-key-file={self.pki.serving_key}",
            f"--client-ca-file={self.pki.ca_cert}",
            f"--token-auth-file={self.pki.token_file}",
            f"--service-account-issuer={SERVICE_ACCOUNT_ISSUER}",
            f"--service-account-key-file={self.pki.sa_public}",
            f"--service-account-signing-key-file={self.pki.sa_private}",
            "--service-cluster-ip-range=10.96.0.0/16",
            "--authorization-mode=RBAC",
            "--enable-priority-and-fairness=true",
            f"--max-requests-inflight={self.limits.max_requests_inflight}",
            f"--max-mutating-requests-inflight={self.limits.max_mutating_requests_inflight}",
            f"--cert-dir={self.workdir / 'certs'}",
            "--profiling=false", "--v=1",
            *admission, *self.extra_args,
        ]

    def start(self, timeout: float = 90.0) -> "KubeApiserver":
        began = time.monotonic()
        proc = self._proc = Process(self.args(), self.workdir / "kube-apiserver.log")
        try:
            wait_until(lambda: proc.alive_and(f"kube-apiserver {self.name}", self.ready),
                       timeout=timeout, interval=0.25, what=f"kube-apiserver {self.name} to answer /readyz")
        except Exception as exc:
            tail = log_tail(self.workdir / "kube-apiserver.log")
            self.stop()
            raise ComponentError(f"kube-apiserver {self.name} did not become ready: {exc}\n{tail}") from exc
        self.started_seconds = time.monotonic() - began
        return self

    def client(self, token: str | None = None, timeout: float = 5.0) -> httpx.Client:
        """An httpx client trusting the sandbox CA, as ``token``'s user (the admin by default)."""
        context = ssl.create_default_context(cafile=str(self.pki.ca_cert))
        return httpx.Client(base_url=self.url, verify=context, timeout=timeout, trust_env=False,
                            headers={"Authorization": f"Bearer {token or self.pki.token(ADMIN)}"})

    def ready(self) -> bool:
        try:
            with self.client(timeout=2.0) as c:
                return c.get("/readyz").status_code == 200
        except httpx.HTTPError:
            return False

    def running(self) -> bool:
        return self._proc is not None and self._proc.running()

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc and self._proc.running() else None

    def stop(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGTERM, timeout=15)
            self._proc = None

    def kill(self) -> None:
        if self._proc is not None:
            self._proc.stop(signal.SIGKILL, timeout=5)
            self._proc = None

    def restart(self) -> "KubeApiserver":
        self.stop()
        return self.start()

    def close(self) -> None:
        try:
            self.stop()
        finally:
            self._dir.remove()

    def version(self) -> str:
        with self.client() as c:
            return str(c.get("/version").json().get("gitVersion"))


def write_kubeconfig(path: Path, *, server: str, pki: ClusterPKI, user: str, context: str) -> Path:
    """A kubeconfig for ``user``'s token against ``server``, trusting the sandbox CA."""
    config: dict[str, Any] = {
        "apiVersion": "v1", "kind": "Config", "current-context": context,
        "clusters": [{"name": context, "cluster": {"server": server, "certificate-authority": str(pki.ca_cert)}}],
        "users": [{"name": user, "user": {"token": pki.token(user)}}],
        "contexts": [{"name": context, "context": {"cluster": context, "user": user}}],
    }
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    path.chmod(0o600)
    return path
