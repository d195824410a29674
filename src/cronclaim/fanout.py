"""Fan-out: turn a job's ticks into one stored row per due (tenant, tick).

For the span of time since the job was last fanned out, every tenant (streamed, never
all in memory) gets a row for each tick of its time zone: ``pending`` (claimable from
its paced start) while the tick's window is open, or ``missed`` with the reason when the
window closed before anyone fanned it out. Each fan-out is recorded per zone with the
number of tenants due, and the job's watermark moves forward only after a complete scan,
so a worker that dies mid-way leaves the span to be scanned again. Inserts skip rows
that exist, so every worker may fan out the same tick: the database keeps one row each.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from itertools import islice
from typing import Protocol

from cronclaim.exceptions import InvalidInput
from cronclaim.jobs import Job, pacing_fraction
from cronclaim.models import (
    PLATFORM_TENANT,
    Claim,
    Occurrence,
    Tenant,
    TickRecord,
    format_instant,
    time_zone,
)
from cronclaim.schedule import Tick
from cronclaim.store import Store
from cronclaim.store.rows import with_tenant

log = logging.getLogger("cronclaim.fanout")

#: A scan that would produce more ticks than this per zone stops with an error instead of
#: writing millions of rows; lower --catch-up or raise the limit deliberately.
MAX_TICKS_PER_SCAN = 10_000
#: Paced starts are spread over at most this share of the window, so pacing alone never
#: pushes an occurrence past its window.
MAX_SPREAD_OF_WINDOW = 0.5


class Intake(Protocol):
    """A worker able to start occurrences at once: the fan-out claims directly for the
    slots it reserves (one statement instead of a pending row and a later claim)."""

    def reserve(self, wanted: int) -> int: ...

    def hand_over(self, job: Job, claims: list[Claim], reserved: int) -> None: ...


@dataclass
class FanOutResult:
    job: str
    start: datetime
    end: datetime
    tenants: int = 0
    enqueued: int = 0
    claimed: int = 0
    missed: int = 0
    ticks: list[TickRecord] = field(default_factory=list)
    zones: set[str] = field(default_factory=set)


def missed_reason(job: Job, fanned_at: datetime) -> str:
    return (
        f"no worker fanned it out within its {_human(job.window)} window "
        f"(first seen by a worker at {format_instant(fanned_at)})"
    )


def spread_for(job: Job, tenants: int) -> timedelta:
    """How long the paced starts of one tick may take: tenants / max_rate, bounded."""
    if job.max_rate is None or tenants <= 1:
        return timedelta(0)
    spread = timedelta(seconds=tenants / job.max_rate)
    cap = job.window * MAX_SPREAD_OF_WINDOW
    if spread > cap:
        log.warning(
            "job %s: %d tenants at %.2f starts/s need %s, more than half its %s window; "
            "starts are spread over %s instead",
            job.name,
            tenants,
            job.max_rate,
            spread,
            job.window,
            cap,
        )
        return cap
    return spread


def fan_out(
    job: Job,
    store: Store,
    *,
    start: datetime,
    end: datetime,
    worker: str,
    batch_size: int = 500,
    expected_tenants: int | None = None,
    intake: Intake | None = None,
) -> FanOutResult:
    """Record every occurrence of ``job`` with ``start < scheduled_for <= end``.

    ``expected_tenants`` sizes the pacing spread (the previous scan's count); when it is
    unknown and the job is paced, the tenants are counted first.
    """
    result = FanOutResult(job=job.name, start=start, end=end)
    # An empty span (a restart right where the last scan ended) still walks the tenants:
    # it is how a fresh worker learns which time zones, and so which ticks, to wake for.
    if job.max_rate is not None and expected_tenants is None:
        expected_tenants = sum(1 for _ in job.iter_tenants())
    spread = spread_for(job, expected_tenants or 0)
    per_zone: dict[str, list[_ZoneTick]] = {}
    pending: list[tuple[Occurrence, datetime]] = []
    missed: list[Occurrence] = []
    reason = missed_reason(job, end)

    def flush(force: bool) -> None:
        if pending and (force or len(pending) >= batch_size):
            rest = pending
            if intake is not None and all(not_before <= end for _, not_before in pending):
                # Unpaced and due now: claim directly as many as the worker can start.
                reserved = intake.reserve(len(pending))
                if reserved:
                    claims = store.acquire_batch(
                        [o for o, _ in pending[:reserved]], worker=worker, lease=job.lease
                    )
                    intake.hand_over(job, claims, reserved)
                    result.claimed += len(claims)
                    rest = pending[reserved:]
            if rest:
                result.enqueued += store.enqueue(rest)
            pending.clear()
        if missed and (force or len(missed) >= batch_size):
            result.missed += store.record_missed(missed, reason=reason)
            missed.clear()

    for tenant in job.iter_tenants():
        result.tenants += 1
        zone_ticks = per_zone.get(tenant.time_zone)
        if zone_ticks is None:
            zone_ticks = [_ZoneTick(job, tick, end) for tick in _ticks(job, tenant, start, end)]
            per_zone[tenant.time_zone] = zone_ticks
        for zone_tick in zone_ticks:
            occurrence = zone_tick.occurrence_for(tenant.id)
            zone_tick.due += 1
            if zone_tick.closed:
                missed.append(occurrence)
            elif spread:
                offset = spread * pacing_fraction(job.name, tenant.id)
                pending.append((occurrence, zone_tick.utc + offset))
            else:
                pending.append((occurrence, zone_tick.utc))
        flush(force=False)
    flush(force=True)
    result.zones = set(per_zone)
    due_count: Counter[tuple[str, datetime, str]] = Counter()
    for zone, zone_ticks in per_zone.items():
        for zone_tick in zone_ticks:
            due_count[zone, zone_tick.utc, zone_tick.template.tick] += zone_tick.due
    result.ticks = [
        TickRecord(job=job.name, time_zone=zone, scheduled_for=at, tick=label, due=n)
        for (zone, at, label), n in sorted(due_count.items())
    ]
    store.record_ticks(result.ticks, worker=worker)
    store.advance_scanned_through(job.name, end, worker=worker)
    return result


class _ZoneTick:
    """One tick of one time zone in a scan: its occurrences and how many were due.

    The first tenant's occurrence is built by the constructor, which checks the job
    name and the tick's instants; the others are copies for another tenant, whose id
    its Tenant checked when it was made. The checks, run again for every tenant, were
    a third of the fan-out's time.
    """

    __slots__ = ("closed", "due", "template", "utc")

    def __init__(self, job: Job, tick: Tick, end: datetime) -> None:
        self.template = Occurrence(
            job=job.name,
            tenant=PLATFORM_TENANT,
            scheduled_for=tick.utc,
            local_time=tick.local,
            nominal=tick.nominal,
        )
        self.utc = tick.utc
        #: Its window closed before this scan: its occurrences are recorded missed.
        self.closed = tick.utc + job.window <= end
        self.due = 0

    def occurrence_for(self, tenant: str) -> Occurrence:
        return with_tenant(self.template, tenant)


def _ticks(job: Job, tenant: Tenant, start: datetime, end: datetime) -> list[Tick]:
    ticks = list(islice(job.schedule.ticks(tenant.zone, start, end), MAX_TICKS_PER_SCAN + 1))
    if len(ticks) > MAX_TICKS_PER_SCAN:
        raise InvalidInput(
            f"job {job.name!r}: more than {MAX_TICKS_PER_SCAN} ticks between "
            f"{format_instant(start)} and {format_instant(end)} in {tenant.time_zone}; "
            "lower the worker's --catch-up"
        )
    return ticks


def next_tick_after(job: Job, zones: Iterable[str], after: datetime) -> datetime | None:
    """The earliest tick of ``job`` after ``after`` in any of ``zones``."""
    best: datetime | None = None
    for zone in zones:
        tick = job.schedule.next_tick(time_zone(zone), after)
        if tick is not None and (best is None or tick.utc < best):
            best = tick.utc
    return best


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0 and seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"
