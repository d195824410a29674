"""The claim store contract. Every backend implements :class:`Store`; one contract test
suite (``tests/contract``) runs unchanged against each.

Vocabulary
----------
An occurrence is **claimable** when it has no row yet, or its row is

* ``released`` and its ``retry_at`` has passed (a retry), or
* ``claimed`` and its ``lease_expires_at`` has passed (a **takeover**: the holder died or
  stopped heart-beating).

``done``, ``failed`` and ``missed`` rows are final: only a replay makes them claimable
again. A ``claimed`` row whose lease is running is held.

Every acquisition increments the row's **fencing token** and its attempt number. Every
later call (heartbeat, complete, release, fail) names the token it holds and succeeds
only while that token is current and the row is ``claimed``; otherwise it raises
:class:`~cronclaim.exceptions.StaleClaim` and appends a ``stale_rejected`` event. A
holder whose lease expired but whom nobody has taken over still holds the current
token, so its calls still succeed: the token, not the lease, decides.

Every state change and the event that records it are written in one transaction.
"Now" is the database server's clock unless the store was given a virtual clock.

Errors: every method raises :class:`~cronclaim.exceptions.DatabaseUnavailable` when the
database cannot be reached and :class:`~cronclaim.exceptions.StoreError` for any other
database failure; no driver exception escapes.
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from datetime import datetime, timedelta

from cronclaim.models import Claim, Event, Occurrence

#: ``retry_after`` used by :meth:`Store.release` when none is given.
DEFAULT_RETRY_AFTER = timedelta(seconds=30)
#: Largest batch :meth:`Store.acquire_batch` / :meth:`Store.complete_batch` accept.
MAX_BATCH = 5000


class Store(abc.ABC):
    """Durable claims and their append-only event log."""

    #: ``"sqlite"`` or ``"postgresql"``.
    backend: str

    # -- schema ---------------------------------------------------------------------

    @abc.abstractmethod
    def upgrade(self) -> list[str]:
        """Apply pending schema migrations, in order, each in its own transaction.

        Returns the names of the migrations applied (empty when up to date). Safe to
        run from several processes at once: one applies, the others wait and find
        nothing to do.
        """

    @abc.abstractmethod
    def schema_version(self) -> int:
        """The number of the last applied migration; 0 for an empty database."""

    # -- the claim lifecycle ----------------------------------------------------------

    @abc.abstractmethod
    def acquire(self, occurrence: Occurrence, *, worker: str, lease: timedelta) -> Claim:
        """Claim ``occurrence`` for ``worker`` until now + ``lease``.

        Inserts a fresh row (token 1, attempt 1) or, when the row exists and is
        claimable, takes it (token and attempt + 1; event ``acquired`` for a retry,
        ``lease_expired`` then ``took_over`` for a takeover). Each path is one atomic
        statement; of any number of concurrent callers, from any process, exactly one
        wins. Raises :class:`~cronclaim.exceptions.NotAcquired` with the reason (held by
        whom and until when, already done, failed, missed, released until when).
        """

    @abc.abstractmethod
    def acquire_batch(
        self, occurrences: Sequence[Occurrence], *, worker: str, lease: timedelta
    ) -> list[Claim]:
        """Claim as many of ``occurrences`` as are claimable, in one round trip per path.

        Returns the claims won (any order); occurrences held or finished elsewhere are
        silently left out. At most :data:`MAX_BATCH` occurrences; duplicates in the
        input are claimed once.
        """

    @abc.abstractmethod
    def heartbeat(self, claim: Claim, *, lease: timedelta) -> Claim:
        """Extend the lease of a held claim to now + ``lease``. Raises ``StaleClaim``."""

    @abc.abstractmethod
    def complete(self, claim: Claim) -> Claim:
        """Mark the occurrence ``done``. Raises ``StaleClaim`` (and records it)."""

    @abc.abstractmethod
    def complete_batch(self, claims: Sequence[Claim]) -> tuple[list[Claim], list[Claim]]:
        """Complete many claims in one round trip.

        Returns ``(completed, stale)``: the rows now ``done``, and the input claims
        whose token was no longer current (each recorded as ``stale_rejected``).
        """

    @abc.abstractmethod
    def release(
        self,
        claim: Claim,
        *,
        error: str | None,
        retry_after: timedelta = DEFAULT_RETRY_AFTER,
    ) -> Claim:
        """Give the occurrence back for a retry no sooner than now + ``retry_after``.

        ``error`` is kept on the row and in the event. Raises ``StaleClaim``.
        """

    @abc.abstractmethod
    def fail(self, claim: Claim, *, error: str | None) -> Claim:
        """Mark the occurrence ``failed`` (final, visible, alerted). Raises ``StaleClaim``."""

    # -- reading ----------------------------------------------------------------------

    @abc.abstractmethod
    def get(self, occurrence: Occurrence) -> Claim | None:
        """The current row of ``occurrence``, or ``None`` if it was never claimed."""

    @abc.abstractmethod
    def events(self, occurrence: Occurrence) -> list[Event]:
        """The occurrence's history, oldest first."""

    @abc.abstractmethod
    def now(self) -> datetime:
        """The store's notion of now: the database clock, or the virtual clock."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release connections. The store is unusable afterwards."""
