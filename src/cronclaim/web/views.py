"""What each page shows, read from the store: plain records for the templates. Nothing
here knows about HTTP; every function takes the store and returns data."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from cronclaim.exceptions import InvalidInput, StoreError
from cronclaim.jobs import Job
from cronclaim.models import (
    AlertState,
    Claim,
    ClaimState,
    Event,
    EventKind,
    Ledger,
    Occurrence,
)
from cronclaim.store import Store
from cronclaim.web.urls import instant_param, occurrence_base

#: Worst first: a day or a cell takes the colour of its worst occurrence.
SEVERITY = (
    ClaimState.FAILED,
    ClaimState.MISSED,
    ClaimState.RELEASED,
    ClaimState.CLAIMED,
    ClaimState.PENDING,
    ClaimState.DONE,
)
RANK = {state: i for i, state in enumerate(SEVERITY)}
#: What people call each state on the dashboard (the ledger's words).
LABELS = {
    ClaimState.DONE: "done",
    ClaimState.CLAIMED: "running",
    ClaimState.RELEASED: "retrying",
    ClaimState.PENDING: "pending",
    ClaimState.FAILED: "failed",
    ClaimState.MISSED: "missed",
}
#: The ledger's columns, in the order the overview shows them.
LEDGER_COLUMNS = (
    ClaimState.DONE,
    ClaimState.RELEASED,
    ClaimState.FAILED,
    ClaimState.MISSED,
    ClaimState.PENDING,
    ClaimState.CLAIMED,
)
#: The outcome filter of the job page: (value, label).
OUTCOMES = (
    ("", "any outcome"),
    ("problems", "not done"),
    ("failed", "failed"),
    ("missed", "missed"),
    ("released", "retrying"),
    ("claimed", "running"),
    ("pending", "pending"),
    ("done", "done"),
)
STRIP_DAYS = 14
MAX_DAYS = 31
DEFAULT_PAGE = 50
MAX_PAGE = 100
LEDGER_TICKS = 3


def worst(states: Sequence[ClaimState]) -> ClaimState | None:
    present = set(states)
    return next((s for s in SEVERITY if s in present), None)


# -- days: the strip of the overview and the column heads of the job page ----------------


@dataclass(frozen=True)
class DaySummary:
    """One tenant-local day of one job: how many were due and how each ended up."""

    day: date
    due: int
    counts: dict[ClaimState, int]
    #: True when ``done`` is due minus the rest (fan-out records), not counted row by row.
    derived: bool

    @property
    def done(self) -> int:
        return self.counts.get(ClaimState.DONE, 0)

    @property
    def not_done(self) -> int:
        return sum(n for s, n in self.counts.items() if s is not ClaimState.DONE)

    @property
    def state(self) -> ClaimState | None:
        return worst([s for s, n in self.counts.items() if n])

    @property
    def title(self) -> str:
        parts = [
            f"{self.counts[s]:,} {LABELS[s]}" for s in reversed(SEVERITY) if self.counts.get(s)
        ]
        head = f"{self.day.isoformat()} ({self.day:%a})"
        if not parts:
            return f"{head}: nothing due"
        return f"{head}: " + ", ".join(parts) + f" of {self.due:,} due"


def day_summaries(store: Store, job: str, first_day: date, last_day: date) -> list[DaySummary]:
    """Per day: due from the fan-out records and the states that are not done from their
    small indexes, so the cost does not grow with the tenants; done is the difference.
    A job without fan-out records in the window (claimed directly) is counted row by row.
    """
    due = store.dashboard_day_due(job, first_day=first_day, last_day=last_day)
    derived = bool(due)
    rows = store.dashboard_day_counts(
        job, first_day=first_day, last_day=last_day, troubles_only=derived
    )
    counts: dict[str, dict[ClaimState, int]] = {}
    for day, state, n, _ in rows:
        counts.setdefault(day, {})[state] = n
    days: list[DaySummary] = []
    current = first_day
    while current <= last_day:
        key = current.isoformat()
        of_day = dict(counts.get(key, {}))
        if derived:
            rest = sum(of_day.values())
            of_day[ClaimState.DONE] = max(0, due.get(key, 0) - rest)
            total = max(due.get(key, 0), rest)
        else:
            total = sum(of_day.values())
        days.append(DaySummary(day=current, due=total, counts=of_day, derived=derived))
        current += timedelta(days=1)
    return days


def last_tick_day(store: Store, job: str, now: datetime) -> date:
    """The local day of the job's latest tick at or before ``now`` (today in UTC if none):
    where a window ending "today" should end for the zones that are already tomorrow."""
    ticks = store.latest_ticks(job, at=now, count=1)
    if ticks:
        return date.fromisoformat(ticks[0][:10])
    return now.astimezone(UTC).date()


# -- the overview ------------------------------------------------------------------------


@dataclass(frozen=True)
class JobOverview:
    name: str
    job: Job | None
    ledgers: list[Ledger]
    strip: list[DaySummary]


@dataclass(frozen=True)
class Overview:
    now: datetime
    jobs: list[JobOverview]
    #: ``None`` when the store keeps no alert state (alerting not configured).
    alerts: list[AlertState] | None


def open_alerts(store: Store) -> list[AlertState] | None:
    """The open alerts, or ``None`` if this store has no alert state."""
    method = getattr(store, "open_alerts", None)
    try:
        if callable(method):
            found: Any = method()
        elif callable(getattr(store, "alerts", None)):
            found = store.alerts(open_only=True)
        else:
            return None
    except NotImplementedError:
        return None
    except StoreError:
        # A schema without the alert tables: the rest of the page still works.
        return None
    return list(found)


def job_names(store: Store, jobs: Mapping[str, Job]) -> list[str]:
    """The app's jobs in the order it declares them, then any other job the store knows."""
    return list(jobs) + sorted(set(store.known_jobs()) - set(jobs))


