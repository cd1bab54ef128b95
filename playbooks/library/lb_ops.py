"""Load-balancer operations behind the apiserver failover and failback playbooks.

Plain functions over the ``LoadBalancer`` seam (``integrations.clients.haproxy``), so
the playbooks only declare *what* happens and in which order.  A cloud load
balancer or a kubeconfig switch can replace HAProxy by providing another
``LoadBalancer`` through the toolbox (kind ``loadbalancer``); nothing here
names HAProxy except the default factory.

Why the checks look the way they do:
* a bypass server is probed *directly* on ``/readyz`` before any change: a
  failover onto a bypass that is itself not ready turns a partial outage
  into a full one;
* the states before the change are recorded in the plan, because the only
  correct rollback/failback is "back to exactly what it was", not "ready";
* verification goes *through the LB's address* and compares the LB's own
  session counters, since a stand-in's ``X-Served-By`` header does not
  exist on a real apiserver.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import httpx

from bot.core.config import Settings
from bot.core.config.clusters import LoadBalancerSettings
from bot.core.errors import ConfigError, IntegrationError
from integrations.clients.haproxy import (
    HAProxyLoadBalancer,
    LoadBalancer,
    RuntimeClient,
    TargetState,
    parse_servers_state,
    save_server_state,
)

MODES = ("drain", "maint")


def lb_settings(settings: Settings, cluster: str) -> LoadBalancerSettings:
    """The cluster's load-balancer settings; a missing piece is a ConfigError naming the setting."""
    endpoints = settings.clusters.get(cluster)
    if endpoints is None:
        known = ", ".join(sorted(settings.clusters)) or "none"
        raise ConfigError(f"cluster `{cluster}` is not configured (clusters.{cluster}); configured clusters: {known}.")
    cfg = endpoints.loadbalancer
    prefix = f"clusters.{cluster}.loadbalancer"
    if not cfg.runtime:
        raise ConfigError(f"{prefix}.runtime is not set (the HAProxy admin socket path or HOST:PORT).")
    if not cfg.main:
        raise ConfigError(f"{prefix}.main lists no main apiserver server names.")
    if not cfg.bypass:
        raise ConfigError(f"{prefix}.bypass lists no bypass apiserver server names.")
    overlap = set(cfg.main) & set(cfg.bypass)
    if overlap:
        raise ConfigError(f"{prefix}: {', '.join(sorted(overlap))} is listed as both main and bypass.")
    return cfg


def open_lb(tools: Any, settings: Settings, cluster: str) -> LoadBalancer:
    """The toolbox's ``loadbalancer`` client for the cluster, else HAProxy from settings."""
    try:
        return tools.get("loadbalancer", cluster)
    except LookupError:
        pass
    cfg = lb_settings(settings, cluster)
    assert cfg.runtime is not None  # lb_settings refuses a load balancer without it
    return HAProxyLoadBalancer(RuntimeClient(cfg.runtime), state_file=cfg.state_file)


def servers_by_name(lb: LoadBalancer, cfg: LoadBalancerSettings) -> dict[str, dict[str, Any]]:
    """Every configured main/bypass server as plain data (name -> state, address, health, role).

    A configured name the LB does not know is an error: acting on a typo
    would silently leave a main server taking traffic.
    """
    found = {s.name: s for s in lb.list_servers(cfg.backend)}
    missing = [n for n in [*cfg.main, *cfg.bypass] if n not in found]
    if missing:
        raise IntegrationError(f"the load balancer has no server {', '.join(missing)} in backend {cfg.backend} "
                               f"(it has {', '.join(sorted(found)) or 'none'}).")
    out: dict[str, dict[str, Any]] = {}
    for name in [*cfg.main, *cfg.bypass]:
        s = found[name]
        out[name] = {"role": "main" if name in cfg.main else "bypass", "address": s.address,
                     "state": s.state.value, "healthy": s.healthy, "detail": s.detail}
    return out


def server_url(cfg: LoadBalancerSettings, address: str) -> str:
    return f"{cfg.server_scheme}://{address}"


def probe_ready(url: str, cfg: LoadBalancerSettings) -> tuple[bool, str]:
    """``GET <url><ready_path>``: (True, "200 ok") or (False, why).  Only the status code decides."""
    target = url.rstrip("/") + cfg.ready_path
    try:
        with httpx.Client(timeout=cfg.probe_timeout_seconds, verify=cfg.verify_tls, trust_env=False,
                          headers={"Connection": "close"}) as client:
            resp = client.get(target)
    except httpx.HTTPError as exc:
        return False, f"{target}: {type(exc).__name__} {str(exc) or ''}".strip()
    body = " ".join(resp.text.split())[:120]
    return resp.status_code == 200, f"{target}: {resp.status_code} {body}".strip()


def bypass_readiness(servers: Mapping[str, Mapping[str, Any]], cfg: LoadBalancerSettings) -> dict[str, dict[str, Any]]:
    """Probe every bypass server directly; name -> {ok, detail}."""
    out = {}
    for name in cfg.bypass:
        ok, detail = probe_ready(server_url(cfg, servers[name]["address"]), cfg)
        out[name] = {"ok": ok, "detail": detail}
    return out


