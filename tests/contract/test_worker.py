"""The worker on both backends, in virtual time: fan-out, retries, timeouts, windows,
missed occurrences, pacing and the ledger."""

from __future__ import annotations

import asyncio
import sys
import threading
import time
from collections import Counter
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronclaim import App, ClaimState, EventKind, SystemClock, VirtualClock
from cronclaim.exceptions import InvalidInput
from cronclaim.jobs import Backoff
from cronclaim.models import Occurrence, Tenant
from cronclaim.status import ledger_report
from cronclaim.worker import Worker
from tests.conftest import AppFactory

MONDAY = datetime(2026, 5, 18, tzinfo=UTC)
ZONES = ["Europe/Madrid", "Europe/Istanbul", "America/New_York", "Australia/Lord_Howe"]


def fleet(n: int, zones: list[str] = ZONES) -> Any:
    def tenants() -> Any:
        for i in range(n):
            yield Tenant(id=f"r{i:03d}", time_zone=zones[i % len(zones)])

    return tenants


def simulate(app: App, until: datetime, **kwargs: Any) -> Worker:
    kwargs.setdefault("concurrency", 8)
    worker = Worker(app, **kwargs)
    asyncio.run(worker.run_until(until))
    return worker


def test_each_tenant_runs_once_per_tick_in_its_own_time_zone(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY)
    app = make_app()
    ran: list[tuple[str, datetime, datetime | None]] = []

    @app.job("inventory-predict", cron="0 7 * * *", tenants=fleet(12), window="3h")
    def predict(tenant: Tenant, run: Any) -> None:
        ran.append((tenant.id, run.occurrence.scheduled_for, run.occurrence.local_time))

    simulate(app, MONDAY + timedelta(days=2), catch_up="1m")

    assert len(ran) == 24  # 12 tenants x 2 days
    assert len(set(ran)) == 24
    for tenant, utc, local in ran:
        assert local is not None and (local.hour, local.minute) == (7, 0), (tenant, local)
        assert local.astimezone(UTC) == utc
    claims = [
        app.store.get(Occurrence(job="inventory-predict", tenant=t, scheduled_for=u))
        for t, u, _ in ran
    ]
    assert all(c is not None and c.state is ClaimState.DONE for c in claims)


def test_failure_is_released_with_backoff_then_retried_until_done(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY)
    app = make_app()
    attempts: list[tuple[int, datetime]] = []

    @app.job(
        "push",
        cron="0 7 * * *",
        tenants=fleet(1, ["UTC"]),
        window="3h",
        retry=Backoff(first=30, factor=2, max_attempts=5),
    )
    def push(tenant: Tenant, run: Any) -> None:
        attempts.append((run.attempt, clock.now()))
        if run.attempt < 3:
            raise ConnectionError("push gateway refused")

    simulate(app, MONDAY + timedelta(hours=8), catch_up="1m")

    assert [a for a, _ in attempts] == [1, 2, 3]
    assert attempts[1][1] - attempts[0][1] == timedelta(seconds=30)
    assert attempts[2][1] - attempts[1][1] == timedelta(seconds=60)
    occurrence = Occurrence(job="push", tenant="r000", scheduled_for=MONDAY + timedelta(hours=7))
    kinds = [e.kind for e in app.store.events(occurrence)]
    assert kinds == [
        EventKind.ACQUIRED,
        EventKind.RELEASED,
        EventKind.ACQUIRED,
        EventKind.RELEASED,
        EventKind.ACQUIRED,
        EventKind.COMPLETED,
    ]


@pytest.mark.parametrize("flavour", ["async", "sync"])
def test_hanging_side_effect_times_out_is_retried_and_fails_after_max_attempts(
    make_app: AppFactory, clock: VirtualClock, flavour: str
) -> None:
    clock.set(MONDAY)
    app = make_app()
    release = threading.Event()

    if flavour == "async":

        async def hang(tenant: Tenant, run: Any) -> None:
            await asyncio.sleep(30)

    else:

        def hang(tenant: Tenant, run: Any) -> None:
            release.wait(30)

    app.job(
        "inventory-predict",
        cron="0 7 * * *",
        tenants=fleet(1, ["UTC"]),
        timeout=0.2,
        window="3h",
        retry=Backoff(first=30, factor=2, max_attempts=3),
    )(hang)
    try:
        simulate(app, MONDAY + timedelta(hours=8), catch_up="1m")
    finally:
        release.set()

    occurrence = Occurrence(
        job="inventory-predict", tenant="r000", scheduled_for=MONDAY + timedelta(hours=7)
    )
    claim = app.store.get(occurrence)
    assert claim is not None and claim.state is ClaimState.FAILED
    assert claim.attempt == 3
    assert "0.2s timeout" in (claim.last_error or "")
    events = app.store.events(occurrence)
    assert [e.kind for e in events] == [
        EventKind.ACQUIRED,
        EventKind.RELEASED,
        EventKind.ACQUIRED,
        EventKind.RELEASED,
        EventKind.ACQUIRED,
        EventKind.FAILED,
    ]
    released = [e for e in events if e.kind is EventKind.RELEASED]
    assert all("TimeoutError" in (e.error or "") for e in released)
    acquired = [e.at for e in events if e.kind is EventKind.ACQUIRED]
    assert acquired[1] - acquired[0] >= timedelta(seconds=30)
    assert acquired[2] - acquired[1] >= timedelta(seconds=60)