def overview(store: Store, jobs: Mapping[str, Job]) -> Overview:
    now = store.now()
    result: list[JobOverview] = []
    for name in job_names(store, jobs):
        ticks = store.latest_ticks(name, at=now, count=LEDGER_TICKS)
        ledgers = [store.ledger(name, tick, limit=5) for tick in ticks]
        last = date.fromisoformat(ticks[0][:10]) if ticks else now.astimezone(UTC).date()
        strip = day_summaries(store, name, last - timedelta(days=STRIP_DAYS - 1), last)
        result.append(JobOverview(name=name, job=jobs.get(name), ledgers=ledgers, strip=strip))
    return Overview(now=now, jobs=result, alerts=open_alerts(store))


# -- the job page: tenants x days --------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Cell:
    """One tenant's day: coloured by its worst occurrence, which a click opens."""

    state: str
    occurrences: int
    href: str
    title: str


@dataclass(frozen=True)
class GridRow:
    tenant: str
    time_zone: str | None
    cells: list[Cell | None]


@dataclass(frozen=True)
class GridQuery:
    """The job page's query string, validated."""

    last_day: date | None = None
    days: int = STRIP_DAYS
    prefix: str = ""
    outcome: str = ""
    after: str | None = None
    before: str | None = None
    limit: int = DEFAULT_PAGE

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> GridQuery:
        def number(key: str, default: int, low: int, high: int) -> int:
            raw = params.get(key, "").strip()
            if not raw:
                return default
            try:
                value = int(raw)
            except ValueError:
                raise InvalidInput(f"{key} must be a whole number, got {raw!r}") from None
            if not low <= value <= high:
                raise InvalidInput(f"{key} must be between {low} and {high}, got {value}")
            return value

        end = params.get("end", "").strip()
        try:
            last_day = date.fromisoformat(end) if end else None
        except ValueError:
            raise InvalidInput(f"end must be a date such as 2026-05-19, got {end!r}") from None
        outcome = params.get("outcome", "").strip()
        if outcome not in {value for value, _ in OUTCOMES}:
            raise InvalidInput(f"unknown outcome {outcome!r}")
        return cls(
            last_day=last_day,
            days=number("days", STRIP_DAYS, 1, MAX_DAYS),
            prefix=params.get("q", "").strip(),
            outcome=outcome,
            after=params.get("after") or None,
            before=params.get("before") or None,
            limit=number("limit", DEFAULT_PAGE, 1, MAX_PAGE),
        )

    def link(self, **changes: str | int | None) -> dict[str, str]:
        """The query string of this page with ``changes`` (cursors reset unless given)."""
        values: dict[str, str | int | None] = {
            "end": self.last_day.isoformat() if self.last_day else None,
            "days": self.days if self.days != STRIP_DAYS else None,
            "q": self.prefix or None,
            "outcome": self.outcome or None,
            "limit": self.limit if self.limit != DEFAULT_PAGE else None,
        }
        values.update(changes)
        return {k: str(v) for k, v in values.items() if v is not None and v != ""}


