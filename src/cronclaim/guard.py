"""The claim guard: the body runs only under a claim, and every way out of it settles
the claim.

``with app.claim(...) as run:`` acquires on entry (raising ``NotAcquired`` so the body
cannot run unclaimed) and, on the way out, completes on a normal exit or releases for
a retry on *any* exception, ``CancelledError``, ``KeyboardInterrupt`` and
``SystemExit`` included, then re-raises. Once attempts are exhausted it fails the
occurrence instead. If the settling call itself cannot reach the database, the error is
logged and the lease expiry is the backstop: another worker takes the occurrence over.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Generic, Literal, Protocol, TypeVar

from cronclaim.exceptions import CronclaimError, NotAcquired, RunAbandoned, StaleClaim
from cronclaim.metrics import beacon, beacons_on, occurrence_fields
from cronclaim.models import Claim, ClaimState, Occurrence

if TYPE_CHECKING:
    from cronclaim.heartbeat import Heartbeater, Watch
    from cronclaim.store import Store

log = logging.getLogger("cronclaim.guard")

T = TypeVar("T")
Status = Literal["done", "skipped", "released", "failed", "lost"]


class CallHooks(Protocol):
    """Called around every external call a run makes through ``run.call``; installed by
    :mod:`cronclaim.testing` to inject faults (a hook may raise, or end the process)."""

    def before(self, run: Run, name: str) -> None: ...

    def after(self, run: Run, name: str) -> None: ...


#: The installed hooks; ``None`` (nothing to do) outside fault-injection tests.
call_hooks: CallHooks | None = None


def describe_error(exc: BaseException) -> str:
    text = str(exc)
    name = type(exc).__name__
    return f"{name}: {text}" if text else name


class Run:
    """What the guarded body holds: the claim, and the values to pass downstream."""

    def __init__(self, claim: Claim, *, stale: bool = False) -> None:
        self._claim = claim
        self._stale = stale
        self._lease_lost = False
        self._abandoned = False
        #: The external call (``run.call`` name) whose exception ended the attempt, if any.
        self.failed_dependency: str | None = None
        self._settle: tuple[Literal["release", "fail"], str | None, timedelta | None] | None = None

    @property
    def claim(self) -> Claim:
        """The claim as last written by this run (acquire or the latest heartbeat)."""
        return self._claim

    @property
    def occurrence(self) -> Occurrence:
        return self._claim.occurrence

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts: send it downstream so a retried effect is deduplicated."""
        return self._claim.occurrence.idempotency_key

    @property
    def attempt(self) -> int:
        return self._claim.attempt

    @property
    def token(self) -> int:
        return self._claim.token

    @property
    def took_over(self) -> bool:
        """True when this attempt took over a claim whose holder stopped heart-beating."""
        return self._claim.took_over

    @property
    def is_replay(self) -> bool:
        """True when an operator replayed this occurrence (``cronclaim replay``)."""
        return self._claim.replays > 0

    @property
    def stale(self) -> bool:
        """True when this attempt starts later than the job's ``stale_after`` after its
        tick: recompute if useful, but do not send a 07:00 push at 15:00."""
        return self._stale

    def call(self, name: str, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> T:
        """Make an external call (inference, a push, a webhook) on behalf of this run.

        Refused with :class:`~cronclaim.exceptions.RunAbandoned` once the worker stopped
        waiting for this attempt. ``name`` names the dependency (``"inference"``): fault
        injection and error reports use it.
        """
        self._check_live(name)
        try:
            hooks = call_hooks
            if hooks is not None:
                hooks.before(self, name)
            result = fn(*args, **kwargs)
            if hooks is not None:
                hooks.after(self, name)
        except BaseException:
            self.failed_dependency = name
            raise
        return result

    async def call_async(
        self, name: str, fn: Callable[..., Awaitable[T]], /, *args: Any, **kwargs: Any
    ) -> T:
        """:meth:`call` for a coroutine function."""
        self._check_live(name)
        try:
            hooks = call_hooks
            if hooks is not None:
                hooks.before(self, name)
            result = await fn(*args, **kwargs)
            if hooks is not None:
                hooks.after(self, name)
        except BaseException:
            self.failed_dependency = name
            raise
        return result

    def _check_live(self, name: str) -> None:
        if self._abandoned:
            raise RunAbandoned(
                f"{self.idempotency_key}: call to {name} refused, the worker stopped waiting "
                "for this attempt"
            )

    @property
    def lease_lost(self) -> bool:
        """True once a heartbeat found the claim taken over; the result will be refused."""
        return self._lease_lost

    @property
    def abandoned(self) -> bool:
        """True once the worker stopped waiting for this attempt (it timed out or the
        worker is stopping) while its thread may still be running."""
        return self._abandoned

    def release(self, error: str | None = None, *, retry_after: timedelta | None = None) -> None:
        """Ask for the occurrence to be released for retry when the body returns.

        For failures the body handles without raising, such as a non-OK response.
        """
        self._settle = ("release", error, retry_after)

    def fail(self, error: str | None = None) -> None:
        """Ask for the occurrence to be marked failed (no retry) when the body returns."""
        self._settle = ("fail", error, None)

    def __repr__(self) -> str:
        return f"<Run {self.idempotency_key} attempt={self.attempt} token={self.token}>"


@dataclass(frozen=True, kw_only=True)
class Outcome(Generic[T]):
    """The result of :meth:`App.run_once`.

    ``status``: ``done`` (the body ran and the claim completed), ``skipped`` (not
    acquired: held elsewhere or already finished; ``reason`` says which), ``released``
    (the body failed and the occurrence will be retried), ``failed`` (the body failed
    and no attempts are left), ``lost`` (the body ran but its lease had been taken over,
    so its completion was refused; the new holder settles the occurrence).
    """

    status: Status
    occurrence: Occurrence
    reason: str | None = None
    claim: Claim | None = None
    value: T | None = None
    error: BaseException | None = None


class ClaimGuard:
    """Returned by ``App.claim``; use it with ``with`` or ``async with``."""

    def __init__(
        self,
        *,
        store: Callable[[], Store],
        heartbeater: Heartbeater,
        occurrence: Occurrence,
        worker: str,
        lease: timedelta,
        retry_after: timedelta,
        max_attempts: int | None,
    ) -> None:
        self._store = store
        self._heartbeater = heartbeater
        self.occurrence = occurrence
        self.worker = worker
        self.lease = lease
        self.retry_after = retry_after
        self.max_attempts = max_attempts
        self.run: Run | None = None
        self.settled: Claim | None = None
        self._watch: Watch | None = None
        self._entered = False
        self._in_body = False  # async: the body runs (a lost lease may cancel it)
        self._lease_cancel = False  # async: the task was cancelled for a lost lease
        self._refused: StaleClaim | None = None

    # -- shared steps -------------------------------------------------------------------

    def _acquire(self) -> Run:
        if self._entered:
            raise RuntimeError("a ClaimGuard can be entered only once; call app.claim() again")
        self._entered = True
        try:
            claim = self._store().acquire(self.occurrence, worker=self.worker, lease=self.lease)
        except NotAcquired as refused:
            if beacons_on():
                beacon(
                    "claim_skipped",
                    job=self.occurrence.job,
                    tenant=self.occurrence.tenant,
                    idempotency_key=self.occurrence.idempotency_key,
                    reason=refused.reason,
                )
            raise
        if beacons_on():
            if claim.took_over:
                beacon(
                    "lease_expired", **occurrence_fields(claim), previous_worker=claim.prior_worker
                )
            beacon("claim_acquired", **occurrence_fields(claim))
        return Run(claim)

    def _start(self, run: Run, on_lost: Callable[[], None] | None) -> None:
        self.run = run
        self._watch = self._heartbeater.watch(run, self.lease, on_lost)

    def _settle(self, exc: BaseException | None) -> None:
        """Complete, release or fail the claim. Raises ``StaleClaim`` on a normal exit only."""
        run = self.run
        assert run is not None
        if self._watch is not None:
            self._heartbeater.unwatch(self._watch)
        store = self._store()
        claim = run._claim
        try:
            if exc is None and run._settle is None:
                self.settled = store.complete(claim)
                if beacons_on():
                    beacon("claim_completed", **occurrence_fields(self.settled))
                return
            action: str
            error: str | None
            if exc is not None:
                action, error, retry_after = "release", describe_error(exc), None
            else:
                assert run._settle is not None
                action, error, retry_after = run._settle
            dependency = run.failed_dependency
            if exc is not None and beacons_on():
                beacon(
                    "effect_threw", **occurrence_fields(claim), error=error, dependency=dependency
                )
            if action == "fail" or (
                self.max_attempts is not None and claim.attempt >= self.max_attempts
            ):
                self.settled = store.fail(claim, error=error, dependency=dependency)
            else:
                self.settled = store.release(
                    claim,
                    error=error,
                    retry_after=retry_after or self.retry_after,
                    dependency=dependency,
                )
            if beacons_on():
                beacon(
                    "claim_failed" if self.settled.state is ClaimState.FAILED else "claim_released",
                    **occurrence_fields(self.settled),
                    error=error,
                )
        except StaleClaim as stale:
            if exc is None:
                raise
            self._refused = stale
            log.error("could not release %s: lease already taken over", run.idempotency_key)
        except CronclaimError as store_exc:
            if exc is None:
                raise
            # The body's error is the one to propagate. The lease runs out and another
            # worker takes the occurrence over: the claim cannot leak.
            log.error(
                "could not release %s after %s; it becomes claimable when its lease expires: %s",
                run.idempotency_key,
                describe_error(exc),
                store_exc,
            )

    # -- sync ---------------------------------------------------------------------------

    def __enter__(self) -> Run:
        run = self._acquire()
        self._start(run, None)
        return run

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self._settle(exc)
        return False

    # -- async --------------------------------------------------------------------------

    async def __aenter__(self) -> Run:
        future = asyncio.ensure_future(asyncio.to_thread(self._acquire))
        try:
            run = await asyncio.shield(future)
        except asyncio.CancelledError:
            # The acquisition may still win in its thread: give it back rather than leak.
            future.add_done_callback(self._give_back_abandoned)
            raise
        task = asyncio.current_task()
        loop = asyncio.get_running_loop()
        on_lost = None
        if task is not None:

            def on_lost() -> None:
                loop.call_soon_threadsafe(self._cancel_body, task)

        self._in_body = True
        self._start(run, on_lost)
        return run

    def _cancel_body(self, task: asyncio.Task[Any]) -> None:
        """On the loop: stop a body whose lease was taken over, never code after it."""
        if self._in_body:
            self._lease_cancel = True
            task.cancel("cronclaim: lease lost to a takeover")

    def _took_back_lease_cancel(self) -> bool:
        """Withdraw our own cancellation; False if the task is also cancelled by others."""
        if not self._lease_cancel:
            return False
        self._lease_cancel = False
        task = asyncio.current_task()
        return task is not None and task.uncancel() == 0

    def _give_back_abandoned(self, future: asyncio.Future[Run]) -> None:
        if future.cancelled() or future.exception() is not None:
            return
        claim = future.result().claim

        def give_back() -> None:
            try:
                self._store().release(
                    claim,
                    error="CancelledError: cancelled before the body started",
                    retry_after=timedelta(0),
                )
            except CronclaimError as exc:
                log.error(
                    "could not give back %s; its lease will expire: %s",
                    claim.occurrence.idempotency_key,
                    exc,
                )

        threading.Thread(target=give_back, name="cronclaim-give-back", daemon=True).start()

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> Literal[False]:
        self._in_body = False
        settling = asyncio.ensure_future(asyncio.to_thread(self._settle, exc))
        try:
            # Shielded: a second cancellation must not interrupt the settling call; the
            # thread finishes it regardless.
            await asyncio.shield(settling)
        except asyncio.CancelledError:
            if not self._took_back_lease_cancel():
                raise
            await settling
        if isinstance(exc, asyncio.CancelledError) and self._took_back_lease_cancel():
            # The cancellation was ours, to stop a body whose claim was taken over: report
            # the refused claim, as the sync form does, instead of cancelling the caller.
            assert self.run is not None
            refused = self._refused or StaleClaim(self.occurrence, self.run.token, "release", None)
            raise refused from exc
        return False


def outcome_of(
    guard: ClaimGuard, value: Any = None, error: BaseException | None = None
) -> Outcome[Any]:
    settled = guard.settled
    status: Status
    if settled is None:
        status = "lost"
    elif settled.state is ClaimState.DONE:
        status = "done"
    elif settled.state is ClaimState.FAILED:
        status = "failed"
    else:
        status = "released"
    reason = None if error is None else describe_error(error)
    return Outcome(
        status=status,
        occurrence=guard.occurrence,
        reason=reason,
        claim=settled,
        value=value,
        error=error,
    )


def run_guarded(guard: ClaimGuard, fn: Callable[[Run], T]) -> Outcome[T]:
    """The functional form: values instead of exceptions for ordinary failures.

    ``KeyboardInterrupt``, ``SystemExit`` and ``CancelledError`` still propagate (after
    the claim is released): swallowing them would make a process impossible to stop.
    """
    try:
        with guard as run:
            value = fn(run)
    except NotAcquired as exc:
        return Outcome(
            status="skipped", occurrence=guard.occurrence, reason=exc.reason, claim=exc.current
        )
    except StaleClaim as exc:
        return Outcome(
            status="lost",
            occurrence=guard.occurrence,
            reason=str(exc),
            claim=exc.current,
            error=exc,
        )
    except Exception as exc:
        return outcome_of(guard, error=exc)
    return outcome_of(guard, value=value)


async def run_guarded_async(guard: ClaimGuard, fn: Callable[[Run], Awaitable[T]]) -> Outcome[T]:
    try:
        async with guard as run:
            value = await fn(run)
    except NotAcquired as exc:
        return Outcome(
            status="skipped", occurrence=guard.occurrence, reason=exc.reason, claim=exc.current
        )
    except StaleClaim as exc:
        return Outcome(
            status="lost",
            occurrence=guard.occurrence,
            reason=str(exc),
            claim=exc.current,
            error=exc,
        )
    except Exception as exc:
        return outcome_of(guard, error=exc)
    return outcome_of(guard, value=value)
