"""When an HTTP sink tries again, and for how long.

Only transient failures are retried: connection errors, timeouts, 429 and 5xx. Every
other 4xx means the request itself is wrong (bad routing key, revoked webhook) and will
fail the same way each time, so it is reported at once. Both the number of attempts and
the total time (attempts plus waits) are bounded; a delivery that runs out of either is
reported ``retryable`` so the caller (the alert outbox) can try again later.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC
from email.utils import parsedate_to_datetime

from cronclaim.exceptions import InvalidInput


@dataclass(frozen=True, kw_only=True, slots=True)
class RetryPolicy:
    """Exponential backoff with jitter, bounded in attempts and in total time.

    The wait before attempt ``n + 1`` is ``min(max_backoff, initial_backoff * 2**(n-1))``
    shortened by a random fraction of up to ``jitter`` (so 0.5 gives a wait between half
    and all of it), unless the receiver sent ``Retry-After``: that is honoured, capped at
    ``retry_after_cap``. No attempt starts, and no wait begins, that would end after
    ``max_total`` seconds from the first attempt; each request's timeout is also cut to
    the time left.
    """

    max_attempts: int = 5
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: float = 0.5
    retry_after_cap: float = 60.0
    max_total: float = 60.0

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int):
            raise InvalidInput(f"max_attempts must be an integer, got {self.max_attempts!r}")
        if self.max_attempts < 1:
            raise InvalidInput(f"max_attempts must be at least 1, got {self.max_attempts}")
        for name in ("initial_backoff", "max_backoff", "retry_after_cap", "max_total"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise InvalidInput(f"{name} must be a number of seconds, got {value!r}")
            if not math.isfinite(value) or value <= 0:
                raise InvalidInput(f"{name} must be a positive number of seconds, got {value!r}")
        if not 0 <= self.jitter <= 1:
            raise InvalidInput(f"jitter must be between 0 and 1, got {self.jitter!r}")

    def backoff(self, attempt: int, rng: Callable[[], float]) -> float:
        """Seconds to wait after failed attempt number ``attempt`` (1-based)."""
        base = min(self.max_backoff, self.initial_backoff * 2.0 ** min(attempt - 1, 62))
        return base * (1.0 - self.jitter * rng())

    def wait(self, attempt: int, retry_after: float | None, rng: Callable[[], float]) -> float:
        if retry_after is not None:
            return min(retry_after, self.retry_after_cap)
        return self.backoff(attempt, rng)


def parse_retry_after(value: str | None, now: Callable[[], float]) -> float | None:
    """``Retry-After`` in seconds (RFC 9110: delay-seconds or an HTTP-date), or None.

    ``now`` gives the wall-clock time in Unix seconds, for the HTTP-date form. A value
    that is neither form is ignored (the normal backoff applies).
    """
    if value is None:
        return None
    text = value.strip()
    if not text:
        return None
    try:
        seconds = float(text)
    except ValueError:
        try:
            when = parsedate_to_datetime(text)
        except (TypeError, ValueError, IndexError):
            return None
        if when.tzinfo is None:
            when = when.replace(tzinfo=UTC)
        seconds = when.timestamp() - now()
    if not math.isfinite(seconds):
        return None
    return max(0.0, seconds)


def format_seconds(seconds: float) -> str:
    return f"{seconds:.3g}s"
