"""The store contract (``cronclaim.store.base``), run unchanged against SQLite and
PostgreSQL. Time is the test's virtual clock, which both stores then use as "now"."""

from __future__ import annotations

import dataclasses
import threading
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

import cronclaim
from cronclaim import (
    Claim,
    ClaimState,
    ConfigurationError,
    CronclaimError,
    DatabaseUnavailable,
    EventKind,
    InvalidInput,
    NotAcquired,
    Occurrence,
    SchemaMissing,
    StaleClaim,
    StoreError,
)
from cronclaim.clock import VirtualClock
from cronclaim.store import MAX_BATCH, Store, open_store
from cronclaim.store.queries import load_migrations
from cronclaim.store.rows import MAX_ERROR_LENGTH
from tests.conftest import T0, AppFactory
from tests.dbtools import empty_postgres_database, sql

JOB = "inventory-predict"
LEASE = timedelta(seconds=60)
US = timedelta(microseconds=1)


def occ(tenant: str = "aitor", *, at: datetime = T0, job: str = JOB) -> Occurrence:
    return Occurrence(job=job, tenant=tenant, scheduled_for=at)


@pytest.fixture
def store(make_app: AppFactory) -> Store:
    return make_app("worker-a").store


def as_row(claim: Claim) -> Claim:
    """``claim`` as ``get`` returns it: the prior_* fields belong to an acquisition only."""
    return dataclasses.replace(claim, prior_state=None, prior_worker=None)


def kinds(store: Store, occurrence: Occurrence) -> list[EventKind]:
    return [e.kind for e in store.events(occurrence)]


def taken_over(store: Store, clock: VirtualClock, occurrence: Occurrence) -> tuple[Claim, Claim]:
    """worker-a acquires, its lease runs out, worker-b takes over: (a's claim, b's claim)."""
    old = store.acquire(occurrence, worker="worker-a", lease=LEASE)
    clock.advance(LEASE)
    new = store.acquire(occurrence, worker="worker-b", lease=LEASE)
    return old, new


# -- fresh acquire ----------------------------------------------------------------------


def test_fresh_acquire_returns_token_1_attempt_1_held_by_the_worker(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    assert claim.occurrence == occ()
    assert claim.state is ClaimState.CLAIMED
    assert (claim.token, claim.attempt, claim.worker) == (1, 1, "worker-a")
    assert claim.prior_state is None
    assert claim.prior_worker is None
    assert not claim.took_over


def test_fresh_acquire_measures_the_lease_from_the_store_clock(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    assert claim.claimed_at == T0
    assert claim.lease_expires_at == T0 + LEASE
    assert claim.retry_at is None
    assert claim.finished_at is None


def test_fresh_acquire_appends_one_acquired_event(store: Store) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    [event] = store.events(occ())
    assert event.kind is EventKind.ACQUIRED
    assert (event.worker, event.attempt, event.token) == ("worker-a", 1, 1)
    assert event.at == T0
    assert (event.job, event.tenant, event.scheduled_for) == (JOB, "aitor", T0)


def test_get_returns_the_row_as_acquired(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    assert store.get(occ()) == claim


def test_never_claimed_occurrence_has_no_row_and_no_history(store: Store) -> None:
    assert store.get(occ()) is None
    assert store.events(occ()) == []


def test_store_now_is_the_virtual_clock(store: Store, clock: VirtualClock) -> None:
    assert store.now() == T0
    clock.advance(timedelta(hours=3))
    assert store.now() == T0 + timedelta(hours=3)


def test_same_instant_in_another_time_zone_is_the_same_occurrence(store: Store) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    madrid = Occurrence(
        job=JOB,
        tenant="aitor",
        scheduled_for=datetime(2026, 5, 18, 7, 0, tzinfo=ZoneInfo("Europe/Madrid")),
    )
    with pytest.raises(NotAcquired):
        store.acquire(madrid, worker="worker-b", lease=LEASE)


def test_other_tenants_and_instants_are_separate_occurrences(store: Store) -> None:
    store.acquire(occ("aitor"), worker="worker-a", lease=LEASE)
    other_tenant = store.acquire(occ("bea"), worker="worker-b", lease=LEASE)
    other_day = store.acquire(occ(at=T0 + timedelta(days=1)), worker="worker-b", lease=LEASE)
    assert other_tenant.token == other_day.token == 1


# -- refusals -----------------------------------------------------------------------------


def test_held_occurrence_is_refused_naming_holder_and_lease_end(
    store: Store, clock: VirtualClock
) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=10))
    with pytest.raises(NotAcquired) as caught:
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert "held by worker-a" in caught.value.reason
    assert (T0 + LEASE).isoformat() in caught.value.reason
    assert caught.value.occurrence == occ()
    assert caught.value.current is not None
    assert caught.value.current.worker == "worker-a"
    assert occ().idempotency_key in str(caught.value)


def test_refused_acquire_changes_nothing(store: Store, clock: VirtualClock) -> None:
    held = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=10))
    with pytest.raises(NotAcquired):
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert store.get(occ()) == held
    assert kinds(store, occ()) == [EventKind.ACQUIRED]


