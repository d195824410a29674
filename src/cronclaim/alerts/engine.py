"""The alert rules, evaluated against the store, and the persisted outbox that delivers
their state changes.

Rules (per job; thresholds from :class:`~cronclaim.alerts.RuleSettings`):

* **failing**: ``failures_per_hour`` failed attempts within ``failure_window``. Failures
  across two or more tenants calling the same dependency are ONE incident keyed by job
  and dependency (3,000 tenants failing on one inference outage page once); failures of
  a single tenant are an incident of that tenant.
* **failed**: occurrences that exhausted their attempts or window (still failed), by job
  and dependency.
* **missed**: occurrences recorded missed (still missed).
* **orphans**: claims whose lease expired long ago without a takeover, or held > 24 h.
* **no-success**: no successful occurrence within the job's period plus its window
  (the dead-man's switch; also exported as a metric for an external one).

An alert fires on a state change only: it opens (trigger) when its condition starts to
hold and resolves when it stops. The transition and the deliveries it owes are written
in one transaction; deliveries are then sent from the outbox, retried with backoff on
transient failures, and marked sent, so a restart neither loses nor repeats them.
"""

from __future__ import annotations

import json
import logging
import socket
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronclaim.alerts.config import AlertConfig
from cronclaim.alerts.model import Alert, DeliveryResult, Severity, alert_key, fit_summary
from cronclaim.clock import Clock
from cronclaim.exceptions import CronclaimError
from cronclaim.jobs import Job
from cronclaim.models import OutboxItem, format_instant
from cronclaim.store import Store

log = logging.getLogger("cronclaim.alerts")

#: How far back the failed/missed rules look, at least. A job's own horizon is two of
#: its periods plus its window (a daily job's failure stays open past the next day's
#: run), so a failure cannot age out before the job had a chance to recover.
LOOKBACK = timedelta(hours=24)
#: A lease expired this long ago without a takeover makes an orphan.
ORPHAN_GRACE = timedelta(minutes=5)
#: A claim held this long is an orphan whatever its lease says (the seed's 24 h check).
ORPHAN_HELD = timedelta(hours=24)
#: How many tenants an alert lists by name.
SAMPLE = 10
#: Outbox delivery: attempts before giving up, and the backoff between them.
MAX_DELIVERIES = 20
DELIVERY_BACKOFF = (timedelta(seconds=30), timedelta(minutes=30))
#: How long a worker holds outbox rows it is delivering.
DELIVERY_HOLD = timedelta(minutes=2)


@dataclass(frozen=True, kw_only=True)
class Condition:
    """An alert that should be open now."""

    key: str
    rule: str
    job: str
    severity: Severity
    summary: str
    component: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class Evaluation:
    opened: list[str] = field(default_factory=list)
    resolved: list[str] = field(default_factory=list)
    open: list[str] = field(default_factory=list)