def test_worker_started_after_the_window_records_the_occurrence_as_missed(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """Downtime: started five hours after a 07:00 tick whose window is three hours."""
    clock.set(MONDAY + timedelta(hours=12))  # 12:00 UTC; 07:00 UTC was five hours ago
    app = make_app()
    ran: list[str] = []

    @app.job("inventory-predict", cron="0 7 * * *", tenants=fleet(3, ["UTC"]), window="3h")
    def predict(tenant: Tenant, run: Any) -> None:
        ran.append(tenant.id)

    simulate(app, MONDAY + timedelta(hours=12, minutes=1))

    assert ran == []
    for i in range(3):
        claim = app.store.get(
            Occurrence(
                job="inventory-predict",
                tenant=f"r{i:03d}",
                scheduled_for=MONDAY + timedelta(hours=7),
            )
        )
        assert claim is not None and claim.state is ClaimState.MISSED
        assert "3h window" in (claim.last_error or "")
    ledger = app.store.ledger("inventory-predict", "2026-05-18T07:00")
    assert (ledger.due, ledger.count(ClaimState.MISSED)) == (3, 3)


def test_catch_up_runs_what_is_still_inside_its_window_oldest_first(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=9))
    app = make_app()
    order: list[datetime] = []

    @app.job("hourly", cron="0 * * * *", window="3h")
    def hourly(tenant: Tenant, run: Any) -> None:
        order.append(run.occurrence.scheduled_for)

    simulate(app, MONDAY + timedelta(hours=9), concurrency=1, catch_up="5h")

    # 04:00..09:00 were examined; 04:00-06:00 closed their 3 h windows by 09:00.
    assert order == [MONDAY + timedelta(hours=h) for h in (7, 8, 9)]
    missed = [
        app.store.get(
            Occurrence(job="hourly", tenant="*", scheduled_for=MONDAY + timedelta(hours=h))
        )
        for h in (5, 6)
    ]
    assert all(c is not None and c.state is ClaimState.MISSED for c in missed)


def test_retries_stop_when_no_retry_fits_in_the_window(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY)
    app = make_app()
    attempts: list[int] = []

    @app.job(
        "report",
        cron="0 7 * * *",
        window="10m",
        retry=Backoff(first=240, factor=2, max_attempts=10),
    )
    def report(tenant: Tenant, run: Any) -> None:
        attempts.append(run.attempt)
        raise RuntimeError("upstream down")

    simulate(app, MONDAY + timedelta(hours=8), catch_up="1m")

    assert attempts == [1, 2]  # 07:00, 07:04; the next retry (07:12) is past 07:10
    claim = app.store.get(
        Occurrence(job="report", tenant="*", scheduled_for=MONDAY + timedelta(hours=7))
    )
    assert claim is not None and claim.state is ClaimState.FAILED
    assert "window closes" in (claim.last_error or "")


def test_an_expired_lease_is_taken_over_and_completed(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=7))
    app = make_app("survivor")
    ran: list[int] = []

    @app.job("push", cron="0 7 * * *", window="3h", lease="2m")
    def push(tenant: Tenant, run: Any) -> None:
        ran.append(run.attempt)

    occurrence = Occurrence(job="push", tenant="*", scheduled_for=MONDAY + timedelta(hours=7))
    dead = make_app("dead-worker")
    dead.store.acquire(occurrence, worker="dead-worker", lease=timedelta(minutes=2))

    simulate(app, MONDAY + timedelta(hours=7, minutes=5), catch_up="1m")

    assert ran == [2]
    kinds = [(e.kind, e.worker) for e in app.store.events(occurrence)]
    assert kinds == [
        (EventKind.ACQUIRED, "dead-worker"),
        (EventKind.LEASE_EXPIRED, "dead-worker"),
        (EventKind.TOOK_OVER, "survivor"),
        (EventKind.COMPLETED, "survivor"),
    ]


