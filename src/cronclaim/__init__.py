"""cronclaim: scheduled jobs that fan out over tenants and run their side effect once per
occurrence, never silently skipped and never done twice."""

from cronclaim.app import App
from cronclaim.clock import Clock, SystemClock, VirtualClock
from cronclaim.exceptions import (
    ConfigurationError,
    CronclaimError,
    DatabaseUnavailable,
    InvalidInput,
    NotAcquired,
    SchemaMissing,
    StaleClaim,
    StoreError,
)
from cronclaim.guard import ClaimGuard, Outcome, Run
from cronclaim.models import Claim, ClaimState, Event, EventKind, Occurrence

__version__ = "0.1.0.dev0"

__all__ = [
    "App",
    "Claim",
    "ClaimGuard",
    "ClaimState",
    "Clock",
    "ConfigurationError",
    "CronclaimError",
    "DatabaseUnavailable",
    "Event",
    "EventKind",
    "InvalidInput",
    "NotAcquired",
    "Occurrence",
    "Outcome",
    "Run",
    "SchemaMissing",
    "StaleClaim",
    "StoreError",
    "SystemClock",
    "VirtualClock",
]