class AlertEngine:
    def __init__(
        self,
        store: Store,
        config: AlertConfig,
        jobs: Iterable[Job],
        *,
        clock: Clock,
        source: str | None = None,
    ) -> None:
        self.store = store
        self.config = config
        self.rules = config.rules
        self.jobs = {job.name: job for job in jobs}
        self.clock = clock
        self.source = source or socket.gethostname()
        self._watching_since: dict[str, datetime] = {}

    # -- rules --------------------------------------------------------------------------

    def conditions(self, now: datetime) -> list[Condition]:
        found: list[Condition] = []
        for job in self.jobs.values():
            found += self._failing(job, now)
            found += self._failed(job, now)
            if self.rules.missed:
                found += self._missed(job, now)
            if self.rules.orphans:
                found += self._orphans(job, now)
            if self.rules.dead_man:
                found += self._no_success(job, now)
        return found

    def _failing(self, job: Job, now: datetime) -> list[Condition]:
        window = self.rules.failure_window
        by_dependency: dict[str, dict[str, int]] = defaultdict(dict)
        samples: dict[str, str] = {}
        for dependency, tenant, count, sample in self.store.failures_since(job.name, now - window):
            by_dependency[dependency][tenant] = count
            if sample:
                samples.setdefault(dependency, sample)
        found = []
        for dependency, tenants in by_dependency.items():
            total = sum(tenants.values())
            if total < self.rules.failures_per_hour:
                continue
            cause = dependency or "job"
            sample = samples.get(dependency, "")
            names = sorted(tenants, key=lambda t: -tenants[t])
            if len(tenants) == 1:
                tenant = names[0]
                found.append(
                    Condition(
                        key=alert_key(job.name, f"{cause}-failing/{tenant}"),
                        rule="failing",
                        job=job.name,
                        severity="error",
                        component=dependency or None,
                        summary=fit_summary(
                            f"{job.name}: {total} failed attempts in {_human(window)} for tenant "
                            f"{tenant}{_calling(dependency)}; e.g. {sample}"
                        ),
                        details={
                            "failures": total,
                            "tenant": tenant,
                            "sample_error": sample,
                            "window": _human(window),
                        },
                    )
                )
                continue
            found.append(
                Condition(
                    key=alert_key(job.name, f"{cause}-failing"),
                    rule="failing",
                    job=job.name,
                    severity="critical",
                    component=dependency or None,
                    summary=fit_summary(
                        f"{job.name}: {total} failed attempts in {_human(window)} across "
                        f"{len(tenants)} tenants{_calling(dependency)}; e.g. {sample}"
                    ),
                    details={
                        "failures": total,
                        "tenants_failing": len(tenants),
                        "tenants_sample": names[:SAMPLE],
                        "sample_error": sample,
                        "window": _human(window),
                    },
                )
            )
        return found

    def _failed(self, job: Job, now: datetime) -> list[Condition]:
        by_dependency: dict[str, list[tuple[str, str | None, datetime]]] = defaultdict(list)
        for dependency, tenant, error, scheduled in self.store.failed_since(
            job.name, now - lookback(job)
        ):
            by_dependency[dependency].append((tenant, error, scheduled))
        found = []
        for dependency, rows in by_dependency.items():
            tenants = sorted({tenant for tenant, _, _ in rows})
            first_error = rows[-1][1] or ""
            found.append(
                Condition(
                    key=alert_key(job.name, f"{dependency or 'job'}-failed"),
                    rule="failed",
                    job=job.name,
                    severity="error",
                    component=dependency or None,
                    summary=fit_summary(
                        f"{job.name}: {len(rows)} occurrence(s) failed for good in the last "
                        f"{_human(lookback(job))}{_calling(dependency)} ({_names(tenants)}); "
                        f"last error: {first_error}"
                    ),
                    details={
                        "failed": len(rows),
                        "tenants": tenants[:SAMPLE],
                        "tenants_failed": len(tenants),
                        "occurrences": [
                            {"tenant": t, "scheduled_for": format_instant(s), "error": e}
                            for t, e, s in rows[-SAMPLE:]
                        ],
                    },
                )
            )
        return found

    def _missed(self, job: Job, now: datetime) -> list[Condition]:
        rows = self.store.missed_since(job.name, now - lookback(job))
        if not rows:
            return []
        tenants = sorted({tenant for tenant, _, _ in rows})
        return [
            Condition(
                key=alert_key(job.name, "missed"),
                rule="missed",
                job=job.name,
                severity="error",
                summary=fit_summary(
                    f"{job.name}: {len(rows)} occurrence(s) missed in the last "
                    f"{_human(lookback(job))} "
                    f"({_names(tenants)}): {rows[-1][2] or 'no reason recorded'}"
                ),
                details={
                    "missed": len(rows),
                    "tenants": tenants[:SAMPLE],
                    "occurrences": [
                        {"tenant": t, "scheduled_for": format_instant(s)}
                        for t, s, _ in rows[-SAMPLE:]
                    ],
                },
            )
        ]

    def _orphans(self, job: Job, now: datetime) -> list[Condition]:
        rows = self.store.orphans(
            job=job.name,
            lease_cutoff=now - ORPHAN_GRACE,
            held_cutoff=now - ORPHAN_HELD,
            limit=SAMPLE,
        )
        if not rows:
            return []
        return [
            Condition(
                key=alert_key(job.name, "orphaned-claims"),
                rule="orphans",
                job=job.name,
                severity="critical",
                summary=fit_summary(
                    f"{job.name}: claims held without a live lease and not taken over "
                    f"({_names(sorted({c.occurrence.tenant for c in rows}))}); is a worker running?"
                ),
                details={"orphans": [c.occurrence.idempotency_key for c in rows]},
            )
        ]

    def _no_success(self, job: Job, now: datetime) -> list[Condition]:
        expected = job.schedule.period_hint() + job.window
        last = self.store.last_success(job.name)
        since = self._watching_since.setdefault(job.name, now)
        if last is not None and now - last <= expected:
            return []
        if last is None and now - since <= expected:
            return []
        when = f"since {format_instant(last)}" if last else f"in {_human(now - since)} of watching"
        return [
            Condition(
                key=alert_key(job.name, "no-success"),
                rule="no-success",
                job=job.name,
                severity="critical",
                summary=fit_summary(
                    f"{job.name}: no successful occurrence {when}; expected at least one every "
                    f"{_human(expected)}"
                ),
                details={
                    "last_success": format_instant(last) if last else None,
                    "expected_every": _human(expected),
                },
            )
        ]

    # -- state changes ------------------------------------------------------------------

    def evaluate(self, now: datetime | None = None) -> Evaluation:
        """Open alerts whose condition started to hold, resolve those whose stopped."""
        now = now or self.clock.now()
        result = Evaluation()
        desired = {c.key: c for c in self.conditions(now)}
        current = {a.key: a for a in self.store.alerts() if a.job in self.jobs}
        for key, condition in desired.items():
            details = json.dumps(condition.details, sort_keys=True, default=str)
            if key in current:
                if current[key].summary != condition.summary:
                    self.store.refresh_alert(key, summary=condition.summary, details=details)
                result.open.append(key)
                continue
            alert = self._trigger(condition, now)
            if self.store.open_alert(
                key=key,
                rule=condition.rule,
                job=condition.job,
                severity=condition.severity,
                summary=condition.summary,
                details=details,
                deliveries=self._owed(alert),
            ):
                result.opened.append(key)
                log.warning("alert opened: %s: %s", key, condition.summary)
            result.open.append(key)
        for key, state in current.items():
            if key in desired:
                continue
            if state.rule == "failing" and not self._recovered(state.job, state.opened_at):
                # Fewer failures in the last hour is not recovery (a daily job simply has
                # nothing to fail until tomorrow): it resolves on the next success.
                result.open.append(key)
                continue
            resolved = Alert(
                key=key,
                action="resolve",
                summary=fit_summary(f"resolved: {state.summary}"),
                severity=_SEVERITIES.get(state.severity, "error"),
                source=self.source,
                job=state.job or "",
                occurred_at=now,
                rule=state.rule,
                group=state.job,
            )
            if self.store.resolve_alert(key, deliveries=self._owed(resolved)):
                result.resolved.append(key)
                log.warning("alert resolved: %s", key)
        return result

    def _recovered(self, job: str | None, since: datetime) -> bool:
        if job is None:
            return True
        last = self.store.last_success(job)
        return last is not None and last > since

    def _trigger(self, condition: Condition, now: datetime) -> Alert:
        return Alert(
            key=condition.key,
            action="trigger",
            summary=condition.summary,
            severity=condition.severity,
            source=self.source,
            job=condition.job,
            occurred_at=now,
            rule=condition.rule,
            component=condition.component,
            group=condition.job,
            class_=condition.rule,
            details=condition.details,
        )

    def _owed(self, alert: Alert) -> list[tuple[str, str]]:
        payload = alert.to_json()
        return [(sink.name, payload) for sink in self.config.sinks]

    # -- delivery -------------------------------------------------------------------------

    def deliver(self, *, limit: int = 50) -> list[tuple[OutboxItem, DeliveryResult]]:
        """Send the deliveries that are due; reschedule transient failures."""
        results: list[tuple[OutboxItem, DeliveryResult]] = []
        for item in self.store.claim_outbox(limit=limit, hold=DELIVERY_HOLD):
            result = self._send(item)
            results.append((item, result))
            attempts = item.attempts + max(1, result.attempts)
            if result.ok:
                self.store.settle_outbox(item.id, state="sent", attempts=max(1, result.attempts))
                continue
            if result.retryable and attempts < MAX_DELIVERIES:
                wait = _backoff(attempts, result.retry_after)
                self.store.settle_outbox(
                    item.id,
                    state="pending",
                    attempts=max(1, result.attempts),
                    next_attempt_at=self.clock.now() + wait,
                    error=result.error,
                )
                log.warning(
                    "alert %s to %s failed (%s); retrying in %s",
                    item.alert_key,
                    item.sink,
                    result.error,
                    wait,
                )
            else:
                self.store.settle_outbox(
                    item.id, state="failed", attempts=max(1, result.attempts), error=result.error
                )
                log.error(
                    "alert %s to %s failed for good: %s", item.alert_key, item.sink, result.error
                )
        return results

    def _send(self, item: OutboxItem) -> DeliveryResult:
        try:
            sink = self.config.sink(item.sink)
        except KeyError as exc:
            return DeliveryResult(sink=item.sink, ok=False, attempts=1, error=str(exc))
        try:
            alert = Alert.from_dict(json.loads(item.payload))
        except (CronclaimError, ValueError, KeyError, TypeError) as exc:
            return DeliveryResult(
                sink=item.sink, ok=False, attempts=1, error=f"unreadable alert in the outbox: {exc}"
            )
        return sink.deliver(alert)


_SEVERITIES: dict[str, Severity] = {
    "critical": "critical",
    "error": "error",
    "warning": "warning",
    "info": "info",
}


def lookback(job: Job) -> timedelta:
    return max(LOOKBACK, 2 * job.schedule.period_hint() + job.window)


def _backoff(attempts: int, retry_after: float | None) -> timedelta:
    first, cap = DELIVERY_BACKOFF
    wait: timedelta = min(cap, first * (1 << min(max(0, attempts - 1), 16)))
    if retry_after is not None:
        wait = max(wait, timedelta(seconds=retry_after))
    return wait


def _calling(dependency: str) -> str:
    return f" calling {dependency}" if dependency else ""


def _names(tenants: list[str]) -> str:
    shown = ", ".join(tenants[:SAMPLE])
    return shown + (f" and {len(tenants) - SAMPLE} more" if len(tenants) > SAMPLE else "")


def _human(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{seconds // size}{unit}"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds}s"
