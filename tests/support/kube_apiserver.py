"""A real kube-apiserver (and its etcd) for the tests: one per test session, shared.

Starting kube-apiserver takes seconds, so the session starts one on a one-member etcd 3.6, with
the sandbox's certificates and users, the bot's least-privilege RBAC applied, and hands out
kubeconfigs and clients. Tests that change cluster-wide objects clean up after themselves
(names are unique per test), so sharing is safe.
"""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from bot.compose.sandbox import cluster_setup
from bot.compose.sandbox.controlplane import DRILL_USERS, FLOOD_USER
from bot.compose.sandbox.kube_apiserver import KubeApiserver, write_kubeconfig
from bot.compose.sandbox.pki import ADMIN, BOT, ClusterPKI, make_pki, sandbox_users
from bot.compose.sandbox.processes import EtcdCluster
from integrations.clients.kubernetes import KubernetesClient, connect


@dataclass
class RealCluster:
    """The session's kube-apiserver: URL, CA, tokens, and kubeconfigs/clients for each user."""

    server: KubeApiserver
    etcd: EtcdCluster
    pki: ClusterPKI
    root: Path

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def ca_file(self) -> Path:
        return self.pki.ca_cert

    @property
    def admin_token(self) -> str:
        return self.pki.token(ADMIN)

    @property
    def bot_token(self) -> str:
        return self.pki.token(BOT)

    def kubeconfig(self, path: Path, token: str | None = None, *, user: str = ADMIN) -> Path:
        """A kubeconfig for ``user`` (or for a raw bearer ``token``, e.g. a ServiceAccount's)."""
        if token is None:
            return write_kubeconfig(path, server=self.url, pki=self.pki, user=user, context="real")
        config_path = write_kubeconfig(path, server=self.url, pki=self.pki, user=ADMIN, context="real")
        config_path.write_text(config_path.read_text().replace(self.admin_token, token))
        return config_path

    def client(self, user: str = ADMIN, *, timeout: float = 10.0) -> KubernetesClient:
        return KubernetesClient.from_host(self.url, self.pki.token(user), ca_cert=str(self.ca_file), timeout=timeout)

    def admin(self) -> KubernetesClient:
        return self.client(ADMIN)


@pytest.fixture(scope="session")
def kube_apiserver() -> Iterator[RealCluster]:
    """A running kube-apiserver (built from k8s.io/kubernetes by setup) on a one-member etcd 3.6."""
    root = Path(tempfile.mkdtemp(prefix="ib-kube-"))
    pki = make_pki(root / "pki", sandbox_users(DRILL_USERS))
    etcd = EtcdCluster(1, workdir=root / "etcd").start()
    server = KubeApiserver("test", etcd_servers=etcd.endpoints, pki=pki, workdir=root / "apiserver")
    try:
        server.start()
        cluster = RealCluster(server, etcd, pki, root)
        admin = cluster.admin()
        try:
            cluster_setup.apply_all(admin, [
                *cluster_setup.bot_rbac_manifests(), cluster_setup.DRILL_READER_ROLE,
                cluster_setup.reader_binding("drill-clients-view", [g for g in FLOOD_USER.groups
                                                                    if g.startswith("system:serviceaccounts:")]),
            ])
        finally:
            admin.close()
        yield cluster
    finally:
        server.stop()
        etcd.stop_all()
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def bot_kubeconfig(kube_apiserver: RealCluster, tmp_path: Path) -> Path:
    """A kubeconfig as the bot's own least-privilege user."""
    return kube_apiserver.kubeconfig(tmp_path / "bot.kubeconfig", user=BOT)


@pytest.fixture
def admin_kube(kube_apiserver: RealCluster) -> Iterator[KubernetesClient]:
    client = kube_apiserver.admin()
    yield client
    client.close()


def connect_as(kubeconfig: Path) -> KubernetesClient:
    return connect(str(kubeconfig), timeout=10.0)
