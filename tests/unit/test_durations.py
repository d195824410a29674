"""Durations as people write them in job definitions."""

from __future__ import annotations

from datetime import timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronclaim import InvalidInput
from cronclaim.durations import parse_duration


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("90s", timedelta(seconds=90)),
        ("2m", timedelta(minutes=2)),
        ("3h", timedelta(hours=3)),
        ("1d", timedelta(days=1)),
        ("2w", timedelta(weeks=2)),
        ("250ms", timedelta(milliseconds=250)),
        ("1h30m", timedelta(hours=1, minutes=30)),
        ("1d2h3m4s", timedelta(days=1, hours=2, minutes=3, seconds=4)),
        ("1.5h", timedelta(hours=1, minutes=30)),
        ("0.5s", timedelta(milliseconds=500)),
        (" 1h 30m ", timedelta(hours=1, minutes=30)),
        ("2M", timedelta(minutes=2)),
        ("30S", timedelta(seconds=30)),
    ],
)
def test_written_durations_are_parsed(text: str, expected: timedelta) -> None:
    assert parse_duration(text) == expected


def test_ms_is_milliseconds_not_minutes_then_seconds() -> None:
    assert parse_duration("5ms") == timedelta(milliseconds=5)
    assert parse_duration("5m5s") == timedelta(minutes=5, seconds=5)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (90, timedelta(seconds=90)),
        (1.5, timedelta(seconds=1.5)),
        (timedelta(minutes=2), timedelta(minutes=2)),
    ],
)
def test_numbers_are_seconds_and_timedeltas_pass_through(
    value: int | float | timedelta, expected: timedelta
) -> None:
    assert parse_duration(value) == expected


@pytest.mark.parametrize(
    "text", ["", "   ", "5", "abc", "5x", "1h 30", "h", "1.h", "-5s", "1h-30m", "5 seconds", "1,5h"]
)
def test_unreadable_text_is_refused_with_examples(text: str) -> None:
    with pytest.raises(InvalidInput, match=r"is not a duration; write e\.g\. '90s'"):
        parse_duration(text)


@pytest.mark.parametrize("value", [0, 0.0, "0s", "0m0s", timedelta(0)])
def test_zero_is_refused_unless_allowed(value: int | float | str | timedelta) -> None:
    with pytest.raises(InvalidInput, match="must be positive"):
        parse_duration(value)
    assert parse_duration(value, allow_zero=True) == timedelta(0)


@pytest.mark.parametrize("value", [-1, -0.5, timedelta(seconds=-1)])
def test_negative_is_refused_even_when_zero_is_allowed(value: int | float | timedelta) -> None:
    with pytest.raises(InvalidInput, match="must be >= 0"):
        parse_duration(value, allow_zero=True)
    with pytest.raises(InvalidInput, match="must be positive"):
        parse_duration(value)


@pytest.mark.parametrize("value", [True, False])
def test_booleans_are_refused(value: bool) -> None:
    with pytest.raises(InvalidInput, match="not a boolean"):
        parse_duration(value)


@pytest.mark.parametrize("value", [None, [30], {"s": 30}])
def test_other_types_are_refused_naming_the_type(value: object) -> None:
    with pytest.raises(InvalidInput, match=f"must be a duration, not {type(value).__name__}"):
        parse_duration(value)  # type: ignore[arg-type]


def test_messages_name_what_was_being_parsed() -> None:
    with pytest.raises(InvalidInput, match=r"^retry_after 'soon' is not a duration"):
        parse_duration("soon", "retry_after")
    with pytest.raises(InvalidInput, match=r"^lease must be positive"):
        parse_duration(0, "lease")


@settings(database=None)  # no example database left in the working tree
@given(
    days=st.integers(0, 400),
    hours=st.integers(0, 100),
    minutes=st.integers(0, 1000),
    seconds=st.integers(0, 100_000),
)
def test_any_sum_of_parts_parses_to_its_total(
    days: int, hours: int, minutes: int, seconds: int
) -> None:
    expected = timedelta(days=days, hours=hours, minutes=minutes, seconds=seconds)
    text = f"{days}d{hours}h{minutes}m{seconds}s"
    if expected == timedelta(0):
        assert parse_duration(text, allow_zero=True) == expected
    else:
        assert parse_duration(text) == expected


@settings(database=None)  # no example database left in the working tree
@given(st.integers(1, 10**9))
def test_whole_seconds_written_or_numeric_agree(n: int) -> None:
    assert parse_duration(f"{n}s") == parse_duration(n) == timedelta(seconds=n)
