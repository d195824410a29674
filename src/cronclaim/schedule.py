"""Cron expressions evaluated in a time zone: the ticks (occurrences) of a job.

A tick's wall time may not exist (clocks jump forward) or exist twice (clocks fall
back). The default matches Debian cron, the reference cronsim also emulates: jobs at a
fixed time of day (neither the minute nor the hour field starts with ``*``) run a
missing wall time at the first valid instant after the jump and a repeated wall time
once, in the first pass; interval jobs (minute or hour field starting with ``*``) follow
the real clock. :class:`DstPolicy` changes what fixed-time jobs do. The full table and
the deviations from Debian are in ``docs/scheduling.md``.

Days are matched on the calendar and each matching wall time is resolved on its own, so
a year of a daily job is a few hundred resolutions, not half a million minute steps.
"""

from __future__ import annotations

import calendar
import heapq
import itertools
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta, tzinfo
from typing import Literal, get_args
from zoneinfo import ZoneInfo

from cronclaim.exceptions import InvalidInput
from cronclaim.models import require_aware

__all__ = [
    "DEFAULT_DST",
    "NEVER",
    "SEARCH_HORIZON",
    "CronSchedule",
    "DstNonexistent",
    "DstPolicy",
    "DstRepeated",
    "Tick",
    "format_upcoming",
]

DstNonexistent = Literal["first_valid", "skip"]
DstRepeated = Literal["once", "twice"]

#: How far ``next_tick``/``previous_tick`` look before giving up. The sparsest possible
#: expression, 29 February on one weekday, recurs at most 40 years apart (2088 → 2128).
SEARCH_HORIZON = timedelta(days=50 * 366)
#: Returned by ``period_hint`` for an expression that never matches ('0 0 30 2 *'):
#: one Gregorian cycle, finite so callers can still do arithmetic with it.
NEVER = timedelta(days=146_097)

# Instants are clamped to this range so that day and offset arithmetic never overflows.
_EARLIEST = datetime(2, 1, 1, tzinfo=UTC)
_LATEST = datetime(9998, 12, 31, tzinfo=UTC)
_SECOND = timedelta(seconds=1)
_HOUR = timedelta(hours=1)
_DAY = timedelta(days=1)
_FIRST_WINDOW = timedelta(hours=1)
# Windows up to this long get exact wall-time bounds: tzdata has no two opposite-sign
# offset changes within three days of each other, so the offset over such a window is
# monotonic and its extremes are at the ends.
_SHORT_WINDOW = timedelta(days=2)


@dataclass(frozen=True, kw_only=True, slots=True)
class DstPolicy:
    """What a fixed-time job does when a DST change removes or repeats its wall time.

    Applies to jobs whose minute and hour fields are both fixed (``30 2 * * *``,
    ``0 1-5 * * *``, ``@daily``). Interval jobs (minute or hour field starting with
    ``*``: ``*/15 * * * *``, ``0 */2 * * *``, ``@hourly``) always follow the real clock,
    as in Debian cron: a wall time inside the jump does not run, a repeated one runs in
    both passes.
    """

    nonexistent: DstNonexistent = "first_valid"
    repeated: DstRepeated = "once"

    def __post_init__(self) -> None:
        for name, value, allowed in (
            ("nonexistent", self.nonexistent, get_args(DstNonexistent)),
            ("repeated", self.repeated, get_args(DstRepeated)),
        ):
            if value not in allowed:
                choices = " or ".join(repr(a) for a in allowed)
                raise InvalidInput(f"DST policy {name} must be {choices}, got {value!r}")


DEFAULT_DST = DstPolicy()


@dataclass(frozen=True, kw_only=True, slots=True)
class Tick:
    """One occurrence of a schedule in one zone.

    ``utc`` and ``local`` are the same instant (compare them with
    ``local.astimezone(UTC) == utc``: PEP 495 makes ``==`` between zones false for a
    repeated wall time). ``nominal`` is the naive wall time the expression named; it
    differs from ``local`` only when a DST jump moved the tick. ``dst_note`` is one
    sentence when a DST change moved, merged or repeated the tick, else None.
    """

    utc: datetime
    local: datetime
    nominal: datetime
    dst_note: str | None = None

    @property
    def moved(self) -> bool:
        """True when a forward jump moved the tick off the wall time it was named for."""
        return self.local.replace(tzinfo=None) != self.nominal


