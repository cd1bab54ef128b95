"""A client for one etcd cluster, given its members' client URLs.

It asks each member separately on purpose: during an incident the question is
rarely "what is the value of key k" but "which members answer, who do they
think leads, do they agree".  A load-balancing gRPC client would hide exactly
that.  Reads that need a single answer (member list, alarms, key counts) try
the members in order and return the first answer, so one dead member does not
block them.
"""

from __future__ import annotations

import json
import re
import time
from concurrent.futures import ThreadPoolExecutor
from typing import Sequence

import httpx

from bot.core.errors import ConfigError, IntegrationError, IntegrationTimeout

from .cli import error_line, find_binary, run_cli
from .gateway import DEFAULT_TIMEOUT, Gateway, b64, prefix_range_end, unb64
from .models import (
    Alarm,
    ClusterSummary,
    HashKV,
    Member,
    MemberHealth,
    MemberReport,
    MemberStatus,
    as_int,
)


class EtcdClient:
    """Health, status, membership, alarms, counts and hashes of one etcd cluster.

    ``timeout`` bounds every HTTP call (seconds); ``cli_timeout`` bounds every
    etcdctl run.  Both are short by default because an incident bot that waits
    30 s for a dead member is itself an outage.
    """

    def __init__(
        self,
        endpoints: Sequence[str],
        *,
        timeout: float = DEFAULT_TIMEOUT,
        cli_timeout: float = 10.0,
        etcdctl: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        cleaned = [e.rstrip("/") for e in endpoints if e and e.strip()]
        if not cleaned:
            raise ConfigError("An etcd client needs at least one member client URL.")
        self.endpoints: tuple[str, ...] = tuple(cleaned)
        self.timeout = timeout
        self.cli_timeout = cli_timeout
        self._etcdctl = etcdctl
        self._gw = Gateway(timeout=timeout, transport=transport)

    # -- lifecycle -----------------------------------------------------------------

    def close(self) -> None:
        self._gw.close()

    def __enter__(self) -> "EtcdClient":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- per member ----------------------------------------------------------------

    def health(self, endpoint: str) -> MemberHealth:
        """``GET /health`` on one member.

        A member that answers ``{"health":"false"}`` (no leader, no quorum) is
        an answer, returned with ``healthy=False``; a member that does not
        answer at all raises, because then we know nothing.
        """
        started = time.monotonic()
        code, text = self._gw.get_text(endpoint, "/health")
        took = time.monotonic() - started
        try:
            body = json.loads(text)
        except ValueError:
            raise IntegrationError(
                f"etcd member {endpoint} answered /health with HTTP {code} and no JSON: {text[:200]!r}."
            ) from None
        healthy = code == 200 and str(body.get("health")).lower() == "true"
        reason = "" if healthy else (body.get("reason") or f"/health said {text.strip()[:100]} (HTTP {code})")
        return MemberHealth(endpoint=endpoint, healthy=healthy, reason=reason, took_seconds=took)

    def status(self, endpoint: str) -> MemberStatus:
        """``/v3/maintenance/status``: version, db size, leader, raft index/term, member id.

        Served locally by the member, so it answers even without quorum
        (leader then reads 0).
        """
        return MemberStatus.from_gateway(endpoint, self._gw.post(endpoint, "/v3/maintenance/status"))

    def hash(self, endpoint: str) -> int:
        """``/v3/maintenance/hash``: a hash of the member's whole backend file.

        Useful to see that one member's file changed; it is *not* comparable
        across members (use ``hashkv`` for that).
        """
        return as_int(self._gw.post(endpoint, "/v3/maintenance/hash").get("hash"))

    # -- first member that answers -------------------------------------------------

    def member_list(self, endpoint: str | None = None) -> list[Member]:
        body = self._first(endpoint, "/v3/cluster/member/list", {})
        return [Member.from_gateway(m) for m in body.get("members") or ()]

    def alarms(self, endpoint: str | None = None) -> list[Alarm]:
        """Active alarms (``{}`` from the gateway means none)."""
        body = self._first(endpoint, "/v3/maintenance/alarm", {"action": "GET"})
        return [Alarm.from_gateway(a) for a in body.get("alarms") or ()]

    def count_keys(self, prefix: str, *, endpoint: str | None = None, serializable: bool = False) -> int:
        """The number of keys under ``prefix`` (``etcdctl get --count-only`` does not exist in 3.4).

        ``serializable=True`` answers from the member's local state, which
        works without quorum (a linearizable read would hang until timeout).
        """
        body = {
            "key": b64(prefix),
            "range_end": b64(prefix_range_end(prefix)),
            "count_only": True,
            "serializable": serializable,
        }
        return as_int(self._first(endpoint, "/v3/kv/range", body).get("count"))

    def keys(self, prefix: str, *, endpoint: str | None = None, limit: int = 0) -> list[str]:
        """Key names under ``prefix`` (keys only, no values), sorted as etcd sorts them."""
        body = {"key": b64(prefix), "range_end": b64(prefix_range_end(prefix)), "keys_only": True, "limit": limit}
        data = self._first(endpoint, "/v3/kv/range", body)
        return [unb64(kv["key"]).decode(errors="replace") for kv in data.get("kvs") or ()]

    def get(self, key: str, *, endpoint: str | None = None) -> bytes | None:
        data = self._first(endpoint, "/v3/kv/range", {"key": b64(key)})
        kvs = data.get("kvs") or ()
        return unb64(kvs[0].get("value", "")) if kvs else None

    def put(self, key: str, value: str | bytes, *, endpoint: str | None = None) -> int:
        """Write one key; return the cluster revision after the write."""
        data = self._first(endpoint, "/v3/kv/put", {"key": b64(key), "value": b64(value)})
        return as_int((data.get("header") or {}).get("revision"))

    # -- CLI-backed ----------------------------------------------------------------

    def hashkv(self, endpoints: Sequence[str] | None = None, *, revision: int = 0) -> dict[str, HashKV]:
        """``etcdctl endpoint hashkv`` on each endpoint (all by default).

        The gateway has no hashkv in 3.4 (404), so this runs the CLI.  With
        ``revision`` > 0 the hash covers the key space up to that revision,
        which lets a restore be compared with the cluster it came from even
        after later writes.  Any endpoint that fails makes the whole call
        raise, naming the failing endpoints: a partial hash comparison would
        be a false "consistent".
        """
        eps = list(endpoints or self.endpoints)
        binary = self._etcdctl_binary()
        args = [
            binary,
            f"--endpoints={','.join(eps)}",
            f"--dial-timeout={self.timeout:g}s",
            f"--command-timeout={max(self.timeout, 1.0):g}s",
            "endpoint",
            "hashkv",
            "-w",
            "json",
        ]
        if revision:
            args.append(f"--rev={revision}")
        res = run_cli(args, timeout=self.cli_timeout, what=f"etcdctl endpoint hashkv on {', '.join(eps)}", check=False)
        if res.returncode != 0:
            failed = re.findall(r"Failed to get the hash of endpoint (\S+) \(([^)]*)\)", res.stderr)
            detail = "; ".join(f"{ep} ({why})" for ep, why in failed) or f"{', '.join(eps)}: {error_line(res.stderr, res.stdout)}"
            raise IntegrationError(f"etcdctl endpoint hashkv failed for {detail}.")
        try:
            rows = json.loads(res.stdout)
        except ValueError as exc:
            raise IntegrationError(f"etcdctl endpoint hashkv printed no JSON: {res.stdout[:200]!r}.") from exc
        out: dict[str, HashKV] = {}
        for row in rows:
            hk = row.get("HashKV") or {}
            header = hk.get("header") or {}
            ep = str(row.get("Endpoint", "")).rstrip("/")
            out[ep] = HashKV(
                endpoint=ep,
                hash=as_int(hk.get("hash")),
                revision=as_int(header.get("revision")),
                compact_revision=as_int(hk.get("compact_revision"), -1),
                member_id=as_int(header.get("member_id")),
            )
        missing = [ep for ep in eps if ep.rstrip("/") not in out]
        if missing:
            raise IntegrationError(f"etcdctl endpoint hashkv gave no answer for {', '.join(missing)}.")
        return out

    # -- the one-glance summary ----------------------------------------------------

    def health_all(self) -> list[MemberReport]:
        """Health and status of every configured member; never raises, errors are recorded.

        Members are asked in parallel so that the whole answer takes one
        timeout, not one per dead member.
        """
        with ThreadPoolExecutor(max_workers=len(self.endpoints)) as pool:
            return list(pool.map(self._report, self.endpoints))

    def _report(self, ep: str) -> MemberReport:
        try:
            health = self.health(ep)
            status = self.status(ep)
        except IntegrationError as exc:
            return MemberReport(endpoint=ep, healthy=False, status=None, error=_short(exc))
        return MemberReport(endpoint=ep, healthy=health.healthy, status=status, error=health.reason)

    def cluster_summary(self) -> ClusterSummary:
        """Members healthy/total, quorum, leader id, and whether exactly one leader is seen.

        ``leaders_seen`` holds the distinct leader ids reported by the members
        that answered: one non-zero id means one leader; several ids mean a
        split view (e.g. a partitioned old leader); ``(0,)`` means no leader.
        """
        reports = self.health_all()
        leaders = sorted({r.status.leader_id for r in reports if r.status is not None})
        leader = leaders[0] if len(leaders) == 1 else 0
        return ClusterSummary(
            members_total=len(self.endpoints),
            members_healthy=sum(1 for r in reports if r.healthy),
            leader_id=leader,
            leaders_seen=tuple(leaders),
            members=tuple(reports),
        )

    # -- helpers -------------------------------------------------------------------

    def _first(self, endpoint: str | None, path: str, body: dict) -> dict:
        """POST to ``endpoint`` or to the first configured member that answers."""
        if endpoint:
            return self._gw.post(endpoint, path, body)
        errors: list[str] = []
        timeouts = 0
        for ep in self.endpoints:
            try:
                return self._gw.post(ep, path, body)
            except IntegrationTimeout as exc:
                timeouts += 1
                errors.append(str(exc))
            except IntegrationError as exc:
                errors.append(str(exc))
        cls = IntegrationTimeout if timeouts == len(self.endpoints) else IntegrationError
        raise cls(f"No etcd member answered {path}: " + " ".join(errors))

    def _etcdctl_binary(self) -> str:
        found = find_binary("etcdctl", self._etcdctl)
        if not found:
            raise ConfigError(f"etcdctl was not found ({self._etcdctl or 'not on PATH'}).")
        return found


def _short(exc: Exception) -> str:
    return str(exc).rstrip(".")