def test_two_workers_on_one_tick_run_each_occurrence_once(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=7))
    effects: Counter[str] = Counter()

    def define(app: App) -> None:
        @app.job("push", cron="0 7 * * *", tenants=fleet(40, ["UTC"]), window="3h")
        def push(tenant: Tenant, run: Any) -> None:
            effects[tenant.id] += 1

    first, second = make_app("w1"), make_app("w2")
    define(first)
    define(second)

    async def both() -> None:
        until = MONDAY + timedelta(hours=7, minutes=1)
        await asyncio.gather(
            Worker(first, concurrency=3).run_until(until),
            Worker(second, concurrency=3).run_until(until),
        )

    asyncio.run(both())
    assert len(effects) == 40
    assert set(effects.values()) == {1}


def test_platform_job_runs_once_per_tick(make_app: AppFactory, clock: VirtualClock) -> None:
    clock.set(MONDAY)
    app = make_app()
    ticks: list[datetime] = []

    @app.job("cache-purge", cron="*/15 * * * *", time_zone="Europe/Madrid")
    def purge(tenant: Tenant, run: Any) -> None:
        assert tenant.id == "*"
        ticks.append(run.occurrence.scheduled_for)

    simulate(app, MONDAY + timedelta(hours=2), catch_up="1m")
    assert ticks == [MONDAY + timedelta(minutes=15 * i) for i in range(9)]


def test_max_rate_spreads_starts_per_tenant_deterministically(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=7))
    app = make_app()
    starts: list[datetime] = []

    @app.job("predict", cron="0 7 * * *", tenants=fleet(100, ["UTC"]), window="3h", max_rate=2)
    def predict(tenant: Tenant, run: Any) -> None:
        starts.append(clock.now())

    simulate(app, MONDAY + timedelta(hours=8), concurrency=50)

    assert len(starts) == 100
    tick = MONDAY + timedelta(hours=7)
    offsets = sorted((s - tick).total_seconds() for s in starts)
    assert offsets[-1] <= 50  # 100 tenants / 2 per second
    assert offsets[-1] >= 30  # spread, not a burst
    # No second of the spread holds many more starts than the rate allows.
    per_window = Counter(int(o // 5) for o in offsets)
    assert max(per_window.values()) <= 5 * 2 * 3


def test_ledger_answers_how_many_ran_and_which_did_not(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=4))
    app = make_app()

    @app.job(
        "inventory-predict",
        cron="0 7 * * *",
        tenants=fleet(30, ["Europe/Madrid"]),
        window="3h",
        retry=Backoff(first=60, max_attempts=2),
    )
    def predict(tenant: Tenant, run: Any) -> None:
        if tenant.id in {"r003", "r017"}:
            raise TimeoutError("inference did not answer within 5 s")

    simulate(app, MONDAY + timedelta(hours=9))

    ledger = app.store.ledger("inventory-predict", "2026-05-18T07:00")
    assert ledger.due == 30
    assert ledger.count(ClaimState.DONE) == 28
    assert ledger.count(ClaimState.FAILED) == 2
    assert sorted(c.occurrence.tenant for c in ledger.not_done) == ["r003", "r017"]
    report = ledger_report(app.store, job="inventory-predict", at=clock.now())
    text = report.as_text()
    assert "28 of 30 done" in text
    assert "r003" in text and "r017" in text
    data = report.as_json()["jobs"][0]
    assert (data["due"], data["done"], data["failed"]) == (30, 28, 2)


def test_burst_processes_everything_due_now_and_returns(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=7, minutes=1))
    app = make_app()
    ran: list[str] = []

    @app.job("push", cron="0 7 * * *", tenants=fleet(25, ["UTC"]), window="3h")
    def push(tenant: Tenant, run: Any) -> None:
        ran.append(tenant.id)

    worker = Worker(app, concurrency=4, burst=True, poll="1h")
    began = time.monotonic()
    worker.run()
    assert time.monotonic() - began < 30
    assert sorted(ran) == [f"r{i:03d}" for i in range(25)]
    assert worker.stats.done == 25


