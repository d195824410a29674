"""Job definitions: what runs, on which schedule, for which tenants, with which limits."""

from __future__ import annotations

import hashlib
import inspect
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from cronclaim.durations import Duration, parse_duration
from cronclaim.exceptions import InvalidInput
from cronclaim.models import PLATFORM_TENANT, Tenant, check_name, time_zone
from cronclaim.schedule import CronSchedule, DstPolicy

#: What a tenants callable may yield: a Tenant, an ``(id, time_zone)`` pair, or an object
#: with ``id`` and ``time_zone`` attributes.
TenantLike = Any
TenantSource = Callable[[], Iterable[TenantLike]]
JobFunction = Callable[[Tenant, Any], Any]


@dataclass(frozen=True, slots=True, init=False)
class Backoff:
    """Retry delays: ``first``, then multiplied by ``factor`` per attempt, at most
    ``max_delay``; after ``max_attempts`` attempts the occurrence fails."""

    first: timedelta
    factor: float
    max_delay: timedelta
    max_attempts: int

    def __init__(
        self,
        first: Duration = 30,
        factor: float = 2.0,
        max_attempts: int = 5,
        max_delay: Duration = "1h",
    ) -> None:
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
            raise InvalidInput(f"max_attempts must be a positive integer, got {max_attempts!r}")
        if not isinstance(factor, int | float) or factor < 1:
            raise InvalidInput(f"backoff factor must be a number >= 1, got {factor!r}")
        object.__setattr__(self, "first", parse_duration(first, "backoff first", allow_zero=True))
        object.__setattr__(self, "factor", float(factor))
        object.__setattr__(self, "max_attempts", max_attempts)
        object.__setattr__(self, "max_delay", parse_duration(max_delay, "backoff max_delay"))

    def delay(self, attempt: int) -> timedelta:
        """The wait after failed attempt number ``attempt`` (1-based)."""
        seconds = self.first.total_seconds() * self.factor ** max(0, attempt - 1)
        return min(timedelta(seconds=seconds), self.max_delay)


def tenant_of(item: TenantLike, job: str) -> Tenant:
    if isinstance(item, Tenant):
        return item
    if isinstance(item, str):
        return Tenant(id=item)
    if isinstance(item, tuple) and len(item) == 2:
        return Tenant(id=item[0], time_zone=item[1])
    ident = getattr(item, "id", None)
    zone = getattr(item, "time_zone", None)
    if isinstance(ident, str) and isinstance(zone, str):
        return Tenant(id=ident, time_zone=zone)
    raise InvalidInput(
        f"job {job!r}: tenants must yield Tenant, (id, time_zone) or objects with str "
        f"attributes id and time_zone; got {type(item).__name__}"
    )


def pacing_fraction(job: str, tenant: str) -> float:
    """A tenant's stable place in [0, 1) within a paced start window (same on every host)."""
    digest = hashlib.blake2b(f"{job}\0{tenant}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


@dataclass(frozen=True, kw_only=True)
class Job:
    """A registered job. Built by ``@app.job(...)``; read by the worker and the CLI."""

    name: str
    fn: JobFunction
    schedule: CronSchedule
    tenants: TenantSource | None
    time_zone: str
    timeout: timedelta | None
    retry: Backoff
    window: timedelta
    lease: timedelta
    stale_after: timedelta | None
    max_rate: float | None
    is_async: bool = field(default=False)

    @property
    def fans_out(self) -> bool:
        return self.tenants is not None

    def iter_tenants(self) -> Iterator[Tenant]:
        """The job's tenants, streamed; a platform job has exactly one."""
        if self.tenants is None:
            yield Tenant(id=PLATFORM_TENANT, time_zone=self.time_zone)
            return
        for item in self.tenants():
            yield tenant_of(item, self.name)


def make_job(
    name: str,
    fn: JobFunction,
    *,
    cron: str,
    tenants: TenantSource | None = None,
    time_zone_name: str = "UTC",
    timeout: Duration | None = None,
    retry: Backoff | None = None,
    window: Duration | None = None,
    lease: Duration = "2m",
    stale_after: Duration | None = None,
    max_rate: float | None = None,
    dst: DstPolicy | None = None,
) -> Job:
    """Validate a job definition; every problem is one clear ``InvalidInput`` line."""
    check_name(name, "job name", allow_colon=False)
    if not callable(fn):
        raise InvalidInput(f"job {name!r}: the job must be a function, got {type(fn).__name__}")
    if tenants is not None and not callable(tenants):
        raise InvalidInput(
            f"job {name!r}: tenants must be a callable returning tenants (so a large fleet "
            f"is streamed, not held in memory), got {type(tenants).__name__}"
        )
    time_zone(time_zone_name)
    try:
        schedule = CronSchedule(cron, dst=dst or DstPolicy())
    except InvalidInput as exc:
        raise InvalidInput(f"job {name!r}: {exc}") from None
    lease_td = parse_duration(lease, f"job {name!r} lease")
    timeout_td = None if timeout is None else parse_duration(timeout, f"job {name!r} timeout")
    if window is None:
        window_td = min(schedule.period_hint(), timedelta(hours=1))
    else:
        window_td = parse_duration(window, f"job {name!r} window")
    if timeout_td is not None and timeout_td >= window_td:
        raise InvalidInput(
            f"job {name!r}: timeout {timeout_td} must be shorter than the window {window_td}"
        )
    if max_rate is not None and (not isinstance(max_rate, int | float) or max_rate <= 0):
        raise InvalidInput(
            f"job {name!r}: max_rate must be a positive number of starts per "
            f"second, got {max_rate!r}"
        )
    return Job(
        name=name,
        fn=fn,
        schedule=schedule,
        tenants=tenants,
        time_zone=time_zone_name,
        timeout=timeout_td,
        retry=retry or Backoff(),
        window=window_td,
        lease=lease_td,
        stale_after=None
        if stale_after is None
        else parse_duration(stale_after, f"job {name!r} stale_after"),
        max_rate=float(max_rate) if max_rate is not None else None,
        is_async=inspect.iscoroutinefunction(fn),
    )
