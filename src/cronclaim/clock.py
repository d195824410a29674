"""Clocks. Production leases are measured by the database; a virtual clock lets tests and
the demo simulate days in seconds.

A store given ``SystemClock`` (the default) passes no time to its SQL, which then reads
the database server's own clock, so workers with skewed clocks still agree on when a
lease expires. A store given a ``VirtualClock`` passes the virtual time instead.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol

from cronclaim.models import require_aware


class Clock(Protocol):
    #: True when the database's own clock should measure leases.
    uses_database_time: bool

    def now(self) -> datetime:
        """The current instant, timezone-aware UTC."""
        ...

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        """Wait ``seconds`` of this clock's time; return early (True) if ``wake`` is set."""
        ...


class SystemClock:
    uses_database_time = True

    def now(self) -> datetime:
        return datetime.now(UTC)

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is None:
            time.sleep(max(0.0, seconds))
            return False
        return wake.wait(max(0.0, seconds))


class VirtualClock:
    """A clock that only moves when told to (``advance``/``set``) or when slept on.

    ``sleep`` advances virtual time instantly, so a worker loop that sleeps until the
    next tick runs a simulated week in seconds. Thread-safe.
    """

    uses_database_time = False

    def __init__(self, start: datetime) -> None:
        self._now = require_aware(start, "VirtualClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def set(self, instant: datetime) -> None:
        instant = require_aware(instant, "VirtualClock.set")
        with self._lock:
            self._now = instant

    def advance(self, delta: timedelta | float) -> datetime:
        if not isinstance(delta, timedelta):
            delta = timedelta(seconds=delta)
        with self._lock:
            self._now += delta
            return self._now

    def sleep(self, seconds: float, wake: threading.Event | None = None) -> bool:
        if wake is not None and wake.is_set():
            return True
        self.advance(max(0.0, seconds))
        return False
