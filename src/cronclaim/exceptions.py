"""Every error cronclaim raises derives from :class:`CronclaimError`.

Driver errors (sqlite3, psycopg) are translated once, in the store backends, with
``raise ... from exc``; callers never need to import a driver to catch a failure.
Subclasses carry the fields a caller needs to act (the occurrence, the token).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from cronclaim.models import Claim, Occurrence


class CronclaimError(Exception):
    """Root of every error cronclaim raises."""


class InvalidInput(CronclaimError, ValueError):
    """A value given to cronclaim is not acceptable (naive datetime, empty name, ...)."""


class ConfigurationError(CronclaimError):
    """Settings cannot work: a database URL that cannot be parsed, an unknown option."""


class StoreError(CronclaimError):
    """The claim store failed to do what was asked."""


class DatabaseUnavailable(StoreError):
    """The database cannot be reached (connection refused, timed out, gone away)."""


class SchemaMissing(StoreError):
    """The database has no cronclaim schema, or an older one; run ``cronclaim db upgrade``."""


class NotAcquired(CronclaimError):
    """The occurrence could not be claimed: someone holds it, or it is already finished.

    ``reason`` is a human sentence; ``current`` is the claim row as the store saw it
    (``None`` only if the row vanished between the attempt and the look-up).
    """

    def __init__(self, occurrence: Occurrence, reason: str, current: Claim | None) -> None:
        super().__init__(f"{occurrence.idempotency_key}: {reason}")
        self.occurrence = occurrence
        self.reason = reason
        self.current = current


class StaleClaim(CronclaimError):
    """A heartbeat, complete, release or fail carried a fencing token that is no longer current.

    The holder's lease expired and the occurrence was taken over (or replayed); the late
    call was refused and recorded as a ``stale_rejected`` event.
    """

    def __init__(
        self, occurrence: Occurrence, token: int, action: str, current: Claim | None
    ) -> None:
        holder = (
            f"now token {current.token} ({current.state.value}, worker {current.worker})"
            if current is not None
            else "the claim no longer exists"
        )
        super().__init__(
            f"{occurrence.idempotency_key}: {action} with stale fencing token {token} "
            f"refused; {holder}"
        )
        self.occurrence = occurrence
        self.token = token
        self.action = action
        self.current = current


class RunAbandoned(CronclaimError):
    """The worker stopped waiting for this attempt (it timed out, or the worker is
    stopping); further external calls through ``run.call`` are refused so a thread that
    cannot be interrupted does no more side effects."""
