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

from cronclaim.models import Claim, DueTimes, Event, Ledger, Occurrence, TickRecord

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

    # -- scheduling: fan-out, queue, windows --------------------------------------------

    @abc.abstractmethod
    def enqueue(self, due: Sequence[tuple[Occurrence, datetime]]) -> int:
        """Record occurrences that came due as ``pending``, each claimable from its
        paired not-before instant (its paced start).

        Occurrences that already have a row are left alone, so every worker may fan out
        the same tick. Returns how many rows were created. No event is written: a pending
        row is the record that the occurrence came due.
        """

    @abc.abstractmethod
    def record_missed(self, occurrences: Sequence[Occurrence], *, reason: str) -> int:
        """Record occurrences whose window closed before anyone fanned them out as
        ``missed`` with ``reason`` (and a ``missed`` event). Existing rows are left alone.
        Returns how many were recorded."""

    @abc.abstractmethod
    def acquire_due(self, job: str, *, worker: str, lease: timedelta, limit: int) -> list[Claim]:
        """Claim up to ``limit`` rows of ``job`` that are claimable now, earliest first:
        pending and released rows whose claimable-from time passed, and claimed rows whose
        lease expired (a takeover). Concurrent callers never receive the same row."""

    @abc.abstractmethod
    def close_windows(
        self,
        job: str,
        *,
        cutoff: datetime,
        worker: str,
        missed_reason: str,
        failed_reason: str,
        abandoned_reason: str,
    ) -> dict[str, int]:
        """Settle the open rows of ``job`` scheduled before ``cutoff`` (their window has
        closed): ``pending`` becomes ``missed`` (``missed_reason``); ``released`` becomes
        ``failed`` (``failed_reason`` plus the last error); ``claimed`` with an expired
        lease becomes ``failed`` (``abandoned_reason``). Claims with a running lease are
        left to their holder. Returns counts by new state."""

    @abc.abstractmethod
    def next_due(self, job: str) -> DueTimes:
        """When ``job`` next needs a worker, from its stored rows."""

    @abc.abstractmethod
    def record_ticks(self, ticks: Sequence[TickRecord], *, worker: str) -> None:
        """Remember fan-outs (how many tenants of each zone were due), replacing earlier
        records of the same job, zone and instant."""

    @abc.abstractmethod
    def scanned_through(self, job: str) -> datetime | None:
        """The instant through which ``job``'s due occurrences have been fanned out."""

    @abc.abstractmethod
    def advance_scanned_through(self, job: str, through: datetime, *, worker: str) -> None:
        """Move ``job``'s fan-out watermark forward to ``through`` (never back)."""

    # -- reading ----------------------------------------------------------------------

    @abc.abstractmethod
    def known_jobs(self) -> list[str]:
        """Names of the jobs that have been fanned out."""

    @abc.abstractmethod
    def ledger(self, job: str, tick: str, *, limit: int = 100) -> Ledger:
        """The account of one tick (nominal local wall time, ``2026-05-19T07:00``) of
        ``job``: due, counts by state, and up to ``limit`` occurrences not done."""

    @abc.abstractmethod
    def latest_ticks(self, job: str, *, at: datetime, count: int) -> list[str]:
        """The ``count`` most recent ticks of ``job`` scheduled at or before ``at``."""

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
