"""Frozen, keyword-only domain records. Constructors reject what cannot be right."""

from __future__ import annotations

import enum
import unicodedata
import zoneinfo
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import lru_cache

from cronclaim.exceptions import InvalidInput

MAX_NAME_LENGTH = 200
#: The tenant of a job that does not fan out (cache purge, webhook dispatch): one
#: occurrence per tick, owned by the platform.
PLATFORM_TENANT = "*"


def require_aware(value: datetime, what: str) -> datetime:
    """Return ``value`` in UTC, or raise if it has no time zone."""
    if not isinstance(value, datetime):
        raise InvalidInput(f"{what} must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise InvalidInput(
            f"{what} is a naive datetime ({value.isoformat()}); give it a time zone, "
            "e.g. datetime(..., tzinfo=ZoneInfo('Europe/Madrid')) or tzinfo=UTC"
        )
    return value.astimezone(UTC)


def require_positive(value: timedelta, what: str) -> timedelta:
    if not isinstance(value, timedelta):
        raise InvalidInput(f"{what} must be a timedelta, not {type(value).__name__}")
    if value <= timedelta(0):
        raise InvalidInput(f"{what} must be positive, got {value}")
    return value


def check_name(value: str, what: str, *, allow_colon: bool) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type(value).__name__}")
    if not value or not value.strip():
        raise InvalidInput(f"{what} is empty")
    if len(value) > MAX_NAME_LENGTH:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {MAX_NAME_LENGTH}: "
            f"{value[:40]!r}..."
        )
    if value != value.strip():
        raise InvalidInput(f"{what} {value!r} has leading or trailing whitespace")
    # isprintable() is false for every control character: the per-character scan, near
    # half the cost of building an occurrence, only runs for names it cannot clear.
    if not value.isprintable() and any(unicodedata.category(ch) == "Cc" for ch in value):
        raise InvalidInput(f"{what} {value!r} contains a control character")
    if not allow_colon and ":" in value:
        # The idempotency key is job:tenant:instant; a colon in the job name would
        # make two different occurrences share a key.
        raise InvalidInput(f"{what} {value!r} must not contain ':'")
    return value


def format_instant(value: datetime) -> str:
    """UTC instant as ``2026-05-19T05:00:00Z`` (microseconds only when present)."""
    text = value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"


@dataclass(frozen=True, kw_only=True, slots=True)
class Occurrence:
    """One scheduled run of one job for one tenant: the unit that is claimed.

    ``scheduled_for`` is the nominal instant (normalised to UTC). ``local_time`` is the
    same instant as the wall time in the tenant's zone, kept for people and reports; it
    does not take part in equality.
    """

    job: str
    tenant: str
    scheduled_for: datetime
    local_time: datetime | None = field(default=None, compare=False)
    #: The naive wall time the schedule named. It differs from ``local_time`` when a
    #: DST change moved the occurrence (02:30 on a spring-forward day runs at 03:00).
    nominal: datetime | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        check_name(self.job, "job name", allow_colon=False)
        check_name(self.tenant, "tenant", allow_colon=True)
        original = self.scheduled_for
        utc = require_aware(original, "scheduled_for")
        object.__setattr__(self, "scheduled_for", utc)
        if self.local_time is None:
            object.__setattr__(self, "local_time", original)
        else:
            local = self.local_time
            if require_aware(local, "local_time") != utc:
                raise InvalidInput(
                    f"local_time {local.isoformat()} is not the same instant as "
                    f"scheduled_for {utc.isoformat()}"
                )
        if self.nominal is None:
            assert self.local_time is not None
            object.__setattr__(self, "nominal", self.local_time.replace(tzinfo=None))
        elif self.nominal.tzinfo is not None:
            raise InvalidInput(f"nominal {self.nominal.isoformat()} must be a naive wall time")

    @property
    def idempotency_key(self) -> str:
        """Stable across attempts; pass it downstream so a retried effect can be deduplicated."""
        return f"{self.job}:{self.tenant}:{format_instant(self.scheduled_for)}"

    @property
    def tick(self) -> str:
        """The nominal local wall time, ``2026-05-19T07:00``: what the ledger groups by."""
        assert self.nominal is not None
        return self.nominal.isoformat(timespec="minutes")

    @property
    def time_zone(self) -> str | None:
        tz = self.local_time.tzinfo if self.local_time is not None else None
        key = getattr(tz, "key", None)
        return key if isinstance(key, str) else None


@lru_cache(maxsize=1024)
def time_zone(name: str) -> zoneinfo.ZoneInfo:
    """The IANA zone called ``name``, or ``InvalidInput`` naming the unknown zone."""
    if not isinstance(name, str) or not name.strip():
        raise InvalidInput(f"time zone must be an IANA name such as 'Europe/Madrid', got {name!r}")
    try:
        return zoneinfo.ZoneInfo(name)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise InvalidInput(
            f"unknown time zone {name!r}; use an IANA name such as 'Europe/Madrid'"
        ) from None


@dataclass(frozen=True, kw_only=True, slots=True)
class Tenant:
    """Someone a job fans out over (a restaurant, a customer), with their IANA time zone."""

    id: str
    time_zone: str = "UTC"

    def __post_init__(self) -> None:
        check_name(self.id, "tenant", allow_colon=True)
        time_zone(self.time_zone)

    @property
    def zone(self) -> zoneinfo.ZoneInfo:
        return time_zone(self.time_zone)