def test_run_sets_the_thread_switch_interval_while_it_serves_and_restores_it(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    clock.set(MONDAY + timedelta(hours=7, minutes=1))
    app = make_app()
    seen: list[float] = []

    @app.job("push", cron="0 7 * * *", tenants=fleet(3, ["UTC"]), window="3h")
    async def push(tenant: Tenant, run: Any) -> None:
        seen.append(sys.getswitchinterval())

    before = sys.getswitchinterval()
    assert before != pytest.approx(0.0003)
    Worker(app, burst=True, switch_interval=0.0003).run()
    assert seen == [pytest.approx(0.0003)] * 3
    assert sys.getswitchinterval() == before

    # None leaves the interpreter's setting alone; nonsense is refused up front.
    clock.set(MONDAY + timedelta(days=1, hours=7, minutes=1))
    seen.clear()
    Worker(app, burst=True, switch_interval=None).run()
    assert seen == [before] * 3
    for bad in (0, -1, 2, True, "fast"):
        with pytest.raises(InvalidInput, match="switch interval"):
            Worker(app, switch_interval=bad)  # type: ignore[arg-type]


def test_finished_runs_stay_leased_until_marked_done_and_never_rerun(
    make_app: AppFactory,
) -> None:
    """Regression: a finished run must keep its lease until its completion is written;
    otherwise the lease lapses, the occurrence is taken over, and the effect runs twice."""
    app = make_app(clock_=SystemClock())
    now = datetime.now(UTC)
    if now.second > 45:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    effects: Counter[str] = Counter()

    @app.job(
        "push",
        cron=f"{now.minute} {now.hour} * * *",
        tenants=fleet(5, ["UTC"]),
        window="1h",
        lease="1s",
    )
    def push(tenant: Tenant, run: Any) -> None:
        time.sleep(0.3)
        effects[tenant.id] += 1

    worker = Worker(app, concurrency=2, catch_up="10m", poll="0.2s")
    threading.Timer(4.0, worker.stop).start()
    worker.run()

    assert effects == Counter({f"r{i:03d}": 1 for i in range(5)})
    tick = now.replace(second=0, microsecond=0)
    for i in range(5):
        events = app.store.events(Occurrence(job="push", tenant=f"r{i:03d}", scheduled_for=tick))
        assert [e.kind for e in events] == [EventKind.ACQUIRED, EventKind.COMPLETED]


def test_a_worker_restarted_at_its_watermark_still_wakes_for_the_next_tick(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """Regression: a restart whose first span is empty must still learn its tenants' zones,
    or it sleeps through the next tick."""
    clock.set(MONDAY + timedelta(hours=8))
    app = make_app()
    started: list[datetime] = []

    @app.job("push", cron="0 7 * * *", tenants=fleet(2, ["Europe/Madrid"]), window="3h")
    def push(tenant: Tenant, run: Any) -> None:
        started.append(clock.now())

    simulate(app, MONDAY + timedelta(hours=12), catch_up="1m")  # leaves the watermark at 12:00
    simulate(app, MONDAY + timedelta(days=1, hours=9), catch_up="1m")

    assert started == [MONDAY + timedelta(days=1, hours=5)] * 2  # 07:00 in Madrid


def test_the_worker_does_what_run_release_and_run_fail_ask(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """A job that handles a non-OK answer without raising (the seed's `res.ok == false`
    branch) settles through run.release()/run.fail(): the worker must not complete it."""
    clock.set(MONDAY)
    app = make_app()
    attempts: list[tuple[str, int, datetime]] = []

    @app.job(
        "push",
        cron="0 7 * * *",
        window="3h",
        tenants=lambda: [Tenant(id="soft"), Tenant(id="hard")],
        retry=Backoff(first=600, max_attempts=5),
    )
    def push(tenant: Tenant, run: Any) -> None:
        attempts.append((tenant.id, run.attempt, clock.now()))
        if tenant.id == "soft" and run.attempt == 1:
            run.release("inference answered 503", retry_after=timedelta(seconds=45))
        elif tenant.id == "hard":
            run.fail("restaurant closed for good")

    simulate(app, MONDAY + timedelta(hours=8), catch_up="1m")

    tick = MONDAY + timedelta(hours=7)
    soft = [(a, t - tick) for who, a, t in attempts if who == "soft"]
    assert soft == [(1, timedelta(0)), (2, timedelta(seconds=45))]
    hard = app.store.get(Occurrence(job="push", tenant="hard", scheduled_for=tick))
    assert hard is not None and hard.state is ClaimState.FAILED
    assert (hard.attempt, hard.last_error) == (1, "restaurant closed for good")
    released = [
        e
        for e in app.store.events(Occurrence(job="push", tenant="soft", scheduled_for=tick))
        if e.kind is EventKind.RELEASED
    ]
    assert [e.error for e in released] == ["inference answered 503"]