def test_occurrence_is_held_until_the_instant_its_lease_expires(
    store: Store, clock: VirtualClock
) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(LEASE - US)
    with pytest.raises(NotAcquired, match="held by worker-a"):
        store.acquire(occ(), worker="worker-b", lease=LEASE)


def test_done_occurrence_is_refused_as_already_done(store: Store, clock: VirtualClock) -> None:
    store.complete(store.acquire(occ(), worker="worker-a", lease=LEASE))
    clock.advance(timedelta(days=365))
    with pytest.raises(NotAcquired) as caught:
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert "already done" in caught.value.reason
    assert "worker-a" in caught.value.reason
    assert caught.value.current is not None
    assert caught.value.current.state is ClaimState.DONE


def test_failed_occurrence_is_refused_with_its_error(store: Store, clock: VirtualClock) -> None:
    store.fail(store.acquire(occ(), worker="worker-a", lease=LEASE), error="HTTP 410 gone")
    clock.advance(timedelta(days=365))
    with pytest.raises(NotAcquired) as caught:
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert "failed" in caught.value.reason
    assert "HTTP 410 gone" in caught.value.reason
    assert caught.value.current is not None
    assert caught.value.current.state is ClaimState.FAILED


def test_missed_occurrence_is_refused_as_missed(
    store: Store, clock: VirtualClock, database_url: str
) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    # Nothing in the claim API marks an occurrence missed (the scheduler does); set it here.
    sql(
        database_url,
        "UPDATE cronclaim_claims SET state = 'missed', lease_expires_at = NULL, "
        "last_error = 'window closed at 08:00'",
    )
    clock.advance(timedelta(days=365))
    with pytest.raises(NotAcquired) as caught:
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert "missed" in caught.value.reason
    assert "window closed at 08:00" in caught.value.reason


def test_released_occurrence_is_refused_until_retry_at_naming_it(
    store: Store, clock: VirtualClock
) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    store.release(claim, error="TimeoutError: inference", retry_after=timedelta(seconds=30))
    clock.advance(timedelta(seconds=30) - US)
    with pytest.raises(NotAcquired) as caught:
        store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert "released" in caught.value.reason
    assert (T0 + timedelta(seconds=30)).isoformat() in caught.value.reason
    assert "TimeoutError: inference" in caught.value.reason


# -- retry and takeover -----------------------------------------------------------------


def test_released_occurrence_is_claimable_from_retry_at(store: Store, clock: VirtualClock) -> None:
    first = store.acquire(occ(), worker="worker-a", lease=LEASE)
    store.release(first, error="boom", retry_after=timedelta(seconds=30))
    clock.advance(timedelta(seconds=30))
    retry = store.acquire(occ(), worker="worker-b", lease=LEASE)
    assert retry.state is ClaimState.CLAIMED
    assert (retry.token, retry.attempt, retry.worker) == (2, 2, "worker-b")
    assert retry.prior_state is ClaimState.RELEASED
    assert not retry.took_over
    assert retry.retry_at is None
    assert retry.lease_expires_at == T0 + timedelta(seconds=30) + LEASE


def test_retry_of_released_occurrence_appends_acquired(store: Store, clock: VirtualClock) -> None:
    store.release(store.acquire(occ(), worker="worker-a", lease=LEASE), error="boom")
    clock.advance(timedelta(minutes=5))
    store.acquire(occ(), worker="worker-b", lease=LEASE)
    events = store.events(occ())
    assert [e.kind for e in events] == [EventKind.ACQUIRED, EventKind.RELEASED, EventKind.ACQUIRED]
    assert (events[2].worker, events[2].token, events[2].attempt) == ("worker-b", 2, 2)


def test_release_with_zero_retry_after_is_claimable_at_once(store: Store) -> None:
    store.release(
        store.acquire(occ(), worker="worker-a", lease=LEASE), error=None, retry_after=timedelta(0)
    )
    assert store.acquire(occ(), worker="worker-b", lease=LEASE).token == 2


