"""The guard (``app.claim`` / ``app.run_once``) on both backends: every way out of the body
settles the claim, the body never runs unclaimed, and leases survive long work."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest

import cronclaim
from cronclaim import (
    ClaimState,
    EventKind,
    NotAcquired,
    Occurrence,
    Run,
    StaleClaim,
    SystemClock,
)
from cronclaim.clock import VirtualClock
from cronclaim.store import Store
from tests.conftest import T0, AppFactory
from tests.dbtools import backend_of, claims_write_locked, database_unreachable

JOB = "inventory-predict"
OCC = Occurrence(job=JOB, tenant="aitor", scheduled_for=T0)
KEY = "inventory-predict:aitor:2026-05-18T05:00:00Z"
LONG = 10.0  # seconds: a bound on waits that normally take milliseconds


def row(store: Store, occurrence: Occurrence = OCC) -> cronclaim.Claim:
    claim = store.get(occurrence)
    assert claim is not None
    return claim


def kinds(store: Store, occurrence: Occurrence = OCC) -> list[EventKind]:
    return [e.kind for e in store.events(occurrence)]


def wait_until(condition: Callable[[], bool], timeout: float = LONG) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.02)
    return condition()


def take_over_when_lease_lapses(clock: VirtualClock, rival: cronclaim.App) -> cronclaim.Claim:
    """Move virtual time past the holder's lease and take the occurrence over.

    The holder's heartbeat thread may extend the lease between the clock moving and the
    rival's attempt; then the clock simply moves on again.
    """
    for _ in range(200):
        clock.advance(timedelta(minutes=1))
        try:
            return rival.store.acquire(OCC, worker=rival.worker_id, lease=timedelta(hours=1))
        except NotAcquired:
            continue
    pytest.fail("the rival never took the occurrence over")


# -- sync exits ---------------------------------------------------------------------------


def test_normal_exit_completes_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0) as run:
        assert row(app.store).state is ClaimState.CLAIMED
        assert run.claim.worker == "worker-a"
    done = row(app.store)
    assert done.state is ClaimState.DONE
    assert kinds(app.store) == [EventKind.ACQUIRED, EventKind.COMPLETED]


@pytest.mark.parametrize(
    ("error", "recorded"),
    [
        pytest.param(ValueError("bad response"), "ValueError: bad response", id="Exception"),
        pytest.param(TimeoutError("inference: 5 s"), "TimeoutError: inference: 5 s", id="Timeout"),
        pytest.param(KeyboardInterrupt(), "KeyboardInterrupt", id="KeyboardInterrupt"),
        pytest.param(SystemExit(3), "SystemExit: 3", id="SystemExit"),
    ],
)
def test_any_exception_releases_the_claim_and_is_reraised(
    make_app: AppFactory, error: BaseException, recorded: str
) -> None:
    app = make_app("worker-a", retry_after="45s")
    with pytest.raises(type(error)) as caught, app.claim(JOB, "aitor", T0):
        raise error
    assert caught.value is error
    released = row(app.store)
    assert released.state is ClaimState.RELEASED
    assert released.last_error == recorded
    assert released.retry_at == T0 + timedelta(seconds=45)
    assert kinds(app.store) == [EventKind.ACQUIRED, EventKind.RELEASED]


def test_released_occurrence_is_retried_after_its_backoff(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app("worker-a")
    with pytest.raises(TimeoutError), app.claim(JOB, "aitor", T0, retry_after="30s"):
        raise TimeoutError
    clock.advance(timedelta(seconds=30))
    with make_app("worker-b").claim(JOB, "aitor", T0) as run:
        assert (run.attempt, run.token) == (2, 2)
    assert row(app.store).state is ClaimState.DONE


def test_entering_a_held_occurrence_raises_and_the_body_never_runs(make_app: AppFactory) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    ran = []
    with (
        holder.claim(JOB, "aitor", T0),
        pytest.raises(NotAcquired, match="held by worker-a"),
        rival.claim(JOB, "aitor", T0),
    ):
        ran.append(True)
    assert ran == []
    assert row(holder.store).state is ClaimState.DONE
    assert row(holder.store).worker == "worker-a"


def test_entering_a_done_occurrence_raises_already_done(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0):
        pass
    with pytest.raises(NotAcquired, match="already done"), app.claim(JOB, "aitor", T0):
        pytest.fail("the body ran without the claim")


def test_a_guard_can_be_entered_only_once(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    guard = app.claim(JOB, "aitor", T0)
    with guard:
        pass
    with pytest.raises(RuntimeError, match="only once"), guard:
        pytest.fail("the body ran twice")


def test_run_release_in_the_body_releases_with_its_error_and_backoff(
    make_app: AppFactory,
) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0) as run:
        run.release("inference answered 503", retry_after=timedelta(minutes=5))
    released = row(app.store)
    assert released.state is ClaimState.RELEASED
    assert released.last_error == "inference answered 503"
    assert released.retry_at == T0 + timedelta(minutes=5)


def test_run_release_without_backoff_uses_the_guards(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0, retry_after="2m") as run:
        run.release("non-OK")
    assert row(app.store).retry_at == T0 + timedelta(minutes=2)


def test_run_fail_in_the_body_fails_the_occurrence(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0) as run:
        run.fail("restaurant closed for good")
    failed = row(app.store)
    assert failed.state is ClaimState.FAILED
    assert failed.last_error == "restaurant closed for good"
    assert kinds(app.store)[-1] is EventKind.FAILED


def test_last_allowed_attempt_fails_instead_of_releasing(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app("worker-a")
    with pytest.raises(TimeoutError), app.claim(JOB, "aitor", T0, max_attempts=2):
        raise TimeoutError("first")
    assert row(app.store).state is ClaimState.RELEASED
    clock.advance(timedelta(minutes=1))
    with pytest.raises(TimeoutError), app.claim(JOB, "aitor", T0, max_attempts=2):
        raise TimeoutError("second")
    failed = row(app.store)
    assert (failed.state, failed.attempt) == (ClaimState.FAILED, 2)
    assert failed.last_error == "TimeoutError: second"
    clock.advance(timedelta(days=1))
    with pytest.raises(NotAcquired, match="failed after 2 attempt"), app.claim(JOB, "aitor", T0):
        pytest.fail("a failed occurrence ran again")


def test_release_asked_on_the_last_attempt_fails(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    with app.claim(JOB, "aitor", T0, max_attempts=1) as run:
        run.release("503")
    assert row(app.store).state is ClaimState.FAILED


def test_max_attempts_must_be_a_positive_integer(make_app: AppFactory) -> None:
    app = make_app()
    for bad in (0, -1, True, 1.5):
        with pytest.raises(cronclaim.InvalidInput, match="max_attempts must be a positive"):
            app.claim(JOB, "aitor", T0, max_attempts=bad)  # type: ignore[arg-type]


def test_idempotency_key_is_stable_across_attempts_and_attempt_counts_up(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    seen: list[tuple[str, int, bool]] = []
    app, other = make_app("worker-a"), make_app("worker-b")
    with pytest.raises(TimeoutError), app.claim(JOB, "aitor", T0) as run:
        seen.append((run.idempotency_key, run.attempt, run.took_over))
        raise TimeoutError
    clock.advance(timedelta(minutes=1))
    other.store.acquire(OCC, worker="worker-b", lease=timedelta(minutes=1))  # then dies
    clock.advance(timedelta(minutes=1))
    with app.claim(JOB, "aitor", T0) as run:
        seen.append((run.idempotency_key, run.attempt, run.took_over))
    assert seen == [(KEY, 1, False), (KEY, 3, True)]


# -- async exits --------------------------------------------------------------------------


def test_async_normal_exit_completes_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    async def job() -> int:
        async with app.claim(JOB, "aitor", T0) as run:
            await asyncio.sleep(0)
            return run.attempt

    assert asyncio.run(job()) == 1
    assert row(app.store).state is ClaimState.DONE


def test_async_exception_releases_and_is_reraised(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    async def job() -> None:
        async with app.claim(JOB, "aitor", T0):
            raise ConnectionResetError("inference hung up")

    with pytest.raises(ConnectionResetError):
        asyncio.run(job())
    assert row(app.store).last_error == "ConnectionResetError: inference hung up"
    assert row(app.store).state is ClaimState.RELEASED


def test_task_cancelled_mid_body_releases_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    finished_body = []

    async def main() -> None:
        entered = asyncio.Event()

        async def job() -> None:
            async with app.claim(JOB, "aitor", T0):
                entered.set()
                await asyncio.sleep(60)
                finished_body.append(True)

        task = asyncio.create_task(job())
        await asyncio.wait_for(entered.wait(), LONG)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(main())
    assert finished_body == []
    released = row(app.store)
    assert released.state is ClaimState.RELEASED
    assert released.last_error is not None
    assert released.last_error.startswith("CancelledError")


def test_wait_for_timeout_inside_the_body_releases_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    async def job() -> None:
        async with app.claim(JOB, "aitor", T0):
            await asyncio.wait_for(asyncio.sleep(60), timeout=0.05)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(job())
    released = row(app.store)
    assert released.state is ClaimState.RELEASED
    assert released.last_error == "TimeoutError"


def test_timeout_around_the_guard_releases_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    entered = []

    async def job() -> None:
        async with asyncio.timeout(None) as deadline, app.claim(JOB, "aitor", T0):
            entered.append(True)
            # The deadline starts once the body runs, so it cannot fire during acquisition.
            deadline.reschedule(asyncio.get_running_loop().time() + 0.05)
            await asyncio.sleep(60)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(job())
    assert entered == [True]
    released = row(app.store)
    assert released.state is ClaimState.RELEASED
    assert released.last_error is not None
    assert released.last_error.startswith("CancelledError")


def test_wait_for_around_the_guard_releases_the_claim(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    async def job() -> None:
        async with app.claim(JOB, "aitor", T0):
            await asyncio.sleep(60)

    with pytest.raises(asyncio.TimeoutError):
        asyncio.run(asyncio.wait_for(job(), timeout=1.0))
    # Whether the deadline struck in the body or (on a very slow machine) during the
    # acquisition, the claim must not stay held.
    assert row(app.store).state is ClaimState.RELEASED


def test_async_entering_a_held_occurrence_raises_and_the_body_never_runs(
    make_app: AppFactory,
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    holder.store.acquire(OCC, worker="worker-a", lease=timedelta(minutes=5))
    ran = []

    async def job() -> None:
        async with rival.claim(JOB, "aitor", T0):
            ran.append(True)

    with pytest.raises(NotAcquired, match="held by worker-a"):
        asyncio.run(job())
    assert ran == []
    assert kinds(holder.store) == [EventKind.ACQUIRED]


# -- run_once -----------------------------------------------------------------------------


def test_run_once_returns_done_with_the_value(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    outcome = app.run_once(JOB, "aitor", T0, lambda run: f"pushed {run.idempotency_key}")
    assert outcome.status == "done"
    assert outcome.value == f"pushed {KEY}"
    assert outcome.reason is None
    assert outcome.claim is not None and outcome.claim.state is ClaimState.DONE


def test_run_once_skips_a_held_occurrence_without_calling_fn(make_app: AppFactory) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    holder.store.acquire(OCC, worker="worker-a", lease=timedelta(minutes=5))
    calls = []
    outcome = rival.run_once(JOB, "aitor", T0, calls.append)
    assert outcome.status == "skipped"
    assert outcome.reason is not None and "held by worker-a" in outcome.reason
    assert calls == []


def test_run_once_skips_a_done_occurrence(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    app.run_once(JOB, "aitor", T0, lambda run: None)
    outcome = app.run_once(JOB, "aitor", T0, lambda run: pytest.fail("ran twice"))
    assert outcome.status == "skipped"
    assert outcome.reason is not None and "already done" in outcome.reason


def test_run_once_releases_when_fn_raises(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    error = TimeoutError("inference did not answer within 5 s")

    def fn(run: Run) -> None:
        raise error

    outcome = app.run_once(JOB, "aitor", T0, fn)
    assert outcome.status == "released"
    assert outcome.error is error
    assert outcome.reason == "TimeoutError: inference did not answer within 5 s"
    assert row(app.store).state is ClaimState.RELEASED


def test_run_once_releases_when_fn_asks_to(make_app: AppFactory) -> None:
    app = make_app("worker-a")
    outcome = app.run_once(JOB, "aitor", T0, lambda run: run.release("HTTP 503"))
    assert outcome.status == "released"
    assert row(app.store).last_error == "HTTP 503"


def test_run_once_fails_on_the_last_attempt(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    def fn(run: Run) -> None:
        raise ValueError("bad payload")

    outcome = app.run_once(JOB, "aitor", T0, fn, max_attempts=1)
    assert outcome.status == "failed"
    assert outcome.reason == "ValueError: bad payload"
    assert row(app.store).state is ClaimState.FAILED


def test_run_once_reports_lost_when_completion_is_refused_after_a_takeover(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app, rival = make_app("worker-a"), make_app("worker-b")

    def slow(run: Run) -> str:
        take_over_when_lease_lapses(clock, rival)
        return "effect done, but too late"

    outcome = app.run_once(JOB, "aitor", T0, slow, lease="5m")
    assert outcome.status == "lost"
    assert isinstance(outcome.error, StaleClaim)
    assert outcome.reason is not None and "stale fencing token 1" in outcome.reason
    assert row(app.store).worker == "worker-b"
    assert kinds(app.store)[-1] is EventKind.STALE_REJECTED


def test_run_once_lets_keyboard_interrupt_through_after_releasing(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    def fn(run: Run) -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        app.run_once(JOB, "aitor", T0, fn)
    assert row(app.store).state is ClaimState.RELEASED


def test_run_once_async_statuses(make_app: AppFactory) -> None:
    app = make_app("worker-a")

    async def ok(run: Run) -> int:
        await asyncio.sleep(0)
        return run.attempt

    async def boom(run: Run) -> int:
        raise TimeoutError

    async def main() -> tuple[str, str, str]:
        done = await app.run_once_async(JOB, "aitor", T0, ok)
        skipped = await app.run_once_async(JOB, "aitor", T0, ok)
        released = await app.run_once_async(JOB, "bea", T0, boom)
        return done.status, skipped.status, released.status

    assert asyncio.run(main()) == ("done", "skipped", "released")


# -- heartbeats and lost leases (real time) -----------------------------------------------

SHORT_LEASE = timedelta(seconds=0.9)  # beaten every 0.3 s
WORK = 2.0  # seconds: over two short leases


@contextlib.contextmanager
def rival_trying(rival: cronclaim.App) -> Iterator[list[object]]:
    """A thread that keeps trying to take the occurrence; yields the list of its wins."""
    wins: list[object] = []
    attempts = [0]
    stop = threading.Event()

    def loop() -> None:
        while not stop.is_set():
            with contextlib.suppress(NotAcquired):
                wins.append(rival.store.acquire(OCC, worker="worker-b", lease=SHORT_LEASE))
            attempts[0] += 1
            stop.wait(0.05)

    thread = threading.Thread(target=loop)
    thread.start()
    try:
        yield wins
    finally:
        stop.set()
        thread.join(timeout=LONG)
    assert attempts[0] >= 5, "the rival hardly tried"


def test_heartbeat_keeps_a_short_lease_alive_during_long_work(make_app: AppFactory) -> None:
    system = SystemClock()
    holder = make_app("worker-a", clock_=system)
    rival = make_app("worker-b", clock_=system)
    rival.store  # noqa: B018 - opened before the race
    with holder.claim(JOB, "aitor", T0, lease=SHORT_LEASE) as run:
        with rival_trying(rival) as wins:
            time.sleep(WORK)
        claim = run.claim
    assert wins == []
    assert claim.lease_expires_at is not None and claim.claimed_at is not None
    assert claim.lease_expires_at - claim.claimed_at > SHORT_LEASE * 2  # it was extended
    done = row(holder.store)
    assert (done.state, done.token, done.worker) == (ClaimState.DONE, 1, "worker-a")
    assert EventKind.TOOK_OVER not in kinds(holder.store)


def test_heartbeat_survives_an_event_loop_blocked_by_sync_work(make_app: AppFactory) -> None:
    system = SystemClock()
    holder = make_app("worker-a", clock_=system)
    rival = make_app("worker-b", clock_=system)
    rival.store  # noqa: B018

    async def job() -> tuple[list[object], cronclaim.Claim]:
        async with holder.claim(JOB, "aitor", T0, lease=SHORT_LEASE) as run:
            with rival_trying(rival) as wins:
                time.sleep(WORK)  # blocks the event loop: no task could beat
            return wins, run.claim

    wins, claim = asyncio.run(job())
    assert wins == []
    assert claim.lease_expires_at is not None and claim.claimed_at is not None
    assert claim.lease_expires_at - claim.claimed_at > SHORT_LEASE * 2
    assert row(holder.store).state is ClaimState.DONE


def test_without_heartbeats_a_short_lease_is_taken_over(make_app: AppFactory) -> None:
    """The control for the two tests above: the rival does win once nobody beats."""
    system = SystemClock()
    holder = make_app("worker-a", clock_=system)
    rival = make_app("worker-b", clock_=system)
    holder.store.acquire(OCC, worker="worker-a", lease=SHORT_LEASE)
    with rival_trying(rival) as wins:
        assert wait_until(lambda: bool(wins))
    assert row(holder.store).worker == "worker-b"


def test_lost_lease_is_flagged_and_the_completion_raises_stale_claim(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    rival.store  # noqa: B018
    # A short (virtual) lease, beaten every 0.2 s of real time; the virtual clock jumps.
    with (
        pytest.raises(StaleClaim) as caught,
        holder.claim(JOB, "aitor", T0, lease=timedelta(seconds=0.6)) as run,
    ):
        take_over_when_lease_lapses(clock, rival)
        assert wait_until(lambda: run.lease_lost), "no heartbeat noticed the takeover"
    assert caught.value.action == "complete"
    assert caught.value.current is not None
    assert caught.value.current.worker == "worker-b"
    current = row(holder.store)
    assert (current.state, current.worker, current.token) == (ClaimState.CLAIMED, "worker-b", 2)
    rejected = [e.detail for e in holder.store.events(OCC) if e.kind is EventKind.STALE_REJECTED]
    assert rejected[0] == "heartbeat"
    assert rejected[-1] == "complete"


def test_lost_lease_stops_an_async_body_and_raises_stale_claim(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    rival.store  # noqa: B018
    reached_end = []

    async def job() -> str:
        with pytest.raises(StaleClaim) as caught:
            async with holder.claim(JOB, "aitor", T0, lease=timedelta(seconds=0.6)):
                await asyncio.to_thread(take_over_when_lease_lapses, clock, rival)
                await asyncio.sleep(LONG)  # stopped by the lost lease long before
                reached_end.append(True)
        # The caller's task goes on: only the body was stopped.
        await asyncio.sleep(0.05)
        assert caught.value.current is not None
        return caught.value.current.worker or ""

    started = time.monotonic()
    assert asyncio.run(job()) == "worker-b"
    assert time.monotonic() - started < LONG
    assert reached_end == []
    assert row(holder.store).worker == "worker-b"


def test_run_once_async_reports_lost_when_its_lease_is_taken_over(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    rival.store  # noqa: B018

    async def slow(run: Run) -> str:
        await asyncio.to_thread(take_over_when_lease_lapses, clock, rival)
        await asyncio.sleep(LONG)
        return "too late"

    async def main() -> tuple[str, str]:
        outcome = await holder.run_once_async(JOB, "aitor", T0, slow, lease=timedelta(seconds=0.6))
        await asyncio.sleep(0.05)  # the caller was not cancelled
        return outcome.status, outcome.reason or ""

    status, reason = asyncio.run(main())
    assert status == "lost"
    assert "stale fencing token 1" in reason


def test_another_cancellation_during_a_lost_lease_still_cancels(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    rival.store  # noqa: B018
    after = []

    async def job() -> None:
        async with holder.claim(JOB, "aitor", T0, lease=timedelta(seconds=0.6)) as run:
            # Synchronous, so the loop cannot act until the body next awaits: by then
            # both the lost lease and a shutdown have asked to cancel this task.
            take_over_when_lease_lapses(clock, rival)
            assert wait_until(lambda: run.lease_lost)
            task = asyncio.current_task()
            assert task is not None
            task.cancel()  # e.g. the process is shutting down
            await asyncio.sleep(LONG)
        after.append(True)

    with pytest.raises(asyncio.CancelledError):
        asyncio.run(job())
    assert after == []


def test_lease_lost_as_the_body_returns_does_not_cancel_the_caller(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    holder, rival = make_app("worker-a"), make_app("worker-b")
    rival.store  # noqa: B018

    async def main() -> str:
        with pytest.raises(StaleClaim):
            async with holder.claim(JOB, "aitor", T0, lease=timedelta(seconds=0.6)) as run:
                take_over_when_lease_lapses(clock, rival)
                assert wait_until(lambda: run.lease_lost)  # the cancel request is queued
                # ... and the body returns without awaiting again.
        await asyncio.sleep(0.1)  # must not be cancelled by the stale request
        return "caller went on"

    assert asyncio.run(main()) == "caller went on"


def test_cancelled_while_acquiring_gives_the_claim_back(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app("worker-a")
    app.store  # noqa: B018
    ran = []

    async def main() -> None:
        async def job() -> None:
            async with app.claim(JOB, "aitor", T0):
                ran.append(True)

        with claims_write_locked(database_url):
            task = asyncio.create_task(job())
            await asyncio.sleep(0.2)  # the acquisition waits on the lock in its thread
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        # The lock is gone: the abandoned acquisition wins in its thread, then gives back
        # (while the loop runs: a loop shut down meanwhile leaves the lease as backstop).
        released = await asyncio.to_thread(
            wait_until,
            lambda: (c := app.store.get(OCC)) is not None and c.state is ClaimState.RELEASED,
        )
        assert released, "the abandoned acquisition was not given back"

    asyncio.run(main())
    assert ran == []
    given_back = row(app.store)
    assert given_back.last_error == "CancelledError: cancelled before the body started"
    assert given_back.retry_at == T0  # claimable again at once
    with make_app("worker-b").claim(JOB, "aitor", T0) as run:
        assert run.attempt == 2


# -- the database is gone when the claim must be released ----------------------------------


def short_busy_timeout(database_url: str) -> str:
    return (
        database_url + "?busy_timeout=0.2" if backend_of(database_url) == "sqlite" else database_url
    )


def test_release_that_cannot_reach_the_database_is_logged_and_the_lease_is_the_backstop(
    database_url: str,
    make_app: AppFactory,
    clock: VirtualClock,
    caplog: pytest.LogCaptureFixture,
) -> None:
    holder = cronclaim.App(
        short_busy_timeout(database_url), clock=clock, worker_id="worker-a", lease="1m"
    )
    try:
        error = TimeoutError("inference did not answer within 5 s")
        # The outage is entered inside the body and ends after the guard's exit, so the
        # release on the way out finds the database unreachable.
        with (
            caplog.at_level(logging.ERROR, logger="cronclaim.guard"),
            pytest.raises(TimeoutError) as caught,
            contextlib.ExitStack() as outage,
            holder.claim(JOB, "aitor", T0),
        ):
            outage.enter_context(database_unreachable(database_url))
            raise error
        assert caught.value is error
        [record] = [r for r in caplog.records if r.name == "cronclaim.guard"]
        assert record.levelno == logging.ERROR
        assert KEY in record.getMessage()
        assert "TimeoutError" in record.getMessage()
    finally:
        holder.close()

    rival = make_app("worker-b")
    still_held = row(rival.store)
    assert (still_held.state, still_held.worker) == (ClaimState.CLAIMED, "worker-a")
    with pytest.raises(NotAcquired, match="held by worker-a"):
        rival.store.acquire(OCC, worker="worker-b", lease=timedelta(minutes=1))
    clock.advance(timedelta(minutes=1))
    with rival.claim(JOB, "aitor", T0) as run:
        assert run.took_over
    assert kinds(rival.store) == [
        EventKind.ACQUIRED,
        EventKind.LEASE_EXPIRED,
        EventKind.TOOK_OVER,
        EventKind.COMPLETED,
    ]
