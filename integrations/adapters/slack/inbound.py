"""What a request to ``POST /slack/events`` must pass before bolt sees it.

Three guards, cheapest first, so that an unauthenticated caller costs us
almost nothing:

1. **Size.** Slack's payloads are a few kilobytes (a modal submission is the
   largest); the body is read in chunks and refused past ``MAX_BODY_BYTES``
   (413) before it is decoded or verified, so a 256 MiB post never sits in
   memory.
2. **Signature.** Slack's v0 scheme (``v0=`` + hex HMAC-SHA256 of
   ``v0:<timestamp>:<body>``, timestamp within five minutes).  Any malformed
   header (``abc``, empty, ``1.5e9``, non-ASCII bytes) is simply "not signed":
   401, never an exception.
3. **Replay.** A signature is unique to its timestamp and body, so a second
   request carrying the same signature inside the five-minute window is a
   replay (or a proxy's duplicate) and is acknowledged without running
   anything.  The key is stored in ``processed_deliveries``: replicas share it.
"""

from __future__ import annotations

import hashlib
import hmac
import time
from collections.abc import AsyncIterable, Callable

MAX_BODY_BYTES = 1024 * 1024  # Slack's largest payloads (view submissions) are far smaller
MAX_SKEW_SECONDS = 300  # Slack's own rule: older (or newer) requests are refused


class BodyTooLarge(Exception):
    """The body passed ``MAX_BODY_BYTES``; carries the limit for the answer."""


async def read_capped(declared_length: str | None, chunks: AsyncIterable[bytes],
                      limit: int = MAX_BODY_BYTES) -> bytes:
    """The body, or ``BodyTooLarge`` as soon as it (or its Content-Length) passes ``limit``."""
    if declared_length is not None:
        try:
            if int(declared_length) > limit:
                raise BodyTooLarge(limit)
        except ValueError:
            pass  # a lying or odd header: the running count below still holds
    received = bytearray()
    async for chunk in chunks:
        received += chunk
        if len(received) > limit:
            raise BodyTooLarge(limit)
    return bytes(received)


def timestamp_of(header: str | None) -> int | None:
    """Slack's ``X-Slack-Request-Timestamp``: whole seconds in ASCII digits, else None."""
    if not header or not header.isascii() or not header.isdigit() or len(header) > 12:
        return None
    return int(header)


def signature_valid(secret: str, body: bytes, timestamp_header: str | None, signature_header: str | None,
                    *, now: Callable[[], float] = time.time) -> bool:
    """Slack's v0 check; malformed headers are just invalid, never an exception."""
    timestamp = timestamp_of(timestamp_header)
    if timestamp is None or abs(now() - timestamp) > MAX_SKEW_SECONDS:
        return False
    if not signature_header or not signature_header.isascii():
        return False
    base = b"v0:" + str(timestamp).encode() + b":" + body
    expected = "v0=" + hmac.new(secret.encode(), base, hashlib.sha256).hexdigest()
    return hmac.compare_digest(expected.encode(), signature_header.encode())


def replay_key(signature_header: str) -> str:
    """The processed-deliveries key of one signed request (hashed: keys stay short)."""
    return "slack:request:" + hashlib.sha256(signature_header.encode()).hexdigest()[:40]
