"""The sandbox cluster's certificates and credentials, made with ``cryptography``.

A real kube-apiserver serves TLS only and signs service-account tokens, so the sandbox makes,
once per sandbox, what a cluster installer (kubeadm) would: a CA, a serving certificate for
loopback shared by every apiserver behind the load balancer (so a client verifies the same
name whichever server HAProxy picks), a service-account signing key, and a static token file
with one user per role: an admin, the bot, and the drills' clients.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import secrets
from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID


@dataclass(frozen=True)
class StaticUser:
    """One line of ``--token-auth-file``: who a bearer token authenticates as."""

    name: str
    groups: tuple[str, ...] = ()
    token: str = field(default_factory=lambda: secrets.token_hex(16))

    def csv_line(self) -> str:
        groups = ",".join(self.groups)
        return f'{self.token},{self.name},{self.name},"{groups}"'


ADMIN = "sandbox-admin"
BOT = "incident-bot"


def sandbox_users(extra: tuple[StaticUser, ...] = ()) -> dict[str, StaticUser]:
    """The admin (``system:masters``), the bot (its own group, bound by RBAC) and any drill clients."""
    users = [StaticUser(ADMIN, ("system:masters", "system:authenticated")),
             StaticUser(BOT, ("incident-bot", "system:authenticated")), *extra]
    return {u.name: u for u in users}


def _key() -> ec.EllipticCurvePrivateKey:
    return ec.generate_private_key(ec.SECP256R1())


def _pem_key(key: ec.EllipticCurvePrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _name(common_name: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])


@dataclass(frozen=True)
class ClusterPKI:
    """Paths of the files the apiservers and the clients use."""

    ca_cert: Path
    serving_cert: Path
    serving_key: Path
    sa_public: Path
    sa_private: Path
    token_file: Path
    users: dict[str, StaticUser]
    ca_key: Path | None = None  # kept so that the sandbox can issue more certificates (``issue_certificate``)

    def token(self, user: str) -> str:
        return self.users[user].token


def make_pki(directory: Path, users: dict[str, StaticUser], *, days: int = 7) -> ClusterPKI:
    """Write the CA, the loopback serving pair, the service-account keys and the token file."""
    directory.mkdir(parents=True, exist_ok=True)
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    until = now + dt.timedelta(days=days)
    ca_key = _key()
    ca = (x509.CertificateBuilder().subject_name(_name("incident-bot-sandbox-ca")).issuer_name(_name("incident-bot-sandbox-ca"))
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now).not_valid_after(until)
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                       content_commitment=False, key_encipherment=False, data_encipherment=False,
                                       key_agreement=False, encipher_only=False, decipher_only=False), critical=True)
          .sign(ca_key, hashes.SHA256()))
    serving_key = _key()
    names: list[x509.GeneralName] = [x509.IPAddress(ipaddress.ip_address("127.0.0.1")), x509.DNSName("localhost"),
                                     x509.DNSName("kubernetes"), x509.DNSName("kubernetes.default"),
                                     x509.DNSName("kubernetes.default.svc")]
    serving = (x509.CertificateBuilder().subject_name(_name("kube-apiserver")).issuer_name(ca.subject)
               .public_key(serving_key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(until)
               .add_extension(x509.SubjectAlternativeName(names), critical=False)
               .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
               .sign(ca_key, hashes.SHA256()))
    sa_key = _key()
    pki = ClusterPKI(ca_cert=directory / "ca.crt", serving_cert=directory / "apiserver.crt",
                     serving_key=directory / "apiserver.key", sa_public=directory / "sa.pub",
                     sa_private=directory / "sa.key", token_file=directory / "tokens.csv", users=users,
                     ca_key=directory / "ca.key")
    (directory / "ca.key").write_bytes(_pem_key(ca_key))
    (directory / "ca.key").chmod(0o600)
    pki.ca_cert.write_bytes(ca.public_bytes(serialization.Encoding.PEM))
    pki.serving_cert.write_bytes(serving.public_bytes(serialization.Encoding.PEM))
    pki.serving_key.write_bytes(_pem_key(serving_key))
    pki.sa_private.write_bytes(_pem_key(sa_key))
    pki.sa_public.write_bytes(sa_key.public_key().public_bytes(serialization.Encoding.PEM,
                                                               serialization.PublicFormat.SubjectPublicKeyInfo))
    pki.token_file.write_text("".join(u.csv_line() + "\n" for u in users.values()))
    for secret in (pki.serving_key, pki.sa_private, pki.token_file):
        secret.chmod(0o600)
    return pki


def issue_certificate(pki: ClusterPKI, directory: Path, name: str, *, client: bool = False,
                      days: int = 7) -> tuple[Path, Path]:
    """A certificate from the sandbox CA: a serving one for 127.0.0.1 (the bot's admission webhook, which
    the kube-apiservers must trust), or a client one (what the apiservers present to that webhook)."""
    if pki.ca_key is None:
        raise ValueError("this ClusterPKI has no CA key to issue certificates with")
    ca_key = serialization.load_pem_private_key(pki.ca_key.read_bytes(), password=None)
    if not isinstance(ca_key, ec.EllipticCurvePrivateKey):  # make_pki writes an EC key; anything else is not ours
        raise ValueError(f"{pki.ca_key} is not the EC CA key this sandbox made")
    ca = x509.load_pem_x509_certificate(pki.ca_cert.read_bytes())
    now = dt.datetime.now(dt.UTC) - dt.timedelta(minutes=5)
    key = _key()
    builder = (x509.CertificateBuilder().subject_name(_name(name)).issuer_name(ca.subject)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now).not_valid_after(now + dt.timedelta(days=days)))
    if client:
        builder = builder.add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
    else:
        builder = (builder.add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1")),
                                                                      x509.DNSName("localhost")]), critical=False)
                   .add_extension(x509.ExtendedKeyUsage([x509.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False))
    cert = builder.sign(ca_key, hashes.SHA256())
    directory.mkdir(parents=True, exist_ok=True)
    cert_path, key_path = directory / f"{name}.crt", directory / f"{name}.key"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(_pem_key(key))
    key_path.chmod(0o600)
    return cert_path, key_path