@dataclass(frozen=True)
class JobGrid:
    job: str
    definition: Job | None
    query: GridQuery
    first_day: date
    last_day: date
    days: list[DaySummary]
    rows: list[GridRow]
    #: Cursor of the next page (its ``after``), or ``None`` on the last page.
    next_after: str | None
    #: Cursor of the previous page (its ``before``), or ``None`` on the first page.
    prev_before: str | None
    now: datetime = field(default_factory=lambda: datetime.now(UTC))


def job_grid(store: Store, jobs: Mapping[str, Job], job: str, query: GridQuery) -> JobGrid:
    now = store.now()
    last_day = query.last_day or last_tick_day(store, job, now)
    first_day = last_day - timedelta(days=query.days - 1)
    window = {"first_day": first_day, "last_day": last_day}
    found = store.dashboard_tenants(
        job,
        **window,
        outcome=query.outcome or None,
        prefix=query.prefix,
        after=query.after if query.before is None else None,
        before=query.before,
        limit=query.limit + 1,
    )
    if query.before is not None:
        more_before = len(found) > query.limit
        tenants = found[-query.limit :]
        next_after = tenants[-1] if tenants else None
        prev_before = tenants[0] if more_before and tenants else None
    else:
        tenants = found[: query.limit]
        next_after = tenants[-1] if len(found) > query.limit else None
        prev_before = tenants[0] if query.after and tenants else None

    day_list = [first_day + timedelta(days=i) for i in range(query.days)]
    column = {d.isoformat(): i for i, d in enumerate(day_list)}
    day_names = [f"{d.isoformat()} ({d:%a})" for d in day_list]
    by_cell: dict[tuple[str, int], list[tuple[ClaimState, int, datetime]]] = {}
    zones: dict[str, str | None] = {}
    for tenant, label, state, n, earliest, zone in store.dashboard_cells(job, tenants, **window):
        if label in column:
            by_cell.setdefault((tenant, column[label]), []).append((state, n, earliest))
        zones[tenant] = zones.get(tenant) or zone
    rows = []
    # Hundreds of cells per page: built here in plain Python, once, for the template.
    for tenant in tenants:
        base = occurrence_base(job, tenant)
        cells: list[Cell | None] = []
        for i in range(len(day_list)):
            groups = by_cell.get((tenant, i))
            if groups is None:
                cells.append(None)
                continue
            if len(groups) == 1:
                state, total, earliest = groups[0]
                detail = f"{total} {LABELS[state]}"
            else:
                groups.sort(key=lambda g: RANK[g[0]])
                state = groups[0][0]
                earliest = min(g[2] for g in groups if g[0] is state)
                total = sum(g[1] for g in groups)
                detail = ", ".join(f"{n} {LABELS[s]}" for s, n, _ in groups)
            cells.append(
                Cell(
                    state=state.value,
                    occurrences=total,
                    href=base + instant_param(earliest),
                    title=f"{tenant} · {day_names[i]}: {detail}",
                )
            )
        rows.append(GridRow(tenant=tenant, time_zone=zones.get(tenant), cells=cells))
    return JobGrid(
        job=job,
        definition=jobs.get(job),
        query=query,
        first_day=first_day,
        last_day=last_day,
        days=day_summaries(store, job, first_day, last_day),
        rows=rows,
        next_after=next_after,
        prev_before=prev_before,
        now=now,
    )