def current_states(lb: LoadBalancer, cfg: LoadBalancerSettings) -> dict[str, str]:
    states = lb.read_states(cfg.backend)
    return {n: states[n].value for n in [*cfg.main, *cfg.bypass] if n in states}


def apply_states(lb: LoadBalancer, cfg: LoadBalancerSettings, wanted: Mapping[str, str],
                 *, cut_sessions: bool = False) -> dict[str, str]:
    """Put each server in its wanted state, skipping those already there; returns what was changed.

    ``HAProxyLoadBalancer.set_state`` reads the state back and writes the
    server-state-file, so the change survives an HAProxy reload.  With
    ``cut_sessions`` the open sessions of servers put in maint are shut
    (``on-marked-down shutdown-sessions`` does not fire on an admin change).
    """
    before = current_states(lb, cfg)
    changed: dict[str, str] = {}
    for name, state in wanted.items():
        if before.get(name) != state:
            lb.set_state(cfg.backend, name, TargetState.parse(state))
            changed[name] = f"{before.get(name)} -> {state}"
        if cut_sessions and state == TargetState.MAINT.value:
            lb.close_sessions(cfg.backend, name)
    return changed


def states_match(lb: LoadBalancer, cfg: LoadBalancerSettings, wanted: Mapping[str, str]) -> bool:
    now = current_states(lb, cfg)
    return all(now.get(n) == s for n, s in wanted.items())


def _session_totals(lb: LoadBalancer, backend: str) -> dict[str, int] | None:
    runtime = getattr(lb, "runtime", None)
    if runtime is None or not hasattr(runtime, "show_stat"):
        return None
    return {r.name: r.total_sessions for r in runtime.show_stat() if r.is_server and r.proxy == backend}


def traffic_check(lb: LoadBalancer, cfg: LoadBalancerSettings, *, main_draining: bool = False) -> dict[str, Any]:
    """Send ``verify_requests`` fresh requests to ``frontend_url + ready_path`` and see who took them.

    ``ok`` when every answer is 200 and, where the LB exposes session
    counters, the bypass servers took all of them and the main servers none.
    ``main_draining``: the main servers are in ``drain``, which keeps what is
    already theirs (connections opened before, requests queued or retrying
    for them; HAProxy counts a session for each), so their counters may still
    move: only the fresh requests' landing on the bypass is judged.
    """
    if not cfg.frontend_url:
        raise ConfigError("loadbalancer.frontend_url is not set: cannot verify traffic through the LB.")
    before = _session_totals(lb, cfg.backend)
    answers: list[str] = []
    served_by: list[str] = []
    all_ok = True
    for _ in range(cfg.verify_requests):
        ok, detail = probe_ready(cfg.frontend_url, cfg)
        all_ok = all_ok and ok
        answers.append(detail)
    # one more request for the stand-ins' X-Served-By (absent on real apiservers; informative only)
    try:
        with httpx.Client(timeout=cfg.probe_timeout_seconds, verify=cfg.verify_tls, trust_env=False,
                          headers={"Connection": "close"}) as client:
            who = client.get(cfg.frontend_url.rstrip("/") + cfg.ready_path).headers.get("X-Served-By")
        if who:
            served_by.append(who)
    except httpx.HTTPError:
        pass
    result: dict[str, Any] = {"answers_ok": all_ok, "last_answer": answers[-1], "served_by": served_by}
    after = _session_totals(lb, cfg.backend)
    if before is not None and after is not None:
        bypass_delta = sum(after.get(n, 0) - before.get(n, 0) for n in cfg.bypass)
        main_delta = sum(after.get(n, 0) - before.get(n, 0) for n in cfg.main)
        result.update(bypass_sessions=bypass_delta, main_sessions=main_delta)
        result["ok"] = all_ok and bypass_delta >= cfg.verify_requests and (main_delta == 0 or main_draining)
    else:
        result["ok"] = all_ok and (not served_by or all(s in cfg.bypass for s in served_by))
    return result


def describe_states(states: Mapping[str, Any]) -> str:
    return ", ".join(f"{n} {v['state'] if isinstance(v, Mapping) else v}" for n, v in states.items())


def persist(lb: LoadBalancer, cfg: LoadBalancerSettings) -> Path | None:
    """Dump the LB's server states into the server-state-file (HAProxy reads it at a reload)."""
    runtime = getattr(lb, "runtime", None)
    if not cfg.state_file or runtime is None:
        return None
    return save_server_state(runtime, cfg.state_file)


def persisted(lb: LoadBalancer, cfg: LoadBalancerSettings) -> bool:
    """True when the state file holds the current states of our servers (or there is nothing to persist)."""
    if not cfg.state_file or getattr(lb, "runtime", None) is None:
        return True
    path = Path(cfg.state_file)
    if not path.is_file():
        return False
    try:
        saved = parse_servers_state(path.read_text(), source=str(path))
    except IntegrationError:
        return False
    in_file = {s.name: s.admin.value for s in saved if s.backend == cfg.backend}
    return all(in_file.get(n) == v for n, v in current_states(lb, cfg).items())