def test_expired_lease_is_taken_over_with_next_token(store: Store, clock: VirtualClock) -> None:
    old, new = taken_over(store, clock, occ())
    assert new.state is ClaimState.CLAIMED
    assert (new.token, new.attempt, new.worker) == (old.token + 1, old.attempt + 1, "worker-b")
    assert new.took_over
    assert new.prior_state is ClaimState.CLAIMED
    assert new.prior_worker == "worker-a"
    assert new.lease_expires_at == T0 + LEASE + LEASE


def test_takeover_appends_lease_expired_then_took_over(store: Store, clock: VirtualClock) -> None:
    taken_over(store, clock, occ())
    events = store.events(occ())
    assert [e.kind for e in events] == [
        EventKind.ACQUIRED,
        EventKind.LEASE_EXPIRED,
        EventKind.TOOK_OVER,
    ]
    lapsed, took = events[1], events[2]
    assert (lapsed.worker, lapsed.token, lapsed.attempt) == ("worker-a", 1, 1)
    assert (took.worker, took.token, took.attempt) == ("worker-b", 2, 2)
    assert lapsed.at == took.at == T0 + LEASE


def test_tokens_increase_on_every_acquisition(store: Store, clock: VirtualClock) -> None:
    tokens = []
    for worker in ("worker-a", "worker-b", "worker-c", "worker-a"):
        tokens.append(store.acquire(occ(), worker=worker, lease=LEASE).token)
        clock.advance(LEASE)
    assert tokens == [1, 2, 3, 4]


# -- heartbeat --------------------------------------------------------------------------


def test_heartbeat_extends_the_lease_to_now_plus_lease(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=50))
    beat = store.heartbeat(claim, lease=timedelta(seconds=90))
    assert beat.lease_expires_at == T0 + timedelta(seconds=50 + 90)
    assert (beat.token, beat.attempt, beat.state) == (1, 1, ClaimState.CLAIMED)
    assert store.get(occ()) == beat


def test_heartbeat_keeps_others_out_past_the_first_lease(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=50))
    store.heartbeat(claim, lease=LEASE)
    clock.advance(timedelta(seconds=50))  # 100 s after the acquisition: past the first lease
    with pytest.raises(NotAcquired, match="held by worker-a"):
        store.acquire(occ(), worker="worker-b", lease=LEASE)


def test_holder_whose_lease_lapsed_unnoticed_can_still_complete(
    store: Store, clock: VirtualClock
) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(LEASE * 3)
    done = store.complete(claim)
    assert done.state is ClaimState.DONE
    assert kinds(store, occ()) == [EventKind.ACQUIRED, EventKind.COMPLETED]


def test_holder_whose_lease_lapsed_unnoticed_can_still_heartbeat(
    store: Store, clock: VirtualClock
) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(LEASE * 3)
    beat = store.heartbeat(claim, lease=LEASE)
    assert beat.lease_expires_at == T0 + LEASE * 4
    with pytest.raises(NotAcquired):
        store.acquire(occ(), worker="worker-b", lease=LEASE)


# -- fencing ------------------------------------------------------------------------------

ACTIONS = ("heartbeat", "complete", "release", "fail")


def call(store: Store, action: str, claim: Claim) -> Claim:
    if action == "heartbeat":
        return store.heartbeat(claim, lease=LEASE)
    if action == "complete":
        return store.complete(claim)
    if action == "release":
        return store.release(claim, error="late failure")
    assert action == "fail"
    return store.fail(claim, error="late failure")


# Each test below checks every action, each on an occurrence of its own.


def test_stale_token_is_refused_with_stale_claim(store: Store, clock: VirtualClock) -> None:
    for action in ACTIONS:
        old, new = taken_over(store, clock, occ(action))
        with pytest.raises(StaleClaim) as caught:
            call(store, action, old)
        refused = caught.value
        assert (refused.token, refused.action, refused.occurrence) == (1, action, occ(action))
        assert refused.current is not None
        assert (refused.current.token, refused.current.worker) == (new.token, "worker-b")
        assert f"{action} with stale fencing token 1 refused" in str(refused)


def test_stale_call_appends_stale_rejected_event(store: Store, clock: VirtualClock) -> None:
    for action in ACTIONS:
        old, _ = taken_over(store, clock, occ(action))
        clock.advance(timedelta(seconds=5))
        with pytest.raises(StaleClaim):
            call(store, action, old)
        last = store.events(occ(action))[-1]
        assert last.kind is EventKind.STALE_REJECTED, action
        assert (last.worker, last.token, last.attempt, last.detail) == ("worker-a", 1, 1, action)
        assert last.at == clock.now()


