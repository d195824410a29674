"""Cron parsing, day matching and DST behaviour of cronclaim.schedule.

The default DST behaviour is pinned to Debian cron (as emulated by cronsim): fixed-time
jobs run a missing wall time at the first valid instant and a repeated one once;
interval jobs (minute or hour field starting with '*') follow the real clock.
"""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronclaim.exceptions import InvalidInput
from cronclaim.schedule import NEVER, CronSchedule, DstPolicy, Tick, format_upcoming

UTC_ZONE = ZoneInfo("UTC")
MADRID = ZoneInfo("Europe/Madrid")
NEW_YORK = ZoneInfo("America/New_York")
LORD_HOWE = ZoneInfo("Australia/Lord_Howe")
SANTIAGO = ZoneInfo("America/Santiago")
BEIRUT = ZoneInfo("Asia/Beirut")
APIA = ZoneInfo("Pacific/Apia")

DEFAULT = DstPolicy()
SKIP = DstPolicy(nonexistent="skip")
TWICE = DstPolicy(repeated="twice")
POLICIES = pytest.mark.parametrize(
    "policy", [DEFAULT, SKIP, TWICE], ids=["default", "skip", "twice"]
)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def ticks(
    expression: str,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    policy: DstPolicy = DEFAULT,
) -> list[Tick]:
    return list(CronSchedule(expression, dst=policy).ticks(zone, start, end))


def local_times(
    expression: str,
    zone: ZoneInfo,
    start: datetime,
    end: datetime,
    policy: DstPolicy = DEFAULT,
) -> list[str]:
    return [t.local.isoformat() for t in ticks(expression, zone, start, end, policy)]


def utc_times(expression: str, start: datetime, end: datetime) -> list[str]:
    return [t.utc.strftime("%Y-%m-%d %H:%M") for t in ticks(expression, UTC_ZONE, start, end)]


# ----------------------------------------------------------------------------- parser


class TestParser:
    def test_step_over_star_starts_at_the_field_minimum(self) -> None:
        assert utc_times("*/15 * * * *", utc(2026, 1, 1, 0, 0), utc(2026, 1, 1, 1, 0)) == [
            "2026-01-01 00:15",
            "2026-01-01 00:30",
            "2026-01-01 00:45",
            "2026-01-01 01:00",
        ]

    def test_step_over_a_range_stays_inside_the_range(self) -> None:
        minutes = [
            t.utc.minute
            for t in ticks("1-30/5 0 * * *", UTC_ZONE, utc(2026, 1, 1), utc(2026, 1, 1, 1))
        ]
        assert minutes == [1, 6, 11, 16, 21, 26]

    def test_lists_mix_values_ranges_and_steps(self) -> None:
        hours = [
            t.utc.hour
            for t in ticks("0 1,3-5,20-23/2 * * *", UTC_ZONE, utc(2026, 1, 1), utc(2026, 1, 2))
        ]
        assert hours == [1, 3, 4, 5, 20, 22]

    def test_month_names_are_case_insensitive(self) -> None:
        assert CronSchedule("0 0 1 JAN,jul * ") == CronSchedule("0 0 1 1,7 *")

    def test_weekday_names_are_case_insensitive_and_form_ranges(self) -> None:
        assert CronSchedule("0 0 * * Mon-FRI") == CronSchedule("0 0 * * 1-5")

    @pytest.mark.parametrize("sunday", ["0", "7", "sun", "SUN"])
    def test_sunday_is_0_7_or_sun(self, sunday: str) -> None:
        days = [
            t.utc.date().isoformat()
            for t in ticks(f"0 0 * * {sunday}", UTC_ZONE, utc(2026, 1, 1), utc(2026, 1, 19))
        ]
        assert days == ["2026-01-04", "2026-01-11", "2026-01-18"]

    def test_a_range_may_end_on_7_for_sunday(self) -> None:
        assert CronSchedule("0 0 * * 5-7") == CronSchedule("0 0 * * fri,sat,sun")

    @pytest.mark.parametrize(
        ("macro", "expansion"),
        [
            ("@yearly", "0 0 1 1 *"),
            ("@annually", "0 0 1 1 *"),
            ("@monthly", "0 0 1 * *"),
            ("@weekly", "0 0 * * 0"),
            ("@daily", "0 0 * * *"),
            ("@midnight", "0 0 * * *"),
            ("@hourly", "0 * * * *"),
            ("@DAILY", "0 0 * * *"),
        ],
    )
    def test_macro_equals_its_expansion(self, macro: str, expansion: str) -> None:
        assert CronSchedule(macro) == CronSchedule(expansion)

    def test_hourly_macro_is_an_interval_job_and_daily_is_fixed_time(self) -> None:
        assert not CronSchedule("@hourly").fixed_time
        assert CronSchedule("@daily").fixed_time

    @pytest.mark.parametrize(
        ("expression", "fixed"),
        [
            ("30 2 * * *", True),
            ("0 1-5 * * *", True),
            ("0,30 2,3 * * *", True),
            ("*/15 * * * *", False),
            ("0 */2 * * *", False),
            ("* 3 * * *", False),
            ("15 * * * *", False),
        ],
    )
    def test_fixed_time_means_neither_minute_nor_hour_starts_with_star(
        self, expression: str, fixed: bool
    ) -> None:
        assert CronSchedule(expression).fixed_time is fixed

    def test_expression_keeps_the_text_given_without_outer_spaces(self) -> None:
        assert CronSchedule("  0 7 * * *\n").expression == "0 7 * * *"

    def test_repr_names_expression_and_policy(self) -> None:
        assert repr(CronSchedule("0 7 * * *", dst=SKIP)) == (
            "CronSchedule('0 7 * * *', dst=DstPolicy(nonexistent='skip', repeated='once'))"
        )

    @pytest.mark.parametrize(
        ("expression", "message"),
        [
            ("0 25 * * *", "cron expression '0 25 * * *': hour field '25' is out of range 0-23"),
            (
                "0 1,25 * * *",
                "cron expression '0 1,25 * * *': hour field '1,25': '25' is out of range 0-23",
            ),
            ("60 * * * *", "cron expression '60 * * * *': minute field '60' is out of range 0-59"),
            (
                "* * 0 * *",
                "cron expression '* * 0 * *': day-of-month field '0' is out of range 1-31",
            ),
            ("* * * 13 *", "cron expression '* * * 13 *': month field '13' is out of range 1-12"),
            (
                "* * * * 8",
                "cron expression '* * * * 8': day-of-week field '8' is out of range 0-7",
            ),
            (
                "* * * foo *",
                "cron expression '* * * foo *': month field 'foo' is not a number or a month "
                "name (jan-dec)",
            ),
            (
                "* * * * monday",
                "cron expression '* * * * monday': day-of-week field 'monday' is not a number "
                "or a day name (sun-sat)",
            ),
            (
                "x * * * *",
                "cron expression 'x * * * *': minute field 'x' is not a number",
            ),
            (
                "5/15 * * * *",
                "cron expression '5/15 * * * *': minute field '5/15' has a step without a "
                "range; write '5-59/15' or '*/15'",
            ),
            (
                "*/0 * * * *",
                "cron expression '*/0 * * * *': minute field '*/0' has a step of 0; the step "
                "must be 1 or more",
            ),
            (
                "*/x * * * *",
                "cron expression '*/x * * * *': minute field '*/x' has a step 'x' that is not "
                "a number",
            ),
            (
                "5-1 * * * *",
                "cron expression '5-1 * * * *': minute field '5-1' is a backwards range (5 > 1)",
            ),
            (
                "0 0 * * mon-sun",
                "cron expression '0 0 * * mon-sun': day-of-week field 'mon-sun' is a backwards "
                "range (1 > 0); write Sunday as 7 at the end of a range, e.g. 'mon-7'",
            ),
            (
                "-1 * * * *",
                "cron expression '-1 * * * *': minute field '-1' is an incomplete range; write "
                "it as start-end, e.g. '1-5'",
            ),
            (
                "1, * * * *",
                "cron expression '1, * * * *': minute field '1,' has an empty list item",
            ),
            (
                "0 0 L * *",
                "cron expression '0 0 L * *': day-of-month field 'L' uses 'L', which is not "
                "supported (L, W, # and ? belong to other cron dialects)",
            ),
            (
                "0 0 15W * *",
                "cron expression '0 0 15W * *': day-of-month field '15W' uses 'W', which is not "
                "supported (L, W, # and ? belong to other cron dialects)",
            ),
            (
                "0 0 * * 5L",
                "cron expression '0 0 * * 5L': day-of-week field '5L' uses 'L', which is not "
                "supported (L, W, # and ? belong to other cron dialects)",
            ),
            (
                "0 0 * * 1#2",
                "cron expression '0 0 * * 1#2': day-of-week field '1#2' uses '#', which is not "
                "supported (L, W, # and ? belong to other cron dialects)",
            ),
            (
                "0 0 ? * *",
                "cron expression '0 0 ? * *': day-of-month field '?' uses '?', which is not "
                "supported (L, W, # and ? belong to other cron dialects)",
            ),
            (
                "0 0 7 * * *",
                "cron expression '0 0 7 * * *': expected 5 fields (minute hour day-of-month "
                "month day-of-week), got 6; a seconds or year field is not supported",
            ),
            (
                "0 7 * *",
                "cron expression '0 7 * *': expected 5 fields (minute hour day-of-month month "
                "day-of-week), got 4",
            ),
            ("   ", "cron expression is empty"),
            (
                "@reboot",
                "cron expression '@reboot': @reboot is not supported (there is no boot to run "
                "at); use one of @yearly, @annually, @monthly, @weekly, @daily, @midnight, "
                "@hourly",
            ),
            (
                "@fortnightly",
                "cron expression '@fortnightly': unknown macro '@fortnightly'; use one of "
                "@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly",
            ),
            ("@daily 7", "cron expression '@daily 7': @daily stands alone, without fields"),
            (
                "\uff10 * * * *",
                "cron expression '\uff10 * * * *': minute field '\uff10' is not a number",
            ),
        ],
    )
    def test_invalid_expression_is_rejected_with_one_line_naming_the_problem(
        self, expression: str, message: str
    ) -> None:
        with pytest.raises(InvalidInput) as caught:
            CronSchedule(expression)
        assert str(caught.value) == message
        assert "\n" not in str(caught.value)

    def test_non_string_expression_is_rejected(self) -> None:
        with pytest.raises(InvalidInput, match="cron expression must be a string, not int"):
            CronSchedule(7)  # type: ignore[arg-type]

    def test_unknown_dst_policy_value_is_rejected(self) -> None:
        with pytest.raises(
            InvalidInput,
            match="DST policy nonexistent must be 'first_valid' or 'skip', got 'later'",
        ):
            DstPolicy(nonexistent="later")  # type: ignore[arg-type]

    def test_dst_must_be_a_policy(self) -> None:
        with pytest.raises(InvalidInput, match="dst must be a DstPolicy, not str"):
            CronSchedule("0 7 * * *", dst="skip")  # type: ignore[arg-type]