# --------------------------------------------------------------------------- parsing


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: tuple[str, ...] = ()
    names_hint: str = ""


_MINUTE_FIELD = _Field("minute", 0, 59)
_HOUR_FIELD = _Field("hour", 0, 23)
_DOM_FIELD = _Field("day-of-month", 1, 31)
_MONTH_FIELD = _Field(
    "month",
    1,
    12,
    ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"),
    "a month name (jan-dec)",
)
_DOW_FIELD = _Field(
    "day-of-week", 0, 7, ("sun", "mon", "tue", "wed", "thu", "fri", "sat"), "a day name (sun-sat)"
)
_FIELDS = (_MINUTE_FIELD, _HOUR_FIELD, _DOM_FIELD, _MONTH_FIELD, _DOW_FIELD)

_MACROS = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
_MACRO_LIST = ", ".join(_MACROS)
# L (last), W (nearest weekday), # (nth weekday) and ? are Quartz/cronie extensions.
_EXTENSION = re.compile(r"\d*L|\d*W|LW", re.IGNORECASE)


def _parse_field(spec: _Field, text: str, expression: str) -> frozenset[int]:
    def fail(part: str, problem: str) -> InvalidInput:
        where = f"{spec.name} field {text!r}" + ("" if part == text else f": {part!r}")
        return InvalidInput(f"cron expression {expression!r}: {where} {problem}")

    def number(atom: str) -> int:
        lowered = atom.lower()
        if lowered in spec.names:
            return spec.low + spec.names.index(lowered)
        if not (atom.isascii() and atom.isdigit()):
            kind = f"a number or {spec.names_hint}" if spec.names else "a number"
            raise fail(atom, f"is not {kind}")
        value = int(atom)
        if not spec.low <= value <= spec.high:
            raise fail(atom, f"is out of range {spec.low}-{spec.high}")
        return value

    values: set[int] = set()
    for item in text.split(","):
        if not item:
            raise fail(text, "has an empty list item")
        body, slash, step_text = item.partition("/")
        special = next((ch for ch in "#?" if ch in item), None)
        if special is None and _EXTENSION.fullmatch(body):
            special = "W" if "W" in body.upper() else "L"
        if special is not None:
            raise fail(
                item,
                f"uses '{special}', which is not supported "
                "(L, W, # and ? belong to other cron dialects)",
            )
        step = 1
        if slash:
            if not (step_text.isascii() and step_text.isdigit()):
                raise fail(item, f"has a step {step_text!r} that is not a number")
            step = int(step_text)
            if step < 1:
                raise fail(item, "has a step of 0; the step must be 1 or more")
        if not body:
            raise fail(item, "has nothing before '/'; write '*/' for every value")
        if body == "*":
            first, last = spec.low, spec.high
        elif "-" in body:
            start_text, _, end_text = body.partition("-")
            if not start_text or not end_text:
                raise fail(item, "is an incomplete range; write it as start-end, e.g. '1-5'")
            first, last = number(start_text), number(end_text)
            if first > last:
                hint = (
                    "; write Sunday as 7 at the end of a range, e.g. 'mon-7'"
                    if spec is _DOW_FIELD and last == 0
                    else ""
                )
                raise fail(item, f"is a backwards range ({first} > {last}){hint}")
        else:
            first = number(body)
            if slash:
                raise fail(
                    item,
                    f"has a step without a range; write '{body}-{spec.high}/{step}' or '*/{step}'",
                )
            last = first
        values.update(range(first, last + 1, step))
    if spec is _DOW_FIELD and 7 in values:
        values.discard(7)
        values.add(0)
    return frozenset(values)


def _split(expression: str) -> list[str]:
    if not isinstance(expression, str):
        raise InvalidInput(f"cron expression must be a string, not {type(expression).__name__}")
    parts = expression.split()
    if not parts:
        raise InvalidInput("cron expression is empty")
    if parts[0].startswith("@"):
        macro = parts[0].lower()
        if len(parts) > 1:
            raise InvalidInput(
                f"cron expression {expression!r}: {parts[0]} stands alone, without fields"
            )
        if macro == "@reboot":
            raise InvalidInput(
                f"cron expression {expression!r}: @reboot is not supported (there is no boot "
                f"to run at); use one of {_MACRO_LIST}"
            )
        if macro not in _MACROS:
            raise InvalidInput(
                f"cron expression {expression!r}: unknown macro {parts[0]!r}; use one of "
                f"{_MACRO_LIST}"
            )
        return _MACROS[macro].split()
    if len(parts) != 5:
        extra = "; a seconds or year field is not supported" if len(parts) > 5 else ""
        raise InvalidInput(
            f"cron expression {expression!r}: expected 5 fields (minute hour day-of-month "
            f"month day-of-week), got {len(parts)}{extra}"
        )
    return parts


