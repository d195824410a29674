"""A property-based model of the claim lifecycle, run against each real store.

Hypothesis drives several workers through acquire, batch acquire, heartbeat, complete,
batch complete, release, fail and the passing of (virtual) time. A plain in-memory model
predicts every answer; after each step the store and the model must agree on every row
and its history, and the fencing invariants must hold: tokens only grow, and no two
workers ever hold the current token of one occurrence.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from cronclaim import Claim, ClaimState, EventKind, NotAcquired, Occurrence, StaleClaim
from cronclaim.clock import VirtualClock
from cronclaim.store import Store
from tests.conftest import T0, AppFactory

TENANTS = ("t0", "t1")
WORKERS = st.sampled_from(["w1", "w2", "w3"])
TENANT_INDEX = st.integers(0, len(TENANTS) - 1)
LEASES = st.sampled_from([10, 60]).map(lambda s: timedelta(seconds=s))
RETRY_AFTERS = st.sampled_from([0, 10, 60]).map(lambda s: timedelta(seconds=s))
# Steps that land before, exactly on and just after the leases and back-offs above.
STEPS = st.sampled_from([1, 9, 10, 50, 60, 61]).map(lambda s: timedelta(seconds=s))

SETTINGS = settings(
    max_examples=35,
    stateful_step_count=25,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.too_slow],
)


@dataclass
class Row:
    """The model's idea of one claim row."""

    state: ClaimState
    token: int
    attempt: int
    worker: str
    lease_expires_at: datetime | None
    retry_at: datetime | None = None
    last_error: str | None = None


@dataclass
class Model:
    rows: dict[int, Row] = field(default_factory=dict)
    history: dict[int, list[EventKind]] = field(default_factory=dict)
    tokens_issued: dict[int, list[int]] = field(default_factory=dict)

    def claimable(self, i: int, now: datetime) -> bool:
        row = self.rows.get(i)
        if row is None:
            return True
        if row.state is ClaimState.RELEASED:
            return row.retry_at is not None and row.retry_at <= now
        if row.state is ClaimState.CLAIMED:
            return row.lease_expires_at is not None and row.lease_expires_at <= now
        return False

    def acquire(self, i: int, worker: str, now: datetime, lease: timedelta) -> Row:
        old = self.rows.get(i)
        history = self.history.setdefault(i, [])
        if old is None:
            new = Row(ClaimState.CLAIMED, 1, 1, worker, now + lease)
            history.append(EventKind.ACQUIRED)
        else:
            if old.state is ClaimState.CLAIMED:
                history += [EventKind.LEASE_EXPIRED, EventKind.TOOK_OVER]
            else:
                history.append(EventKind.ACQUIRED)
            new = Row(
                ClaimState.CLAIMED,
                old.token + 1,
                old.attempt + 1,
                worker,
                now + lease,
                last_error=old.last_error,
            )
        self.rows[i] = new
        self.tokens_issued.setdefault(i, []).append(new.token)
        return new

    def is_current(self, i: int, token: int) -> bool:
        row = self.rows.get(i)
        return row is not None and row.token == token and row.state is ClaimState.CLAIMED