# ------------------------------------------------------------------------ day matching


class TestDayMatching:
    def test_restricted_day_of_month_and_day_of_week_match_either(self) -> None:
        # January 2026: Fridays are 2, 9, 16, 23, 30; the 13th is a Tuesday.
        days = [
            t.utc.day for t in ticks("0 0 13 * fri", UTC_ZONE, utc(2026, 1, 1), utc(2026, 2, 1))
        ]
        assert days == [2, 9, 13, 16, 23, 30]

    def test_star_day_of_week_leaves_only_day_of_month(self) -> None:
        days = [t.utc.day for t in ticks("0 0 13 * *", UTC_ZONE, utc(2026, 1, 1), utc(2026, 3, 1))]
        assert days == [13, 13]

    def test_day_of_month_starting_with_star_is_anded_with_day_of_week_as_in_vixie_cron(
        self,
    ) -> None:
        # '*/2' is odd days; January 2026 Mondays are 5, 12, 19, 26: odd Mondays only.
        days = [
            t.utc.day for t in ticks("0 0 */2 * mon", UTC_ZONE, utc(2026, 1, 1), utc(2026, 2, 1))
        ]
        assert days == [5, 19]

    def test_day_31_only_runs_in_months_that_have_it(self) -> None:
        months = [
            t.utc.month for t in ticks("0 0 31 * *", UTC_ZONE, utc(2026, 1, 1), utc(2027, 1, 1))
        ]
        assert months == [1, 3, 5, 7, 8, 10, 12]

    def test_29_february_runs_only_in_leap_years(self) -> None:
        years = [
            t.utc.year for t in ticks("0 0 29 2 *", UTC_ZONE, utc(2025, 1, 1), utc(2033, 1, 1))
        ]
        assert years == [2028, 2032]

    def test_month_restriction_applies_to_both_day_fields(self) -> None:
        # Either the 1st or a Sunday, but only in February 2026 (Sundays 1, 8, 15, 22).
        days = [
            t.utc.date().isoformat()
            for t in ticks("0 0 1 feb sun", UTC_ZONE, utc(2026, 1, 1), utc(2026, 4, 1))
        ]
        assert days == ["2026-02-01", "2026-02-08", "2026-02-15", "2026-02-22"]


