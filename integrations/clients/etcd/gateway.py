"""The etcd v3 JSON gRPC gateway, spoken with httpx.

Why the gateway and not a gRPC library: it needs no generated stubs, works
with every etcd from 3.3 on under ``/v3/``, and returns errors as JSON.  Its
quirks (all POST, keys and values base64, int64 as decimal strings) are
contained here and in ``models``.

Every failure becomes an ``IntegrationError`` (or ``IntegrationTimeout``) whose
message names the member URL, because the person reading it at 3 a.m. needs
to know *which* member did not answer.
"""

from __future__ import annotations

import base64
from typing import Any

import httpx

from bot.core.errors import IntegrationError, IntegrationTimeout

DEFAULT_TIMEOUT = 2.0


def b64(text: str | bytes) -> str:
    """Base64 of a key or value, as the gateway wants it."""
    raw = text.encode() if isinstance(text, str) else text
    return base64.b64encode(raw).decode("ascii")


def unb64(text: str) -> bytes:
    return base64.b64decode(text)


def prefix_range_end(prefix: str | bytes) -> bytes:
    """The ``range_end`` that selects every key starting with ``prefix``.

    Same rule as ``clientv3.GetPrefixRangeEnd``: increment the last byte that
    is not 0xff and cut after it; an all-0xff (or empty) prefix means "to the
    end of the key space", spelled ``\\x00``.
    """
    raw = bytearray(prefix.encode() if isinstance(prefix, str) else prefix)
    for i in range(len(raw) - 1, -1, -1):
        if raw[i] < 0xFF:
            raw[i] += 1
            return bytes(raw[: i + 1])
    return b"\x00"


class Gateway:
    """Low-level POST/GET against one member at a time, with one shared httpx client."""

    def __init__(self, *, timeout: float = DEFAULT_TIMEOUT, transport: httpx.BaseTransport | None = None) -> None:
        self.timeout = timeout
        self._http = httpx.Client(timeout=timeout, transport=transport, trust_env=False)

    def close(self) -> None:
        self._http.close()

    def get_text(self, endpoint: str, path: str, *, timeout: float | None = None) -> tuple[int, str]:
        """GET ``path`` on a member; return (status code, body).  Non-2xx is not an error here."""
        url = endpoint.rstrip("/") + path
        try:
            resp = self._http.get(url, timeout=timeout or self.timeout)
        except httpx.TimeoutException as exc:
            raise IntegrationTimeout(
                f"etcd member {endpoint} did not answer GET {path} within {timeout or self.timeout:g} s."
            ) from exc
        except httpx.HTTPError as exc:
            raise IntegrationError(f"etcd member {endpoint} is unreachable (GET {path}): {_why(exc)}.") from exc
        return resp.status_code, resp.text

    def post(self, endpoint: str, path: str, body: dict[str, Any] | None = None, *, timeout: float | None = None) -> dict[str, Any]:
        """POST a JSON body to a gateway path and return the decoded JSON answer."""
        url = endpoint.rstrip("/") + path
        t = timeout or self.timeout
        try:
            resp = self._http.post(url, json=body or {}, timeout=t)
        except httpx.TimeoutException as exc:
            raise IntegrationTimeout(f"etcd member {endpoint} did not answer {path} within {t:g} s.") from exc
        except httpx.HTTPError as exc:
            raise IntegrationError(f"etcd member {endpoint} is unreachable ({path}): {_why(exc)}.") from exc
        try:
            data = resp.json()
        except ValueError as exc:
            raise IntegrationError(
                f"etcd member {endpoint} answered {path} with HTTP {resp.status_code} and no JSON: {resp.text[:200]!r}."
            ) from exc
        if resp.status_code != 200:
            message = data.get("message") or data.get("error") if isinstance(data, dict) else None
            raise IntegrationError(
                f"etcd member {endpoint} refused {path} (HTTP {resp.status_code}): {message or resp.text[:200]}."
            )
        if not isinstance(data, dict):
            raise IntegrationError(f"etcd member {endpoint} answered {path} with unexpected JSON: {data!r:.200}.")
        if "error" in data and "result" not in data:
            raise IntegrationError(f"etcd member {endpoint} refused {path}: {data.get('message') or data['error']}.")
        return data


def _why(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    if "refused" in text.lower():
        return "connection refused"
    return text
