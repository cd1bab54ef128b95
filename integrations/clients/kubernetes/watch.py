"""A Kubernetes watch as an iterator of events, ended by the server's ``timeoutSeconds`` or by the caller.

Following one object with a watch costs the apiserver one request however long the wait is,
where polling costs one per look; the customer probes use it for that (their share of the
apiserver's requests is a goal). The stream is read line by line (one JSON event per line) from
the connection the generated client leaves unread (``preload_content=False``), and closed as soon
as the caller stops iterating, so a probe that saw its pod running does not hold the watch open.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator
from typing import Any, Mapping

import urllib3

from integrations.clients.kubernetes.transport import ApiTransport, KubernetesApiError, KubernetesTimeout

IDLE_GRACE_SECONDS = 5.0  # the read timeout beyond the server's own end of the watch


def watch_events(client: ApiTransport, path: str, *, operation: str, query: Mapping[str, Any],
                 seconds: float) -> Iterator[dict[str, Any]]:
    """Events (``{"type": ..., "object": ...}``) of a collection ``path`` for at most ``seconds``."""
    server_seconds = max(1, math.ceil(seconds))
    params = [*query.items(), ("watch", "true"), ("timeoutSeconds", str(server_seconds)),
              ("allowWatchBookmarks", "false")]
    api = client.api_client
    url = client.host + path
    try:
        method, full_url, headers, body, post = api.param_serialize(
            method="GET", resource_path=path, query_params=params, header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"])
        url = full_url
        response = api.call_api(method, full_url, header_params=headers, body=body, post_params=post,
                                _request_timeout=(client.timeout, server_seconds + IDLE_GRACE_SECONDS))
    except urllib3.exceptions.HTTPError as e:
        raise KubernetesApiError(f"Kubernetes API {operation} failed: cannot reach {url} ({e})",
                                 operation=operation, url=url) from e
    raw = response.response
    try:
        if response.status != 200:
            text = (raw.read() or b"").decode("utf-8", errors="replace")
            raise KubernetesApiError(f"Kubernetes API {operation} failed at {url}: HTTP {response.status}: "
                                     f"{text[:200]}", operation=operation, url=url, status=response.status)
        pending = b""
        try:
            for chunk in raw.stream(8192, decode_content=True):
                pending += chunk
                while b"\n" in pending:
                    line, pending = pending.split(b"\n", 1)
                    if line.strip():
                        yield json.loads(line)
        except urllib3.exceptions.ReadTimeoutError as e:
            raise KubernetesTimeout(f"Kubernetes API {operation} sent nothing for {server_seconds + IDLE_GRACE_SECONDS:g}s "
                                    f"at {url}", operation=operation, url=url) from e
        except urllib3.exceptions.ProtocolError:
            return  # the server ended the stream mid-chunk (it closes watches at timeoutSeconds)
    finally:
        raw.close()
        raw.release_conn()
