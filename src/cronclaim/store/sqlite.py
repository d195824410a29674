"""SQLite backend: one file, many processes on one machine, WAL journal.

Durability: ``synchronous=FULL`` by default. In WAL mode ``NORMAL`` skips the fsync at
each commit, so a power loss can roll back the last commits, including a claim marked
``done`` whose side effect already ran, which would then run again. Choose
``?synchronous=normal`` only if a repeated side effect after a power cut is acceptable.

"Now" comes from the host clock (or a virtual clock): for an embedded database the host
clock *is* the database's clock, shared by every process on the machine.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager, suppress
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from cronclaim.clock import Clock
from cronclaim.exceptions import (
    DatabaseUnavailable,
    InvalidInput,
    NotAcquired,
    SchemaMissing,
    StaleClaim,
    StoreError,
)
from cronclaim.models import (
    AlertState,
    Claim,
    ClaimState,
    DueTimes,
    Event,
    EventKind,
    Ledger,
    Occurrence,
    OutboxItem,
    StaleRejection,
    TickRecord,
    require_positive,
)
from cronclaim.store.base import DEFAULT_RETRY_AFTER, MAX_BATCH, Store
from cronclaim.store.queries import load_migrations, load_queries
from cronclaim.store.rows import (
    CLAIM_WIDTH as W,
)
from cronclaim.store.rows import (
    check_call,
    clip_error,
    completed_claim,
    fresh_claim,
    is_claimable,
    make_alert_state,
    make_claim,
    make_claims,
    make_event,
    make_outbox_item,
    refusal_reason,
    text_forms,
)

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
MICROSECOND = timedelta(microseconds=1)
MIN_SQLITE = (3, 35, 0)  # RETURNING
SYNCHRONOUS_MODES = ("FULL", "NORMAL", "EXTRA")

Q = load_queries("sqlite")


def to_us(value: datetime) -> int:
    return (value - EPOCH) // MICROSECOND


def from_us(value: int | None) -> datetime | None:
    return None if value is None else EPOCH + timedelta(microseconds=value)


def _row_datetimes(row: Sequence[Any]) -> list[Any]:
    values = list(row)
    values[3] = EPOCH + timedelta(microseconds=values[3])
    for i in (11, 12, 13, 14, 17):
        if values[i] is not None:
            values[i] = EPOCH + timedelta(microseconds=values[i])
    return values


def _translate(exc: sqlite3.Error, path: str) -> StoreError:
    text = str(exc)
    if isinstance(exc, sqlite3.OperationalError):
        if "no such table" in text:
            return SchemaMissing(f"SQLite database {path} has no cronclaim schema ({text})")
        if "locked" in text or "busy" in text:
            return DatabaseUnavailable(f"SQLite database {path} stayed locked: {text}")
        if "unable to open" in text or "disk I/O" in text or "readonly" in text:
            return DatabaseUnavailable(f"cannot use SQLite database {path}: {text}")
    return StoreError(f"SQLite database {path}: {type(exc).__name__}: {text}")


class SQLiteStore(Store):
    backend = "sqlite"

    def __init__(
        self,
        path: str | Path,
        *,
        clock: Clock,
        synchronous: str = "FULL",
        busy_timeout: float = 30.0,
        migrate: bool = True,
    ) -> None:
        if sqlite3.sqlite_version_info < MIN_SQLITE:
            raise StoreError(
                f"SQLite {sqlite3.sqlite_version} is too old; cronclaim needs 3.35 or newer"
            )
        synchronous = synchronous.upper()
        if synchronous not in SYNCHRONOUS_MODES:
            raise InvalidInput(
                f"synchronous={synchronous!r} is not one of {', '.join(SYNCHRONOUS_MODES)}"
            )
        self.path = str(path)
        self.clock = clock
        self.synchronous = synchronous
        self.busy_timeout = busy_timeout
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._all_lock = threading.Lock()
        self._write_lock = threading.Lock()
        self._closed = False
        parent = Path(self.path).parent
        if not parent.is_dir():
            raise DatabaseUnavailable(
                f"cannot create SQLite database {self.path}: directory {parent} does not exist"
            )
        if migrate:
            self.upgrade()
        elif self.schema_version() < len(load_migrations("sqlite")):
            raise SchemaMissing(
                f"SQLite database {self.path} is not at the current schema; "
                "run `cronclaim db upgrade`"
            )

    # -- connections --------------------------------------------------------------------

    def _conn(self) -> sqlite3.Connection:
        conn: sqlite3.Connection | None = getattr(self._local, "conn", None)
        if conn is not None:
            return conn
        if self._closed:
            raise StoreError("the store is closed")
        try:
            conn = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout,
                isolation_level=None,
                check_same_thread=True,
            )
            self._set_wal(conn)
            conn.execute(f"PRAGMA synchronous={self.synchronous}")
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc
        self._local.conn = conn
        with self._all_lock:
            self._all.append(conn)
        return conn

    def _set_wal(self, conn: sqlite3.Connection) -> None:
        """Switch to WAL, waiting out another connection's write. SQLite answers "locked"
        at once here, without its busy handler: two workers opening a new file together
        (one creating the schema) failed on it."""
        deadline = time.monotonic() + self.busy_timeout
        while True:
            try:
                conn.execute("PRAGMA journal_mode=WAL")
                return
            except sqlite3.OperationalError as exc:
                if "locked" not in str(exc) or time.monotonic() >= deadline:
                    raise
                time.sleep(0.01)

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._conn()
        try:
            yield conn
        except sqlite3.Error as exc:
            raise _translate(exc, self.path) from exc

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        """A write transaction holding SQLite's write lock from the start.

        Threads of this process queue on a lock of their own first: SQLite's busy
        handler sleeps in growing steps (up to 100 ms) while another connection writes,
        so two threads of one worker (fan-out, completions, heartbeats) handing the
        database back and forth lost most of their time asleep. Other processes are
        still kept out by SQLite's lock, and waited for by its busy handler.
        """
        conn = self._conn()
        if not self._write_lock.acquire(timeout=self.busy_timeout):
            raise DatabaseUnavailable(
                f"SQLite database {self.path}: another thread of this process kept the "
                f"write lock for more than {self.busy_timeout:g}s"
            )
        try:
            try:
                conn.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
            try:
                yield conn
            except BaseException as exc:
                # The original error matters more; the transaction is gone anyway.
                with suppress(sqlite3.Error):
                    conn.execute("ROLLBACK")
                if isinstance(exc, sqlite3.Error):
                    raise _translate(exc, self.path) from exc
                raise
            try:
                conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise _translate(exc, self.path) from exc
        finally:
            self._write_lock.release()

    def _now(self) -> datetime:
        return self.clock.now()

    # -- schema -------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        applied: list[str] = []
        with self._write() as conn:
            conn.execute(Q["create_migrations_table"])
            current = conn.execute(Q["schema_version"]).fetchone()[0]
            for migration in load_migrations("sqlite"):
                if migration.version <= current:
                    continue
                for statement in _statements(migration.sql):
                    conn.execute(statement)
                conn.execute(
                    Q["record_migration"],
                    {
                        "version": migration.version,
                        "name": migration.name,
                        "now": to_us(self._now()),
                    },
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def schema_version(self) -> int:
        with self._read() as conn:
            try:
                return int(conn.execute(Q["schema_version"]).fetchone()[0])
            except sqlite3.OperationalError as exc:
                if "no such table" in str(exc):
                    return 0
                raise

    # -- lifecycle ------------------------------------------------------------------------

    def _event(
        self,
        conn: sqlite3.Connection,
        claim_id: int,
        kind: EventKind,
        at: int,
        *,
        worker: str | None,
        attempt: int | None,
        token: int | None,
        error: str | None = None,
        detail: str | None = None,
    ) -> None:
        conn.execute(
            Q["insert_event"],
            _event_params(claim_id, kind, at, worker, attempt, token, error, detail),
        )

    def acquire(self, occurrence: Occurrence, *, worker: str, lease: timedelta) -> Claim:
        check_call(worker, lease)
        key = _key(occurrence)
        # Losers are answered by a plain read first, without queueing for the write lock
        # behind other processes (SQLite's busy handler sleeps up to 100 ms at a time).
        # The read costs ~2% of a winner's claim + complete (measured, decisions #14).
        with self._read() as conn:
            row = conn.execute(Q["get_claim"], key).fetchone()
        if row is not None:
            seen = make_claim(_row_datetimes(row), occurrence=occurrence)
            if not is_claimable(seen, self._now()):
                raise NotAcquired(occurrence, refusal_reason(seen), seen)
        with self._write() as conn:
            now = self._now()
            now_us, until_us = to_us(now), to_us(now + lease)
            params = {**key, "worker": worker, "now": now_us, "lease_expires_at": until_us}
            # No row a moment ago: insert straight away (DO NOTHING if one appeared since),
            # rather than read again first.
            new = None
            if row is None:
                params["local_time"] = _local_text(occurrence)
                params["time_zone"] = occurrence.time_zone
                params["tick"] = occurrence.tick
                new = conn.execute(Q["insert_claim"], params).fetchone()
            if new is not None:
                self._event(
                    conn, new[0], EventKind.ACQUIRED, now_us, worker=worker, attempt=1, token=1
                )
                # The new row holds what this call wrote: built here, not read back.
                return fresh_claim(
                    new[0],
                    occurrence,
                    worker=worker,
                    claimed_at=EPOCH + timedelta(microseconds=now_us),
                    lease_expires_at=EPOCH + timedelta(microseconds=until_us),
                )
            row = conn.execute(Q["get_claim"], key).fetchone()
            seen = make_claim(_row_datetimes(row), occurrence=occurrence)
            if not is_claimable(seen, now):
                raise NotAcquired(occurrence, refusal_reason(seen), seen)
            params["id"] = seen.id
            params["seen_token"] = seen.token
            new = conn.execute(Q["take_claim"], params).fetchone()
            claim = make_claim(
                _row_datetimes(new),
                occurrence=occurrence,
                prior_state=seen.state.value,
                prior_worker=seen.worker,
            )
            self._record_acquisition(conn, seen, claim, now_us)
            return claim

    def _record_acquisition(
        self, conn: sqlite3.Connection, seen: Claim, claim: Claim, now: int
    ) -> None:
        if seen.state is ClaimState.CLAIMED:
            self._event(
                conn,
                claim.id,
                EventKind.LEASE_EXPIRED,
                now,
                worker=seen.worker,
                attempt=seen.attempt,
                token=seen.token,
            )
            kind = EventKind.TOOK_OVER
        else:
            kind = EventKind.ACQUIRED
        self._event(
            conn, claim.id, kind, now, worker=claim.worker, attempt=claim.attempt, token=claim.token
        )

    def acquire_batch(
        self, occurrences: Sequence[Occurrence], *, worker: str, lease: timedelta
    ) -> list[Claim]:
        check_call(worker, lease)
        if len(occurrences) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH} occurrences, got {len(occurrences)}"
            )
        instants: dict[datetime, int] = {}  # a fan-out's occurrences share a few ticks
        by_key: dict[tuple[str, str, int], Occurrence] = {}
        for o in occurrences:
            at = instants.get(o.scheduled_for)
            if at is None:
                at = instants[o.scheduled_for] = to_us(o.scheduled_for)
            by_key[o.job, o.tenant, at] = o
        if not by_key:
            return []
        batch = json.dumps(
            [[*key, *forms] for key, forms in zip(by_key, text_forms(by_key.values()), strict=True)]
        )
        taken: list[Claim] = []
        rows: list[list[Any]] = []
        with self._write() as conn:
            now = self._now()
            now_us, until_us = to_us(now), to_us(now + lease)
            # Every statement here returns at most one row: see claims_after.
            before = conn.execute(Q["max_claim_id"]).fetchone()[0]
            inserted = conn.execute(
                Q["insert_claims_batch"],
                {"batch": batch, "worker": worker, "now": now_us, "lease_expires_at": until_us},
            ).rowcount
            if inserted:
                conn.execute(
                    Q["insert_events_after"],
                    {"after": before, "kind": EventKind.ACQUIRED.value, "at": now_us},
                )
                rows = json.loads(conn.execute(Q["claims_after"], {"after": before}).fetchone()[0])
                if len(rows) != inserted:  # pragma: no cover - ids reached 2**63
                    raise StoreError(
                        f"SQLite database {self.path}: {inserted} claims inserted but "
                        f"{len(rows)} found above id {before}"
                    )
            if inserted < len(by_key):
                taken = self._take_batch(conn, by_key, rows, worker, now_us, until_us)
        # The inserted rows hold what this call wrote (only their keys were read back):
        # the claims are built here, once the write lock is released.
        claimed_at = EPOCH + timedelta(microseconds=now_us)
        lease_expires_at = EPOCH + timedelta(microseconds=until_us)
        won = [
            fresh_claim(
                row_id,
                by_key[job, tenant, scheduled_for],
                worker=worker,
                claimed_at=claimed_at,
                lease_expires_at=lease_expires_at,
            )
            for row_id, job, tenant, scheduled_for in rows
        ]
        won.extend(taken)
        return won

    def _take_batch(
        self,
        conn: sqlite3.Connection,
        by_key: dict[tuple[str, str, int], Occurrence],
        rows: list[list[Any]],
        worker: str,
        now_us: int,
        until_us: int,
    ) -> list[Claim]:
        """Of the occurrences of a batch that already had a row, take the claimable."""
        won: list[Claim] = []
        inserted = {(row[1], row[2], row[3]) for row in rows}
        rest = json.dumps([list(key) for key in by_key if key not in inserted])
        found = conn.execute(Q["claimable_in_batch"], {"batch": rest, "now": now_us}).fetchall()
        for row in found:
            seen = make_claim(_row_datetimes(row), occurrence=by_key[row[1], row[2], row[3]])
            taken = conn.execute(
                Q["take_claim"],
                {
                    "id": seen.id,
                    "seen_token": seen.token,
                    "worker": worker,
                    "now": now_us,
                    "lease_expires_at": until_us,
                },
            ).fetchone()
            claim = make_claim(
                _row_datetimes(taken),
                occurrence=seen.occurrence,
                prior_state=seen.state.value,
                prior_worker=seen.worker,
            )
            self._record_acquisition(conn, seen, claim, now_us)
            won.append(claim)
        return won

    def _finish(
        self,
        claim: Claim,
        query: str,
        action: str,
        kind: EventKind | None,
        extra: dict[str, Any],
        error: str | None = None,
        detail: str | None = None,
        built: Callable[[Claim, datetime], Claim] | None = None,
    ) -> Claim:
        """Run one token-guarded transition; record it, or record the stale refusal.

        A ``timedelta`` in ``extra`` is an instant relative to now (a lease end, a retry
        time), resolved inside the transaction. With ``built``, the query returns only the
        id and the updated claim is built from ``claim`` and the transition's instant.
        """
        with self._write() as conn:
            now_us = to_us(self._now())
            params = {"id": claim.id, "token": claim.token, "now": now_us, **extra}
            # Instants relative to now are computed here, under the write lock: a long
            # wait for the lock must not shorten a lease or bring a retry forward.
            for column, delta in list(params.items()):
                if isinstance(delta, timedelta):
                    params[column] = now_us + delta // MICROSECOND
            row = conn.execute(Q[query], params).fetchone()
            if row is not None:
                updated = (
                    built(claim, EPOCH + timedelta(microseconds=now_us))
                    if built is not None
                    else make_claim(_row_datetimes(row), occurrence=claim.occurrence)
                )
                if kind is not None:
                    self._event(
                        conn,
                        claim.id,
                        kind,
                        now_us,
                        worker=updated.worker,
                        attempt=updated.attempt,
                        token=updated.token,
                        error=error,
                        detail=detail,
                    )
                return updated
            current_row = conn.execute(Q["get_claim_by_id"], {"id": claim.id}).fetchone()
            current = (
                make_claim(_row_datetimes(current_row), occurrence=claim.occurrence)
                if current_row is not None
                else None
            )
            if current is not None:
                self._event(
                    conn,
                    claim.id,
                    EventKind.STALE_REJECTED,
                    now_us,
                    worker=claim.worker,
                    attempt=claim.attempt,
                    token=claim.token,
                    error=error,
                    detail=action,
                )
        # Outside the transaction so the refusal's event is committed before we raise.
        raise StaleClaim(claim.occurrence, claim.token, action, current)

    def heartbeat(self, claim: Claim, *, lease: timedelta) -> Claim:
        require_positive(lease, "lease")
        return self._finish(claim, "heartbeat", "heartbeat", None, {"lease_expires_at": lease})

    def complete(self, claim: Claim) -> Claim:
        return self._finish(
            claim, "complete", "complete", EventKind.COMPLETED, {}, built=completed_claim
        )

    def complete_batch(self, claims: Sequence[Claim]) -> tuple[list[Claim], list[Claim]]:
        if len(claims) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} claims, got {len(claims)}")
        if not claims:
            return [], []
        by_id = {c.id: c for c in claims}
        batch = json.dumps([[c.id, c.token] for c in by_id.values()])
        with self._write() as conn:
            now_us = to_us(self._now())
            # Every statement here returns at most one row: see claims_after.
            found = conn.execute(Q["completable_in_batch"], {"batch": batch}).fetchone()[0]
            finished: list[int] = json.loads(found)
            if finished:
                ids = json.dumps(finished)
                conn.execute(Q["complete_batch"], {"ids": ids, "now": now_us})
                conn.execute(
                    Q["insert_events_batch"],
                    {"ids": ids, "kind": EventKind.COMPLETED.value, "at": now_us},
                )
            if len(finished) == len(by_id):
                stale: list[Claim] = []
            else:
                completed = set(finished)
                stale = [c for c in by_id.values() if c.id not in completed]
            conn.executemany(
                Q["insert_event"],
                [
                    _event_params(
                        c.id,
                        EventKind.STALE_REJECTED,
                        now_us,
                        c.worker,
                        c.attempt,
                        c.token,
                        detail="complete",
                    )
                    for c in stale
                    # Only rows that exist have a history to record the refusal in.
                    if conn.execute(Q["get_claim_by_id"], {"id": c.id}).fetchone() is not None
                ],
            )
        finished_at = EPOCH + timedelta(microseconds=now_us)
        done = [completed_claim(by_id[claim_id], finished_at) for claim_id in finished]
        return done, stale

    def release(
        self,
        claim: Claim,
        *,
        error: str | None,
        retry_after: timedelta = DEFAULT_RETRY_AFTER,
        dependency: str | None = None,
    ) -> Claim:
        if not isinstance(retry_after, timedelta) or retry_after < timedelta(0):
            raise InvalidInput(f"retry_after must be a timedelta >= 0, got {retry_after!r}")
        error = clip_error(error)
        return self._finish(
            claim,
            "release",
            "release",
            EventKind.RELEASED,
            {"retry_at": retry_after, "error": error},
            error,
            dependency,
        )

    def fail(self, claim: Claim, *, error: str | None, dependency: str | None = None) -> Claim:
        error = clip_error(error)
        return self._finish(
            claim, "fail", "fail", EventKind.FAILED, {"error": error}, error, dependency
        )

    # -- scheduling -----------------------------------------------------------------------

    def enqueue(self, due: Sequence[tuple[Occurrence, datetime]]) -> int:
        if not due:
            return 0
        forms = text_forms(o for o, _ in due)
        batch = json.dumps(
            [
                [*_key_list(o), *texts, to_us(not_before)]
                for (o, not_before), texts in zip(due, forms, strict=True)
            ]
        )
        with self._write() as conn:
            return conn.execute(Q["enqueue_pending"], {"batch": batch}).rowcount

    def record_missed(self, occurrences: Sequence[Occurrence], *, reason: str) -> int:
        if not occurrences:
            return 0
        reason = clip_error(reason) or ""
        batch = json.dumps(
            [
                [*_key_list(o), *texts]
                for o, texts in zip(occurrences, text_forms(occurrences), strict=True)
            ]
        )
        with self._write() as conn:
            now_us = to_us(self._now())
            ids = conn.execute(
                Q["insert_missed"], {"batch": batch, "now": now_us, "reason": reason}
            ).fetchall()
            conn.executemany(
                Q["insert_event"],
                [
                    _event_params(row[0], EventKind.MISSED, now_us, None, 0, 0, error=reason)
                    for row in ids
                ],
            )
        return len(ids)

    def acquire_due(self, job: str, *, worker: str, lease: timedelta, limit: int) -> list[Claim]:
        check_call(worker, lease)
        if limit <= 0:
            return []
        won: list[Claim] = []
        with self._write() as conn:
            now = self._now()
            now_us, until_us = to_us(now), to_us(now + lease)
            params = {"job": job, "now": now_us, "limit": limit}
            # Each as one JSON value: see claims_after.
            rows = json.loads(conn.execute(Q["due_expired"], params).fetchone()[0])
            rows += json.loads(conn.execute(Q["due_waiting"], params).fetchone()[0])
            rows.sort(key=lambda r: (r[3], r[0]))  # scheduled_for, id
            found = make_claims(_row_datetimes(r) for r in rows[:limit])
            if not found:
                return won
            conn.execute(
                Q["take_found"],
                {
                    "batch": json.dumps([[c.id, c.token] for c in found]),
                    "worker": worker,
                    "now": now_us,
                    "lease_expires_at": until_us,
                },
            )
            claimed_at = EPOCH + timedelta(microseconds=now_us)
            lease_expires_at = EPOCH + timedelta(microseconds=until_us)
            retries: list[int] = []
            for seen in found:
                claim = Claim(
                    id=seen.id,
                    occurrence=seen.occurrence,
                    state=ClaimState.CLAIMED,
                    token=seen.token + 1,
                    attempt=seen.attempt + 1,
                    worker=worker,
                    claimed_at=claimed_at,
                    lease_expires_at=lease_expires_at,
                    retry_at=None,
                    finished_at=None,
                    last_error=seen.last_error,
                    replays=seen.replays,
                    replayed_at=seen.replayed_at,
                    prior_state=seen.state,
                    prior_worker=seen.worker,
                )
                if seen.state is ClaimState.CLAIMED:
                    self._record_acquisition(conn, seen, claim, now_us)  # a takeover
                else:
                    retries.append(claim.id)
                won.append(claim)
            if retries:
                conn.execute(
                    Q["insert_events_batch"],
                    {"ids": json.dumps(retries), "kind": EventKind.ACQUIRED.value, "at": now_us},
                )
        return won

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
        settled: dict[str, int] = {}
        with self._write() as conn:
            now_us = to_us(self._now())
            rows = conn.execute(
                Q["windows_closed"], {"job": job, "cutoff": to_us(cutoff), "now": now_us}
            ).fetchall()
            for row in rows:
                seen = make_claim(_row_datetimes(row))
                if seen.state is ClaimState.PENDING:
                    state, error = ClaimState.MISSED, missed_reason
                elif seen.state is ClaimState.RELEASED:
                    state = ClaimState.FAILED
                    error = failed_reason + (
                        f"; last error: {seen.last_error}" if seen.last_error else ""
                    )
                else:
                    state, error = ClaimState.FAILED, abandoned_reason
                    self._event(
                        conn,
                        seen.id,
                        EventKind.LEASE_EXPIRED,
                        now_us,
                        worker=seen.worker,
                        attempt=seen.attempt,
                        token=seen.token,
                    )
                error = clip_error(error) or ""
                conn.execute(
                    Q["close_window"],
                    {
                        "id": seen.id,
                        "token": seen.token,
                        "state": state.value,
                        "now": now_us,
                        "error": error,
                    },
                )
                self._event(
                    conn,
                    seen.id,
                    EventKind(state.value),
                    now_us,
                    worker=worker,
                    attempt=seen.attempt,
                    token=seen.token,
                    error=error,
                )
                settled[state.value] = settled.get(state.value, 0) + 1
        return settled

    def next_due(self, job: str) -> DueTimes:
        with self._read() as conn:
            row = conn.execute(Q["next_due"], {"job": job}).fetchone()
        return DueTimes(
            next_claimable=from_us(row[0]),
            next_lease_expiry=from_us(row[1]),
            oldest_open=from_us(row[2]),
        )

    def record_ticks(self, ticks: Sequence[TickRecord], *, worker: str) -> None:
        if not ticks:
            return
        with self._write() as conn:
            now_us = to_us(self._now())
            conn.executemany(
                Q["record_tick"],
                [
                    {
                        "job": t.job,
                        "time_zone": t.time_zone,
                        "scheduled_for": to_us(t.scheduled_for),
                        "tick": t.tick,
                        "due": t.due,
                        "now": now_us,
                        "worker": worker,
                    }
                    for t in ticks
                ],
            )

    def scanned_through(self, job: str) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["scanned_through"], {"job": job}).fetchone()
        return None if row is None else from_us(row[0])

    def advance_scanned_through(self, job: str, through: datetime, *, worker: str) -> None:
        with self._write() as conn:
            conn.execute(
                Q["advance_scanned_through"],
                {
                    "job": job,
                    "through": to_us(through),
                    "now": to_us(self._now()),
                    "worker": worker,
                },
            )

    def known_jobs(self) -> list[str]:
        with self._read() as conn:
            return [r[0] for r in conn.execute(Q["known_jobs"]).fetchall()]

    def ledger(self, job: str, tick: str, *, limit: int = 100) -> Ledger:
        params = {"job": job, "tick": tick, "limit": limit}
        with self._read() as conn:
            conn.execute("BEGIN")  # one snapshot for the three reads
            try:
                counts = {
                    ClaimState(state): n
                    for state, n in conn.execute(Q["ledger_counts"], params).fetchall()
                }
                due, zones, _, last = conn.execute(Q["ledger_due"], params).fetchone()
                not_done = [
                    make_claim(_row_datetimes(r))
                    for r in conn.execute(Q["ledger_not_done"], params).fetchall()
                ]
            finally:
                conn.execute("COMMIT")
        return Ledger(
            job=job,
            tick=tick,
            due=max(int(due), sum(counts.values())),
            counts=counts,
            not_done=not_done,
            zones=int(zones),
            fanned_out_at=from_us(last),
        )

    def latest_ticks(self, job: str, *, at: datetime, count: int) -> list[str]:
        with self._read() as conn:
            rows = conn.execute(
                Q["latest_ticks"], {"job": job, "at": to_us(at), "limit": count}
            ).fetchall()
            if not rows:
                rows = conn.execute(
                    Q["latest_claim_ticks"],
                    {
                        "job": job,
                        "at": to_us(at),
                        "since": to_us(at - timedelta(days=31)),
                        "limit": count,
                    },
                ).fetchall()
        return [r[0] for r in rows]

    # -- reading --------------------------------------------------------------------------

    def get(self, occurrence: Occurrence) -> Claim | None:
        with self._read() as conn:
            row = conn.execute(Q["get_claim"], _key(occurrence)).fetchone()
        return None if row is None else make_claim(_row_datetimes(row), occurrence=occurrence)

    def events(self, occurrence: Occurrence) -> list[Event]:
        with self._read() as conn:
            rows = conn.execute(Q["events_of_claim"], _key(occurrence)).fetchall()
        result = []
        for row in rows:
            values = list(row)
            values[3] = from_us(values[3])
            values[5] = from_us(values[5])
            result.append(make_event(values))
        return result

    # -- operations: audit, replay, the dead-man's switch ---------------------------------

    def _claims(self, query: str, params: dict[str, Any]) -> list[Claim]:
        with self._read() as conn:
            rows = conn.execute(Q[query], params).fetchall()
        return [make_claim(_row_datetimes(r)) for r in rows]

    def orphans(
        self,
        *,
        job: str | None,
        lease_cutoff: datetime,
        held_cutoff: datetime,
        limit: int = 1000,
    ) -> list[Claim]:
        return self._claims(
            "audit_orphans",
            {
                "job": job,
                "lease_cutoff": to_us(lease_cutoff),
                "held_cutoff": to_us(held_cutoff),
                "limit": limit,
            },
        )

    def claims_in_state(
        self, state: str, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[Claim]:
        ClaimState(state)
        return self._claims(
            "audit_in_state", {"state": state, "job": job, "since": to_us(since), "limit": limit}
        )

    def stale_rejections(
        self, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[StaleRejection]:
        with self._read() as conn:
            rows = conn.execute(
                Q["audit_stale_rejections"], {"job": job, "since": to_us(since), "limit": limit}
            ).fetchall()
        return [
            StaleRejection(
                claim=make_claim(_row_datetimes(r[:W])),
                worker=r[W],
                token=r[W + 1],
                action=r[W + 2],
                at=EPOCH + timedelta(microseconds=r[W + 3]),
            )
            for r in rows
        ]

    def repeated_errors(
        self, *, job: str | None, since: datetime, min_count: int = 2, limit: int = 1000
    ) -> list[tuple[Claim, str, int]]:
        with self._read() as conn:
            rows = conn.execute(
                Q["audit_repeated_errors"],
                {"job": job, "since": to_us(since), "min_count": min_count, "limit": limit},
            ).fetchall()
        return [(make_claim(_row_datetimes(r[:W])), r[W], r[W + 1]) for r in rows]

    def replay_candidates(
        self,
        job: str,
        *,
        start: datetime,
        end: datetime,
        tenant: str | None = None,
        limit: int = 100_000,
    ) -> list[Claim]:
        return self._claims(
            "replay_candidates",
            {
                "job": job,
                "start": to_us(start),
                "end": to_us(end),
                "tenant": tenant,
                "limit": limit,
            },
        )

    def replay(self, claims: Sequence[Claim], *, requested_by: str) -> list[int]:
        check_call(requested_by)
        replayed: list[int] = []
        with self._write() as conn:
            now_us = to_us(self._now())
            for claim in claims:
                changed = conn.execute(
                    Q["replay_one"],
                    {
                        "id": claim.id,
                        "token": claim.token,
                        "state": claim.state.value,
                        "now": now_us,
                    },
                ).rowcount
                if changed:
                    self._event(
                        conn,
                        claim.id,
                        EventKind.REPLAYED,
                        now_us,
                        worker=requested_by,
                        attempt=0,
                        token=claim.token,
                        detail=f"was {claim.state.value}; requested by {requested_by}",
                    )
                    replayed.append(claim.id)
        return replayed

    def record_success(self, job: str, at: datetime, *, worker: str) -> None:
        with self._write() as conn:
            conn.execute(
                Q["record_success"],
                {"job": job, "at": to_us(at), "now": to_us(self._now()), "worker": worker},
            )

    def last_success(self, job: str) -> datetime | None:
        with self._read() as conn:
            row = conn.execute(Q["last_success"], {"job": job}).fetchone()
        return None if row is None else from_us(row[0])

    # -- operations: alert rules and their persisted state ---------------------------------

    def failures_since(self, job: str, since: datetime) -> list[tuple[str, str, int, str | None]]:
        with self._read() as conn:
            rows = conn.execute(Q["failures_since"], {"job": job, "since": to_us(since)})
            return [(r[0], r[1], int(r[2]), r[3]) for r in rows.fetchall()]

    def failed_since(
        self, job: str, since: datetime
    ) -> list[tuple[str, str, str | None, datetime]]:
        with self._read() as conn:
            rows = conn.execute(Q["failed_since"], {"job": job, "since": to_us(since)})
            return [(r[0], r[1], r[2], EPOCH + timedelta(microseconds=r[3])) for r in rows]

    def missed_since(self, job: str, since: datetime) -> list[tuple[str, datetime, str | None]]:
        with self._read() as conn:
            rows = conn.execute(Q["missed_since"], {"job": job, "since": to_us(since)})
            return [(r[0], EPOCH + timedelta(microseconds=r[1]), r[2]) for r in rows]

    def alerts(self, *, open_only: bool = True) -> list[AlertState]:
        with self._read() as conn:
            if open_only:
                rows = conn.execute(Q["alerts_open"]).fetchall()
            else:
                rows = conn.execute(Q["alerts_all"]).fetchall()
        return [make_alert_state(r, from_us) for r in rows]

    def alert(self, key: str) -> AlertState | None:
        with self._read() as conn:
            row = conn.execute(Q["alert_get"], {"key": key}).fetchone()
        return None if row is None else make_alert_state(row, from_us)

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
        with self._write() as conn:
            now_us = to_us(self._now())
            params = {
                "key": key,
                "rule": rule,
                "job": job,
                "severity": severity,
                "summary": summary,
                "details": details,
                "now": now_us,
            }
            opened = conn.execute(Q["alert_open_insert"], params).rowcount
            if not opened:
                opened = conn.execute(Q["alert_reopen"], params).rowcount
            if opened:
                self._owe(conn, key, "trigger", deliveries, now_us)
            return bool(opened)

    def refresh_alert(self, key: str, *, summary: str, details: str) -> None:
        with self._write() as conn:
            conn.execute(
                Q["alert_refresh"],
                {"key": key, "summary": summary, "details": details, "now": to_us(self._now())},
            )

    def resolve_alert(self, key: str, *, deliveries: Sequence[tuple[str, str]]) -> bool:
        with self._write() as conn:
            now_us = to_us(self._now())
            resolved = conn.execute(Q["alert_resolve"], {"key": key, "now": now_us}).rowcount
            if resolved:
                self._owe(conn, key, "resolve", deliveries, now_us)
            return bool(resolved)

    @staticmethod
    def _owe(
        conn: sqlite3.Connection,
        key: str,
        action: str,
        deliveries: Sequence[tuple[str, str]],
        now_us: int,
    ) -> None:
        conn.executemany(
            Q["outbox_add"],
            [
                {"key": key, "action": action, "sink": sink, "payload": payload, "now": now_us}
                for sink, payload in deliveries
            ],
        )

    def claim_outbox(self, *, limit: int, hold: timedelta) -> list[OutboxItem]:
        with self._write() as conn:
            now_us = to_us(self._now())
            rows = conn.execute(Q["outbox_due"], {"now": now_us, "limit": limit}).fetchall()
            until = to_us(self._now() + hold)
            conn.executemany(
                Q["outbox_lease"], [{"id": r[0], "until": until, "now": now_us} for r in rows]
            )
        return [make_outbox_item(r) for r in rows]

    def settle_outbox(
        self,
        item_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        with self._write() as conn:
            now_us = to_us(self._now())
            conn.execute(
                Q["outbox_settle"],
                {
                    "id": item_id,
                    "state": state,
                    "attempts": attempts,
                    "next_attempt_at": None if next_attempt_at is None else to_us(next_attempt_at),
                    "sent_at": now_us if state == "sent" else None,
                    "error": clip_error(error),
                },
            )

    def outbox(self, key: str | None = None) -> list[OutboxItem]:
        with self._read() as conn:
            rows = conn.execute(Q["outbox_rows"], {"key": key}).fetchall()
        return [make_outbox_item(r, from_us) for r in rows]

    def now(self) -> datetime:
        return self._now()

    def close(self) -> None:
        self._closed = True
        with self._all_lock:
            conns, self._all = self._all, []
        for conn in conns:
            # One created in another thread is closed when that thread ends.
            with suppress(sqlite3.ProgrammingError):
                conn.close()
        self._local = threading.local()

    # -- dashboard: read-only views for the web pages ---------------------------------

    @staticmethod
    def _dashboard_params(params: dict[str, object]) -> dict[str, object]:
        """The window's instants as the integer microseconds this backend stores."""
        values = dict(params)
        for key in ("lo", "hi"):
            instant = values[key]
            assert isinstance(instant, datetime)
            values[key] = to_us(instant)
        return values

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
        name, params = self.dashboard_query(
            first_day=first_day,
            last_day=last_day,
            outcome=outcome,
            prefix=prefix,
            after=after,
            before=before,
        )
        params = self._dashboard_params({**params, "job": job, "limit": limit})
        with self._read() as conn:
            tenants = [r[0] for r in conn.execute(Q[name], params).fetchall()]
        return sorted(tenants) if before is not None else tenants

    def dashboard_cells(
        self, job: str, tenants: Sequence[str], *, first_day: date, last_day: date
    ) -> list[tuple[str, str, ClaimState, int, datetime, str | None]]:
        if not tenants:
            return []
        params = self._dashboard_params(
            {
                **self.dashboard_window(first_day, last_day),
                "job": job,
                "tenants": json.dumps(list(tenants)),
            }
        )
        with self._read() as conn:
            rows = conn.execute(Q["dashboard_cells"], params).fetchall()
        states = {state.value: state for state in ClaimState}  # a lookup, not an enum call
        return [
            (tenant, day, states[state], n, EPOCH + timedelta(microseconds=first), zone)
            for tenant, day, state, n, first, zone in rows
        ]

    def dashboard_claim(self, occurrence: Occurrence) -> Claim | None:
        with self._read() as conn:
            row = conn.execute(Q["get_claim"], _key(occurrence)).fetchone()
        return None if row is None else make_claim(_row_datetimes(row))

    def dashboard_day_due(self, job: str, *, first_day: date, last_day: date) -> dict[str, int]:
        params = {**self.dashboard_window(first_day, last_day), "job": job}
        with self._read() as conn:
            rows = conn.execute(Q["dashboard_day_due"], self._dashboard_params(params))
            return {day: int(due) for day, due in rows.fetchall()}

    def dashboard_day_counts(
        self, job: str, *, first_day: date, last_day: date, troubles_only: bool
    ) -> list[tuple[str, ClaimState, int, datetime]]:
        query = "dashboard_day_troubles" if troubles_only else "dashboard_day_counts"
        params = {**self.dashboard_window(first_day, last_day), "job": job}
        with self._read() as conn:
            rows = conn.execute(Q[query], self._dashboard_params(params)).fetchall()
        return [
            (day, ClaimState(state), n, EPOCH + timedelta(microseconds=first))
            for day, state, n, first in rows
        ]


