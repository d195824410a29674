"""PostgreSQL backend (psycopg 3 with a connection pool), for workers on many machines.

Each lifecycle path is one statement: the state change and its event are written
together by a data-modifying CTE, and leases are measured by the server's clock. A
heartbeat or completion refused for a stale token changes nothing; a second statement
records the refusal.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any

from cronclaim.clock import Clock
from cronclaim.exceptions import (
    ConfigurationError,
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
    make_alert_state,
    make_claim,
    make_claims,
    make_event,
    make_outbox_item,
    refusal_reason,
    text_forms,
)

try:
    import psycopg
    import psycopg.errors
    from psycopg_pool import ConnectionPool, PoolTimeout
except ImportError as exc:  # pragma: no cover - psycopg is a declared dependency
    raise StoreError(
        "PostgreSQL support needs psycopg 3 and psycopg-pool: pip install 'psycopg[binary]' "
        "psycopg-pool"
    ) from exc

Q = load_queries("postgres")


def _target(conninfo: str) -> str:
    """host:port/dbname for messages, never the password."""
    try:
        info = psycopg.conninfo.conninfo_to_dict(conninfo)
    except psycopg.Error:
        return "(unparsable URL)"
    host = info.get("host") or "localhost"
    port = info.get("port") or "5432"
    return f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"


def _translate(exc: Exception, where: str) -> StoreError:
    if isinstance(exc, psycopg.errors.UndefinedTable):
        return SchemaMissing(
            f"PostgreSQL database {where} has no cronclaim schema; run "
            f"`cronclaim db upgrade` ({str(exc).strip()})"
        )
    if isinstance(exc, PoolTimeout):
        return DatabaseUnavailable(
            f"no connection to PostgreSQL at {where} became available: {exc}"
        )
    detail = " ".join(str(exc).split())
    if isinstance(exc, psycopg.OperationalError) and _is_connection_failure(exc):
        return DatabaseUnavailable(f"cannot reach PostgreSQL at {where}: {detail}")
    # A deadlock, a serialization failure or a statement timeout is not an outage: the
    # message names it; callers treat every StoreError as worth one more try.
    return StoreError(f"PostgreSQL at {where}: {type(exc).__name__}: {detail}")


#: SQLSTATEs of a lost or refused connection: class 08, and the server shutting down.
_CONNECTION_STATES = frozenset({"57P01", "57P02", "57P03"})


def _is_connection_failure(exc: psycopg.OperationalError) -> bool:
    state = exc.sqlstate
    return state is None or state.startswith("08") or state in _CONNECTION_STATES


class PostgresStore(Store):
    backend = "postgresql"

    def __init__(
        self,
        conninfo: str,
        *,
        clock: Clock,
        migrate: bool = False,
        pool_size: int = 10,
        connect_timeout: float = 10.0,
    ) -> None:
        self.clock = clock
        self.where = _target(conninfo)
        self.connect_timeout = connect_timeout
        try:
            # One direct connection first: a bad host or password fails here with the
            # server's own words, not as an anonymous pool timeout later.
            psycopg.connect(conninfo, connect_timeout=int(connect_timeout)).close()
        except psycopg.ProgrammingError as exc:
            # A malformed URL is a setting to fix, not an outage to wait out.
            raise ConfigurationError(
                f"cannot parse PostgreSQL URL for {self.where}: {' '.join(str(exc).split())}"
            ) from exc
        except psycopg.Error as exc:
            raise _translate(exc, self.where) from exc
        self._pool = ConnectionPool(
            conninfo,
            min_size=1,
            max_size=pool_size,
            kwargs={"autocommit": True},
            configure=_configure,
            open=False,
            name="cronclaim",
        )
        try:
            self._pool.open(wait=True, timeout=connect_timeout)
        except psycopg.Error as exc:
            raise _translate(exc, self.where) from exc
        if migrate:
            self.upgrade()
        else:
            version = self.schema_version()
            latest = len(load_migrations("postgres"))
            if version < latest:
                self._pool.close()
                raise SchemaMissing(
                    f"PostgreSQL database {self.where} is at schema version {version}, "
                    f"cronclaim needs {latest}: run `cronclaim db upgrade`"
                )

    @contextmanager
    def _conn(self) -> Iterator[psycopg.Connection[Any]]:
        try:
            with self._pool.connection(timeout=self.connect_timeout) as conn:
                yield conn
        except psycopg.Error as exc:
            raise _translate(exc, self.where) from exc

    def _now_param(self) -> datetime | None:
        return None if self.clock.uses_database_time else self.clock.now()

    # -- schema -------------------------------------------------------------------------

    def upgrade(self) -> list[str]:
        applied: list[str] = []
        with self._conn() as conn, conn.transaction():
            conn.execute(Q["lock_migrations"])
            conn.execute(Q["create_migrations_table"])
            row = conn.execute(Q["schema_version"]).fetchone()
            current = int(row[0]) if row else 0
            for migration in load_migrations("postgres"):
                if migration.version <= current:
                    continue
                conn.execute(migration.sql.encode())
                conn.execute(
                    Q["record_migration"], {"version": migration.version, "name": migration.name}
                )
                applied.append(f"{migration.version:04d}_{migration.name}")
        return applied

    def schema_version(self) -> int:
        with self._conn() as conn:
            exists = conn.execute(Q["migrations_table_exists"]).fetchone()
            if not exists or not exists[0]:
                return 0
            row = conn.execute(Q["schema_version"]).fetchone()
            return int(row[0]) if row else 0

    # -- lifecycle ------------------------------------------------------------------------

    def acquire(self, occurrence: Occurrence, *, worker: str, lease: timedelta) -> Claim:
        check_call(worker, lease)
        params = {
            "job": occurrence.job,
            "tenant": occurrence.tenant,
            "scheduled_for": occurrence.scheduled_for,
            "local_time": _local_text(occurrence),
            "time_zone": occurrence.time_zone,
            "tick": occurrence.tick,
            "worker": worker,
            "lease": lease,
            "now": self._now_param(),
        }
        with self._conn() as conn:
            row = conn.execute(Q["acquire_insert"], params).fetchone()
            if row is not None:
                return make_claim(row, occurrence=occurrence)
            row = conn.execute(Q["acquire_take"], params).fetchone()
        if row is None:  # pragma: no cover - rows are never deleted
            raise NotAcquired(occurrence, "the claim row vanished", None)
        won = row[W + 2]
        claim = make_claim(
            row[:W], occurrence=occurrence, prior_state=row[W], prior_worker=row[W + 1]
        )
        if not won:
            raise NotAcquired(occurrence, refusal_reason(claim), claim)
        return claim

    def acquire_batch(
        self, occurrences: Sequence[Occurrence], *, worker: str, lease: timedelta
    ) -> list[Claim]:
        check_call(worker, lease)
        if len(occurrences) > MAX_BATCH:
            raise InvalidInput(
                f"a batch holds at most {MAX_BATCH} occurrences, got {len(occurrences)}"
            )
        # Sorted: every worker then locks the rows of overlapping batches in one order.
        # Batches given in different orders deadlock (each insert waits on a key the
        # other transaction inserted first).
        by_key = {(o.job, o.tenant, o.scheduled_for): o for o in occurrences}
        by_key = dict(sorted(by_key.items(), key=lambda item: item[0]))
        if not by_key:
            return []
        params = _columns(list(by_key.values()))
        params.update(worker=worker, lease=lease, now=self._now_param())
        with self._conn() as conn:
            # Binary rows: a thousand rows of timestamps parse in half the time.
            rows = conn.execute(Q["acquire_batch_insert"], params, binary=True).fetchall()
            # The new rows hold what this call sent, and the instants the server set.
            won = [
                fresh_claim(
                    row_id,
                    by_key[job, tenant, scheduled_for],
                    worker=worker,
                    claimed_at=claimed_at,
                    lease_expires_at=lease_expires_at,
                )
                for row_id, job, tenant, scheduled_for, claimed_at, lease_expires_at in rows
            ]
            if len(won) == len(by_key):
                return won
            inserted = {(r[1], r[2], r[3]) for r in rows}
            rest = [k for k in by_key if k not in inserted]
            taken = conn.execute(
                Q["acquire_batch_take"],
                {
                    "jobs": [k[0] for k in rest],
                    "tenants": [k[1] for k in rest],
                    "scheduled_fors": [k[2] for k in rest],
                    "worker": worker,
                    "lease": lease,
                    "now": params["now"],
                },
            ).fetchall()
        won.extend(
            make_claim(
                r[:W], occurrence=by_key[r[1], r[2], r[3]], prior_state=r[W], prior_worker=r[W + 1]
            )
            for r in taken
        )
        return won

    def _transition(self, claim: Claim, query: str, action: str, extra: dict[str, Any]) -> Claim:
        params = {
            "id": claim.id,
            "token": claim.token,
            "attempt": claim.attempt,
            "worker": claim.worker,
            "now": self._now_param(),
            **extra,
        }
        with self._conn() as conn:
            row = conn.execute(Q[query], params).fetchone()
            if row is None:
                # heartbeat and complete write nothing for a stale token: record the refusal.
                row = conn.execute(
                    Q["reject_stale"],
                    {
                        "id": claim.id,
                        "token": claim.token,
                        "attempt": claim.attempt,
                        "worker": claim.worker,
                        "action": action,
                        "now": params["now"],
                    },
                ).fetchone()
        current = make_claim(row[:W], occurrence=claim.occurrence) if row is not None else None
        if row is not None and row[W]:
            assert current is not None
            return current
        raise StaleClaim(claim.occurrence, claim.token, action, current)

    def heartbeat(self, claim: Claim, *, lease: timedelta) -> Claim:
        require_positive(lease, "lease")
        return self._transition(claim, "heartbeat", "heartbeat", {"lease": lease})

    def complete(self, claim: Claim) -> Claim:
        return self._transition(claim, "complete", "complete", {})

    def complete_batch(self, claims: Sequence[Claim]) -> tuple[list[Claim], list[Claim]]:
        if len(claims) > MAX_BATCH:
            raise InvalidInput(f"a batch holds at most {MAX_BATCH} claims, got {len(claims)}")
        by_id = {c.id: c for c in claims}
        if not by_id:
            return [], []
        now = self._now_param()
        params = {"ids": list(by_id), "tokens": [c.token for c in by_id.values()], "now": now}
        with self._conn() as conn:
            rows = conn.execute(Q["complete_batch"], params, binary=True).fetchall()
            if len(rows) == len(by_id):
                stale: list[Claim] = []
            else:
                # Refused for a stale token: nothing changed; record the refusals, as
                # complete() does, in a second statement.
                completed = {row[0] for row in rows}
                stale = [c for c in by_id.values() if c.id not in completed]
                conn.execute(
                    Q["reject_stale_batch"],
                    {
                        "ids": [c.id for c in stale],
                        "tokens": [c.token for c in stale],
                        "attempts": [c.attempt for c in stale],
                        "workers": [c.worker for c in stale],
                        "action": "complete",
                        "now": now,
                    },
                )
        done = [completed_claim(by_id[row_id], finished_at) for row_id, finished_at in rows]
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
        return self._transition(
            claim,
            "release",
            "release",
            {"error": clip_error(error), "retry_after": retry_after, "dependency": dependency},
        )

    def fail(self, claim: Claim, *, error: str | None, dependency: str | None = None) -> Claim:
        return self._transition(
            claim, "fail", "fail", {"error": clip_error(error), "dependency": dependency}
        )

    # -- scheduling -----------------------------------------------------------------------

    def enqueue(self, due: Sequence[tuple[Occurrence, datetime]]) -> int:
        if not due:
            return 0
        params = _columns([o for o, _ in due])
        params["not_befores"] = [not_before for _, not_before in due]
        with self._conn() as conn:
            return conn.execute(Q["enqueue_pending"], params).rowcount

    def record_missed(self, occurrences: Sequence[Occurrence], *, reason: str) -> int:
        if not occurrences:
            return 0
        params = _columns(occurrences)
        params["reason"] = clip_error(reason) or ""
        params["now"] = self._now_param()
        with self._conn() as conn:
            row = conn.execute(Q["insert_missed"], params).fetchone()
        return int(row[0]) if row else 0

    def acquire_due(self, job: str, *, worker: str, lease: timedelta, limit: int) -> list[Claim]:
        check_call(worker, lease)
        if limit <= 0:
            return []
        params = {
            "job": job,
            "worker": worker,
            "lease": lease,
            "limit": limit,
            "now": self._now_param(),
        }
        with self._conn() as conn:
            rows = conn.execute(Q["acquire_due"], params).fetchall()
        return make_claims(rows, with_prior=True)

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
        params = {
            "job": job,
            "cutoff": cutoff,
            "worker": worker,
            "missed_reason": clip_error(missed_reason),
            "failed_reason": clip_error(failed_reason),
            "abandoned_reason": clip_error(abandoned_reason),
            "now": self._now_param(),
        }
        with self._conn() as conn:
            rows = conn.execute(Q["close_windows"], params).fetchall()
        settled: dict[str, int] = {}
        for (state,) in rows:
            settled[state] = settled.get(state, 0) + 1
        return settled

    def next_due(self, job: str) -> DueTimes:
        with self._conn() as conn:
            row = conn.execute(Q["next_due"], {"job": job}).fetchone()
        assert row is not None
        return DueTimes(next_claimable=row[0], next_lease_expiry=row[1], oldest_open=row[2])

    def record_ticks(self, ticks: Sequence[TickRecord], *, worker: str) -> None:
        if not ticks:
            return
        now = self._now_param()
        with self._conn() as conn, conn.cursor() as cur:
            cur.executemany(
                Q["record_tick"],
                [
                    {
                        "job": t.job,
                        "time_zone": t.time_zone,
                        "scheduled_for": t.scheduled_for,
                        "tick": t.tick,
                        "due": t.due,
                        "now": now,
                        "worker": worker,
                    }
                    for t in ticks
                ],
            )

    def scanned_through(self, job: str) -> datetime | None:
        with self._conn() as conn:
            row = conn.execute(Q["scanned_through"], {"job": job}).fetchone()
        return None if row is None else row[0]

    def advance_scanned_through(self, job: str, through: datetime, *, worker: str) -> None:
        with self._conn() as conn:
            conn.execute(
                Q["advance_scanned_through"],
                {"job": job, "through": through, "worker": worker, "now": self._now_param()},
            )

    def known_jobs(self) -> list[str]:
        with self._conn() as conn:
            return [r[0] for r in conn.execute(Q["known_jobs"]).fetchall()]

    def ledger(self, job: str, tick: str, *, limit: int = 100) -> Ledger:
        params = {"job": job, "tick": tick, "limit": limit}
        with self._conn() as conn, conn.transaction():
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ READ ONLY")
            counts = {
                ClaimState(state): n
                for state, n in conn.execute(Q["ledger_counts"], params).fetchall()
            }
            due_row = conn.execute(Q["ledger_due"], params).fetchone()
            not_done = [
                make_claim(r) for r in conn.execute(Q["ledger_not_done"], params).fetchall()
            ]
        assert due_row is not None
        due, zones, _, last = due_row
        return Ledger(
            job=job,
            tick=tick,
            due=max(int(due), sum(counts.values())),
            counts=counts,
            not_done=not_done,
            zones=int(zones),
            fanned_out_at=last,
        )

    def latest_ticks(self, job: str, *, at: datetime, count: int) -> list[str]:
        with self._conn() as conn:
            rows = conn.execute(
                Q["latest_ticks"], {"job": job, "at": at, "limit": count}
            ).fetchall()
            if not rows:
                rows = conn.execute(
                    Q["latest_claim_ticks"],
                    {"job": job, "at": at, "since": at - timedelta(days=31), "limit": count},
                ).fetchall()
        return [r[0] for r in rows]

    # -- reading --------------------------------------------------------------------------

    def get(self, occurrence: Occurrence) -> Claim | None:
        with self._conn() as conn:
            row = conn.execute(Q["get_claim"], _key(occurrence)).fetchone()
        return None if row is None else make_claim(row, occurrence=occurrence)

    def events(self, occurrence: Occurrence) -> list[Event]:
        with self._conn() as conn:
            rows = conn.execute(Q["events_of_claim"], _key(occurrence)).fetchall()
        return [make_event(r) for r in rows]

    # -- operations: audit, replay, the dead-man's switch ---------------------------------

    def _claims(self, query: str, params: dict[str, Any]) -> list[Claim]:
        with self._conn() as conn:
            rows = conn.execute(Q[query], params).fetchall()
        return [make_claim(r) for r in rows]

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
            {"job": job, "lease_cutoff": lease_cutoff, "held_cutoff": held_cutoff, "limit": limit},
        )

    def claims_in_state(
        self, state: str, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[Claim]:
        ClaimState(state)
        return self._claims(
            "audit_in_state", {"state": state, "job": job, "since": since, "limit": limit}
        )

    def stale_rejections(
        self, *, job: str | None, since: datetime, limit: int = 1000
    ) -> list[StaleRejection]:
        with self._conn() as conn:
            rows = conn.execute(
                Q["audit_stale_rejections"], {"job": job, "since": since, "limit": limit}
            ).fetchall()
        return [
            StaleRejection(
                claim=make_claim(r[:W]),
                worker=r[W],
                token=r[W + 1],
                action=r[W + 2],
                at=r[W + 3],
            )
            for r in rows
        ]

    def repeated_errors(
        self, *, job: str | None, since: datetime, min_count: int = 2, limit: int = 1000
    ) -> list[tuple[Claim, str, int]]:
        with self._conn() as conn:
            rows = conn.execute(
                Q["audit_repeated_errors"],
                {"job": job, "since": since, "min_count": min_count, "limit": limit},
            ).fetchall()
        return [(make_claim(r[:W]), r[W], int(r[W + 1])) for r in rows]

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
            {"job": job, "start": start, "end": end, "tenant": tenant, "limit": limit},
        )

    def replay(self, claims: Sequence[Claim], *, requested_by: str) -> list[int]:
        check_call(requested_by)
        if not claims:
            return []
        params = {
            "ids": [c.id for c in claims],
            "tokens": [c.token for c in claims],
            "states": [c.state.value for c in claims],
            "requested_by": requested_by,
            "now": self._now_param(),
        }
        with self._conn() as conn:
            return [r[0] for r in conn.execute(Q["replay_rows"], params).fetchall()]

    def record_success(self, job: str, at: datetime, *, worker: str) -> None:
        with self._conn() as conn:
            conn.execute(
                Q["record_success"],
                {"job": job, "at": at, "worker": worker, "now": self._now_param()},
            )

    def last_success(self, job: str) -> datetime | None:
        with self._conn() as conn:
            row = conn.execute(Q["last_success"], {"job": job}).fetchone()
        return None if row is None else row[0]

    # -- operations: alert rules and their persisted state ---------------------------------

    def failures_since(self, job: str, since: datetime) -> list[tuple[str, str, int, str | None]]:
        with self._conn() as conn:
            rows = conn.execute(Q["failures_since"], {"job": job, "since": since}).fetchall()
        return [(r[0], r[1], int(r[2]), r[3]) for r in rows]

    def failed_since(
        self, job: str, since: datetime
    ) -> list[tuple[str, str, str | None, datetime]]:
        with self._conn() as conn:
            rows = conn.execute(Q["failed_since"], {"job": job, "since": since}).fetchall()
        return [(r[0], r[1], r[2], r[3]) for r in rows]

    def missed_since(self, job: str, since: datetime) -> list[tuple[str, datetime, str | None]]:
        with self._conn() as conn:
            rows = conn.execute(Q["missed_since"], {"job": job, "since": since}).fetchall()
        return [(r[0], r[1], r[2]) for r in rows]

    def alerts(self, *, open_only: bool = True) -> list[AlertState]:
        with self._conn() as conn:
            rows = conn.execute(Q["alerts_open" if open_only else "alerts_all"]).fetchall()
        return [make_alert_state(r) for r in rows]

    def alert(self, key: str) -> AlertState | None:
        with self._conn() as conn:
            row = conn.execute(Q["alert_get"], {"key": key}).fetchone()
        return None if row is None else make_alert_state(row)

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
        params = {
            "key": key,
            "rule": rule,
            "job": job,
            "severity": severity,
            "summary": summary,
            "details": details,
            "now": self._now_param(),
        }
        with self._conn() as conn, conn.transaction():
            opened = conn.execute(Q["alert_open_insert"], params).fetchone()
            if opened is None:
                opened = conn.execute(Q["alert_reopen"], params).fetchone()
            if opened is not None:
                self._owe(conn, key, "trigger", deliveries)
        return opened is not None

    def refresh_alert(self, key: str, *, summary: str, details: str) -> None:
        with self._conn() as conn:
            conn.execute(
                Q["alert_refresh"],
                {"key": key, "summary": summary, "details": details, "now": self._now_param()},
            )

    def resolve_alert(self, key: str, *, deliveries: Sequence[tuple[str, str]]) -> bool:
        with self._conn() as conn, conn.transaction():
            resolved = conn.execute(
                Q["alert_resolve"], {"key": key, "now": self._now_param()}
            ).fetchone()
            if resolved is not None:
                self._owe(conn, key, "resolve", deliveries)
        return resolved is not None

    def _owe(
        self,
        conn: psycopg.Connection[Any],
        key: str,
        action: str,
        deliveries: Sequence[tuple[str, str]],
    ) -> None:
        now = self._now_param()
        with conn.cursor() as cur:
            cur.executemany(
                Q["outbox_add"],
                [
                    {"key": key, "action": action, "sink": sink, "payload": payload, "now": now}
                    for sink, payload in deliveries
                ],
            )

    def claim_outbox(self, *, limit: int, hold: timedelta) -> list[OutboxItem]:
        with self._conn() as conn:
            rows = conn.execute(
                Q["outbox_claim"], {"limit": limit, "hold": hold, "now": self._now_param()}
            ).fetchall()
        return [make_outbox_item(r) for r in sorted(rows)]

    def settle_outbox(
        self,
        item_id: int,
        *,
        state: str,
        attempts: int,
        next_attempt_at: datetime | None = None,
        error: str | None = None,
    ) -> None:
        with self._conn() as conn:
            conn.execute(
                Q["outbox_settle"],
                {
                    "id": item_id,
                    "state": state,
                    "attempts": attempts,
                    "next_attempt_at": next_attempt_at,
                    "sent_at": (self._now_param() or self.now()) if state == "sent" else None,
                    "error": clip_error(error),
                },
            )

    def outbox(self, key: str | None = None) -> list[OutboxItem]:
        with self._conn() as conn:
            rows = conn.execute(Q["outbox_rows"], {"key": key}).fetchall()
        return [make_outbox_item(r) for r in rows]

    def now(self) -> datetime:
        with self._conn() as conn:
            row = conn.execute(Q["now"], {"now": self._now_param()}).fetchone()
        assert row is not None
        value: datetime = row[0]
        return value

    def close(self) -> None:
        self._pool.close()

    # -- dashboard: read-only views for the web pages ---------------------------------

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
        with self._conn() as conn:
            rows = conn.execute(Q[name], {**params, "job": job, "limit": limit}).fetchall()
        tenants = [r[0] for r in rows]
        return sorted(tenants) if before is not None else tenants

    def dashboard_cells(
        self, job: str, tenants: Sequence[str], *, first_day: date, last_day: date
    ) -> list[tuple[str, str, ClaimState, int, datetime, str | None]]:
        if not tenants:
            return []
        params = {
            **self.dashboard_window(first_day, last_day),
            "job": job,
            "tenants": list(tenants),
        }
        with self._conn() as conn:
            rows = conn.execute(Q["dashboard_cells"], params).fetchall()
        states = {state.value: state for state in ClaimState}  # a lookup, not an enum call
        return [
            (tenant, day, states[state], n, first, zone)
            for tenant, day, state, n, first, zone in rows
        ]

    def dashboard_claim(self, occurrence: Occurrence) -> Claim | None:
        with self._conn() as conn:
            row = conn.execute(Q["get_claim"], _key(occurrence)).fetchone()
        return None if row is None else make_claim(row)

    def dashboard_day_due(self, job: str, *, first_day: date, last_day: date) -> dict[str, int]:
        params = {**self.dashboard_window(first_day, last_day), "job": job}
        with self._conn() as conn:
            rows = conn.execute(Q["dashboard_day_due"], params).fetchall()
        return {day: int(due) for day, due in rows}

    def dashboard_day_counts(
        self, job: str, *, first_day: date, last_day: date, troubles_only: bool
    ) -> list[tuple[str, ClaimState, int, datetime]]:
        query = "dashboard_day_troubles" if troubles_only else "dashboard_day_counts"
        params = {**self.dashboard_window(first_day, last_day), "job": job}
        with self._conn() as conn:
            rows = conn.execute(Q[query], params).fetchall()
        return [(day, ClaimState(state), n, first) for day, state, n, first in rows]


def _configure(conn: psycopg.Connection[Any]) -> None:
    # Timestamps come back in UTC, whatever the server's default time zone.
    conn.execute("SET TIME ZONE 'UTC'")


def _key(occurrence: Occurrence) -> dict[str, Any]:
    return {
        "job": occurrence.job,
        "tenant": occurrence.tenant,
        "scheduled_for": occurrence.scheduled_for,
    }


def _columns(occurrences: Sequence[Occurrence]) -> dict[str, Any]:
    """The occurrences as the parallel arrays the batch statements unnest."""
    forms = text_forms(occurrences)
    return {
        "jobs": [o.job for o in occurrences],
        "tenants": [o.tenant for o in occurrences],
        "scheduled_fors": [o.scheduled_for for o in occurrences],
        "local_times": [f[0] for f in forms],
        "time_zones": [f[1] for f in forms],
        "ticks": [f[2] for f in forms],
    }


def _local_text(occurrence: Occurrence) -> str | None:
    return occurrence.local_time.isoformat() if occurrence.local_time is not None else None
