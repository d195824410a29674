"""HMAC-SHA256 signatures of webhook deliveries, and their check on the receiving side.

The sender puts two headers on every request (each retry is signed afresh):

    X-Cronclaim-Timestamp: 1779166800
    X-Cronclaim-Signature: sha256=<hex HMAC-SHA256(secret, b"1779166800." + raw body)>

The signed message is the timestamp in decimal Unix seconds, a dot, and the request body
exactly as received (bytes, before any JSON parsing). A receiver recomputes it with
:func:`verify_signature`, which compares in constant time and rejects timestamps more
than ``tolerance`` seconds from its own clock, so a captured request cannot be replayed
later.
"""

from __future__ import annotations

import hashlib
import hmac
import time

TIMESTAMP_HEADER = "X-Cronclaim-Timestamp"
SIGNATURE_HEADER = "X-Cronclaim-Signature"
SIGNATURE_PREFIX = "sha256="
DEFAULT_TOLERANCE = 300


def _as_bytes(value: str | bytes) -> bytes:
    return value.encode("utf-8") if isinstance(value, str) else bytes(value)


def compute_signature(secret: str | bytes, timestamp: int, body: str | bytes) -> str:
    """The ``X-Cronclaim-Signature`` value for ``body`` sent at ``timestamp``."""
    message = str(int(timestamp)).encode("ascii") + b"." + _as_bytes(body)
    digest = hmac.new(_as_bytes(secret), message, hashlib.sha256).hexdigest()
    return SIGNATURE_PREFIX + digest


def verify_signature(
    secret: str | bytes,
    timestamp: str | int,
    body: str | bytes,
    signature: str,
    tolerance: float = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> bool:
    """True if ``signature`` is cronclaim's signature of ``body`` at a fresh ``timestamp``.

    ``timestamp`` and ``signature`` are the header values as received; ``body`` is the
    raw request body. ``now`` (Unix seconds) defaults to the current time. Returns False,
    never raises, for a missing, malformed, stale (or far-future) or wrong signature.
    """
    if isinstance(timestamp, bool):
        return False
    if isinstance(timestamp, int):
        stamp = timestamp
    else:
        text = timestamp.strip() if isinstance(timestamp, str) else ""
        if not text.isascii() or not text.isdigit():
            return False
        stamp = int(text)
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance:
        return False
    if not isinstance(signature, str) or not signature.startswith(SIGNATURE_PREFIX):
        return False
    expected = compute_signature(secret, stamp, body)
    return hmac.compare_digest(expected.encode("ascii"), signature.strip().encode("utf-8"))