class ClaimState(enum.StrEnum):
    PENDING = "pending"  # came due, waiting for a worker; claimable from retry_at
    CLAIMED = "claimed"  # held by one worker, lease running
    DONE = "done"
    RELEASED = "released"  # given back after a failure; claimable again after retry_at
    FAILED = "failed"  # attempts or window exhausted; visible and alerted
    MISSED = "missed"  # came due, nobody claimed it before its window closed


FINAL_STATES = frozenset({ClaimState.DONE, ClaimState.FAILED, ClaimState.MISSED})


@dataclass(frozen=True, kw_only=True, slots=True)
class Claim:
    """The store's row for one occurrence, as of the call that returned it.

    ``token`` is the fencing token: it increases on every acquisition, and every call
    after acquire must carry the current one. ``prior_state`` is only set on the result
    of an acquisition: ``None`` for a fresh claim, ``released`` for a retry, ``claimed``
    for a takeover of an expired lease.
    """

    id: int
    occurrence: Occurrence
    state: ClaimState
    token: int
    attempt: int
    worker: str | None
    claimed_at: datetime | None
    lease_expires_at: datetime | None
    retry_at: datetime | None
    finished_at: datetime | None
    last_error: str | None
    #: How many times an operator made this occurrence claimable again (replay/backfill).
    replays: int = 0
    #: When the latest replay made it claimable again; its window runs from then.
    replayed_at: datetime | None = None
    prior_state: ClaimState | None = None
    prior_worker: str | None = None

    @property
    def window_opened_at(self) -> datetime:
        """Where the occurrence's window starts: its tick, or its latest replay."""
        return self.replayed_at or self.occurrence.scheduled_for

    @property
    def took_over(self) -> bool:
        return self.prior_state is ClaimState.CLAIMED


class EventKind(enum.StrEnum):
    ACQUIRED = "acquired"  # fresh claim or retry of a released one
    TOOK_OVER = "took_over"  # acquisition of a claim whose lease had expired
    LEASE_EXPIRED = "lease_expired"  # the previous holder stopped heart-beating
    RELEASED = "released"
    COMPLETED = "completed"
    FAILED = "failed"
    STALE_REJECTED = "stale_rejected"  # a late call with an old fencing token
    MISSED = "missed"
    REPLAYED = "replayed"


@dataclass(frozen=True, kw_only=True, slots=True)
class Event:
    """One appended line of an occurrence's history. Events are never updated."""

    id: int
    job: str
    tenant: str
    scheduled_for: datetime
    kind: EventKind
    at: datetime
    worker: str | None
    attempt: int | None
    token: int | None
    error: str | None
    detail: str | None


@dataclass(frozen=True, kw_only=True, slots=True)
class DueTimes:
    """When a job next needs a worker, as far as its stored rows tell."""

    next_claimable: datetime | None  # earliest claimable-from time of pending/released rows
    next_lease_expiry: datetime | None  # earliest lease expiry of claimed rows
    oldest_open: datetime | None  # scheduled_for of the oldest row not yet final


@dataclass(frozen=True, kw_only=True, slots=True)
class TickRecord:
    """One fan-out: how many tenants of one time zone were due at one tick of a job."""

    job: str
    time_zone: str
    scheduled_for: datetime
    tick: str
    due: int


@dataclass(frozen=True, kw_only=True, slots=True)
class Ledger:
    """The exact account of one tick of one job: of the tenants due, how many did what.

    ``due`` is what the fan-outs found (or the number of rows when occurrences were
    claimed directly, without a fan-out); ``counts`` maps each state to its number of
    occurrences; ``not_done`` lists occurrences that are not done (failures first).
    ``unrecorded`` counts due occurrences that have no row yet (a fan-out in progress).
    """

    job: str
    tick: str
    due: int
    counts: dict[ClaimState, int]
    not_done: list[Claim]
    zones: int
    fanned_out_at: datetime | None

    def count(self, state: ClaimState) -> int:
        return self.counts.get(state, 0)

    @property
    def recorded(self) -> int:
        return sum(self.counts.values())

    @property
    def unrecorded(self) -> int:
        return max(0, self.due - self.recorded)


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertState:
    """An alert as the store keeps it: open or resolved, with what it said last."""

    key: str
    rule: str
    job: str | None
    state: str  # "open" or "resolved"
    severity: str
    summary: str
    details: str  # JSON
    opened_at: datetime
    updated_at: datetime
    resolved_at: datetime | None


@dataclass(frozen=True, kw_only=True, slots=True)
class OutboxItem:
    """One delivery an alert transition owes to one sink."""

    id: int
    alert_key: str
    action: str  # "trigger" or "resolve"
    sink: str
    payload: str  # the alert as JSON
    attempts: int
    state: str = "pending"
    created_at: datetime | None = None
    sent_at: datetime | None = None
    last_error: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class StaleRejection:
    """A late call refused because its fencing token was stale."""

    claim: Claim  # the row as it is now
    worker: str | None  # who made the late call
    token: int | None  # the stale token it carried
    action: str | None  # heartbeat, complete, release or fail
    at: datetime