def test_stale_call_leaves_the_new_holders_claim_untouched(
    store: Store, clock: VirtualClock
) -> None:
    for action in ACTIONS:
        old, new = taken_over(store, clock, occ(action))
        with pytest.raises(StaleClaim):
            call(store, action, old)
        assert store.get(occ(action)) == as_row(new), action
        assert store.complete(new).state is ClaimState.DONE


def test_calls_after_a_final_state_are_refused_as_stale(store: Store) -> None:
    for action in ACTIONS:
        claim = store.acquire(occ(action), worker="worker-a", lease=LEASE)
        done = store.complete(claim)
        with pytest.raises(StaleClaim) as caught:
            call(store, action, claim)
        assert caught.value.current is not None
        assert caught.value.current.state is ClaimState.DONE, action
        assert store.get(occ(action)) == done
        assert kinds(store, occ(action))[-1] is EventKind.STALE_REJECTED


def test_a_released_claim_cannot_be_completed_by_its_old_holder(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    store.release(claim, error="boom")
    with pytest.raises(StaleClaim):
        store.complete(claim)
    row = store.get(occ())
    assert row is not None and row.state is ClaimState.RELEASED


# -- complete, release, fail --------------------------------------------------------------


def test_complete_marks_done_and_appends_completed(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=7))
    done = store.complete(claim)
    assert done.state is ClaimState.DONE
    assert done.finished_at == T0 + timedelta(seconds=7)
    assert done.lease_expires_at is None
    assert (done.token, done.attempt, done.worker) == (1, 1, "worker-a")
    event = store.events(occ())[-1]
    assert event.kind is EventKind.COMPLETED
    assert (event.worker, event.token, event.at) == ("worker-a", 1, T0 + timedelta(seconds=7))


def test_the_claims_acquire_and_complete_return_are_the_stored_rows(
    store: Store, clock: VirtualClock
) -> None:
    """The stores build these claims from what they wrote rather than read them back:
    a fresh claim, one completed after heartbeats (given its first claim object), one
    retried after a release, and one taken over, must each equal the row."""
    fresh = store.acquire(occ("fresh"), worker="worker-a", lease=LEASE)
    assert store.get(occ("fresh")) == fresh
    clock.advance(timedelta(seconds=30))
    store.heartbeat(fresh, lease=LEASE)
    clock.advance(timedelta(seconds=45))
    done = store.complete(fresh)
    assert store.get(occ("fresh")) == done
    assert (done.lease_expires_at, done.finished_at) == (None, clock.now())

    first = store.acquire(occ("retried"), worker="worker-a", lease=LEASE)
    store.release(first, error="boom", retry_after=timedelta(0))
    second = store.acquire(occ("retried"), worker="worker-b", lease=LEASE)
    clock.advance(timedelta(seconds=3))
    done = store.complete(second)
    assert store.get(occ("retried")) == done
    assert (done.attempt, done.token, done.worker, done.last_error) == (2, 2, "worker-b", None)

    _, new = taken_over(store, clock, occ("taken"))
    done = store.complete(new)
    assert store.get(occ("taken")) == done


def test_release_keeps_the_error_and_the_retry_time(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=5))
    released = store.release(claim, error="TimeoutError: 5 s", retry_after=timedelta(minutes=2))
    assert released.state is ClaimState.RELEASED
    assert released.last_error == "TimeoutError: 5 s"
    assert released.retry_at == T0 + timedelta(seconds=5) + timedelta(minutes=2)
    assert released.lease_expires_at is None
    event = store.events(occ())[-1]
    assert event.kind is EventKind.RELEASED
    assert (event.error, event.worker, event.token) == ("TimeoutError: 5 s", "worker-a", 1)


def test_release_retries_after_30_seconds_by_default(store: Store) -> None:
    released = store.release(store.acquire(occ(), worker="worker-a", lease=LEASE), error=None)
    assert released.retry_at == T0 + timedelta(seconds=30)