def _key(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "job": occurrence.job,
        "tenant": occurrence.tenant,
        "scheduled_for": to_us(occurrence.scheduled_for),
    }


def _key_list(occurrence: Occurrence) -> list[Any]:
    return [occurrence.job, occurrence.tenant, to_us(occurrence.scheduled_for)]


def _local_text(occurrence: Occurrence) -> str | None:
    return occurrence.local_time.isoformat() if occurrence.local_time is not None else None


def _event_params(
    claim_id: int,
    kind: EventKind,
    at: int,
    worker: str | None,
    attempt: int | None,
    token: int | None,
    error: str | None = None,
    detail: str | None = None,
) -> dict[str, Any]:
    return {
        "claim_id": claim_id,
        "kind": kind.value,
        "at": at,
        "worker": worker,
        "attempt": attempt,
        "token": token,
        "error": error,
        "detail": detail,
    }


def _statements(script: str) -> Iterator[str]:
    """Split a migration into complete statements (triggers included) for one transaction.

    ``executescript`` would commit first, and a migration must apply whole or not at all.
    """
    buffer = ""
    for line in script.splitlines(keepends=True):
        if not buffer and (not line.strip() or line.lstrip().startswith("--")):
            continue
        buffer += line
        if sqlite3.complete_statement(buffer):
            yield buffer.strip()
            buffer = ""
    if buffer.strip():
        raise StoreError(f"incomplete SQL statement at the end of a migration: {buffer[:80]!r}")
