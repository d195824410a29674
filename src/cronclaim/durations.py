"""Durations written the way people write them in job definitions: ``"90s"``, ``"2m"``,
``"3h"``, ``"1d"``, ``"1h30m"``, a number of seconds, or a ``timedelta``."""

from __future__ import annotations

import re
from datetime import timedelta

from cronclaim.exceptions import InvalidInput

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")
_UNIT = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}

Duration = timedelta | int | float | str


def parse_duration(
    value: Duration, what: str = "duration", *, allow_zero: bool = False
) -> timedelta:
    if isinstance(value, bool):
        raise InvalidInput(f"{what} must be a duration, not a boolean")
    if isinstance(value, timedelta):
        result = value
    elif isinstance(value, int | float):
        result = timedelta(seconds=value)
    elif isinstance(value, str):
        text = value.strip().lower().replace(" ", "")
        parts = _PART.findall(text)
        if not text or "".join(n + u for n, u in parts) != text:
            raise InvalidInput(
                f"{what} {value!r} is not a duration; write e.g. '90s', '2m', '3h', '1d' or '1h30m'"
            )
        result = sum((float(n) * _UNIT[u] for n, u in parts), timedelta())
    else:
        raise InvalidInput(f"{what} must be a duration, not {type(value).__name__}")
    if result < timedelta(0) or (result == timedelta(0) and not allow_zero):
        raise InvalidInput(f"{what} must be {'>= 0' if allow_zero else 'positive'}, got {value!r}")
    return result
