"""The store contract for scheduling and operations, on both backends: pending rows and
the queue, window closing, missed rows, the ledger, watermarks, replay, the audit
queries and the alert state with its outbox."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest

from cronclaim import ClaimState, EventKind, VirtualClock
from cronclaim.models import Occurrence, TickRecord
from cronclaim.store import Store
from tests.conftest import AppFactory

TICK = datetime(2026, 5, 18, 7, 0, tzinfo=UTC)
LEASE = timedelta(minutes=2)


def occ(tenant: str, at: datetime = TICK, job: str = "push") -> Occurrence:
    return Occurrence(job=job, tenant=tenant, scheduled_for=at)


@pytest.fixture
def store(make_app: AppFactory, clock: VirtualClock) -> Store:
    clock.set(TICK)
    return make_app().store


def test_enqueue_creates_pending_rows_once(store: Store) -> None:
    due = [(occ(f"t{i}"), TICK) for i in range(5)]
    assert store.enqueue(due) == 5
    assert store.enqueue(due) == 0  # every worker may fan out the same tick
    claim = store.get(occ("t0"))
    assert claim is not None
    assert (claim.state, claim.token, claim.attempt, claim.retry_at) == (
        ClaimState.PENDING,
        0,
        0,
        TICK,
    )
    assert store.events(occ("t0")) == []  # a pending row is not a transition


def test_acquire_due_takes_due_rows_earliest_first_up_to_the_limit(
    store: Store, clock: VirtualClock
) -> None:
    store.enqueue([(occ(f"t{i}"), TICK + timedelta(seconds=10 - i)) for i in range(5)])
    clock.advance(timedelta(seconds=9))  # t4..t1 are claimable (from +6 .. +9); t0 at +10
    first = store.acquire_due("push", worker="w1", lease=LEASE, limit=2)
    assert sorted(c.occurrence.tenant for c in first) == ["t3", "t4"]  # the earliest two
    assert [(c.token, c.attempt, c.prior_state) for c in first] == [
        (1, 1, ClaimState.PENDING)
    ] * 2
    second = store.acquire_due("push", worker="w2", lease=LEASE, limit=10)
    assert sorted(c.occurrence.tenant for c in second) == ["t1", "t2"]  # t0 is not due yet
    clock.advance(timedelta(seconds=10))
    rest = store.acquire_due("push", worker="w2", lease=LEASE, limit=10)
    assert [c.occurrence.tenant for c in rest] == ["t0"]
    assert [e.kind for e in store.events(occ("t4"))] == [EventKind.ACQUIRED]


def test_acquire_due_takes_over_expired_leases_and_released_rows(
    store: Store, clock: VirtualClock
) -> None:
    held = store.acquire(occ("held"), worker="dead", lease=timedelta(seconds=30))
    failed = store.acquire(occ("retry"), worker="w0", lease=LEASE)
    store.release(failed, error="boom", retry_after=timedelta(seconds=20))
    clock.advance(timedelta(seconds=31))
    taken = {
        c.occurrence.tenant: c
        for c in store.acquire_due("push", worker="w1", lease=LEASE, limit=10)
    }
    assert set(taken) == {"held", "retry"}
    assert taken["held"].took_over and taken["held"].token == held.token + 1
    assert [e.kind for e in store.events(occ("held"))] == [
        EventKind.ACQUIRED,
        EventKind.LEASE_EXPIRED,
        EventKind.TOOK_OVER,
    ]


def test_acquire_due_is_scoped_to_its_job(store: Store) -> None:
    store.enqueue([(occ("a", job="push"), TICK), (occ("b", job="report"), TICK)])
    got = store.acquire_due("report", worker="w", lease=LEASE, limit=10)
    assert [c.occurrence.job for c in got] == ["report"]


def test_close_windows_settles_what_its_window_left_behind(
    store: Store, clock: VirtualClock
) -> None:
    store.enqueue([(occ("never-started"), TICK)])
    retried = store.acquire(occ("retrying"), worker="w", lease=LEASE)
    store.release(retried, error="TimeoutError", retry_after=timedelta(hours=5))
    store.acquire(occ("abandoned"), worker="gone", lease=timedelta(minutes=1))
    store.acquire(occ("running"), worker="alive", lease=timedelta(hours=10))
    clock.advance(timedelta(hours=4))

    settled = store.close_windows(
        "push",
        cutoff=clock.now() - timedelta(hours=3),
        worker="sweeper",
        missed_reason="window closed unstarted",
        failed_reason="window closed",
        abandoned_reason="holder vanished",
    )

    assert settled == {"missed": 1, "failed": 2}
    missed = store.get(occ("never-started"))
    assert missed is not None and missed.state is ClaimState.MISSED
    assert missed.last_error == "window closed unstarted"
    failed = store.get(occ("retrying"))
    assert failed is not None and failed.state is ClaimState.FAILED
    assert failed.last_error == "window closed; last error: TimeoutError"
    abandoned = store.get(occ("abandoned"))
    assert abandoned is not None and abandoned.last_error == "holder vanished"
    assert [e.kind for e in store.events(occ("abandoned"))][-2:] == [
        EventKind.LEASE_EXPIRED,
        EventKind.FAILED,
    ]
    running = store.get(occ("running"))
    assert running is not None and running.state is ClaimState.CLAIMED  # its holder decides


def test_a_replay_opens_a_fresh_window(store: Store, clock: VirtualClock) -> None:
    store.enqueue([(occ("t"), TICK)])
    clock.advance(timedelta(hours=4))
    store.close_windows(
        "push",
        cutoff=clock.now() - timedelta(hours=3),
        worker="w",
        missed_reason="missed",
        failed_reason="f",
        abandoned_reason="a",
    )
    missed = store.get(occ("t"))
    assert missed is not None and missed.state is ClaimState.MISSED
    assert store.replay([missed], requested_by="ana") == [missed.id]
    replayed = store.get(occ("t"))
    assert replayed is not None
    assert (replayed.state, replayed.attempt, replayed.replays) == (ClaimState.PENDING, 0, 1)
    assert replayed.replayed_at == clock.now()
    settled = store.close_windows(
        "push",
        cutoff=clock.now() - timedelta(hours=3),
        worker="w",
        missed_reason="m",
        failed_reason="f",
        abandoned_reason="a",
    )
    assert settled == {}
    assert store.replay([missed], requested_by="ana") == []  # no longer in the state it was read


def test_record_missed_writes_rows_and_events_once(store: Store) -> None:
    assert store.record_missed([occ("a"), occ("b")], reason="no worker ran") == 2
    assert store.record_missed([occ("a")], reason="again") == 0
    claim = store.get(occ("a"))
    assert claim is not None and claim.state is ClaimState.MISSED
    assert [(e.kind, e.error) for e in store.events(occ("a"))] == [
        (EventKind.MISSED, "no worker ran")
    ]


def test_next_due_reports_the_next_moment_anything_needs_a_worker(
    store: Store, clock: VirtualClock
) -> None:
    assert store.next_due("push").next_claimable is None
    store.enqueue([(occ("later"), TICK + timedelta(minutes=5))])
    held = store.acquire(occ("held", at=TICK - timedelta(hours=1)), worker="w", lease=LEASE)
    due = store.next_due("push")
    assert due.next_claimable == TICK + timedelta(minutes=5)
    assert due.next_lease_expiry == held.lease_expires_at
    assert due.oldest_open == TICK - timedelta(hours=1)


def test_ledger_counts_a_tick_and_lists_what_did_not_run(store: Store) -> None:
    store.record_ticks(
        [
            TickRecord(
                job="push", time_zone="UTC", scheduled_for=TICK, tick="2026-05-18T07:00", due=4
            )
        ],
        worker="w",
    )
    store.enqueue([(occ(t), TICK) for t in ("a", "b", "c")])
    a = store.acquire(occ("a"), worker="w", lease=LEASE)
    store.complete(a)
    b = store.acquire(occ("b"), worker="w", lease=LEASE)
    store.fail(b, error="refused")

    ledger = store.ledger("push", "2026-05-18T07:00")
    assert (ledger.due, ledger.recorded, ledger.unrecorded) == (4, 3, 1)
    assert ledger.count(ClaimState.DONE) == 1
    assert [(c.occurrence.tenant, c.state) for c in ledger.not_done] == [
        ("b", ClaimState.FAILED),
        ("c", ClaimState.PENDING),
    ]
    assert store.latest_ticks("push", at=TICK + timedelta(days=1), count=5) == ["2026-05-18T07:00"]
    assert store.known_jobs() == ["push"]


def test_watermarks_and_last_success_never_move_back(store: Store) -> None:
    store.advance_scanned_through("push", TICK, worker="w")
    store.advance_scanned_through("push", TICK - timedelta(hours=1), worker="w")
    assert store.scanned_through("push") == TICK
    store.record_success("push", TICK, worker="w")
    store.record_success("push", TICK - timedelta(hours=1), worker="w")
    assert store.last_success("push") == TICK
    assert store.last_success("never") is None


def test_audit_queries_find_orphans_failures_stale_calls_and_repeated_errors(
    store: Store, clock: VirtualClock
) -> None:
    orphan = store.acquire(occ("orphan"), worker="gone", lease=timedelta(minutes=1))
    flaky = store.acquire(occ("flaky"), worker="w", lease=LEASE)
    store.release(flaky, error="TimeoutError", retry_after=timedelta(0))
    flaky = store.acquire(occ("flaky"), worker="w", lease=LEASE)
    store.fail(flaky, error="TimeoutError")
    zombie = store.acquire(occ("zombie"), worker="z1", lease=timedelta(seconds=1))
    clock.advance(timedelta(minutes=10))
    store.acquire(occ("zombie"), worker="z2", lease=LEASE)
    with pytest.raises(Exception, match="stale fencing token"):
        store.complete(zombie)

    now = clock.now()
    orphans = store.orphans(
        job=None, lease_cutoff=now - timedelta(minutes=5), held_cutoff=now - timedelta(hours=24)
    )
    assert [c.occurrence.tenant for c in orphans] == [orphan.occurrence.tenant]
    failed = store.claims_in_state("failed", job="push", since=TICK - timedelta(days=1))
    assert [c.occurrence.tenant for c in failed] == ["flaky"]
    stale = store.stale_rejections(job=None, since=TICK)
    assert [(r.claim.occurrence.tenant, r.worker, r.token, r.action) for r in stale] == [
        ("zombie", "z1", 1, "complete")
    ]
    repeated = store.repeated_errors(job=None, since=TICK)
    assert [(c.occurrence.tenant, e, n) for c, e, n in repeated] == [("flaky", "TimeoutError", 2)]
    assert store.failures_since("push", TICK) == [("", "flaky", 2, "TimeoutError")]


def test_an_alert_opens_once_and_owes_one_delivery_per_sink(store: Store) -> None:
    deliveries = [("pagerduty", '{"a": 1}'), ("slack", '{"a": 1}')]
    opened = store.open_alert(
        key="k",
        rule="failing",
        job="push",
        severity="error",
        summary="s1",
        details="{}",
        deliveries=deliveries,
    )
    again = store.open_alert(
        key="k",
        rule="failing",
        job="push",
        severity="error",
        summary="s2",
        details="{}",
        deliveries=deliveries,
    )
    assert (opened, again) == (True, False)
    store.refresh_alert("k", summary="s3", details=json.dumps({"n": 3}))
    state = store.alert("k")
    assert state is not None and (state.state, state.summary) == ("open", "s3")
    assert [(d.action, d.sink) for d in store.outbox()] == [
        ("trigger", "pagerduty"),
        ("trigger", "slack"),
    ]
    assert store.resolve_alert("k", deliveries=deliveries[:1]) is True
    assert store.resolve_alert("k", deliveries=deliveries[:1]) is False
    assert store.alerts() == []
    assert [a.state for a in store.alerts(open_only=False)] == ["resolved"]
    assert (
        store.open_alert(
            key="k",
            rule="failing",
            job="push",
            severity="error",
            summary="again",
            details="{}",
            deliveries=[],
        )
        is True
    )  # reopens


def test_outbox_items_are_held_while_delivered_and_settled(
    store: Store, clock: VirtualClock
) -> None:
    store.open_alert(
        key="k",
        rule="r",
        job="push",
        severity="error",
        summary="s",
        details="{}",
        deliveries=[("pd", "{}"), ("slack", "{}")],
    )
    taken = store.claim_outbox(limit=10, hold=timedelta(minutes=2))
    assert [i.sink for i in taken] == ["pd", "slack"]
    assert store.claim_outbox(limit=10, hold=timedelta(minutes=2)) == []  # held
    store.settle_outbox(taken[0].id, state="sent", attempts=1)
    store.settle_outbox(
        taken[1].id,
        state="pending",
        attempts=2,
        next_attempt_at=clock.now() + timedelta(minutes=1),
        error="503",
    )
    clock.advance(timedelta(minutes=1))
    again = store.claim_outbox(limit=10, hold=timedelta(minutes=2))
    assert [(i.sink, i.attempts) for i in again] == [("slack", 2)]
    rows = {i.sink: i for i in store.outbox("k")}
    assert rows["pd"].state == "sent" and rows["pd"].sent_at is not None
    assert rows["slack"].last_error == "503"
