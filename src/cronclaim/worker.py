"""The worker: fans out due ticks, claims due occurrences in batches, runs them with
bounded concurrency and a per-attempt timeout, retries with backoff, and stops cleanly.

One asyncio loop drives everything. Store calls run on threads (the stores are
synchronous), async jobs run as tasks, sync jobs on daemon threads. Completions are
written in batches; releases and failures one by one, as they happen.

The loop sleeps until the next thing that can need it (a tick in a time zone it serves,
a paced start, a retry, a lease that expires, a window that closes), and at most
``poll`` seconds, so it also notices work that other workers released. An idle worker
makes one small query per job per ``poll``.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronclaim.alerts.config import AlertConfig
from cronclaim.alerts.engine import AlertEngine
from cronclaim.app import App
from cronclaim.clock import VirtualClock
from cronclaim.durations import Duration, parse_duration
from cronclaim.exceptions import CronclaimError, InvalidInput, StaleClaim
from cronclaim.fanout import fan_out, next_tick_after
from cronclaim.guard import Run, describe_error
from cronclaim.heartbeat import Watch
from cronclaim.jobs import Job
from cronclaim.metrics import Metrics, Telemetry, beacons_on
from cronclaim.models import Claim, Tenant
from cronclaim.store import MAX_BATCH

log = logging.getLogger("cronclaim.worker")

#: How often the set of time zones a job serves is refreshed when no tick is due.
ZONE_REFRESH = timedelta(minutes=10)
#: Completions wait at most this long to be written together.
COMPLETE_DELAY = 0.01
#: A job's latest completion (the dead-man's switch) is recorded at most this often while
#: completions stream in, and within this long after the last one: a write per batch of
#: completions cost as much as the batch's own on SQLite.
SUCCESS_INTERVAL = 1.0
LEASE_LOST = "cronclaim: lease lost to a takeover"
#: The interpreter's thread switch interval while ``Worker.run()`` serves (Python's
#: default is 5 ms). The worker's threads (fan-out, completions, heartbeats, sync jobs)
#: spend their time in the database driver, which lets go of the GIL for every
#: statement; with the event loop busy, each statement then waited up to a whole
#: interval to take it back, holding SQLite's write lock the while. See
#: docs/decisions.md, "The GIL convoy".
SWITCH_INTERVAL = 0.0002


@dataclass
class WorkerStats:
    fanned_out: int = 0
    missed: int = 0
    started: int = 0
    done: int = 0
    released: int = 0
    failed: int = 0
    lost: int = 0
    window_closed: dict[str, int] = field(default_factory=dict)
    by_job: dict[str, int] = field(default_factory=dict)


class _DaemonThreads:
    """Runs sync jobs on daemon threads, so a job that never returns cannot keep the
    process alive after shutdown (a ThreadPoolExecutor's threads would).

    Results reach the event loop in batches: one wake-up of the loop delivers every job
    that finished since the last (a future chained per job cost a wake-up each, and
    most of a sync no-op job's time)."""

    def __init__(self, size: int) -> None:
        self._queue: queue.SimpleQueue[
            tuple[Callable[..., Any], tuple[Any, ...], asyncio.Future[Any]] | None
        ] = queue.SimpleQueue()
        self._idle = 0
        self._lock = threading.Lock()
        self._threads: list[threading.Thread] = []
        self._size = size
        self._results: collections.deque[
            tuple[asyncio.Future[Any], Any, BaseException | None]
        ] = collections.deque()
        self._delivery_due = False  # a _deliver is scheduled on the loop

    def submit(self, fn: Callable[..., Any], *args: Any) -> asyncio.Future[Any]:
        """On the event loop: run ``fn(*args)`` on a thread; the future resolves there."""
        future: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        with self._lock:
            if self._idle == 0:
                # Threads stuck in abandoned (timed-out) jobs do not count as capacity.
                thread = threading.Thread(target=self._work, name="cronclaim-job", daemon=True)
                self._threads.append(thread)
                thread.start()
            else:
                self._idle -= 1
        self._queue.put((fn, args, future))
        return future

    def _work(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            fn, args, future = item
            deliver = False
            # Cancelled (timed out, or the worker stopping) before it started: not run.
            if not future.cancelled():
                try:
                    self._results.append((future, fn(*args), None))
                except BaseException as exc:  # a job's SystemExit must not kill the thread
                    self._results.append((future, None, exc))
                with self._lock:
                    deliver = not self._delivery_due
                    self._delivery_due = True
            with self._lock:
                self._idle += 1
            if deliver:
                with contextlib.suppress(RuntimeError):  # the loop is closed: nobody waits
                    future.get_loop().call_soon_threadsafe(self._deliver)

    def _deliver(self) -> None:
        """On the event loop: resolve the futures of every job that finished."""
        with self._lock:
            self._delivery_due = False  # results appended from now on schedule another
        results = self._results
        while results:
            future, value, error = results.popleft()
            if future.cancelled():
                continue  # abandoned: its result is dropped
            if error is None:
                future.set_result(value)
            else:
                future.set_exception(error)

    def shutdown(self) -> None:
        with self._lock:
            for _ in self._threads:
                self._queue.put(None)
            self._threads.clear()
            self._idle = 0


class _Attempt(Watch):
    """One occurrence this worker started: its job, its run, its task, and (as the
    heartbeater's watch of it) whether its lease is kept alive; once the side effect
    returned, queued for its completion. One object per run, where three were made."""

    __slots__ = ("duration", "job", "task")

    def __init__(self, job: Job, run: Run) -> None:
        # Watch's fields set here, not through super().__init__: one call less per run.
        self.run = run
        self.lease = job.lease
        self.on_lost = None
        self.active = True
        self.job = job
        self.task: asyncio.Task[None] | None = None
        self.duration = 0.0

    def lost(self) -> None:
        task = self.task
        if task is not None:
            task.get_loop().call_soon_threadsafe(task.cancel, LEASE_LOST)


class _Slots:
    """The worker's free concurrency. Reserved by the loop and by the fan-out thread
    (which claims directly for the capacity it finds free), released as runs end."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._busy = 0
        self._lock = threading.Lock()

    def reserve(self, wanted: int) -> int:
        with self._lock:
            granted = max(0, min(wanted, self.size - self._busy))
            self._busy += granted
            return granted

    def release(self, count: int) -> None:
        if count:
            with self._lock:
                self._busy -= count

    @property
    def free(self) -> int:
        with self._lock:
            return self.size - self._busy


class Worker:
    """Runs an app's jobs. ``Worker(app).run()`` blocks until SIGTERM/SIGINT."""

    def __init__(
        self,
        app: App,
        *,
        concurrency: int = 10,
        jobs: Sequence[str] | None = None,
        burst: bool = False,
        catch_up: Duration = "24h",
        grace: Duration = "30s",
        poll: Duration = "30s",
        batch_size: int = 500,
        alerts: AlertConfig | None = None,
        alert_interval: Duration = "30s",
        metrics: Metrics | None = None,
        switch_interval: float | None = SWITCH_INTERVAL,
    ) -> None:
        if not isinstance(concurrency, int) or concurrency < 1:
            raise InvalidInput(f"concurrency must be a positive integer, got {concurrency!r}")
        if not 1 <= batch_size <= MAX_BATCH:
            raise InvalidInput(f"batch size must be between 1 and {MAX_BATCH}, got {batch_size}")
        if not app.jobs:
            raise InvalidInput("the app defines no jobs; declare them with @app.job(...)")
        names = list(app.jobs) if jobs is None else list(jobs)
        unknown = [n for n in names if n not in app.jobs]
        if unknown:
            raise InvalidInput(
                f"unknown job(s) {', '.join(unknown)}; the app defines: {', '.join(app.jobs)}"
            )
        self.app = app
        self.jobs: list[Job] = [app.jobs[n] for n in names]
        self.concurrency = concurrency
        self.burst = burst
        self.catch_up = parse_duration(catch_up, "catch-up", allow_zero=True)
        self.grace = parse_duration(grace, "grace", allow_zero=True)
        self.poll = parse_duration(poll, "poll")
        self.batch_size = batch_size
        if switch_interval is not None and not (
            isinstance(switch_interval, int | float)
            and not isinstance(switch_interval, bool)
            and 0 < switch_interval <= 1
        ):
            raise InvalidInput(
                f"switch interval must be seconds in (0, 1], or None, got {switch_interval!r}"
            )
        self.switch_interval = switch_interval
        self.worker_id = app.worker_id
        self.stats = WorkerStats()
        self.telemetry = Telemetry(metrics)
        self.alerts = (
            None
            if alerts is None
            else AlertEngine(app.store, alerts, self.jobs, clock=app.clock, source=self.worker_id)
        )
        self.alert_interval = parse_duration(alert_interval, "alert interval")
        self._alerts_checked: datetime | None = None
        #: Something went wrong since the rules were last evaluated: evaluate again within
        #: ``alert_interval`` even if nothing else wakes the worker (virtual time included).
        self._alerts_dirty = False
        self._scanned: dict[str, datetime] = {}
        self._zones: dict[str, set[str]] = {}
        self._tenant_counts: dict[str, int] = {}
        self._zones_refreshed: dict[str, datetime] = {}
        self._next_tick: dict[str, datetime | None] = {}
        #: When each job's oldest open occurrence's window closes (from its rows); a job
        #: missing here has not been checked yet.
        self._window_closes: dict[str, datetime | None] = {}
        self._running: dict[asyncio.Task[None], Run] = {}
        self._slots = _Slots(concurrency)
        #: Finished runs waiting to be marked done, with their heartbeat watch: the lease
        #: stays alive until the completion is written.
        self._completions: list[_Attempt] = []
        #: Each job's latest completion not yet recorded as its last success, and when
        #: successes were last recorded (monotonic).
        self._successes: dict[str, datetime] = {}
        self._successes_recorded = 0.0
        self._threads = _DaemonThreads(concurrency)
        self._stop_requested = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._flushed: asyncio.Event | None = None
        self._store_failures = 0
        self._completer_finish = False
        self._flush_lock: asyncio.Lock | None = None

    # -- public ---------------------------------------------------------------------------

    def run(self) -> None:
        """Serve until stopped (SIGTERM/SIGINT), or until idle with ``burst``.

        From the main thread (the process is the worker's: ``cronclaim worker``), this
        also installs the signal handlers and sets the interpreter's thread switch
        interval to ``switch_interval`` until it returns (``None`` leaves it alone).
        """
        main = threading.current_thread() is threading.main_thread()
        previous = sys.getswitchinterval()
        if main and self.switch_interval is not None:
            sys.setswitchinterval(self.switch_interval)
        try:
            asyncio.run(self.serve(install_signals=main))
        finally:
            if main and self.switch_interval is not None:
                sys.setswitchinterval(previous)

    def stop(self) -> None:
        """Ask the worker to stop claiming, finish running work within the grace period,
        release the rest and return. Thread- and signal-safe."""
        self._stop_requested.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None:
            with contextlib.suppress(RuntimeError):  # loop already closed
                loop.call_soon_threadsafe(wake.set)

    async def serve(self, *, install_signals: bool = False) -> None:
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._completer_finish = False
        if install_signals:
            for sig in (signal.SIGTERM, signal.SIGINT):
                self._loop.add_signal_handler(sig, self._on_signal, sig)
        log.info(
            "worker %s serving jobs %s (concurrency %d%s)",
            self.worker_id,
            ", ".join(j.name for j in self.jobs),
            self.concurrency,
            ", burst" if self.burst else "",
        )
        completer = asyncio.create_task(self._complete_loop(), name="cronclaim-completer")
        try:
            while not self._stop_requested.is_set():
                try:
                    now = self.app.clock.now()
                    await self._maintain(now)
                    started = await self._claim_and_start()
                    self._store_failures = 0
                except CronclaimError as exc:
                    # A database blip: keep the running work, back off, try again.
                    self._store_failures += 1
                    delay = min(self.poll.total_seconds(), 0.5 * 2 ** min(self._store_failures, 8))
                    log.error("worker pass failed (%s); retrying in %.1fs", exc, delay)
                    await self._sleep(delay)
                    continue
                if self.burst:
                    if started:
                        await self._wait_for_slot()
                        continue
                    if self._running:
                        await self._wait_for_slot()
                        continue
                    break
                if started and self._slots.free == 0:
                    await self._wait_for_slot()
                    continue
                if started:
                    continue  # more may be due right now
                await self._sleep_until(await self._next_wake(now))
        finally:
            await self._drain()
            await self._finish_completer(completer)
            self._threads.shutdown()
            if install_signals:
                for sig in (signal.SIGTERM, signal.SIGINT):
                    self._loop.remove_signal_handler(sig)
        log.info("worker %s stopped: %s", self.worker_id, self.stats)

    async def run_until(self, end: datetime) -> None:
        """Simulate on a :class:`VirtualClock`: run everything due, jump the clock to the
        next moment anything becomes due, and repeat until ``end``."""
        clock = self.app.clock
        if not isinstance(clock, VirtualClock):
            raise InvalidInput("run_until needs the app to use a VirtualClock")
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        self._completer_finish = False
        completer = asyncio.create_task(self._complete_loop(), name="cronclaim-completer")
        try:
            while True:
                now = clock.now()
                await self._maintain(now)
                while await self._claim_and_start():
                    await self._wait_for_slot()
                while self._running:
                    await self._wait_for_slot()
                await self._flush_completions()
                if await self._claim_and_start():
                    continue
                nxt = await self._next_wake(now, virtual=True)
                if now >= end:
                    break
                if nxt is None:
                    nxt = end
                elif nxt <= now:
                    # Something is due that this worker cannot take now (e.g. held by a
                    # lease of another process): let a virtual second pass.
                    nxt = now + timedelta(seconds=1)
                clock.set(min(nxt, end))
        finally:
            await self._finish_completer(completer)
            self._threads.shutdown()

    # -- the pass -------------------------------------------------------------------------

    async def _maintain(self, now: datetime) -> None:
        """Fan out ticks that came due and settle occurrences whose window closed."""
        for job in self.jobs:
            if self._fan_out_due(job, now):
                await asyncio.to_thread(self._fan_out, job, now)
            if job.name in self._window_closes:
                closes = self._window_closes[job.name]
                if closes is None or closes > now:
                    continue
            cutoff = now - job.window
            closed = await asyncio.to_thread(
                self.app.store.close_windows,
                job.name,
                cutoff=cutoff,
                worker=self.worker_id,
                missed_reason=f"no worker started it within its {job.window} window",
                failed_reason=f"its {job.window} window closed before an attempt succeeded",
                abandoned_reason=(
                    f"its {job.window} window closed while its holder had stopped heart-beating"
                ),
            )
            self._window_closes[job.name] = None  # re-read at the next wake computation
            for state, n in closed.items():
                self.stats.window_closed[state] = self.stats.window_closed.get(state, 0) + n
                self._alerts_dirty = True
                if state == "missed":
                    self.telemetry.missed(
                        job.name, n, "its window closed before a worker started it"
                    )
                log.warning(
                    "job %s: %d occurrence(s) %s when their window closed", job.name, n, state
                )
        await self._check_alerts(now)

    async def _check_alerts(self, now: datetime) -> None:
        """Evaluate the alert rules every ``alert_interval``; send what the outbox owes."""
        engine = self.alerts
        if engine is None:
            return
        checked = self._alerts_checked
        if checked is not None and now - checked < self.alert_interval:
            return
        self._alerts_checked = now
        self._alerts_dirty = False
        evaluation = await asyncio.to_thread(engine.evaluate, now)
        for key in evaluation.opened:
            self.telemetry.alert(key, opened=True)
        for key in evaluation.resolved:
            self.telemetry.alert(key, opened=False)
        await asyncio.to_thread(engine.deliver)

    def _fan_out_due(self, job: Job, now: datetime) -> bool:
        if job.name not in self._scanned:
            return True
        if now - self._zones_refreshed.get(job.name, now) >= ZONE_REFRESH:
            return True
        nxt = self._next_tick.get(job.name)
        return nxt is not None and nxt <= now

    def _fan_out(self, job: Job, now: datetime) -> None:
        store = self.app.store
        start = self._scanned.get(job.name)
        if start is None:
            floor = now - self.catch_up
            watermark = store.scanned_through(job.name)
            if watermark is not None and watermark < floor:
                log.error(
                    "job %s: last fanned out through %s, beyond the %s catch-up limit; "
                    "ticks before %s are not examined",
                    job.name,
                    watermark.isoformat(),
                    self.catch_up,
                    floor.isoformat(),
                )
            start = floor if watermark is None else max(watermark, floor)
        result = fan_out(
            job,
            store,
            start=start,
            end=now,
            worker=self.worker_id,
            batch_size=self.batch_size,
            expected_tenants=self._tenant_counts.get(job.name),
            intake=self,
        )
        self._scanned[job.name] = now
        self._zones[job.name] = result.zones
        self._tenant_counts[job.name] = result.tenants
        self._zones_refreshed[job.name] = now
        self._next_tick[job.name] = next_tick_after(job, result.zones, now)
        self.stats.fanned_out += result.enqueued + result.claimed
        self.stats.missed += result.missed
        if result.missed:
            self._alerts_dirty = True
        if result.ticks:
            self.telemetry.fired(
                job.name,
                tenants=result.tenants,
                recorded=result.enqueued + result.claimed,
                missed=result.missed,
                start=result.start,
                end=result.end,
            )
        if result.enqueued or result.claimed or result.missed:
            log.info(
                "job %s: fanned out %d occurrence(s) over %d tenant(s), %d missed",
                job.name,
                result.enqueued + result.claimed,
                result.tenants,
                result.missed,
            )

    # -- the fan-out's intake (called from the fan-out thread) -------------------------------

    def reserve(self, wanted: int) -> int:
        """Slots the fan-out may fill by claiming directly; none once stopping."""
        if self._stop_requested.is_set():
            return 0
        return self._slots.reserve(wanted)

    def hand_over(self, job: Job, claims: list[Claim], reserved: int) -> None:
        """Start claims the fan-out made for the slots it reserved."""
        assert self._loop is not None
        self._loop.call_soon_threadsafe(self._start_handed, job, claims, reserved)

    def _start_handed(self, job: Job, claims: list[Claim], reserved: int) -> None:
        self._slots.release(reserved - len(claims))
        self._start(job, claims)

    async def _claim_and_start(self) -> int:
        """Claim due occurrences up to the free concurrency, round-robin over jobs."""
        started = 0
        progress = True
        while progress and not self._stop_requested.is_set():
            progress = False
            for job in self.jobs:
                reserved = self._slots.reserve(self.batch_size)
                if reserved == 0:
                    return started
                try:
                    claims = await asyncio.to_thread(
                        self.app.store.acquire_due,
                        job.name,
                        worker=self.worker_id,
                        lease=job.lease,
                        limit=reserved,
                    )
                except BaseException:
                    self._slots.release(reserved)
                    raise
                self._slots.release(reserved - len(claims))
                self._start(job, claims)
                started += len(claims)
                progress = progress or bool(claims)
        return started

    def _start(self, job: Job, claims: Sequence[Claim]) -> None:
        """Start a task for each claim. Their leases are kept alive from now on, before
        any side effect begins (the tasks first run once this returns)."""
        if not claims:
            return
        loop = asyncio.get_running_loop()
        now = self.app.clock.now()
        stale_after = job.stale_after
        attempts: list[_Attempt] = []
        for claim in claims:
            stale = stale_after is not None and now - claim.occurrence.scheduled_for > stale_after
            run = Run(claim, stale=stale)
            attempt = _Attempt(job, run)
            task = attempt.task = loop.create_task(self._execute(attempt), name=job.name)
            self._running[task] = run
            task.add_done_callback(self._finished)
            attempts.append(attempt)
        self.app.heartbeater.watch_many(attempts)
        if self.telemetry.metrics is not None or beacons_on():
            for claim in claims:
                self.telemetry.acquired(job.name, claim)
        self.stats.started += len(claims)
        self.stats.by_job[job.name] = self.stats.by_job.get(job.name, 0) + len(claims)

    def _finished(self, task: asyncio.Task[None]) -> None:
        """Done callback of a task that never ran (cancelled first)."""
        self._ended(task)
        if not task.cancelled() and task.exception() is not None:
            log.error("internal error running %s", task.get_name(), exc_info=task.exception())

    def _ended(self, task: asyncio.Task[None]) -> None:
        self._running.pop(task, None)
        self._slots.release(1)
        if self._wake is not None:
            self._wake.set()

    async def _execute(self, attempt: _Attempt) -> None:
        task = attempt.task
        assert task is not None
        # Once running, the task does its own bookkeeping (finally, below): the done
        # callback, one more scheduled call per run, stays only for a task cancelled
        # before it ran.
        task.remove_done_callback(self._finished)
        try:
            job, run = attempt.job, attempt.run
            occurrence = run.occurrence
            tenant = Tenant(id=occurrence.tenant, time_zone=occurrence.time_zone or job.time_zone)
            error: BaseException | None = None
            began = time.monotonic()
            try:
                await self._call(job, tenant, run)
            except BaseException as exc:  # CancelledError included: the claim is settled below
                error = exc
            elapsed = time.monotonic() - began
            if run.lease_lost:
                self.app.heartbeater.unwatch(attempt)
                self._settled(job, run.claim, "lost", elapsed)
                log.error(
                    "%s: lease lost to a takeover after %.2fs; the new holder settles it",
                    run.idempotency_key,
                    elapsed,
                )
                return
            if error is None and run._settle is not None:
                self.app.heartbeater.unwatch(attempt)
                await self._settle_requested(job, run, elapsed)
                return
            if error is None:
                attempt.duration = elapsed
                self._completions.append(attempt)
                if self._flushed is not None:
                    self._flushed.set()
                return
            self.app.heartbeater.unwatch(attempt)
            await self._settle_failure(job, run, error, elapsed)
        except Exception:
            log.exception("internal error running %s", task.get_name())
        finally:
            self._ended(task)

    async def _call(self, job: Job, tenant: Tenant, run: Run) -> None:
        timeout = job.timeout.total_seconds() if job.timeout is not None else None
        if job.is_async:
            if timeout is None:
                await job.fn(tenant, run)
                return
            async with asyncio.timeout(timeout):
                await job.fn(tenant, run)
            return
        future = self._threads.submit(job.fn, tenant, run)
        try:
            await asyncio.wait_for(future, timeout)
        except (TimeoutError, asyncio.CancelledError):
            # A thread cannot be interrupted: it is abandoned, and any further call it
            # makes through run.call() is refused.
            run._abandoned = True
            raise

    async def _settle_failure(
        self, job: Job, run: Run, error: BaseException, duration: float
    ) -> None:
        claim = run.claim
        text = describe_error(error)
        if isinstance(error, TimeoutError) and job.timeout is not None and str(error) == "":
            text = f"TimeoutError: attempt exceeded the {job.timeout.total_seconds():g}s timeout"
        dependency = run.failed_dependency
        stopping = isinstance(error, asyncio.CancelledError) and self._stop_requested.is_set()
        store = self.app.store
        if not stopping:
            self.telemetry.threw(job.name, claim, text, dependency)
        try:
            if stopping:
                # Not the job's fault: give it back for another worker, no backoff for an
                # async job (it really stopped), the first backoff step for a sync one
                # (its thread may still be running).
                retry_after = job.retry.first if run.abandoned else timedelta(0)
                text = "worker stopped before it finished"
                await asyncio.to_thread(store.release, claim, error=text, retry_after=retry_after)
                self._settled(job, claim, "released", duration, text, retry_after)
                return
            await self._retry_or_fail(job, run, text, duration)
        except StaleClaim as exc:
            self._settled(job, claim, "lost", duration)
            log.error(
                "%s: could not record the failure, lease taken over: %s", run.idempotency_key, exc
            )
        except CronclaimError as exc:
            log.error(
                "%s: could not record the failure (%s); it becomes claimable when its "
                "lease expires",
                run.idempotency_key,
                exc,
            )

    async def _retry_or_fail(
        self,
        job: Job,
        run: Run,
        text: str,
        duration: float,
        *,
        retry_after: timedelta | None = None,
        give_up: bool = False,
    ) -> None:
        """Release for a retry after the job's backoff (or ``retry_after``), or fail once
        attempts are exhausted, no retry fits in the window, or ``give_up``."""
        claim = run.claim
        dependency = run.failed_dependency
        store = self.app.store
        delay = retry_after if retry_after is not None else job.retry.delay(claim.attempt)
        window_end = claim.window_opened_at + job.window
        if give_up or claim.attempt >= job.retry.max_attempts:
            pass  # the row's attempt count says why; the error stays comparable
        elif self.app.clock.now() + delay >= window_end:
            text = f"{text} (no retry fits before the window closes at {window_end.isoformat()})"
        else:
            await asyncio.to_thread(
                store.release, claim, error=text, retry_after=delay, dependency=dependency
            )
            self._settled(job, claim, "released", duration, text, delay)
            log.warning("%s attempt %d failed: %s", run.idempotency_key, claim.attempt, text)
            return
        await asyncio.to_thread(store.fail, claim, error=text, dependency=dependency)
        self._settled(job, claim, "failed", duration, text)
        log.warning("%s failed for good: %s", run.idempotency_key, text)

    async def _settle_requested(self, job: Job, run: Run, duration: float) -> None:
        """The job returned after ``run.release()`` or ``run.fail()`` (a non-OK answer it
        handled without raising): do what it asked, under the same retry policy."""
        assert run._settle is not None
        action, message, retry_after = run._settle
        text = message or f"{'released' if action == 'release' else 'failed'} by the job"
        try:
            await self._retry_or_fail(
                job, run, text, duration, retry_after=retry_after, give_up=action == "fail"
            )
        except StaleClaim:
            self._settled(job, run.claim, "lost", duration)
        except CronclaimError as exc:
            log.error(
                "%s: could not record what the job asked (%s); it becomes claimable "
                "when its lease expires",
                run.idempotency_key,
                exc,
            )

    def _settled(
        self,
        job: Job,
        claim: Claim,
        outcome: str,
        duration: float | None,
        error: str | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        if outcome != "done":
            self._alerts_dirty = True
        counts = {"done": "done", "released": "released", "failed": "failed", "lost": "lost"}
        setattr(self.stats, counts[outcome], getattr(self.stats, counts[outcome]) + 1)
        self.telemetry.settled(
            job.name, claim, outcome, duration=duration, error=error, retry_after=retry_after
        )

    # -- completions ------------------------------------------------------------------------

    async def _complete_loop(self) -> None:
        """Write completions in batches until told to finish (never cancelled: a batch
        taken off the queue must reach the database)."""
        flushed = self._flushed = asyncio.Event()
        while True:
            if not self._completions:
                if self._completer_finish:
                    return
                flushed.clear()
                if not self._successes:
                    await flushed.wait()
                    continue
                # A success to record and nothing to complete: record it once its
                # interval has passed, unless completions come first.
                wait = self._successes_recorded + SUCCESS_INTERVAL - time.monotonic()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(flushed.wait(), max(wait, 0.0))
                await self._flush_completions(record_now=False)
                continue
            await asyncio.sleep(COMPLETE_DELAY)  # let a few finish, write them together
            await self._flush_completions(record_now=False)

    async def _finish_completer(self, completer: asyncio.Task[None]) -> None:
        self._completer_finish = True
        if self._flushed is not None:
            self._flushed.set()
        await completer
        await self._flush_completions()

    async def _flush_completions(self, *, record_now: bool = True) -> None:
        """Write the finished runs' completions, and the jobs' latest success (unless
        ``record_now`` is false and it was recorded less than SUCCESS_INTERVAL ago).
        Serialised: a caller returns only once nothing is in flight (the simulation must
        not move the clock under a write)."""
        if self._flush_lock is None:
            self._flush_lock = asyncio.Lock()
        async with self._flush_lock:
            await self._flush_locked()
            if self._successes and (
                record_now or time.monotonic() - self._successes_recorded >= SUCCESS_INTERVAL
            ):
                await self._record_successes()

    async def _flush_locked(self) -> None:
        while self._completions:
            if len(self._completions) <= MAX_BATCH:
                batch, self._completions = self._completions, []
            else:
                batch = self._completions[:MAX_BATCH]
                del self._completions[:MAX_BATCH]
            try:
                done, stale = await asyncio.to_thread(self._complete, batch)
            except CronclaimError as exc:
                log.error(
                    "could not record %d completion(s) (%s); their leases expire and "
                    "they are retried",
                    len(batch),
                    exc,
                )
                continue
            if not stale and self.telemetry.metrics is None and not beacons_on():
                self.stats.done += len(batch)  # what _settled counts, with nothing to tell
            else:
                refused = {claim.id for claim in stale}
                for finished in batch:
                    claim = finished.run.claim
                    if claim.id in refused:
                        self._settled(finished.job, claim, "lost", finished.duration)
                        log.error(
                            "%s: completion refused, lease taken over (token %d is stale)",
                            claim.occurrence.idempotency_key,
                            claim.token,
                        )
                    else:
                        self._settled(finished.job, claim, "done", finished.duration)
            successes = self._successes
            for claim in done:
                at = claim.finished_at
                if at is not None:
                    name = claim.occurrence.job
                    latest = successes.get(name)
                    if latest is None or at > latest:
                        successes[name] = at

    def _complete(self, batch: list[_Attempt]) -> tuple[list[Claim], list[Claim]]:
        """Write a batch of completions (on a thread). The heartbeats stop only now, just
        before, so no lease can lapse between "effect done" and "marked done"; the
        claims are read after, with the lease of their last beat."""
        self.app.heartbeater.unwatch_many(batch)
        return self.app.store.complete_batch([a.run.claim for a in batch])

    async def _record_successes(self) -> None:
        """Move each job's last success forward (the dead-man's switch)."""
        pending, self._successes = self._successes, {}
        self._successes_recorded = time.monotonic()
        for name, at in pending.items():
            try:
                await asyncio.to_thread(
                    self.app.store.record_success, name, at, worker=self.worker_id
                )
            except CronclaimError as exc:
                log.warning("could not record the last success of %s (%s); retrying", name, exc)
                latest = self._successes.get(name)
                self._successes[name] = at if latest is None or at > latest else latest

    # -- waiting and stopping -----------------------------------------------------------------

    async def _next_wake(self, now: datetime, *, virtual: bool = False) -> datetime | None:
        candidates: list[datetime] = []
        for job in self.jobs:
            nxt = self._next_tick.get(job.name)
            if nxt is not None:
                candidates.append(nxt)
            due = await asyncio.to_thread(self.app.store.next_due, job.name)
            for value in (due.next_claimable, due.next_lease_expiry):
                if value is not None:
                    candidates.append(value)
            closes = None if due.oldest_open is None else due.oldest_open + job.window
            self._window_closes[job.name] = closes
            if closes is not None:
                candidates.append(closes)
            if not virtual:
                refreshed = self._zones_refreshed.get(job.name)
                if refreshed is not None:
                    candidates.append(refreshed + ZONE_REFRESH)
        if self.alerts is not None and self._alerts_dirty:
            candidates.append((self._alerts_checked or now) + self.alert_interval)
        if not virtual:
            candidates.append(now + self.poll)
        future = [c for c in candidates if c > now]
        if not future:
            return now if candidates else None
        return min(future)

    async def _sleep_until(self, when: datetime | None) -> None:
        now = self.app.clock.now()
        delay = self.poll.total_seconds() if when is None else (when - now).total_seconds()
        await self._sleep(max(0.0, min(delay, self.poll.total_seconds())))

    async def _sleep(self, seconds: float) -> None:
        assert self._wake is not None
        self._wake.clear()
        if self._stop_requested.is_set():
            return
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), timeout=max(seconds, 0.001))

    async def _wait_for_slot(self) -> None:
        """Wait until a running occurrence finishes, or a stop is requested."""
        assert self._wake is not None
        self._wake.clear()  # before the checks: a finish after them sets it again
        if not self._running or self._stop_requested.is_set():
            return
        await self._wake.wait()

    def _on_signal(self, sig: signal.Signals) -> None:
        log.warning(
            "received %s: finishing running work (grace %s), then stopping", sig.name, self.grace
        )
        self.stop()

    async def _drain(self) -> None:
        """Stop: let running work finish within the grace period, then cancel the rest
        (each cancelled run releases its claim)."""
        self._stop_requested.set()
        if not self._running:
            return
        tasks = list(self._running)
        _, pending = await asyncio.wait(tasks, timeout=self.grace.total_seconds())
        for task in pending:
            task.cancel()
        if pending:
            await asyncio.wait(pending)