# --------------------------------------------------------------------- ranges and search


class TestRanges:
    def test_range_excludes_start_and_includes_end(self) -> None:
        assert utc_times("0 7 * * *", utc(2026, 5, 1, 7), utc(2026, 5, 3, 7)) == [
            "2026-05-02 07:00",
            "2026-05-03 07:00",
        ]

    def test_empty_or_reversed_range_has_no_ticks(self) -> None:
        assert utc_times("* * * * *", utc(2026, 5, 1), utc(2026, 5, 1)) == []
        assert utc_times("* * * * *", utc(2026, 5, 2), utc(2026, 5, 1)) == []

    def test_daily_job_has_one_tick_per_day_of_the_year(self) -> None:
        assert len(ticks("0 7 * * *", MADRID, utc(2026, 1, 1), utc(2027, 1, 1))) == 365

    def test_a_year_of_a_daily_job_takes_milliseconds(self) -> None:
        schedule = CronSchedule("0 7 * * *")
        began = time.perf_counter()
        for _ in range(5):
            list(schedule.ticks(MADRID, utc(2026, 1, 1), utc(2027, 1, 1)))
        assert (time.perf_counter() - began) / 5 < 0.1

    def test_ticks_are_lazy(self) -> None:
        every_minute = CronSchedule("* * * * *").ticks(MADRID, utc(2026, 1, 1), utc(2126, 1, 1))
        first = list(itertools.islice(every_minute, 3))
        assert [t.utc for t in first] == [utc(2026, 1, 1, 0, m) for m in (1, 2, 3)]

    def test_ticks_in_a_zone_carry_utc_local_and_nominal(self) -> None:
        (tick,) = ticks("0 7 * * *", MADRID, utc(2026, 5, 19), utc(2026, 5, 20))
        assert tick == Tick(
            utc=utc(2026, 5, 19, 5),
            local=datetime(2026, 5, 19, 7, tzinfo=MADRID),
            nominal=datetime(2026, 5, 19, 7),
            dst_note=None,
        )

    def test_naive_start_is_rejected(self) -> None:
        with pytest.raises(InvalidInput, match="start is a naive datetime"):
            CronSchedule("0 7 * * *").ticks(MADRID, datetime(2026, 1, 1), utc(2026, 2, 1))

    def test_naive_end_is_rejected_when_called_not_when_iterated(self) -> None:
        with pytest.raises(InvalidInput, match="end is a naive datetime"):
            CronSchedule("0 7 * * *").ticks(MADRID, utc(2026, 1, 1), datetime(2026, 2, 1))

    def test_zone_must_be_a_time_zone(self) -> None:
        with pytest.raises(InvalidInput, match="zone must be a ZoneInfo time zone, not str"):
            CronSchedule("0 7 * * *").next_tick("Europe/Madrid", utc(2026, 1, 1))  # type: ignore[arg-type]

    def test_next_tick_is_strictly_after(self) -> None:
        tick = CronSchedule("0 7 * * *").next_tick(MADRID, utc(2026, 5, 19, 5))
        assert tick is not None
        assert tick.utc == utc(2026, 5, 20, 5)

    def test_previous_tick_includes_the_instant_itself(self) -> None:
        tick = CronSchedule("0 7 * * *").previous_tick(MADRID, utc(2026, 5, 19, 5))
        assert tick is not None
        assert tick.utc == utc(2026, 5, 19, 5)

    def test_next_tick_of_every_minute_skips_the_current_partial_minute(self) -> None:
        tick = CronSchedule("* * * * *").next_tick(MADRID, utc(2026, 5, 1, 12, 0, 30))
        assert tick is not None
        assert tick.utc == utc(2026, 5, 1, 12, 1)

    def test_next_tick_finds_a_tick_forty_years_away(self) -> None:
        # 29 February on a Sunday ('*/7' is 0 and 7): 2088, then not until 2128.
        tick = CronSchedule("0 0 29 2 */7").next_tick(UTC_ZONE, utc(2088, 3, 1))
        assert tick is not None
        assert tick.nominal == datetime(2128, 2, 29)

    def test_previous_tick_finds_a_tick_years_back(self) -> None:
        tick = CronSchedule("0 0 29 2 *").previous_tick(UTC_ZONE, utc(2031, 6, 1))
        assert tick is not None
        assert tick.utc == utc(2028, 2, 29)

    @pytest.mark.parametrize("expression", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 31 2 *"])
    def test_impossible_expression_ends_every_search_quickly(self, expression: str) -> None:
        schedule = CronSchedule(expression)
        began = time.perf_counter()
        assert schedule.next_tick(MADRID, utc(2026, 1, 1)) is None
        assert schedule.previous_tick(MADRID, utc(2026, 1, 1)) is None
        assert list(schedule.ticks(MADRID, utc(2000, 1, 1), utc(2400, 1, 1))) == []
        assert time.perf_counter() - began < 1

    def test_search_near_the_end_of_the_calendar_returns_none_instead_of_overflowing(
        self,
    ) -> None:
        assert CronSchedule("0 0 1 1 *").next_tick(MADRID, datetime.max.replace(tzinfo=UTC)) is None

    def test_search_near_the_start_of_the_calendar_returns_none_instead_of_overflowing(
        self,
    ) -> None:
        at = datetime.min.replace(tzinfo=UTC)
        assert CronSchedule("0 0 1 1 *").previous_tick(MADRID, at) is None


class TestPeriodHint:
    @pytest.mark.parametrize(
        ("expression", "period"),
        [
            ("0 7 * * *", timedelta(days=1)),
            ("*/15 * * * *", timedelta(minutes=15)),
            ("@hourly", timedelta(hours=1)),
            ("0 9,17 * * *", timedelta(hours=16)),
            ("*/15 9-17 * * mon-fri", timedelta(days=2, hours=15, minutes=15)),
            ("0 0 * * sun", timedelta(days=7)),
            ("0 0 31 * *", timedelta(days=61)),
            ("0 0 29 2 *", timedelta(days=4 * 365 + 1)),
        ],
    )
    def test_period_is_the_largest_gap_between_ticks_in_utc(
        self, expression: str, period: timedelta
    ) -> None:
        assert CronSchedule(expression).period_hint() == period

    def test_expression_that_never_runs_has_a_finite_never_period(self) -> None:
        assert CronSchedule("0 0 30 2 *").period_hint() == NEVER


# ----------------------------------------------------------------------- DST transitions


class TestDstTransitions:
    """Pinned to Debian cron via cronsim's TestDstTransitions; 2026 dates from zoneinfo."""

    # ---- Europe/Madrid ----------------------------------------------------------------
    # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00); 02:00-02:59 does
    # not exist. 2026-10-25: 03:00 CEST (+02:00) → 02:00 CET (+01:00); 02:00-02:59 twice.

    def test_madrid_0230_missing_in_spring_runs_at_0300_by_default(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        (tick,) = ticks("30 2 * * *", MADRID, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
        assert tick.local.isoformat() == "2026-03-29T03:00:00+02:00"
        assert tick.utc == utc(2026, 3, 29, 1, 0)
        assert tick.nominal == datetime(2026, 3, 29, 2, 30)
        assert tick.dst_note == (
            "02:30 does not exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); runs at 03:00"
        )

    def test_madrid_0230_missing_in_spring_does_not_run_under_skip(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        assert ticks("30 2 * * *", MADRID, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12), SKIP) == []

    def test_madrid_0230_skipped_in_spring_is_listed_with_its_reason(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        schedule = CronSchedule("30 2 * * *", dst=SKIP)
        assert list(schedule.skipped(MADRID, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))) == [
            (
                datetime(2026, 3, 29, 2, 30),
                "02:30 does not exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); "
                "not run (DST policy nonexistent='skip')",
            )
        ]

    def test_madrid_0230_in_spring_ignores_the_repeated_policy(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        assert local_times(
            "30 2 * * *", MADRID, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12), TWICE
        ) == ["2026-03-29T03:00:00+02:00"]

    def test_madrid_0230_repeated_in_autumn_runs_once_in_the_first_pass_by_default(
        self,
    ) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        (tick,) = ticks("30 2 * * *", MADRID, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12))
        assert tick.local.isoformat() == "2026-10-25T02:30:00+02:00"
        assert tick.utc == utc(2026, 10, 25, 0, 30)
        assert tick.dst_note == (
            "02:30 occurs twice on 2026-10-25 (CEST→CET); runs once, in the first pass"
        )

    def test_madrid_0230_repeated_in_autumn_runs_in_both_passes_under_twice(self) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        first, second = ticks(
            "30 2 * * *", MADRID, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12), TWICE
        )
        assert (first.utc, second.utc) == (utc(2026, 10, 25, 0, 30), utc(2026, 10, 25, 1, 30))
        assert first.local.isoformat() == "2026-10-25T02:30:00+02:00"
        assert second.local.isoformat() == "2026-10-25T02:30:00+01:00"
        assert first.dst_note == "02:30 occurs twice on 2026-10-25 (CEST→CET); first pass"
        assert second.dst_note == "02:30 occurs twice on 2026-10-25 (CEST→CET); second pass"

    def test_madrid_0230_in_autumn_ignores_the_nonexistent_policy(self) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        assert local_times(
            "30 2 * * *", MADRID, utc(2026, 10, 24, 12), utc(2026, 10, 25, 12), SKIP
        ) == ["2026-10-25T02:30:00+02:00"]

    @POLICIES
    def test_madrid_0700_keeps_its_wall_time_across_spring(self, policy: DstPolicy) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        found = ticks("0 7 * * *", MADRID, utc(2026, 3, 28), utc(2026, 3, 31), policy)
        assert [t.utc.strftime("%d %H:%M") for t in found] == ["28 06:00", "29 05:00", "30 05:00"]
        assert {t.local.strftime("%H:%M") for t in found} == {"07:00"}
        assert all(t.dst_note is None for t in found)

    @POLICIES
    def test_madrid_0700_keeps_its_wall_time_across_autumn(self, policy: DstPolicy) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        found = ticks("0 7 * * *", MADRID, utc(2026, 10, 24), utc(2026, 10, 27), policy)
        assert [t.utc.strftime("%d %H:%M") for t in found] == ["24 05:00", "25 06:00", "26 06:00"]
        assert all(t.dst_note is None for t in found)

    def test_madrid_hourly_skips_the_missing_hour_in_spring(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        assert local_times(
            "0 * * * *", MADRID, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 2, 30)
        ) == [
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
        ]

    def test_madrid_hourly_lists_the_missing_hour_as_skipped(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        skipped = CronSchedule("0 * * * *").skipped(MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3))
        assert list(skipped) == [
            (
                datetime(2026, 3, 29, 2, 0),
                "02:00 does not exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); not "
                "run: the minute or hour field starts with '*', so the job follows the real "
                "clock",
            )
        ]

    def test_madrid_hourly_runs_the_repeated_hour_twice_in_autumn(self) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        found = ticks("0 * * * *", MADRID, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 2, 30))
        assert [t.local.isoformat() for t in found] == [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T03:00:00+01:00",
        ]
        assert [t.dst_note for t in found][1:3] == [
            "02:00 occurs twice on 2026-10-25 (CEST→CET); first pass",
            "02:00 occurs twice on 2026-10-25 (CEST→CET); second pass",
        ]

    def test_madrid_every_15_minutes_stays_15_real_minutes_apart_in_spring(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        assert local_times(
            "*/15 * * * *", MADRID, utc(2026, 3, 29, 0, 20), utc(2026, 3, 29, 1, 15)
        ) == [
            "2026-03-29T01:30:00+01:00",
            "2026-03-29T01:45:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:15:00+02:00",
        ]

    def test_madrid_every_15_minutes_stays_15_real_minutes_apart_in_autumn(self) -> None:
        # 2026-10-25 Europe/Madrid: 03:00 CEST (+02:00) → 02:00 CET (+01:00)
        found = ticks("*/15 * * * *", MADRID, utc(2026, 10, 24, 23, 50), utc(2026, 10, 25, 1, 50))
        assert [t.utc for t in found] == [
            utc(2026, 10, 24, 23, 45) + timedelta(minutes=15 * n) for n in range(1, 9)
        ]
        assert [t.local.strftime("%H:%M%z") for t in found] == [
            "02:00+0200", "02:15+0200", "02:30+0200", "02:45+0200",
            "02:00+0100", "02:15+0100", "02:30+0100", "02:45+0100",
        ]  # fmt: skip

    # ---- America/New_York -------------------------------------------------------------
    # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00); 02:00-02:59 does
    # not exist. 2026-11-01: 02:00 EDT (-04:00) → 01:00 EST (-05:00); 01:00-01:59 twice.

    def test_new_york_0230_missing_in_spring_runs_at_0300_by_default(self) -> None:
        # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00)
        (tick,) = ticks("30 2 * * *", NEW_YORK, utc(2026, 3, 8), utc(2026, 3, 8, 12))
        assert tick.local.isoformat() == "2026-03-08T03:00:00-04:00"
        assert tick.utc == utc(2026, 3, 8, 7, 0)
        assert tick.dst_note == (
            "02:30 does not exist on 2026-03-08 (clocks jump 02:00→03:00 EST→EDT); runs at 03:00"
        )

    def test_new_york_0230_missing_in_spring_does_not_run_under_skip(self) -> None:
        # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00)
        assert ticks("30 2 * * *", NEW_YORK, utc(2026, 3, 8), utc(2026, 3, 8, 12), SKIP) == []

    @POLICIES
    def test_new_york_0230_is_untouched_in_autumn_because_0100_repeats(
        self, policy: DstPolicy
    ) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        found = ticks("30 2 * * *", NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 2), policy)
        assert [t.utc for t in found] == [utc(2026, 10, 31, 6, 30), utc(2026, 11, 1, 7, 30)]
        assert all(t.dst_note is None for t in found)

    def test_new_york_0130_repeated_in_autumn_runs_once_by_default(self) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        (tick,) = ticks("30 1 * * *", NEW_YORK, utc(2026, 11, 1), utc(2026, 11, 1, 12))
        assert tick.local.isoformat() == "2026-11-01T01:30:00-04:00"
        assert tick.dst_note == (
            "01:30 occurs twice on 2026-11-01 (EDT→EST); runs once, in the first pass"
        )

    def test_new_york_0130_repeated_in_autumn_runs_in_both_passes_under_twice(self) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        found = ticks("30 1 * * *", NEW_YORK, utc(2026, 11, 1), utc(2026, 11, 1, 12), TWICE)
        assert [t.utc for t in found] == [utc(2026, 11, 1, 5, 30), utc(2026, 11, 1, 6, 30)]

    @POLICIES
    def test_new_york_0700_keeps_its_wall_time_across_spring(self, policy: DstPolicy) -> None:
        # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00)
        found = ticks("0 7 * * *", NEW_YORK, utc(2026, 3, 7), utc(2026, 3, 9), policy)
        assert [t.utc for t in found] == [utc(2026, 3, 7, 12), utc(2026, 3, 8, 11)]
        assert all(t.dst_note is None for t in found)

    @POLICIES
    def test_new_york_0700_keeps_its_wall_time_across_autumn(self, policy: DstPolicy) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        found = ticks("0 7 * * *", NEW_YORK, utc(2026, 10, 31), utc(2026, 11, 2), policy)
        assert [t.utc for t in found] == [utc(2026, 10, 31, 11), utc(2026, 11, 1, 12)]
        assert all(t.dst_note is None for t in found)

    def test_new_york_hourly_skips_the_missing_hour_in_spring(self) -> None:
        # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00)
        assert local_times(
            "0 * * * *", NEW_YORK, utc(2026, 3, 8, 5, 30), utc(2026, 3, 8, 8, 30)
        ) == [
            "2026-03-08T01:00:00-05:00",
            "2026-03-08T03:00:00-04:00",
            "2026-03-08T04:00:00-04:00",
        ]

    def test_new_york_hourly_runs_the_repeated_hour_twice_in_autumn(self) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        assert local_times(
            "0 * * * *", NEW_YORK, utc(2026, 11, 1, 3, 30), utc(2026, 11, 1, 7, 30)
        ) == [
            "2026-11-01T00:00:00-04:00",
            "2026-11-01T01:00:00-04:00",
            "2026-11-01T01:00:00-05:00",
            "2026-11-01T02:00:00-05:00",
        ]

    def test_new_york_every_15_minutes_stays_15_real_minutes_apart_across_both(self) -> None:
        # 2026-03-08 America/New_York: 02:00 EST (-05:00) → 03:00 EDT (-04:00)
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        for start in (utc(2026, 3, 8, 5), utc(2026, 11, 1, 4)):
            found = ticks("*/15 * * * *", NEW_YORK, start, start + timedelta(hours=4))
            assert [t.utc for t in found] == [
                start + timedelta(minutes=15 * n) for n in range(1, 17)
            ]

    # ---- Australia/Lord_Howe (southern hemisphere: DST ends in April, starts in October)
    # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30); 01:30-01:59
    # occurs twice. 2026-10-04: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00); 02:00-02:29 does
    # not exist. The shift is 30 minutes, so 02:30 itself exists once on both days.

    @POLICIES
    def test_lord_howe_0230_is_untouched_by_the_half_hour_shifts(self, policy: DstPolicy) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        april = ticks("30 2 * * *", LORD_HOWE, utc(2026, 4, 4), utc(2026, 4, 5), policy)
        october = ticks("30 2 * * *", LORD_HOWE, utc(2026, 10, 3), utc(2026, 10, 4), policy)
        assert [t.local.isoformat() for t in april + october] == [
            "2026-04-05T02:30:00+10:30",
            "2026-10-04T02:30:00+11:00",
        ]
        assert all(t.dst_note is None for t in april + october)

    def test_lord_howe_0215_missing_in_october_runs_at_0230_by_default(self) -> None:
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        (tick,) = ticks("15 2 * * *", LORD_HOWE, utc(2026, 10, 3), utc(2026, 10, 4))
        assert tick.local.isoformat() == "2026-10-04T02:30:00+11:00"
        assert tick.utc == utc(2026, 10, 3, 15, 30)
        assert tick.dst_note == (
            "02:15 does not exist on 2026-10-04 (clocks jump 02:00→02:30 +1030→+11); runs at 02:30"
        )

    def test_lord_howe_0215_missing_in_october_does_not_run_under_skip(self) -> None:
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        assert ticks("15 2 * * *", LORD_HOWE, utc(2026, 10, 3), utc(2026, 10, 4), SKIP) == []

    def test_lord_howe_0145_repeated_in_april_runs_once_by_default(self) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        (tick,) = ticks("45 1 * * *", LORD_HOWE, utc(2026, 4, 4), utc(2026, 4, 5))
        assert tick.local.isoformat() == "2026-04-05T01:45:00+11:00"
        assert tick.dst_note == (
            "01:45 occurs twice on 2026-04-05 (+11→+1030); runs once, in the first pass"
        )

    def test_lord_howe_0145_repeated_in_april_runs_half_an_hour_apart_under_twice(self) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        found = ticks("45 1 * * *", LORD_HOWE, utc(2026, 4, 4), utc(2026, 4, 5), TWICE)
        assert [t.utc for t in found] == [utc(2026, 4, 4, 14, 45), utc(2026, 4, 4, 15, 15)]

    @POLICIES
    def test_lord_howe_0700_keeps_its_wall_time_across_both(self, policy: DstPolicy) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        april = ticks("0 7 * * *", LORD_HOWE, utc(2026, 4, 3), utc(2026, 4, 5), policy)
        october = ticks("0 7 * * *", LORD_HOWE, utc(2026, 10, 2), utc(2026, 10, 4), policy)
        assert [t.utc for t in april + october] == [
            utc(2026, 4, 3, 20, 0),
            utc(2026, 4, 4, 20, 30),
            utc(2026, 10, 2, 20, 30),
            utc(2026, 10, 3, 20, 0),
        ]
        assert all(t.dst_note is None for t in april + october)

    def test_lord_howe_hourly_loses_its_0200_run_in_october(self) -> None:
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        assert local_times("0 * * * *", LORD_HOWE, utc(2026, 10, 3, 14), utc(2026, 10, 3, 17)) == [
            "2026-10-04T01:00:00+10:30",
            "2026-10-04T03:00:00+11:00",
            "2026-10-04T04:00:00+11:00",
        ]

    def test_lord_howe_hourly_does_not_repeat_in_april_because_0100_is_before_the_fold(
        self,
    ) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        assert local_times(
            "0 * * * *", LORD_HOWE, utc(2026, 4, 4, 13, 30), utc(2026, 4, 4, 16, 0)
        ) == [
            "2026-04-05T01:00:00+11:00",
            "2026-04-05T02:00:00+10:30",
        ]

    def test_lord_howe_every_15_minutes_stays_15_real_minutes_apart_across_both(self) -> None:
        # 2026-04-05 Australia/Lord_Howe: 02:00 +11 (+11:00) → 01:30 +1030 (+10:30)
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        for start in (utc(2026, 4, 4, 14), utc(2026, 10, 3, 15)):
            found = ticks("*/15 * * * *", LORD_HOWE, start, start + timedelta(hours=2))
            assert [t.utc for t in found] == [
                start + timedelta(minutes=15 * n) for n in range(1, 9)
            ]

    # ---- moved ticks meeting genuine ones ---------------------------------------------

    def test_only_a_moved_tick_reports_moved(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        found = ticks("30 2,3 * * *", MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3))
        assert [t.moved for t in found] == [True, False]

    def test_moved_tick_and_a_genuine_tick_half_an_hour_later_both_run(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        assert local_times("30 2,3 * * *", MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3)) == [
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T03:30:00+02:00",
        ]

    def test_moved_tick_landing_on_a_genuine_tick_merges_into_it(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        (tick,) = ticks("0 2,3 * * *", MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3))
        assert tick.utc == utc(2026, 3, 29, 1, 0)
        assert tick.nominal == datetime(2026, 3, 29, 3, 0)
        assert tick.dst_note == (
            "02:00 does not exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); merged "
            "into the 03:00 run"
        )

    def test_two_moved_ticks_run_once_together(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        (tick,) = ticks("0,30 2 * * *", MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3))
        assert tick.nominal == datetime(2026, 3, 29, 2, 0)
        assert tick.dst_note == (
            "02:00 and 02:30 do not exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); "
            "they run once, at 03:00"
        )

    def test_skip_policy_leaves_the_genuine_tick_at_the_jump_as_it_is(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        (tick,) = ticks("0 2,3 * * *", MADRID, utc(2026, 3, 29), utc(2026, 3, 29, 3), SKIP)
        assert (tick.nominal, tick.dst_note) == (datetime(2026, 3, 29, 3, 0), None)

    def test_wall_times_of_a_missing_day_merge_into_the_next_midnight_run(self) -> None:
        # 2011-12-30 Pacific/Apia: 2011-12-30 00:00 -10 (-10:00) → 2011-12-31 00:00 +14
        # (+14:00); the whole of 2011-12-30 does not exist.
        found = ticks("0 0,7 * * *", APIA, utc(2011, 12, 30), utc(2011, 12, 31))
        assert [t.local.isoformat() for t in found] == [
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T07:00:00+14:00",
        ]
        assert found[0].dst_note == (
            "00:00 and 07:00 do not exist on 2011-12-30 (clocks jump 2011-12-30 00:00→"
            "2011-12-31 00:00 -10→+14); merged into the 00:00 run on 2011-12-31"
        )

    def test_fixed_hour_range_merges_the_missing_hour_like_debian(self) -> None:
        # cronsim test_008 analogue; 2026-03-29 Europe/Madrid: 02:00 CET → 03:00 CEST
        assert local_times(
            "0 1-5 * * *", MADRID, utc(2026, 3, 28, 23, 30), utc(2026, 3, 29, 3)
        ) == [
            "2026-03-29T01:00:00+01:00",
            "2026-03-29T03:00:00+02:00",
            "2026-03-29T04:00:00+02:00",
            "2026-03-29T05:00:00+02:00",
        ]

    def test_fixed_hour_range_runs_the_repeated_hour_once_like_debian(self) -> None:
        # cronsim test_008 analogue; 2026-10-25 Europe/Madrid: 03:00 CEST → 02:00 CET
        assert local_times(
            "0 1-5 * * *", MADRID, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 3)
        ) == [
            "2026-10-25T01:00:00+02:00",
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T03:00:00+01:00",
            "2026-10-25T04:00:00+01:00",
        ]

    def test_step_in_the_hour_field_makes_an_interval_job_like_debian(self) -> None:
        # cronsim test_004 analogue; 2026-10-25 Europe/Madrid: 03:00 CEST → 02:00 CET
        assert local_times(
            "0 */2 * * *", MADRID, utc(2026, 10, 24, 22, 30), utc(2026, 10, 25, 5)
        ) == [
            "2026-10-25T02:00:00+02:00",
            "2026-10-25T02:00:00+01:00",
            "2026-10-25T04:00:00+01:00",
            "2026-10-25T06:00:00+01:00",
        ]

    # ---- transitions at midnight ------------------------------------------------------

    def test_santiago_midnight_job_runs_at_0100_when_midnight_is_missing(self) -> None:
        # 2026-09-06 America/Santiago: 00:00 -04 (-04:00) → 01:00 -03 (-03:00); 00:00-00:59
        # does not exist.
        (tick,) = ticks("@daily", SANTIAGO, utc(2026, 9, 5, 12), utc(2026, 9, 6, 12))
        assert tick.local.isoformat() == "2026-09-06T01:00:00-03:00"
        assert tick.dst_note == (
            "00:00 does not exist on 2026-09-06 (clocks jump 00:00→01:00 -04→-03); runs at 01:00"
        )

    def test_santiago_2330_repeats_on_the_eve_of_the_autumn_change(self) -> None:
        # 2026-04-05 America/Santiago: 00:00 -03 (-03:00) → 2026-04-04 23:00 -04 (-04:00);
        # 23:00-23:59 on 2026-04-04 occurs twice.
        found = ticks("30 23 * * *", SANTIAGO, utc(2026, 4, 4, 12), utc(2026, 4, 5, 12), TWICE)
        assert [t.local.isoformat() for t in found] == [
            "2026-04-04T23:30:00-03:00",
            "2026-04-04T23:30:00-04:00",
        ]

    def test_beirut_midnight_job_runs_at_0100_when_midnight_is_missing(self) -> None:
        # 2026-03-29 Asia/Beirut: 00:00 EET (+02:00) → 01:00 EEST (+03:00); 00:00-00:59
        # does not exist.
        (tick,) = ticks("@midnight", BEIRUT, utc(2026, 3, 28, 12), utc(2026, 3, 29, 12))
        assert tick.local.isoformat() == "2026-03-29T01:00:00+03:00"
        assert tick.utc == utc(2026, 3, 28, 22, 0)

    def test_beirut_2330_runs_once_on_the_eve_of_the_autumn_change(self) -> None:
        # 2026-10-25 Asia/Beirut: 00:00 EEST (+03:00) → 2026-10-24 23:00 EET (+02:00);
        # 23:00-23:59 on 2026-10-24 occurs twice.
        assert local_times("30 23 * * *", BEIRUT, utc(2026, 10, 24), utc(2026, 10, 25, 12)) == [
            "2026-10-24T23:30:00+03:00"
        ]

    def test_a_whole_missing_day_moves_to_the_next_midnight(self) -> None:
        # 2011-12-30 Pacific/Apia: 2011-12-30 00:00 -10 (-10:00) → 2011-12-31 00:00 +14
        # (+14:00); the whole of 2011-12-30 does not exist.
        found = ticks(
            "0 7 * * *", ZoneInfo("Pacific/Apia"), utc(2011, 12, 29), utc(2011, 12, 31, 12)
        )
        assert [t.local.isoformat() for t in found] == [
            "2011-12-29T07:00:00-10:00",
            "2011-12-31T00:00:00+14:00",
            "2011-12-31T07:00:00+14:00",
        ]
        assert found[1].dst_note == (
            "07:00 does not exist on 2011-12-30 (clocks jump 2011-12-30 00:00→2011-12-31 00:00 "
            "-10→+14); runs at 00:00 on 2011-12-31"
        )