# ------------------------------------------------------------------------ evaluation


def _hm(value: datetime) -> str:
    return value.strftime("%H:%M:%S" if value.second else "%H:%M")


def _join(items: list[str]) -> str:
    return items[0] if len(items) == 1 else ", ".join(items[:-1]) + " and " + items[-1]


def _naive_utc(value: datetime) -> datetime:
    return value.astimezone(UTC).replace(tzinfo=None)


def _offset(zone: tzinfo, wall: datetime) -> timedelta:
    offset = zone.utcoffset(wall)
    if offset is None:
        raise InvalidInput(f"time zone {zone!r} gives no UTC offset for {wall.isoformat()}")
    return offset


def _offset_at(zone: tzinfo, instant: datetime) -> timedelta:
    """The zone's offset at a naive UTC instant."""
    return _offset(zone, instant.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None))


@dataclass(frozen=True, slots=True)
class _Gap:
    """A forward jump of the clocks: wall times in [wall_from, wall_to) do not exist."""

    at: datetime  # naive UTC: the first valid instant after the jump
    wall_from: datetime
    wall_to: datetime
    name_from: str
    name_to: str

    def missing(self, nominals: list[datetime]) -> str:
        verb = "does" if len(nominals) == 1 else "do"
        jump = f"{_hm(self.wall_from)}→{_hm(self.wall_to)}"
        if self.wall_to.date() != self.wall_from.date():
            jump = f"{self.wall_from:%Y-%m-%d} {_hm(self.wall_from)}→{self.wall_to:%Y-%m-%d} "
            jump += _hm(self.wall_to)
        return (
            f"{_join([_hm(n) for n in nominals])} {verb} not exist on {nominals[0].date()} "
            f"(clocks jump {jump} {self.name_from}→{self.name_to})"
        )

    def resume_text(self, nominal: datetime) -> str:
        if self.wall_to.date() == nominal.date():
            return _hm(self.wall_to)
        return f"{_hm(self.wall_to)} on {self.wall_to.date()}"


