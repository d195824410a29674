"""Dashboard data made the way production makes it: the Worker, in virtual time, running
the demo's restaurants (their real ids and time zones) through a week with trouble.

The week of Monday 18 May 2026:

* ``inventory-predict`` at 07:00 local for each restaurant, plus a tenant whose id is
  markup (it must come out escaped). Aitor's inference calls time out: three attempts,
  then failed, every day. Mert's first attempt fails each day (the push gateway refuses),
  the retry succeeds.
* Tuesday: a worker that died holding Lucía's occurrence; the lease expires and the
  running worker takes it over.
* Thursday: no worker is up until 20:00 UTC, so every 07:00 window of Thursday closed
  unseen: those occurrences are missed.
* ``cache-purge``, a platform job, at minute 15 every six hours (UTC).

``populate`` leaves the clock at Friday 12:00 UTC.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from cronclaim import App, VirtualClock
from cronclaim.demo.catalog import RESTAURANTS
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Occurrence, Tenant
from cronclaim.worker import Worker

MONDAY = datetime(2026, 5, 18, tzinfo=UTC)
FRIDAY_NOON = MONDAY + timedelta(days=4, hours=12)
SCRIPT_TENANT = '<script>alert("pwned")</script>'
JOB = "inventory-predict"
PURGE = "cache-purge"
INFERENCE_ERROR = "inference service did not answer within 5s"
PUSH_ERROR = "push gateway refused the connection"


@dataclass
class Faults:
    """What is broken right now; tests repair things by changing it."""

    inference_down: set[str] = field(default_factory=lambda: {"aitor"})
    flaky_push: set[str] = field(default_factory=lambda: {"mert"})


def tenants() -> list[Tenant]:
    return [Tenant(id=r.id, time_zone=r.time_zone) for r in RESTAURANTS] + [
        Tenant(id=SCRIPT_TENANT, time_zone="UTC")
    ]


def define_jobs(app: App, faults: Faults) -> None:
    @app.job(
        JOB,
        cron="0 7 * * *",
        tenants=tenants,
        window="3h",
        retry=Backoff(first=30, factor=2, max_attempts=3),
    )
    def inventory_predict(tenant: Tenant, run: Run) -> None:
        if tenant.id in faults.inference_down:
            raise TimeoutError(INFERENCE_ERROR)
        if tenant.id in faults.flaky_push and run.attempt == 1:
            raise ConnectionError(PUSH_ERROR)

    @app.job(PURGE, cron="15 */6 * * *", time_zone="UTC", window="1h")
    def cache_purge(tenant: Tenant, run: Run) -> None:
        return None


def simulate(app: App, until: datetime, **kwargs: Any) -> Worker:
    kwargs.setdefault("concurrency", 8)
    worker = Worker(app, **kwargs)
    asyncio.run(worker.run_until(until))
    return worker


def lucia_tuesday() -> Occurrence:
    lucia = next(t for t in tenants() if t.id == "lucia")
    local = datetime(2026, 5, 19, 7, 0, tzinfo=lucia.zone)
    return Occurrence(job=JOB, tenant="lucia", scheduled_for=local)


def populate(app: App, clock: VirtualClock, faults: Faults, dead: App) -> None:
    """Run the week described above. ``dead`` is a second app on the same database: the
    worker that dies holding a claim on Tuesday."""
    clock.set(MONDAY)
    simulate(app, MONDAY + timedelta(days=1), catch_up="1m")
    # Tuesday: the dead worker claims Lucía's 07:00 just as it comes due, then vanishes.
    tuesday = lucia_tuesday()
    simulate(app, tuesday.scheduled_for - timedelta(minutes=1))
    dead.store.acquire(tuesday, worker="dead-worker", lease=timedelta(minutes=2))
    simulate(app, MONDAY + timedelta(days=3))
    # Thursday: no worker until 20:00 UTC; every 07:00 window of the day has closed.
    clock.set(MONDAY + timedelta(days=3, hours=20))
    simulate(app, FRIDAY_NOON, catch_up="24h")
