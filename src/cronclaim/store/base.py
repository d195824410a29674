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
from datetime import UTC, date, datetime, timedelta

from cronclaim.exceptions import InvalidInput
from cronclaim.models import (
    AlertState,
    Claim,
    ClaimState,
    DueTimes,
    Event,
    Ledger,
    Occurrence,
    OutboxItem,
    StaleRejection,
    TickRecord,
)

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
        dependency: str | None = None,
    ) -> Claim:
        """Give the occurrence back for a retry no sooner than now + ``retry_after``.

        ``error`` is kept on the row and in the event; ``dependency`` (the external call
        that failed, e.g. ``"inference"``) goes in the event's detail, so alerts can group
        one outage into one incident. Raises ``StaleClaim``.
        """

    @abc.abstractmethod
    def fail(self, claim: Claim, *, error: str | None, dependency: str | None = None) -> Claim:
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

    # -- operations: audit, replay, the dead-man's switch --------------------------------

    @abc.abstractmethod
    def orphans(
        self,
        *,
        job: str | None,
        lease_cutoff: datetime,
        held_cutoff: datetime,
        limit: int = 1000,
    ) -> list[Claim]:
        """Claimed rows nobody settles: lease expired before ``lease_cutoff`` without a
        takeover, or claimed before ``held_cutoff``."""

    @abc.abstractmethod
    def claims_in_state(
        self, state: str, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[Claim]:
        """Rows in ``state`` scheduled since ``since``, oldest first."""

    @abc.abstractmethod
    def stale_rejections(
        self, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[StaleRejection]:
        """Late calls refused for a stale fencing token since ``since``."""

    @abc.abstractmethod
    def repeated_errors(
        self, *, job: str | None, since: datetime, min_count: int = 2, limit: int = 1000
    ) -> list[tuple[Claim, str, int]]:
        """Occurrences not done whose attempts since ``since`` failed ``min_count``+ times
        with the same error: ``(claim, error, count)``, most repeated first."""

    @abc.abstractmethod
    def replay_candidates(
        self,
        job: str,
        *,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 100_000,
    ) -> list[Claim]:
        """Every row of ``job`` scheduled in ``[start, end]`` (one tenant if given)."""

    @abc.abstractmethod
    def replay(self, claims: Sequence[Claim], *, requested_by: str) -> list[int]:
        """Make final rows claimable again now (``pending``, attempt budget renewed,
        ``replays`` + 1), each only if it is still in the state and token it was read
        with; append a ``replayed`` event naming ``requested_by``. Returns the ids
        replayed."""

    @abc.abstractmethod
    def record_success(self, job: str, at: datetime, *, worker: str) -> None:
        """Move ``job``'s last successful completion forward to ``at`` (never back)."""

    @abc.abstractmethod
    def last_success(self, job: str) -> datetime | None:
        """``job``'s last successful completion recorded by a worker."""

    # -- operations: alert rules and their persisted state --------------------------------

    @abc.abstractmethod
    def failures_since(self, job: str, since: datetime) -> list[tuple[str, str, int, str | None]]:
        """Failed attempts (released or failed) of ``job`` since ``since``:
        ``(dependency or "", tenant, count, sample error)``."""

    @abc.abstractmethod
    def failed_since(
        self, job: str, since: datetime
    ) -> list[tuple[str, str, str | None, datetime]]:
        """Occurrences of ``job`` that failed since ``since`` and still are:
        ``(dependency or "", tenant, error, scheduled_for)``."""

    @abc.abstractmethod
    def missed_since(self, job: str, since: datetime) -> list[tuple[str, datetime, str | None]]:
        """Occurrences of ``job`` recorded missed since ``since`` and still missed:
        ``(tenant, scheduled_for, reason)``."""

    @abc.abstractmethod
    def alerts(self, *, open_only: bool = True) -> list[AlertState]:
        """Alerts (open ones by default), oldest first."""

    @abc.abstractmethod
    def alert(self, key: str) -> AlertState | None:
        """One alert's state, or ``None`` if it never fired."""

    @abc.abstractmethod
    def open_alert(
        self,
        *,
        key: str,
        rule: str,
        job: str | None,
        severity: str,
        summary: str,
        details: str,
        deliveries: Sequence[tuple[str, str]],
    ) -> bool:
        """Open (or reopen) alert ``key`` and owe its ``deliveries`` (sink, payload), in
        one transaction. False, and nothing written, if it was open already."""

    @abc.abstractmethod
    def refresh_alert(self, key: str, *, summary: str, details: str) -> None:
        """Update what an open alert says, without a delivery."""

    @abc.abstractmethod
    def resolve_alert(self, key: str, *, deliveries: Sequence[tuple[str, str]]) -> bool:
        """Resolve alert ``key`` and owe its ``deliveries``, in one transaction. False,
        and nothing written, if it was not open."""

    @abc.abstractmethod
    def claim_outbox(self, *, limit: int, hold: timedelta) -> list[OutboxItem]:
        """Take up to ``limit`` due deliveries, hiding them from other workers for
        ``hold`` (if this worker dies, they become due again)."""

    @abc.abstractmethod
    def settle_outbox(
        self,
        item_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        """Record a delivery's outcome: ``sent``, ``failed`` (for good) or ``pending``
        (again at ``next_attempt_at``)."""

    @abc.abstractmethod
    def outbox(self, key: str | None = None) -> list[OutboxItem]:
        """Every delivery (of one alert key), oldest first."""

    # -- dashboard: read-only views for the web pages -----------------------------------
    #
    # A *day* is a tenant-local date, the first ten characters of a tick ("2026-05-19"
    # of "2026-05-19T07:00"): a tenant's Tuesday is its own Tuesday, whatever its zone.
    # A window is the days ``first_day`` to ``last_day``, both included. None of these
    # reads scales with the number of tenants: each reads a page of an index, the small
    # partial indexes of rows that are not done, or the fan-out records.

    #: Outcome filters of :meth:`dashboard_tenants`: ``None`` for every tenant,
    #: ``"problems"`` for any state but done, or one state.
    DASHBOARD_OUTCOMES = (
        "problems",
        "done",
        "failed",
        "missed",
        "released",
        "claimed",
        "pending",
    )

    @abc.abstractmethod
    def dashboard_tenants(
        self,
        job: str,
        *,
        first_day: date,
        last_day: date,
        outcome: str | None = None,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
        limit: int = 50,
    ) -> list[str]:
        """A page of the tenants of ``job`` that have an occurrence in the window (in
        ``outcome`` if given; whose id starts with ``prefix`` if given), in ascending
        order: the first ``limit`` after ``after``, or, with ``before``, the last
        ``limit`` before it. Raises ``InvalidInput`` for an unknown outcome."""

    @abc.abstractmethod
    def dashboard_cells(
        self, job: str, tenants: Sequence[str], *, first_day: date, last_day: date
    ) -> list[tuple[str, str, ClaimState, int, datetime, str | None]]:
        """For each of ``tenants``, day of the window and state: ``(tenant, day, state,
        occurrences, earliest scheduled_for, tenant's time zone)``."""

    @abc.abstractmethod
    def dashboard_day_due(self, job: str, *, first_day: date, last_day: date) -> dict[str, int]:
        """Per day of the window, how many occurrences of ``job`` its fan-outs found due
        (days without a fan-out record are absent)."""

    @abc.abstractmethod
    def dashboard_day_counts(
        self, job: str, *, first_day: date, last_day: date, troubles_only: bool
    ) -> list[tuple[str, ClaimState, int, datetime]]:
        """Per day of the window and state: ``(day, state, occurrences, earliest
        scheduled_for)``. ``troubles_only`` leaves out ``done`` and reads only the
        small indexes of rows that are not done; otherwise every row is counted."""

    @abc.abstractmethod
    def dashboard_claim(self, occurrence: Occurrence) -> Claim | None:
        """The row of ``occurrence`` as stored, its local time in the tenant's zone
        (:meth:`get` returns the occurrence it was given, often built from a UTC instant
        alone), or ``None``."""

    def dashboard_query(
        self,
        *,
        first_day: date,
        last_day: date,
        outcome: str | None = None,
        prefix: str = "",
        after: str | None = None,
        before: str | None = None,
    ) -> tuple[str, dict[str, object]]:
        """The name of the tenant-page query for ``outcome`` and direction, and its
        parameters (instants as UTC datetimes), shared by the backends."""
        if last_day < first_day:
            raise InvalidInput(f"the window ends ({last_day}) before it starts ({first_day})")
        if outcome is None:
            name = "dashboard_tenants"
        elif outcome == "problems":
            name = "dashboard_tenants_problems"
        elif outcome == "done":
            name = "dashboard_tenants_done"
        elif outcome in ("failed", "missed"):
            name = "dashboard_tenants_final"
        elif outcome in ("released", "claimed", "pending"):
            name = "dashboard_tenants_open"
        else:
            raise InvalidInput(
                f"unknown outcome {outcome!r}; use one of {', '.join(self.DASHBOARD_OUTCOMES)}"
            )
        params: dict[str, object] = {
            **self.dashboard_window(first_day, last_day),
            "state": outcome,
            "prefix": prefix,
            # Every tenant id that starts with the prefix sorts between the two bounds.
            "prefix_high": prefix + "\U0010ffff" if prefix else None,
            "after": after or "",
            "before": before,
        }
        return name + ("_before" if before is not None else "_after"), params

    @staticmethod
    def dashboard_window(first_day: date, last_day: date) -> dict[str, object]:
        """The window as tick bounds (exact) and as a range of instants wide enough for
        every zone: local days run from UTC-12 to UTC+14, and a DST gap moves a wall
        time up to an hour later."""
        stop_day = last_day + timedelta(days=1)
        midnight = datetime(first_day.year, first_day.month, first_day.day, tzinfo=UTC)
        stop_midnight = datetime(stop_day.year, stop_day.month, stop_day.day, tzinfo=UTC)
        return {
            "first": first_day.isoformat(),
            "stop": stop_day.isoformat(),
            "lo": midnight - timedelta(hours=15),
            "hi": stop_midnight + timedelta(hours=14),
        }
