"""Faults the demo's services can be told to inject, per restaurant, simulated day or device.

A :class:`FaultPlan` is the runtime switchboard both servers consult before answering a
request. The simulated day comes from the request body, never from the wall clock, so a
demo running a week in virtual time can say "Aitor's inference hangs on 2026-05-19".
"""

from __future__ import annotations

import enum
import itertools
import threading
from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import date
from typing import Any

#: How long a hang holds the connection: longer than any client timeout in the demo.
HANG_SECONDS = 60.0


class FaultKind(enum.StrEnum):
    LATENCY = "latency"  # wait ``seconds``, then answer normally
    HANG = "hang"  # hold the connection ``seconds`` (default 60), then close it unanswered
    ERROR = "error"  # answer with ``status`` (a 5xx by default)
    RESET = "reset"  # abort the connection with a TCP reset, no response
    CLOSE = "close"  # close the connection cleanly without a response


@dataclass(frozen=True, kw_only=True, slots=True)
class Fault:
    """One injected fault. A filter left at ``None`` matches every request.

    ``times`` bounds how many requests the fault applies to (``None``: until cleared).
    """

    kind: FaultKind
    restaurant_id: str | None = None
    day: date | None = None
    device: str | None = None
    seconds: float | None = None
    status: int = 503
    times: int | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "kind", FaultKind(self.kind))
        if self.seconds is not None and self.seconds < 0:
            raise ValueError(f"fault seconds must be >= 0, got {self.seconds}")
        if self.kind is FaultKind.LATENCY and self.seconds is None:
            raise ValueError("a latency fault needs seconds")
        if not 400 <= self.status <= 599:
            raise ValueError(f"fault status must be an HTTP error status, got {self.status}")
        if self.times is not None and self.times < 1:
            raise ValueError(f"fault times must be >= 1, got {self.times}")

    @property
    def delay(self) -> float:
        """Seconds to wait before acting (latency) or to hold the connection (hang)."""
        if self.seconds is not None:
            return self.seconds
        return HANG_SECONDS if self.kind is FaultKind.HANG else 0.0

    def matches(
        self,
        *,
        restaurant_id: str | None = None,
        day: date | None = None,
        device: str | None = None,
    ) -> bool:
        return (
            (self.restaurant_id is None or self.restaurant_id == restaurant_id)
            and (self.day is None or self.day == day)
            and (self.device is None or self.device == device)
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind.value,
            "restaurant_id": self.restaurant_id,
            "day": self.day.isoformat() if self.day else None,
            "device": self.device,
            "seconds": self.seconds,
            "status": self.status,
            "times": self.times,
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Fault:
        """Parse the admin endpoint's body; ``ValueError`` names what is wrong."""
        if not isinstance(data, Mapping):
            raise ValueError("a fault must be a JSON object")
        unknown = set(data) - {
            "kind",
            "restaurant_id",
            "day",
            "device",
            "seconds",
            "status",
            "times",
        }
        if unknown:
            raise ValueError(f"unknown fault field(s): {', '.join(sorted(unknown))}")
        try:
            kind = FaultKind(data["kind"])
        except KeyError:
            raise ValueError("a fault needs a kind") from None
        except ValueError:
            kinds = ", ".join(k.value for k in FaultKind)
            raise ValueError(f"unknown fault kind {data['kind']!r}; one of {kinds}") from None
        day = data.get("day")
        seconds = data.get("seconds")
        times = data.get("times")
        return cls(
            kind=kind,
            restaurant_id=_optional_str(data.get("restaurant_id"), "restaurant_id"),
            day=date.fromisoformat(day) if isinstance(day, str) else None,
            device=_optional_str(data.get("device"), "device"),
            seconds=float(seconds) if seconds is not None else None,
            status=int(data.get("status", 503)),
            times=int(times) if times is not None else None,
        )


def _optional_str(value: object, what: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    raise ValueError(f"fault {what} must be a string or null")


class FaultPlan:
    """The faults in force on one server. Thread-safe; the first matching fault wins."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._faults: dict[int, Fault] = {}
        self._fired = 0

    def add(self, fault: Fault) -> int:
        """Put ``fault`` in force; returns its id (for :meth:`remove`)."""
        with self._lock:
            fault_id = next(self._ids)
            self._faults[fault_id] = fault
            return fault_id

    def remove(self, fault_id: int) -> bool:
        with self._lock:
            return self._faults.pop(fault_id, None) is not None

    def clear(self) -> None:
        with self._lock:
            self._faults.clear()

    def active(self) -> dict[int, Fault]:
        with self._lock:
            return dict(self._faults)

    @property
    def fired(self) -> int:
        """How many requests a fault has been applied to since the server started."""
        with self._lock:
            return self._fired

    def take(
        self,
        *,
        restaurant_id: str | None = None,
        day: date | None = None,
        device: str | None = None,
    ) -> Fault | None:
        """The fault to apply to this request, if any, counting one use of it."""
        with self._lock:
            for fault_id, fault in self._faults.items():
                if not fault.matches(restaurant_id=restaurant_id, day=day, device=device):
                    continue
                if fault.times is not None:
                    if fault.times == 1:
                        del self._faults[fault_id]
                    else:
                        self._faults[fault_id] = replace(fault, times=fault.times - 1)
                self._fired += 1
                return fault
            return None
