"""``cronclaim.App``: the public entry point. Holds the store, the clock and the settings."""

from __future__ import annotations

import os
import socket
import threading
import uuid
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Any, TypeVar

from cronclaim.clock import Clock, SystemClock
from cronclaim.durations import Duration, parse_duration
from cronclaim.exceptions import InvalidInput
from cronclaim.guard import ClaimGuard, Outcome, Run, run_guarded, run_guarded_async
from cronclaim.heartbeat import Heartbeater
from cronclaim.jobs import Backoff, Job, TenantSource, make_job
from cronclaim.models import Occurrence
from cronclaim.schedule import DstPolicy
from cronclaim.store import DEFAULT_RETRY_AFTER, Store, open_store, parse_database_url

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])

DEFAULT_LEASE = timedelta(minutes=2)


class App:
    """A cronclaim application bound to one database.

    ``database_url`` is ``sqlite:///path/to.db`` (the embedded default; the schema is
    created on first use) or ``postgresql://user@host:5432/db`` (run ``cronclaim db
    upgrade`` once). The URL is checked now; the database is opened on first use, so
    defining an app at import time costs nothing.
    """

    def __init__(
        self,
        database_url: str,
        *,
        clock: Clock | None = None,
        worker_id: str | None = None,
        lease: Duration = DEFAULT_LEASE,
        retry_after: Duration = DEFAULT_RETRY_AFTER,
        pool_size: int = 10,
        migrate: bool | None = None,
    ) -> None:
        self.database_url = parse_database_url(database_url)
        self.clock: Clock = clock if clock is not None else SystemClock()
        self.lease = parse_duration(lease, "lease")
        self.retry_after = parse_duration(retry_after, "retry_after", allow_zero=True)
        if pool_size < 1:
            raise InvalidInput(f"pool_size must be at least 1, got {pool_size}")
        self.pool_size = pool_size
        self._migrate = migrate
        self._worker_id = worker_id
        self._store: Store | None = None
        self._store_pid = 0
        self._lock = threading.Lock()
        self.heartbeater = Heartbeater(lambda: self.store)
        #: Registered jobs by name, in declaration order.
        self.jobs: dict[str, Job] = {}

    # -- jobs -----------------------------------------------------------------------------

    def job(
        self,
        name: str,
        *,
        cron: str,
        tenants: TenantSource | None = None,
        time_zone: str = "UTC",
        timeout: Duration | None = None,
        retry: Backoff | None = None,
        window: Duration | None = None,
        lease: Duration = "2m",
        stale_after: Duration | None = None,
        max_rate: float | None = None,
        dst: DstPolicy | None = None,
    ) -> Callable[[F], F]:
        """Declare a scheduled job: ``@app.job("inventory-predict", cron="0 7 * * *", ...)``.

        The function receives ``(tenant, run)`` and may be sync or async. ``tenants`` is a
        callable returning the tenants to fan out over (streamed); without it the job runs
        once per tick, in ``time_zone``. ``timeout`` bounds each attempt; ``retry`` sets
        the backoff and attempt budget; ``window`` is how long after its tick an
        occurrence may still start (default: the gap between ticks, at most 1 h);
        ``lease`` how long a silent holder keeps it; ``stale_after`` when a late run counts
        as stale; ``max_rate`` caps starts per second, spread per tenant; ``dst`` chooses
        what happens to wall times a DST change removes or repeats.
        """

        def register(fn: F) -> F:
            if name in self.jobs:
                raise InvalidInput(f"job {name!r} is declared twice")
            self.jobs[name] = make_job(
                name,
                fn,
                cron=cron,
                tenants=tenants,
                time_zone_name=time_zone,
                timeout=timeout,
                retry=retry,
                window=window,
                lease=lease,
                stale_after=stale_after,
                max_rate=max_rate,
                dst=dst,
            )
            return fn

        return register

    # -- resources ------------------------------------------------------------------------

    @property
    def store(self) -> Store:
        """The claim store, opened on first use (and re-opened in a forked child)."""
        pid = os.getpid()
        store = self._store
        if store is not None and self._store_pid == pid:
            return store
        with self._lock:
            if self._store is None or self._store_pid != pid:
                if self._store is not None:
                    # Forked: the inherited store shares sockets and file locks with
                    # the parent, and the parent's heartbeat thread did not survive.
                    self.heartbeater = Heartbeater(lambda: self.store)
                self._store = open_store(
                    self.database_url,
                    clock=self.clock,
                    migrate=self._migrate,
                    pool_size=self.pool_size,
                )
                self._store_pid = pid
            return self._store

    @property
    def worker_id(self) -> str:
        """``host:pid:random`` unless given; recomputed in a forked child."""
        if self._worker_id is not None:
            return self._worker_id
        return _default_worker_id()

    def close(self) -> None:
        self.heartbeater.stop()
        with self._lock:
            if self._store is not None and self._store_pid == os.getpid():
                self._store.close()
            self._store = None

    def __enter__(self) -> App:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- claims ---------------------------------------------------------------------------

    def occurrence(self, job: str, tenant: str, scheduled_for: datetime) -> Occurrence:
        return Occurrence(job=job, tenant=tenant, scheduled_for=scheduled_for)

    def claim(
        self,
        job: str,
        tenant: str,
        scheduled_for: datetime,
        *,
        lease: Duration | None = None,
        retry_after: Duration | None = None,
        max_attempts: int | None = None,
    ) -> ClaimGuard:
        """Guard one occurrence: ``with app.claim(...) as run:`` or ``async with``.

        Entering raises :class:`~cronclaim.NotAcquired` unless this worker wins the
        claim. A normal exit completes it; any exception releases it for a retry after
        ``retry_after`` (or fails it once ``max_attempts`` is reached) and re-raises.
        """
        occurrence = Occurrence(job=job, tenant=tenant, scheduled_for=scheduled_for)
        if max_attempts is not None and (
            not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1
        ):
            raise InvalidInput(f"max_attempts must be a positive integer, got {max_attempts!r}")
        store = self.store  # opens now, so a bad database fails before the body runs
        del store
        return ClaimGuard(
            store=lambda: self.store,
            heartbeater=self.heartbeater,
            occurrence=occurrence,
            worker=self.worker_id,
            lease=self.lease if lease is None else parse_duration(lease, "lease"),
            retry_after=(
                self.retry_after
                if retry_after is None
                else parse_duration(retry_after, "retry_after", allow_zero=True)
            ),
            max_attempts=max_attempts,
        )

    def run_once(
        self,
        job: str,
        tenant: str,
        scheduled_for: datetime,
        fn: Callable[[Run], T],
        *,
        lease: Duration | None = None,
        retry_after: Duration | None = None,
        max_attempts: int | None = None,
    ) -> Outcome[T]:
        """Call ``fn(run)`` only if this worker wins the occurrence; return the outcome."""
        guard = self.claim(
            job,
            tenant,
            scheduled_for,
            lease=lease,
            retry_after=retry_after,
            max_attempts=max_attempts,
        )
        return run_guarded(guard, fn)

    async def run_once_async(
        self,
        job: str,
        tenant: str,
        scheduled_for: datetime,
        fn: Callable[[Run], Awaitable[T]],
        *,
        lease: Duration | None = None,
        retry_after: Duration | None = None,
        max_attempts: int | None = None,
    ) -> Outcome[T]:
        guard = self.claim(
            job,
            tenant,
            scheduled_for,
            lease=lease,
            retry_after=retry_after,
            max_attempts=max_attempts,
        )
        return await run_guarded_async(guard, fn)

    def __repr__(self) -> str:
        return f"<cronclaim.App {self.database_url.backend}>"


_worker_suffix: dict[int, str] = {}


def _default_worker_id() -> str:
    pid = os.getpid()
    suffix = _worker_suffix.get(pid)
    if suffix is None:
        suffix = _worker_suffix.setdefault(pid, uuid.uuid4().hex[:6])
    return f"{socket.gethostname()}:{pid}:{suffix}"