# ------------------------------------------------------------- parity with the reference

RIGA = ZoneInfo("Europe/Riga")

# Cases from cronsim's TestDstTransitions (Europe/Riga, 2021), which pins Debian cron's
# behaviour: 2021-03-28 03:00 EET (+02:00) → 04:00 EEST (+03:00), 03:00-03:59 does not
# exist; 2021-10-31 04:00 EEST (+03:00) → 03:00 EET (+02:00), 03:00-03:59 occurs twice.
CRONSIM_CASES = [
    ("0 * * * *", (2021, 3, 28, 1, 30), ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (
        "0 * * * *",
        (2021, 10, 31, 1, 30),
        [
            "2021-10-31T02:00:00+03:00",
            "2021-10-31T03:00:00+03:00",
            "2021-10-31T03:00:00+02:00",
            "2021-10-31T04:00:00+02:00",
        ],
    ),
    (
        "*/30 * * * *",
        (2021, 3, 28, 2, 10),
        ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"],
    ),
    (
        "0 */2 * * *",
        (2021, 10, 31, 1, 30),
        ["2021-10-31T02:00:00+03:00", "2021-10-31T04:00:00+02:00", "2021-10-31T06:00:00+02:00"],
    ),
    (
        "0 */3 * * *",
        (2021, 10, 31, 1, 30),
        ["2021-10-31T03:00:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T06:00:00+02:00"],
    ),
    (
        "0 1,2,3,4,5 * * *",
        (2021, 3, 28, 1, 30),
        ["2021-03-28T02:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T05:00:00+03:00"],
    ),
    (
        "0 1,2,3,4,5 * * *",
        (2021, 10, 31, 1, 30),
        ["2021-10-31T02:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T04:00:00+02:00"],
    ),
    (
        "30 1,2,3,4,5 * * *",
        (2021, 3, 28, 1, 30),
        ["2021-03-28T02:30:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-28T04:30:00+03:00"],
    ),
    (
        "30 1,2,3,4,5 * * *",
        (2021, 10, 31, 1, 30),
        ["2021-10-31T02:30:00+03:00", "2021-10-31T03:30:00+03:00", "2021-10-31T04:30:00+02:00"],
    ),
    (
        "0 3 * * *",
        (2021, 3, 27, 1, 30),
        ["2021-03-27T03:00:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T03:00:00+03:00"],
    ),
    (
        "0 3 * * *",
        (2021, 10, 31, 1, 30),
        ["2021-10-31T03:00:00+03:00", "2021-11-01T03:00:00+02:00"],
    ),
    (
        "15 3 * * *",
        (2021, 3, 27, 0, 0),
        ["2021-03-27T03:15:00+02:00", "2021-03-28T04:00:00+03:00", "2021-03-29T03:15:00+03:00"],
    ),
    (
        "0 1,3,5,7,9,11,13,15,17,19,21,23 * * *",
        (2021, 10, 31, 0, 30),
        ["2021-10-31T01:00:00+03:00", "2021-10-31T03:00:00+03:00", "2021-10-31T05:00:00+02:00"],
    ),
    ("* * * * *", (2021, 3, 28, 2, 58), ["2021-03-28T02:59:00+02:00", "2021-03-28T04:00:00+03:00"]),
    (
        "* * * * *",
        (2021, 10, 31, 3, 58),
        ["2021-10-31T03:59:00+03:00", "2021-10-31T03:00:00+02:00", "2021-10-31T03:01:00+02:00"],
    ),
]


@pytest.mark.parametrize(("expression", "after", "expected"), CRONSIM_CASES)
def test_default_policy_matches_cronsim_on_riga_2021(
    expression: str, after: tuple[int, int, int, int, int], expected: list[str]
) -> None:
    schedule = CronSchedule(expression)
    cursor = datetime(*after, tzinfo=RIGA)
    found = []
    for _ in expected:
        tick = schedule.next_tick(RIGA, cursor)
        assert tick is not None
        found.append(tick.local.isoformat())
        cursor = tick.utc
    assert found == expected


# ----------------------------------------------------------- real-clock reference (oracle)


def _minute_walk(
    zone: ZoneInfo, start: datetime, end: datetime, minutes: set[int]
) -> list[datetime]:
    """Debian's interval-job rule by brute force: each real minute whose local minute matches."""
    found = []
    instant = start + timedelta(minutes=1)
    while instant <= end:
        if instant.astimezone(zone).minute in minutes:
            found.append(instant)
        instant += timedelta(minutes=1)
    return found


@pytest.mark.parametrize("zone", [MADRID, NEW_YORK, LORD_HOWE, SANTIAGO, BEIRUT], ids=str)
@pytest.mark.parametrize(
    ("expression", "minutes"),
    [("*/15 * * * *", {0, 15, 30, 45}), ("20,50 * * * *", {20, 50}), ("* * * * *", set(range(60)))],
)
def test_interval_jobs_match_a_minute_by_minute_walk_of_the_real_clock(
    zone: ZoneInfo, expression: str, minutes: set[int]
) -> None:
    start, end = utc(2026, 1, 1), utc(2027, 1, 1)
    schedule = CronSchedule(expression)
    for day in [t.utc for t in CronSchedule("0 0 * * *").ticks(UTC_ZONE, start, end)]:
        before = (day - timedelta(days=1)).astimezone(zone)
        after = (day + timedelta(days=1)).astimezone(zone)
        if before.utcoffset() == after.utcoffset():
            continue  # only the days around each transition
        window_start, window_end = day - timedelta(hours=14), day + timedelta(hours=14)
        assert [t.utc for t in schedule.ticks(zone, window_start, window_end)] == _minute_walk(
            zone, window_start, window_end, minutes
        )


@settings(max_examples=60, deadline=None)
@given(
    expression=st.sampled_from(
        ["30 2 * * *", "0 2,3 * * *", "*/20 1-3 * * *", "0 * * * *", "15 0 * * sun", "0 0 29 2 *"]
    ),
    policy=st.sampled_from([DEFAULT, SKIP, TWICE]),
    zone=st.sampled_from([MADRID, NEW_YORK, LORD_HOWE, SANTIAGO, BEIRUT, UTC_ZONE]),
    start=st.datetimes(min_value=datetime(2025, 1, 1), max_value=datetime(2027, 12, 31)),
    hours=st.integers(min_value=1, max_value=24 * 40),
)
def test_ticks_are_ascending_unique_consistent_and_agree_with_next_and_previous(
    expression: str, policy: DstPolicy, zone: ZoneInfo, start: datetime, hours: int
) -> None:
    schedule = CronSchedule(expression, dst=policy)
    begin = start.replace(tzinfo=UTC)
    end = begin + timedelta(hours=hours)
    found = list(schedule.ticks(zone, begin, end))
    instants = [t.utc for t in found]
    assert instants == sorted(set(instants))
    assert all(
        begin < t.utc <= end and t.local.astimezone(UTC) == t.utc and t.local.tzinfo is zone
        for t in found
    )
    following = schedule.next_tick(zone, begin)
    if found:
        assert following == found[0]
        assert schedule.previous_tick(zone, end) == found[-1]
    else:
        assert following is None or following.utc > end


# --------------------------------------------------------------------------------- CLI


class TestFormatUpcoming:
    def test_lines_show_local_time_offset_abbreviation_and_utc(self) -> None:
        lines = format_upcoming(CronSchedule("0 7 * * *"), MADRID, utc(2026, 5, 18, 12), 2)
        assert lines == [
            "2026-05-19 07:00 CEST (+02:00) | 2026-05-19 05:00 UTC",
            "2026-05-20 07:00 CEST (+02:00) | 2026-05-20 05:00 UTC",
        ]

    def test_a_moved_tick_is_marked_with_its_note(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        lines = format_upcoming(CronSchedule("30 2 * * *"), MADRID, utc(2026, 3, 28, 12), 2)
        assert lines == [
            "2026-03-29 03:00 CEST (+02:00) | 2026-03-29 01:00 UTC | DST: 02:30 does not "
            "exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); runs at 03:00",
            "2026-03-30 02:30 CEST (+02:00) | 2026-03-30 00:30 UTC",
        ]

    def test_repeated_ticks_are_marked_with_their_pass(self) -> None:
        # 2026-11-01 America/New_York: 02:00 EDT (-04:00) → 01:00 EST (-05:00)
        lines = format_upcoming(
            CronSchedule("30 1 * * *", dst=TWICE), NEW_YORK, utc(2026, 11, 1), 2
        )
        assert lines == [
            "2026-11-01 01:30 EDT (-04:00) | 2026-11-01 05:30 UTC | DST: 01:30 occurs "
            "twice on 2026-11-01 (EDT→EST); first pass",
            "2026-11-01 01:30 EST (-05:00) | 2026-11-01 06:30 UTC | DST: 01:30 occurs "
            "twice on 2026-11-01 (EDT→EST); second pass",
        ]

    def test_a_merged_tick_is_marked_with_its_note(self) -> None:
        # 2026-03-29 Europe/Madrid: 02:00 CET (+01:00) → 03:00 CEST (+02:00)
        lines = format_upcoming(CronSchedule("0 2,3 * * *"), MADRID, utc(2026, 3, 28, 12), 1)
        assert lines == [
            "2026-03-29 03:00 CEST (+02:00) | 2026-03-29 01:00 UTC | DST: 02:00 does not "
            "exist on 2026-03-29 (clocks jump 02:00→03:00 CET→CEST); merged into the 03:00 run"
        ]

    def test_skipped_wall_times_get_their_own_line_in_time_order(self) -> None:
        # 2026-10-04 Australia/Lord_Howe: 02:00 +1030 (+10:30) → 02:30 +11 (+11:00)
        lines = format_upcoming(
            CronSchedule("15 2 * * *", dst=SKIP), LORD_HOWE, utc(2026, 10, 2), 2
        )
        assert lines == [
            "2026-10-03 02:15 +1030 (+10:30) | 2026-10-02 15:45 UTC",
            "2026-10-04 02:15 (not run) | DST skipped: 02:15 does not exist on 2026-10-04 "
            "(clocks jump 02:00→02:30 +1030→+11); not run (DST policy nonexistent='skip')",
            "2026-10-05 02:15 +11 (+11:00) | 2026-10-04 15:15 UTC",
        ]

    def test_expression_that_never_runs_gives_no_lines(self) -> None:
        assert format_upcoming(CronSchedule("0 0 30 2 *"), MADRID, utc(2026, 1, 1), 3) == []

    @pytest.mark.parametrize("count", [0, -1, True, 2.5])
    def test_count_must_be_a_positive_whole_number(self, count: object) -> None:
        with pytest.raises(InvalidInput, match="count must be a positive whole number"):
            format_upcoming(CronSchedule("0 7 * * *"), MADRID, utc(2026, 1, 1), count)  # type: ignore[arg-type]

    def test_naive_after_is_rejected(self) -> None:
        with pytest.raises(InvalidInput, match="after is a naive datetime"):
            format_upcoming(CronSchedule("0 7 * * *"), MADRID, datetime(2026, 1, 1), 1)