def _find_gap(zone: tzinfo, wall: datetime, before: timedelta, after: timedelta) -> _Gap:
    """The jump that removes ``wall`` (offset ``before`` → ``after``), to the second."""
    lo, hi = wall - after, wall - before  # naive UTC, either side of the jump
    if _offset_at(zone, lo) == before:
        while hi - lo > _SECOND:
            mid = lo + timedelta(seconds=int((hi - lo).total_seconds()) // 2)
            if _offset_at(zone, mid) == before:
                lo = mid
            else:
                hi = mid
    return _Gap(
        at=hi,
        wall_from=hi + before,
        wall_to=hi + after,
        name_from=zone.tzname(wall) or str(before),
        name_to=zone.tzname(wall.replace(fold=1)) or str(after),
    )


@dataclass(slots=True)
class _Candidate:
    utc: datetime  # naive UTC; for a skip, the instant of the jump that removed it
    nominal: datetime
    fold: int = 0
    gap: _Gap | None = None  # set when the tick was moved (or skipped) by a jump
    note: str | None = None
    skip_reason: str | None = None


@dataclass(frozen=True, slots=True)
class _Skipped:
    at: datetime  # aware UTC instant of the jump
    nominal: datetime
    reason: str


class CronSchedule:
    """A five-field cron expression (or macro) with its DST policy.

    Syntax: minute hour day-of-month month day-of-week; ``*``, lists, ranges, steps
    (``*/15``, ``1-30/5``), month and day names (case-insensitive), 7 = Sunday, and
    @yearly/@annually, @monthly, @weekly, @daily/@midnight, @hourly. When neither the
    day-of-month nor the day-of-week field starts with ``*``, a day matches if either
    matches (Vixie/Debian cron); otherwise both must.
    """

    __slots__ = (
        "_day_or",
        "_dom",
        "_dow",
        "_fixed_time",
        "_hours",
        "_key",
        "_minutes",
        "_months",
        "_period",
        "_possible",
        "dst",
        "expression",
    )

    def __init__(self, expression: str, *, dst: DstPolicy = DEFAULT_DST) -> None:
        parts = _split(expression)
        if not isinstance(dst, DstPolicy):
            raise InvalidInput(f"dst must be a DstPolicy, not {type(dst).__name__}")
        original = expression.strip()
        minutes, hours, dom, months, dow = (
            _parse_field(spec, text, original) for spec, text in zip(_FIELDS, parts, strict=True)
        )
        self.expression = original
        self.dst = dst
        self._minutes = tuple(sorted(minutes))
        self._hours = tuple(sorted(hours))
        self._dom = tuple(d in dom for d in range(32))
        self._months = tuple(m in months for m in range(13))
        self._dow = tuple(d in dow for d in range(7))
        # Vixie cron's DOM_STAR/DOW_STAR and MIN_STAR/HR_STAR look at the first character.
        self._day_or = not (parts[2].startswith("*") or parts[4].startswith("*"))
        self._fixed_time = not (parts[0].startswith("*") or parts[1].startswith("*"))
        self._possible = self._day_or or any(
            self._dom[d] for m in months for d in range(1, _longest_month(m) + 1)
        )
        self._key: tuple[object, ...] = (
            self._minutes,
            self._hours,
            self._dom,
            self._months,
            self._dow,
            self._day_or,
            self._fixed_time,
            dst,
        )
        self._period: timedelta | None = None

    def __repr__(self) -> str:
        return f"CronSchedule({self.expression!r}, dst={self.dst!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, CronSchedule) and self._key == other._key

    def __hash__(self) -> int:
        return hash(self._key)

    @property
    def fixed_time(self) -> bool:
        """True when the DST policy applies: neither minute nor hour starts with ``*``."""
        return self._fixed_time

    # ----------------------------------------------------------------- public queries

    def ticks(self, zone: ZoneInfo, start: datetime, end: datetime) -> Iterator[Tick]:
        """Ticks with start < tick.utc <= end, ascending; lazy.

        ``start`` and ``end`` must be aware (else InvalidInput); an empty or reversed
        range gives no ticks.
        """
        start_u, end_u = self._bounds(zone, start, end)
        return (item for item in self._events(zone, start_u, end_u) if isinstance(item, Tick))

    def skipped(
        self, zone: ZoneInfo, start: datetime, end: datetime
    ) -> Iterator[tuple[datetime, str]]:
        """Naive wall times the schedule named that do not run, with the reason.

        A wall time inside a forward jump is listed when the job is an interval job or
        its policy is ``nonexistent="skip"``; it is placed at the instant of the jump,
        which must satisfy start < instant <= end.
        """
        start_u, end_u = self._bounds(zone, start, end)
        return (
            (item.nominal, item.reason)
            for item in self._events(zone, start_u, end_u)
            if isinstance(item, _Skipped)
        )

    def next_tick(self, zone: ZoneInfo, after: datetime) -> Tick | None:
        """First tick with utc > after; None if none within SEARCH_HORIZON."""
        after_u = require_aware(after, "after")
        _check_zone(zone)
        if not self._possible:
            return None
        lo = max(after_u, _EARLIEST)
        limit = _LATEST if after_u >= _LATEST - SEARCH_HORIZON else after_u + SEARCH_HORIZON
        span = _FIRST_WINDOW
        while lo < limit:
            hi = min(lo + span, limit)
            for item in self._events(zone, lo, hi):
                if isinstance(item, Tick):
                    return item
            lo, span = hi, span * 2
        return None

    def previous_tick(self, zone: ZoneInfo, at_or_before: datetime) -> Tick | None:
        """Last tick with utc <= at_or_before; None if none within SEARCH_HORIZON."""
        at_u = require_aware(at_or_before, "at_or_before")
        _check_zone(zone)
        if not self._possible:
            return None
        hi = min(at_u, _LATEST)
        limit = _EARLIEST if at_u <= _EARLIEST + SEARCH_HORIZON else at_u - SEARCH_HORIZON
        span = _FIRST_WINDOW
        while hi > limit:
            lo = max(hi - span, limit)
            last: Tick | None = None
            for item in self._events(zone, lo, hi):
                if isinstance(item, Tick):
                    last = item
            if last is not None:
                return last
            hi, span = lo, span * 2
        return None

    def period_hint(self) -> timedelta:
        """The largest gap between consecutive ticks, in UTC, over a representative span.

        The span starts on 2001-01-01 and runs at least 28 years (every weekday/leap-year
        combination) until two matching days were seen. An expression that never
        matches returns :data:`NEVER`.
        """
        if self._period is None:
            self._period = self._compute_period()
        return self._period

    # ----------------------------------------------------------------------- internals

    def _compute_period(self) -> timedelta:
        times = [h * 60 + m for h in self._hours for m in self._minutes]
        largest = max((b - a for a, b in itertools.pairwise(times)), default=0)
        first = date(2001, 1, 1)
        settled, stop = date(2029, 1, 1), date(2401, 1, 1)
        previous: date | None = None
        widest_days = 0
        for day in self._days(first, stop):
            if previous is not None:
                widest_days = max(widest_days, (day - previous).days)
                if day >= settled:
                    break
            previous = day
        if not widest_days:
            return NEVER
        return timedelta(minutes=max(largest, widest_days * 1440 - (times[-1] - times[0])))

    def _bounds(self, zone: ZoneInfo, start: datetime, end: datetime) -> tuple[datetime, datetime]:
        start_u = require_aware(start, "start")
        end_u = require_aware(end, "end")
        _check_zone(zone)
        return max(start_u, _EARLIEST), min(end_u, _LATEST)

    def _day_matches(self, day: int, weekday: int) -> bool:
        if self._day_or:
            return self._dom[day] or self._dow[weekday]
        return self._dom[day] and self._dow[weekday]

    def _days(self, first: date, last: date) -> Iterator[date]:
        """Matching calendar days in [first, last], ascending."""
        year, month = first.year, first.month
        while (year, month) <= (last.year, last.month):
            if self._months[month]:
                length = calendar.monthrange(year, month)[1]
                lo = first.day if (year, month) == (first.year, first.month) else 1
                hi = last.day if (year, month) == (last.year, last.month) else length
                weekday = (date(year, month, lo).weekday() + 1) % 7  # cron: 0 = Sunday
                for day in range(lo, hi + 1):
                    if self._day_matches(day, weekday):
                        yield date(year, month, day)
                    weekday = (weekday + 1) % 7
            year, month = (year + 1, 1) if month == 12 else (year, month + 1)

    def _walls(self, day: date, lo: datetime, hi: datetime) -> Iterator[tuple[int, int]]:
        """The day's matching wall times within [lo, hi], ascending, as (hour, minute)."""
        # Compared as minutes of the day: building datetimes costs more than the search.
        first = (
            -1
            if day > lo.date()
            else lo.hour * 60 + lo.minute + (1 if lo.second or lo.microsecond else 0)
        )
        last = 1440 if day < hi.date() else hi.hour * 60 + hi.minute
        last_minute = self._minutes[-1]
        for hour in self._hours:
            base = hour * 60
            if base + last_minute < first:
                continue
            if base > last:
                return
            for minute in self._minutes:
                if base + minute < first:
                    continue
                if base + minute > last:
                    return
                yield hour, minute

    def _resolve_day(
        self, zone: tzinfo, day_start: datetime, lo: datetime, hi: datetime
    ) -> Iterator[_Candidate]:
        """Each wall time of a day on which the offset changes, resolved on its own."""
        gap: _Gap | None = None
        for hour, minute in self._walls(day_start.date(), lo, hi):
            wall = day_start.replace(hour=hour, minute=minute)
            before = _offset(zone, wall)
            after = _offset(zone, wall.replace(fold=1))
            if before == after:
                yield _Candidate(utc=wall - before, nominal=wall)
            elif after > before:
                if gap is None or not gap.wall_from <= wall < gap.wall_to:
                    gap = _find_gap(zone, wall, before, after)
                yield self._in_gap(wall, gap)
            else:
                yield from self._repeated(zone, wall, before, after)

    def _in_gap(self, wall: datetime, gap: _Gap) -> _Candidate:
        if self._fixed_time and self.dst.nonexistent == "first_valid":
            return _Candidate(utc=gap.at, nominal=wall, gap=gap)
        if self._fixed_time:
            why = "not run (DST policy nonexistent='skip')"
        else:
            why = (
                "not run: the minute or hour field starts with '*', so the job follows "
                "the real clock"
            )
        return _Candidate(
            utc=gap.at, nominal=wall, gap=gap, skip_reason=f"{gap.missing([wall])}; {why}"
        )

    def _repeated(
        self, zone: tzinfo, wall: datetime, before: timedelta, after: timedelta
    ) -> Iterator[_Candidate]:
        head = (
            f"{_hm(wall)} occurs twice on {wall.date()} "
            f"({zone.tzname(wall)}→{zone.tzname(wall.replace(fold=1))})"
        )
        if self._fixed_time and self.dst.repeated == "once":
            yield _Candidate(
                utc=wall - before, nominal=wall, note=f"{head}; runs once, in the first pass"
            )
            return
        yield _Candidate(utc=wall - before, nominal=wall, note=f"{head}; first pass")
        yield _Candidate(utc=wall - after, nominal=wall, fold=1, note=f"{head}; second pass")

    def _events(
        self, zone: tzinfo, start_u: datetime, end_u: datetime
    ) -> Iterator[Tick | _Skipped]:
        """Ticks and skipped wall times with start < instant <= end, in UTC order."""
        if end_u <= start_u or not self._possible:
            return
        start, end = _naive_utc(start_u), _naive_utc(end_u)
        lo, hi = _wall_window(zone, start, end)
        heap: list[tuple[datetime, int, _Candidate]] = []
        order = itertools.count()
        for day in self._days(lo.date(), hi.date()):
            day_start = datetime.combine(day, time())
            constant = _constant_offset(zone, day_start)
            if constant is None:
                yield from _drain(heap, zone, start, end, _earliest_instant(zone, day))
                for candidate in self._resolve_day(zone, day_start, lo, hi):
                    heapq.heappush(heap, (candidate.utc, next(order), candidate))
                continue
            yield from _drain(heap, zone, start, end, day_start - constant)
            year, month, mday = day.year, day.month, day.day
            if heap:
                # A jump moved an earlier wall time onto this day's first instant (a whole
                # day skipped, as in Apia in 2011): merge through the heap.
                for hour, minute in self._walls(day, lo, hi):
                    wall = datetime(year, month, mday, hour, minute)
                    candidate = _Candidate(utc=wall - constant, nominal=wall)
                    heapq.heappush(heap, (candidate.utc, next(order), candidate))
                continue
            # The common case: no change today and nothing pending, so no heap.
            for hour, minute in self._walls(day, lo, hi):
                # Positional constructors: several times faster than replace(tzinfo=...).
                instant = datetime(year, month, mday, hour, minute, 0, 0, UTC) - constant
                if start_u < instant <= end_u:
                    yield Tick(
                        utc=instant,
                        local=datetime(year, month, mday, hour, minute, 0, 0, zone),
                        nominal=datetime(year, month, mday, hour, minute),
                    )
        yield from _drain(heap, zone, start, end, None)


def _longest_month(month: int) -> int:
    return 29 if month == 2 else calendar.monthrange(2001, month)[1]


def _check_zone(zone: object) -> None:
    if not isinstance(zone, tzinfo):
        raise InvalidInput(f"zone must be a ZoneInfo time zone, not {type(zone).__name__}")


def _constant_offset(zone: tzinfo, day_start: datetime) -> timedelta | None:
    """The zone's offset all day long, or None if a DST change falls on this day.

    Both ends of the day, in both folds, agree only on days without a change: tzdata
    never changes the offset and changes it back within two days.
    """
    next_start = day_start + _DAY
    offset = _offset(zone, day_start)
    for wall in (day_start.replace(fold=1), next_start, next_start.replace(fold=1)):
        if _offset(zone, wall) != offset:
            return None
    return offset


def _earliest_instant(zone: tzinfo, day: date) -> datetime:
    """A naive UTC instant before every tick of ``day`` and of any later day."""
    midnight = datetime.combine(day, time())
    latest_offset = max(_offset(zone, midnight), _offset(zone, midnight.replace(fold=1)))
    return midnight - latest_offset - _HOUR


def _wall_window(zone: tzinfo, start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """Naive wall times whose ticks (or skips) can fall in (start, end] (naive UTC)."""
    if end - start > _SHORT_WINDOW:
        # Any offset is within a day of zero and a jump moves a wall time by at most a day.
        return start - _DAY, end + _DAY
    first, last = _offset_at(zone, start), _offset_at(zone, end)
    return start + min(first, last), end + max(first, last)


def _drain(
    heap: list[tuple[datetime, int, _Candidate]],
    zone: tzinfo,
    start: datetime,
    end: datetime,
    below: datetime | None,
) -> Iterator[Tick | _Skipped]:
    """Pop candidates earlier than ``below`` (all if None), merging ticks at one instant."""
    while heap and (below is None or heap[0][0] < below):
        instant = heap[0][0]
        group = []
        while heap and heap[0][0] == instant:
            group.append(heapq.heappop(heap)[2])
        if not start < instant <= end:
            continue
        aware = instant.replace(tzinfo=UTC)
        for candidate in group:
            if candidate.skip_reason is not None:
                yield _Skipped(at=aware, nominal=candidate.nominal, reason=candidate.skip_reason)
        runs = [c for c in group if c.skip_reason is None]
        if runs:
            yield _merge(runs, aware, zone)


def _merge(runs: list[_Candidate], instant: datetime, zone: tzinfo) -> Tick:
    """One tick per instant: wall times a jump moved onto an instant share its run."""
    moved = [c for c in runs if c.gap is not None]
    genuine = [c for c in runs if c.gap is None]
    if not moved:
        only = genuine[0]
        local = only.nominal.replace(tzinfo=zone, fold=only.fold)
        return Tick(utc=instant, local=local, nominal=only.nominal, dst_note=only.note)
    gap = moved[0].gap
    assert gap is not None
    nominals = [c.nominal for c in moved]
    if genuine:
        chosen = genuine[0].nominal
        on = "" if chosen.date() == nominals[0].date() else f" on {chosen.date()}"
        tail = f"merged into the {_hm(chosen)} run{on}"
    else:
        chosen = nominals[0]
        resume = gap.resume_text(chosen)
        tail = f"runs at {resume}" if len(nominals) == 1 else f"they run once, at {resume}"
    return Tick(
        utc=instant,
        local=instant.astimezone(zone),
        nominal=chosen,
        dst_note=f"{gap.missing(nominals)}; {tail}",
    )


# ------------------------------------------------------------------------------ CLI


def _stamp(value: datetime) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S" if value.second else "%Y-%m-%d %H:%M")


def _offset_text(value: datetime) -> str:
    offset = value.utcoffset() or timedelta(0)
    sign = "-" if offset < timedelta(0) else "+"
    minutes = abs(int(offset.total_seconds())) // 60
    return f"{sign}{minutes // 60:02d}:{minutes % 60:02d}"


def format_upcoming(
    schedule: CronSchedule, zone: ZoneInfo, after: datetime, count: int
) -> list[str]:
    """One readable line per upcoming tick after ``after`` (at most ``count``).

    Each line shows the local time with its offset and zone abbreviation, then UTC, then
    ``DST:`` and the note when a DST change moved, merged or repeated the tick.
    Wall times skipped by a jump get their own ``DST skipped:`` line, in time order.
    An expression with no tick within the search horizon gives an empty list.
    """
    after_u = require_aware(after, "after")
    if isinstance(count, bool) or not isinstance(count, int) or count < 1:
        raise InvalidInput(f"count must be a positive whole number, got {count!r}")
    ticks: list[Tick] = []
    cursor = after_u
    while len(ticks) < count:
        tick = schedule.next_tick(zone, cursor)
        if tick is None:
            break
        ticks.append(tick)
        cursor = tick.utc
    if not ticks:
        return []
    rows: list[tuple[datetime, int, str]] = []
    for tick in ticks:
        line = (
            f"{_stamp(tick.local)} {tick.local.tzname()} ({_offset_text(tick.local)})"
            f" | {_stamp(tick.utc)} UTC"
        )
        if tick.dst_note is not None:
            line += f" | DST: {tick.dst_note}"
        rows.append((tick.utc, 1, line))
    for item in schedule._events(zone, after_u, ticks[-1].utc):
        if isinstance(item, _Skipped):
            line = f"{_stamp(item.nominal)} (not run) | DST skipped: {item.reason}"
            rows.append((item.at, 0, line))
    rows.sort(key=lambda row: (row[0], row[1]))
    return [line for _, _, line in rows]