def test_release_with_negative_retry_after_is_invalid_input(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    with pytest.raises(InvalidInput, match="retry_after"):
        store.release(claim, error=None, retry_after=timedelta(seconds=-1))
    row = store.get(occ())
    assert row is not None and row.state is ClaimState.CLAIMED


def test_fail_is_final_and_keeps_the_error(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    failed = store.fail(claim, error="attempts exhausted")
    assert failed.state is ClaimState.FAILED
    assert failed.last_error == "attempts exhausted"
    assert failed.finished_at == T0
    event = store.events(occ())[-1]
    assert (event.kind, event.error) == (EventKind.FAILED, "attempts exhausted")


def test_error_up_to_the_bound_is_kept_whole(store: Store) -> None:
    error = "x" * MAX_ERROR_LENGTH
    released = store.release(store.acquire(occ(), worker="worker-a", lease=LEASE), error=error)
    assert released.last_error == error


def test_long_error_is_clipped_on_the_row_and_in_the_event(store: Store) -> None:
    error = "Traceback (most recent call last):\n" + "y" * (MAX_ERROR_LENGTH * 50)
    released = store.release(store.acquire(occ(), worker="worker-a", lease=LEASE), error=error)
    assert released.last_error is not None
    assert len(released.last_error) <= MAX_ERROR_LENGTH
    assert released.last_error.startswith("Traceback (most recent call last):")
    assert released.last_error.endswith("[truncated]")
    event_error = store.events(occ())[-1].error
    assert event_error is not None and len(event_error) <= MAX_ERROR_LENGTH


# -- batches ------------------------------------------------------------------------------


def test_acquire_batch_claims_every_fresh_occurrence(store: Store) -> None:
    wanted = [occ(f"t{i}") for i in range(20)]
    won = store.acquire_batch(wanted, worker="worker-a", lease=LEASE)
    assert sorted(c.occurrence.tenant for c in won) == sorted(o.tenant for o in wanted)
    assert {(c.token, c.attempt, c.worker, c.state) for c in won} == {
        (1, 1, "worker-a", ClaimState.CLAIMED)
    }
    assert all(c.lease_expires_at == T0 + LEASE for c in won)
    for o in wanted:
        assert kinds(store, o) == [EventKind.ACQUIRED]


def test_acquire_batch_of_nothing_claims_nothing(store: Store) -> None:
    assert store.acquire_batch([], worker="worker-a", lease=LEASE) == []


def test_acquire_batch_claims_duplicates_once(store: Store) -> None:
    a, b = occ("a"), occ("b")
    won = store.acquire_batch([a, b, a, a, b], worker="worker-a", lease=LEASE)
    assert sorted(c.occurrence.tenant for c in won) == ["a", "b"]
    assert kinds(store, a) == [EventKind.ACQUIRED]
    row = store.get(a)
    assert row is not None and row.token == 1


def test_acquire_batch_returns_only_the_winners_of_mixed_input(
    store: Store, clock: VirtualClock
) -> None:
    held, done, failed = occ("held"), occ("done"), occ("failed")
    due, not_due, expired, fresh = occ("due"), occ("not-due"), occ("expired"), occ("fresh")
    store.acquire(expired, worker="worker-x", lease=timedelta(seconds=10))
    store.complete(store.acquire(done, worker="worker-x", lease=LEASE))
    store.fail(store.acquire(failed, worker="worker-x", lease=LEASE), error="gone")
    store.release(
        store.acquire(due, worker="worker-x", lease=LEASE),
        error="boom",
        retry_after=timedelta(seconds=5),
    )
    store.release(
        store.acquire(not_due, worker="worker-x", lease=LEASE),
        error="boom",
        retry_after=timedelta(hours=1),
    )
    clock.advance(timedelta(seconds=10))
    store.acquire(held, worker="worker-x", lease=LEASE)

    won = store.acquire_batch(
        [held, done, failed, due, not_due, expired, fresh], worker="worker-b", lease=LEASE
    )
    by_tenant = {c.occurrence.tenant: c for c in won}
    assert sorted(by_tenant) == ["due", "expired", "fresh"]
    assert (by_tenant["fresh"].token, by_tenant["fresh"].prior_state) == (1, None)
    assert (by_tenant["due"].token, by_tenant["due"].prior_state) == (2, ClaimState.RELEASED)
    assert (by_tenant["expired"].token, by_tenant["expired"].prior_worker) == (2, "worker-x")
    assert by_tenant["expired"].took_over
    assert all(c.worker == "worker-b" and c.state is ClaimState.CLAIMED for c in won)
    for loser in (held, done, failed, not_due):
        row = store.get(loser)
        assert row is not None and row.worker == "worker-x"


def test_acquire_batch_takeover_appends_lease_expired_then_took_over(
    store: Store, clock: VirtualClock
) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(LEASE)
    [won] = store.acquire_batch([occ()], worker="worker-b", lease=LEASE)
    assert won.took_over
    events = store.events(occ())
    assert [(e.kind, e.worker, e.token) for e in events] == [
        (EventKind.ACQUIRED, "worker-a", 1),
        (EventKind.LEASE_EXPIRED, "worker-a", 1),
        (EventKind.TOOK_OVER, "worker-b", 2),
    ]


def test_acquire_batch_of_max_batch_is_accepted(store: Store) -> None:
    wanted = [occ(f"t{i:05d}") for i in range(MAX_BATCH)]
    assert len(store.acquire_batch(wanted, worker="worker-a", lease=LEASE)) == MAX_BATCH


def test_acquire_batch_over_max_batch_is_invalid_input_and_claims_nothing(store: Store) -> None:
    wanted = [occ(f"t{i:05d}") for i in range(MAX_BATCH + 1)]
    with pytest.raises(InvalidInput, match=f"at most {MAX_BATCH}.*{MAX_BATCH + 1}"):
        store.acquire_batch(wanted, worker="worker-a", lease=LEASE)
    assert store.get(wanted[0]) is None


def test_complete_batch_returns_completed_and_stale(store: Store, clock: VirtualClock) -> None:
    current = store.acquire(occ("current"), worker="worker-a", lease=LEASE)
    old, new = taken_over(store, clock, occ("taken"))
    done, stale = store.complete_batch([current, old])
    assert [(c.occurrence.tenant, c.state) for c in done] == [("current", ClaimState.DONE)]
    assert stale == [old]
    assert store.get(occ("taken")) == as_row(new)


def test_complete_batch_records_completed_and_stale_rejected(
    store: Store, clock: VirtualClock
) -> None:
    current = store.acquire(occ("current"), worker="worker-a", lease=LEASE)
    old, _ = taken_over(store, clock, occ("taken"))
    store.complete_batch([current, old])
    assert kinds(store, occ("current")) == [EventKind.ACQUIRED, EventKind.COMPLETED]
    last = store.events(occ("taken"))[-1]
    assert (last.kind, last.worker, last.token, last.detail) == (
        EventKind.STALE_REJECTED,
        "worker-a",
        1,
        "complete",
    )


def test_complete_batch_of_nothing_completes_nothing(store: Store) -> None:
    assert store.complete_batch([]) == ([], [])


def test_complete_batch_over_max_batch_is_invalid_input(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    with pytest.raises(InvalidInput, match=f"at most {MAX_BATCH}"):
        store.complete_batch([claim] * (MAX_BATCH + 1))
    row = store.get(occ())
    assert row is not None and row.state is ClaimState.CLAIMED


# -- the event log ------------------------------------------------------------------------


def test_events_cannot_be_updated(store: Store, database_url: str) -> None:
    store.acquire(occ(), worker="worker-a", lease=LEASE)
    with pytest.raises(Exception, match="append-only"):
        sql(database_url, "UPDATE cronclaim_events SET worker = 'forged'")
    [event] = store.events(occ())
    assert event.worker == "worker-a"


def test_events_are_listed_oldest_first(store: Store, clock: VirtualClock) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    clock.advance(timedelta(seconds=1))
    store.release(claim, error="one", retry_after=timedelta(0))
    clock.advance(timedelta(seconds=1))
    store.complete(store.acquire(occ(), worker="worker-b", lease=LEASE))
    events = store.events(occ())
    assert [e.id for e in events] == sorted(e.id for e in events)
    assert [e.at for e in events] == sorted(e.at for e in events)
    assert len({e.id for e in events}) == 4


# -- bad input ----------------------------------------------------------------------------

NAIVE = datetime(2026, 5, 18, 7, 0)

BAD_OCCURRENCES: list[tuple[dict[str, object], str]] = [
    ({"scheduled_for": NAIVE}, "naive datetime"),
    ({"job": ""}, "job name is empty"),
    ({"job": "   "}, "job name is empty"),
    ({"tenant": ""}, "tenant is empty"),
    ({"job": "j" * 201}, "201 characters long; the limit is 200"),
    ({"tenant": "t" * 201}, "tenant is 201 characters"),
    ({"job": "inventory:predict"}, "must not contain ':'"),
    ({"job": "inventory\npredict"}, "control character"),
    ({"tenant": "ai\x00tor"}, "control character"),
    ({"tenant": " aitor"}, "leading or trailing whitespace"),
]


def test_bad_occurrence_is_refused_naming_the_problem_and_writes_nothing(
    make_app: AppFactory, database_url: str
) -> None:
    app = make_app()
    assert app.store.schema_version() > 0  # the database exists: nothing may be written to it
    for change, message in BAD_OCCURRENCES:
        args: dict[str, object] = {"job": JOB, "tenant": "aitor", "scheduled_for": T0, **change}
        with pytest.raises(InvalidInput, match=message):
            app.claim(args["job"], args["tenant"], args["scheduled_for"])  # type: ignore[arg-type]
    assert sql(database_url, "SELECT count(*) FROM cronclaim_claims") == [(0,)]


def test_a_tenant_may_contain_a_colon(store: Store) -> None:
    claim = store.acquire(occ("eu:aitor"), worker="worker-a", lease=LEASE)
    assert claim.occurrence.tenant == "eu:aitor"


def test_a_name_of_the_maximum_length_is_accepted(store: Store) -> None:
    claim = store.acquire(occ("t" * 200, job="j" * 200), worker="worker-a", lease=LEASE)
    assert store.get(claim.occurrence) == claim


def test_non_positive_lease_is_refused_and_writes_nothing(store: Store, database_url: str) -> None:
    for lease, message in [
        (timedelta(0), "lease must be positive"),
        (timedelta(seconds=-5), "lease must be positive"),
        (30, "lease must be a timedelta"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            store.acquire(occ(), worker="worker-a", lease=lease)  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=message):
            store.acquire_batch([occ()], worker="worker-a", lease=lease)  # type: ignore[arg-type]
    assert sql(database_url, "SELECT count(*) FROM cronclaim_claims") == [(0,)]


def test_heartbeat_with_non_positive_lease_is_refused(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    with pytest.raises(InvalidInput, match="lease must be positive"):
        store.heartbeat(claim, lease=timedelta(0))
    assert store.get(occ()) == claim


def test_bad_worker_id_is_refused(store: Store) -> None:
    for worker, message in [
        ("", "worker id is empty"),
        ("w\tone", "control character"),
        ("w" * 201, "worker id is 201 characters"),
    ]:
        with pytest.raises(InvalidInput, match=message):
            store.acquire(occ(), worker=worker, lease=LEASE)
    assert store.get(occ()) is None


def test_invalid_input_is_a_cronclaim_error_and_a_value_error() -> None:
    with pytest.raises(InvalidInput) as caught:
        occ(at=NAIVE)
    assert isinstance(caught.value, CronclaimError)
    assert isinstance(caught.value, ValueError)


# -- schema -------------------------------------------------------------------------------

LATEST = len(load_migrations("sqlite"))


def test_schema_version_is_the_latest_migration(store: Store) -> None:
    assert store.schema_version() == LATEST == len(load_migrations("postgres"))


def test_upgrade_of_an_up_to_date_database_applies_nothing(store: Store) -> None:
    assert store.upgrade() == []
    assert store.upgrade() == []
    assert store.schema_version() == LATEST


def test_upgrade_keeps_existing_claims(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    store.upgrade()
    assert store.get(occ()) == claim


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def empty_database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """The URL of a database without the cronclaim schema."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path}/empty.db"
        return
    with empty_postgres_database(uuid.uuid4().hex[:8]) as url:
        yield url


def test_database_without_schema_raises_schema_missing_naming_the_upgrade_command(
    empty_database_url: str,
) -> None:
    with pytest.raises(SchemaMissing, match="run `cronclaim db upgrade`") as caught:
        cronclaim.App(empty_database_url, migrate=False).store  # noqa: B018
    assert isinstance(caught.value, StoreError)


def test_upgrade_of_an_empty_database_applies_every_migration_once(
    empty_database_url: str,
) -> None:
    store = open_store(empty_database_url, clock=VirtualClock(T0), migrate=True)
    try:
        assert store.schema_version() == LATEST
        assert store.upgrade() == []
        assert store.acquire(occ(), worker="worker-a", lease=LEASE).token == 1
        assert sql(empty_database_url, "SELECT version FROM cronclaim_migrations") == [
            (v,) for v in range(1, LATEST + 1)
        ]
    finally:
        store.close()


def test_concurrent_upgrades_apply_each_migration_once(empty_database_url: str) -> None:
    start = threading.Barrier(4)
    stores: list[Store] = []
    errors: list[BaseException] = []

    def open_and_upgrade() -> None:
        try:
            start.wait(timeout=30)
            stores.append(open_store(empty_database_url, clock=VirtualClock(T0), migrate=True))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_and_upgrade) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    try:
        assert errors == []
        assert len(stores) == 4
        assert sql(
            empty_database_url,
            "SELECT version, count(*) FROM cronclaim_migrations GROUP BY version",
        ) == [(v, 1) for v in range(1, LATEST + 1)]
        assert all(s.schema_version() == LATEST for s in stores)
    finally:
        for s in stores:
            s.close()


# -- database URLs --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "message"),
    [
        pytest.param("sqlite://db-host/claims.db", "three slashes", id="sqlite-with-host"),
        pytest.param("postgresql://[::1/claims", "cannot parse database URL", id="bad-ipv6"),
        pytest.param("sqlite://[claims.db", "cannot parse database URL", id="bad-bracket"),
        pytest.param("postgresql://u@h:notaport/db", "port", id="bad-port"),
        pytest.param(
            "postgresql://postgres@127.0.0.1/db?nosuchoption=1", "nosuchoption", id="pg-option"
        ),
        pytest.param("", "no database URL given", id="empty"),
        pytest.param("sqlite:///", "names no SQLite file", id="no-file"),
        pytest.param("sqlite:///claims.db?busy_timeout=soon", "busy_timeout", id="bad-option"),
        pytest.param("sqlite:///claims.db?journal=off", "unknown SQLite option", id="unknown-opt"),
    ],
)
def test_unparsable_database_url_is_a_configuration_error(url: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message):
        cronclaim.App(url).store  # noqa: B018


def test_unknown_scheme_is_a_configuration_error_naming_it() -> None:
    with pytest.raises(ConfigurationError, match="unsupported database URL scheme 'mysql'"):
        cronclaim.App("mysql://root@localhost/claims")


def test_in_memory_sqlite_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="in-memory"):
        cronclaim.App("sqlite:///:memory:")


def test_password_is_not_shown_in_url_errors() -> None:
    with pytest.raises(ConfigurationError) as caught:
        cronclaim.App("mysql://root:hunter2@localhost/claims")
    assert "hunter2" not in str(caught.value)


@pytest.mark.postgres
def test_unreachable_postgres_raises_database_unavailable_naming_the_server() -> None:
    app = cronclaim.App("postgresql://postgres:s3cret@127.0.0.1:1/claims")
    with pytest.raises(DatabaseUnavailable, match=r"127\.0\.0\.1:1\b") as caught:
        app.store  # noqa: B018
    assert "s3cret" not in str(caught.value)


@pytest.mark.postgres
def test_missing_postgres_database_raises_database_unavailable(pg_url: str) -> None:
    url = pg_url.rsplit("/", 1)[0] + "/cronclaim_no_such_database"
    with pytest.raises(DatabaseUnavailable, match="cronclaim_no_such_database"):
        cronclaim.App(url).store  # noqa: B018


def test_sqlite_in_a_missing_directory_raises_database_unavailable(tmp_path: Path) -> None:
    missing = f"{tmp_path}/no/such/dir"
    with pytest.raises(DatabaseUnavailable, match=f"directory {missing} does not exist"):
        cronclaim.App(f"sqlite:///{missing}/claims.db").store  # noqa: B018


def test_claim_checks_the_database_before_the_body_can_run(tmp_path: Path) -> None:
    app = cronclaim.App(f"sqlite:///{tmp_path}/no/such/dir/claims.db")
    ran = False
    with pytest.raises(DatabaseUnavailable), app.claim(JOB, "aitor", T0):
        ran = True
    assert not ran


def test_naive_datetime_is_refused_before_the_database_is_opened(tmp_path: Path) -> None:
    app = cronclaim.App(f"sqlite:///{tmp_path}/claims.db")
    with pytest.raises(InvalidInput, match="naive datetime"):
        app.claim(JOB, "aitor", NAIVE)
    assert not (tmp_path / "claims.db").exists()


def test_all_store_errors_share_the_root() -> None:
    for error in (DatabaseUnavailable, SchemaMissing, StoreError, ConfigurationError):
        assert issubclass(error, CronclaimError)


def test_virtual_clock_refuses_a_naive_start() -> None:
    with pytest.raises(InvalidInput, match="naive"):
        VirtualClock(NAIVE)


def test_store_timestamps_are_utc(store: Store) -> None:
    claim = store.acquire(occ(), worker="worker-a", lease=LEASE)
    assert claim.claimed_at is not None
    assert claim.claimed_at.utcoffset() == timedelta(0)
    assert claim.occurrence.scheduled_for.tzinfo is UTC