# -- the occurrence page: its history as a timeline ---------------------------------------

ACQUISITIONS = frozenset({EventKind.ACQUIRED, EventKind.TOOK_OVER})
SETTLEMENTS = frozenset(
    {EventKind.COMPLETED, EventKind.RELEASED, EventKind.FAILED, EventKind.LEASE_EXPIRED}
)


@dataclass(frozen=True)
class TimelineEntry:
    event: Event
    #: Since the occurrence's nominal instant.
    offset: timedelta
    #: For a settlement: how long the attempt held the claim (since its acquisition).
    held: timedelta | None
    #: For an acquisition: how long the occurrence waited since it became claimable
    #: again (a release, a replay) or since its tick (the first attempt).
    waited: timedelta | None
    summary: str


@dataclass(frozen=True)
class OccurrencePage:
    occurrence: Occurrence
    claim: Claim | None
    timeline: list[TimelineEntry]
    now: datetime

    @property
    def replayable(self) -> bool:
        return self.claim is not None and self.claim.state in (
            ClaimState.FAILED,
            ClaimState.MISSED,
            ClaimState.DONE,
        )


def describe(event: Event) -> str:
    who = event.worker or "?"
    kind = event.kind
    if kind is EventKind.ACQUIRED:
        return f"attempt {event.attempt} claimed by {who}"
    if kind is EventKind.TOOK_OVER:
        return f"attempt {event.attempt} taken over by {who} (the previous lease expired)"
    if kind is EventKind.LEASE_EXPIRED:
        return f"the lease of {who} expired (attempt {event.attempt})"
    if kind is EventKind.RELEASED:
        return f"released for a retry by {who}"
    if kind is EventKind.COMPLETED:
        return f"done, by {who}"
    if kind is EventKind.FAILED:
        return f"failed for good ({who})"
    if kind is EventKind.STALE_REJECTED:
        action = event.detail or "a call"
        return f"late {action} from {who} refused: fencing token {event.token} is stale"
    if kind is EventKind.MISSED:
        return "missed: no worker started it within its window"
    if kind is EventKind.REPLAYED:
        return f"replayed, requested by {event.worker or event.detail or '?'}"
    return kind.value


def timeline(occurrence: Occurrence, events: Sequence[Event]) -> list[TimelineEntry]:
    acquired_at: dict[int | None, datetime] = {}
    claimable_since: datetime = occurrence.scheduled_for
    entries: list[TimelineEntry] = []
    for event in events:
        held = waited = None
        if event.kind in ACQUISITIONS:
            waited = max(timedelta(0), event.at - claimable_since)
            acquired_at[event.token] = event.at
        elif event.kind in SETTLEMENTS and event.token in acquired_at:
            held = event.at - acquired_at[event.token]
        if event.kind in (EventKind.RELEASED, EventKind.REPLAYED, EventKind.LEASE_EXPIRED):
            claimable_since = event.at
        entries.append(
            TimelineEntry(
                event=event,
                offset=event.at - occurrence.scheduled_for,
                held=held,
                waited=waited,
                summary=describe(event),
            )
        )
    return entries


def occurrence_page(store: Store, occurrence: Occurrence) -> OccurrencePage:
    claim = store.dashboard_claim(occurrence)
    events = store.events(occurrence) if claim is not None else []
    if claim is not None:
        occurrence = claim.occurrence
    return OccurrencePage(
        occurrence=occurrence, claim=claim, timeline=timeline(occurrence, events), now=store.now()
    )