class LifecycleMachine(RuleBasedStateMachine):
    store: Store
    clock: VirtualClock

    claims = Bundle("claims")

    def __init__(self) -> None:
        super().__init__()
        self.clock.set(T0)
        job = f"model-{uuid.uuid4().hex[:12]}"  # a fresh set of occurrences per example
        self.occurrences = [Occurrence(job=job, tenant=t, scheduled_for=T0) for t in TENANTS]
        self.model = Model()
        self.handed_out: list[Claim] = []

    def index(self, claim: Claim) -> int:
        return TENANTS.index(claim.occurrence.tenant)

    def check_won(self, claim: Claim, expected: Row, prior: Row | None) -> None:
        assert claim.state is ClaimState.CLAIMED
        assert (claim.token, claim.attempt, claim.worker) == (
            expected.token,
            expected.attempt,
            expected.worker,
        )
        assert claim.lease_expires_at == expected.lease_expires_at
        assert claim.prior_state is (prior.state if prior is not None else None)
        assert claim.prior_worker == (prior.worker if prior is not None else None)

    # -- rules ------------------------------------------------------------------------------

    @rule(target=claims, i=TENANT_INDEX, worker=WORKERS, lease=LEASES)
    def acquire(self, i: int, worker: str, lease: timedelta) -> object:
        now = self.clock.now()
        prior = self.model.rows.get(i)
        if self.model.claimable(i, now):
            claim = self.store.acquire(self.occurrences[i], worker=worker, lease=lease)
            self.check_won(claim, self.model.acquire(i, worker, now, lease), prior)
            self.handed_out.append(claim)
            return multiple(claim)
        try:
            self.store.acquire(self.occurrences[i], worker=worker, lease=lease)
        except NotAcquired as refused:
            assert prior is not None and refused.current is not None
            assert (refused.current.state, refused.current.token) == (prior.state, prior.token)
            return multiple()
        raise AssertionError(f"acquired {self.occurrences[i]} that the model says is not free")

    @rule(target=claims, i=TENANT_INDEX, worker=WORKERS, lease=LEASES)
    def acquire_after_leases_lapse(self, i: int, worker: str, lease: timedelta) -> object:
        """Past every lease and back-off: makes takeovers and retries common."""
        self.clock.advance(timedelta(seconds=61))
        return self.acquire(i, worker, lease)

    @rule(
        target=claims,
        indices=st.lists(TENANT_INDEX, min_size=0, max_size=6),
        worker=WORKERS,
        lease=LEASES,
    )
    def acquire_batch(self, indices: list[int], worker: str, lease: timedelta) -> object:
        now = self.clock.now()
        expected = {i for i in set(indices) if self.model.claimable(i, now)}
        priors = {i: self.model.rows.get(i) for i in expected}
        won = self.store.acquire_batch(
            [self.occurrences[i] for i in indices], worker=worker, lease=lease
        )
        assert sorted(self.index(c) for c in won) == sorted(expected)
        for claim in sorted(won, key=self.index):
            i = self.index(claim)
            self.check_won(claim, self.model.acquire(i, worker, now, lease), priors[i])
        self.handed_out += won
        return multiple(*won)

    @rule(target=claims, claim=claims, lease=LEASES)
    def heartbeat(self, claim: Claim, lease: timedelta) -> object:
        i = self.index(claim)
        if self.model.is_current(i, claim.token):
            beat = self.store.heartbeat(claim, lease=lease)
            self.model.rows[i].lease_expires_at = self.clock.now() + lease
            assert beat.lease_expires_at == self.model.rows[i].lease_expires_at
            return multiple(beat)
        self.expect_stale(i, lambda: self.store.heartbeat(claim, lease=lease))
        return multiple()

    @rule(claim=claims)
    def complete(self, claim: Claim) -> None:
        i = self.index(claim)
        if self.model.is_current(i, claim.token):
            assert self.store.complete(claim).state is ClaimState.DONE
            self.settle(i, ClaimState.DONE, EventKind.COMPLETED, error=None)
        else:
            self.expect_stale(i, lambda: self.store.complete(claim))

    @rule(claim=claims, retry_after=RETRY_AFTERS, error=st.sampled_from([None, "boom"]))
    def release(self, claim: Claim, retry_after: timedelta, error: str | None) -> None:
        i = self.index(claim)
        if self.model.is_current(i, claim.token):
            released = self.store.release(claim, error=error, retry_after=retry_after)
            self.settle(i, ClaimState.RELEASED, EventKind.RELEASED, error=error)
            self.model.rows[i].retry_at = self.clock.now() + retry_after
            assert released.retry_at == self.model.rows[i].retry_at
        else:
            self.expect_stale(
                i, lambda: self.store.release(claim, error=error, retry_after=retry_after)
            )

    @rule(claim=claims)
    def fail(self, claim: Claim) -> None:
        i = self.index(claim)
        if self.model.is_current(i, claim.token):
            assert self.store.fail(claim, error="gave up").state is ClaimState.FAILED
            self.settle(i, ClaimState.FAILED, EventKind.FAILED, error="gave up")
        else:
            self.expect_stale(i, lambda: self.store.fail(claim, error="gave up"))

    @rule(batch=st.lists(claims, max_size=4))
    def complete_batch(self, batch: list[Claim]) -> None:
        # The store keeps one claim per row id, the last one given.
        unique = list({c.id: c for c in batch}.values())
        expected_done = {
            self.index(c) for c in unique if self.model.is_current(self.index(c), c.token)
        }
        done, stale = self.store.complete_batch(batch)
        assert sorted(self.index(c) for c in done) == sorted(expected_done)
        assert sorted(self.index(c) for c in stale) == sorted(
            self.index(c) for c in unique if self.index(c) not in expected_done
        )
        for claim in unique:
            i = self.index(claim)
            if i in expected_done:
                self.settle(i, ClaimState.DONE, EventKind.COMPLETED, error=None)
            else:
                self.model.history[i].append(EventKind.STALE_REJECTED)

    @rule(step=STEPS)
    def advance(self, step: timedelta) -> None:
        self.clock.advance(step)

    # -- model bookkeeping -----------------------------------------------------------------

    def settle(self, i: int, state: ClaimState, kind: EventKind, *, error: str | None) -> None:
        row = self.model.rows[i]
        row.state = state
        row.lease_expires_at = None
        row.retry_at = None
        row.last_error = error
        self.model.history[i].append(kind)

    def expect_stale(self, i: int, call: object) -> None:
        assert callable(call)
        try:
            call()
        except StaleClaim as refused:
            current = self.model.rows[i]
            assert refused.current is not None
            assert (refused.current.token, refused.current.state) == (current.token, current.state)
            self.model.history[i].append(EventKind.STALE_REJECTED)
            return
        raise AssertionError("a stale token was accepted")

    # -- invariants --------------------------------------------------------------------------

    @invariant()
    def store_agrees_with_model(self) -> None:
        for i, occurrence in enumerate(self.occurrences):
            expected = self.model.rows.get(i)
            actual = self.store.get(occurrence)
            if expected is None:
                assert actual is None
                continue
            assert actual is not None
            assert (actual.state, actual.token, actual.attempt, actual.worker) == (
                expected.state,
                expected.token,
                expected.attempt,
                expected.worker,
            )
            assert actual.lease_expires_at == expected.lease_expires_at
            assert actual.retry_at == expected.retry_at
            assert actual.last_error == expected.last_error

    @invariant()
    def history_agrees_with_model(self) -> None:
        for i, occurrence in enumerate(self.occurrences):
            kinds = [e.kind for e in self.store.events(occurrence)]
            assert kinds == self.model.history.get(i, [])

    @invariant()
    def tokens_only_grow(self) -> None:
        for issued in self.model.tokens_issued.values():
            assert issued == list(range(1, len(issued) + 1))

    @invariant()
    def at_most_one_worker_holds_the_current_token(self) -> None:
        for i in range(len(TENANTS)):
            row = self.model.rows.get(i)
            if row is None:
                continue
            holders = {
                c.worker for c in self.handed_out if self.index(c) == i and c.token == row.token
            }
            assert len(holders) <= 1
            if row.state is ClaimState.CLAIMED:
                assert holders == {row.worker}


def test_lifecycle_matches_the_model(make_app: AppFactory, clock: VirtualClock) -> None:
    class Machine(LifecycleMachine):
        pass

    Machine.store = make_app("model").store
    Machine.clock = clock
    run_state_machine_as_test(Machine, settings=SETTINGS)
