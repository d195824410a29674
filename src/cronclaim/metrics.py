"""What cronclaim tells the outside world as it works.

**Beacons**: one structured log event per transition, on the ``cronclaim.beacon``
logger at INFO, with a stable name and the occurrence's fields. Names:

=====================  ============================================================
``cron_fired``         a fan-out finished: tenants due, occurrences recorded, missed
``claim_acquired``     a worker claimed an occurrence (attempt, token, worker)
``claim_skipped``      ``app.claim`` found it held or finished elsewhere
``lease_expired``      a claim was taken over after its holder stopped heart-beating
``effect_threw``       the side effect raised (error, dependency)
``claim_released``     released for a retry (retry_after)
``claim_failed``       failed for good (attempts or window exhausted)
``claim_completed``    done (duration)
``claim_lost``         a completion or release refused: the lease had been taken over
``occurrence_missed``  its window closed before anyone ran it
``replayed``           an operator made it claimable again (requested_by)
``alert_opened``       an alert rule started to hold
``alert_resolved``     it stopped holding
=====================  ============================================================

``JsonLinesFormatter`` renders every record (beacons included) as one JSON object per
line, for ``cronclaim worker --log-format json``.

**Metrics** (Prometheus, the official client, served by ``cronclaim worker
--metrics-port``): ``cronclaim_occurrences_total{job,outcome}``,
``cronclaim_attempt_duration_seconds{job}``, ``cronclaim_claims_held{job}``,
``cronclaim_leases_expired_total{job}``, ``cronclaim_last_success_timestamp_seconds{job}``
(for an external dead-man's switch), ``cronclaim_fanned_out_total{job}`` and
``cronclaim_alerts_open``.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from cronclaim.models import Claim, format_instant

beacon_log = logging.getLogger("cronclaim.beacon")

BEACONS = (
    "cron_fired",
    "claim_acquired",
    "claim_skipped",
    "lease_expired",
    "effect_threw",
    "claim_released",
    "claim_failed",
    "claim_completed",
    "claim_lost",
    "occurrence_missed",
    "replayed",
    "alert_opened",
    "alert_resolved",
)
OUTCOMES = ("done", "released", "failed", "missed", "lost")
_SETTLED = {
    "done": "claim_completed",
    "released": "claim_released",
    "failed": "claim_failed",
    "lost": "claim_lost",
}


def occurrence_fields(claim: Claim) -> dict[str, Any]:
    occurrence = claim.occurrence
    return {
        "job": occurrence.job,
        "tenant": occurrence.tenant,
        "scheduled_for": format_instant(occurrence.scheduled_for),
        "local_time": occurrence.local_time.isoformat() if occurrence.local_time else None,
        "idempotency_key": occurrence.idempotency_key,
        "attempt": claim.attempt,
        "token": claim.token,
        "worker": claim.worker,
    }


def beacons_on() -> bool:
    """Whether beacons are logged; callers check it before building the fields."""
    return beacon_log.isEnabledFor(logging.INFO)


def beacon(name: str, **fields: Any) -> None:
    """Emit one beacon."""
    beacon_log.info(
        "%s %s",
        name,
        " ".join(f"{k}={v}" for k, v in fields.items() if v is not None),
        extra={"beacon": name, "fields": fields},
    )


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, event and fields."""

    def format(self, record: logging.LogRecord) -> str:
        data: dict[str, Any] = {
            "ts": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
        }
        name = getattr(record, "beacon", None)
        if name is not None:
            data["event"] = name
            data.update(getattr(record, "fields", {}))
        else:
            data["message"] = record.getMessage()
        if record.exc_info:
            data["exception"] = self.formatException(record.exc_info)
        return json.dumps(data, default=str, ensure_ascii=False)


class Metrics:
    """Prometheus metrics in a registry of their own (several workers in one process,
    as in tests, do not collide)."""

    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.occurrences = Counter(
            "cronclaim_occurrences",
            "Occurrences settled, by job and outcome",
            ["job", "outcome"],
            registry=r,
        )
        self.durations = Histogram(
            "cronclaim_attempt_duration_seconds",
            "Duration of each attempt's side effect",
            ["job"],
            registry=r,
            buckets=(0.005, 0.01, 0.05, 0.1, 0.5, 1, 2.5, 5, 10, 30, 60, 300),
        )
        self.held = Gauge(
            "cronclaim_claims_held", "Claims this worker holds right now", ["job"], registry=r
        )
        self.leases_expired = Counter(
            "cronclaim_leases_expired",
            "Claims taken over after their lease expired",
            ["job"],
            registry=r,
        )
        self.last_success = Gauge(
            "cronclaim_last_success_timestamp_seconds",
            "Unix time of the latest successful occurrence (alert when it grows stale)",
            ["job"],
            registry=r,
        )
        self.fanned_out = Counter(
            "cronclaim_fanned_out", "Occurrences recorded as due by fan-out", ["job"], registry=r
        )
        self.alerts_open = Gauge("cronclaim_alerts_open", "Alerts currently open", registry=r)

    def serve(self, port: int, host: str = "127.0.0.1") -> None:
        start_http_server(port, addr=host, registry=self.registry)


class Telemetry:
    """The worker's single place to report a transition: a beacon, and metrics if on."""

    def __init__(self, metrics: Metrics | None = None) -> None:
        self.metrics = metrics

    def fired(
        self, job: str, *, tenants: int, recorded: int, missed: int, start: datetime, end: datetime
    ) -> None:
        if beacons_on():
            beacon(
                "cron_fired",
                job=job,
                tenants=tenants,
                recorded=recorded,
                missed=missed,
                since=format_instant(start),
                until=format_instant(end),
            )
        if self.metrics is not None:
            self.metrics.fanned_out.labels(job).inc(recorded)
            if missed:
                self.metrics.occurrences.labels(job, "missed").inc(missed)

    def acquired(self, job: str, claim: Claim) -> None:
        on = beacons_on()
        if claim.took_over:
            if on:
                beacon(
                    "lease_expired", **occurrence_fields(claim), previous_worker=claim.prior_worker
                )
            if self.metrics is not None:
                self.metrics.leases_expired.labels(job).inc()
        if on:
            beacon("claim_acquired", **occurrence_fields(claim))
        if self.metrics is not None:
            self.metrics.held.labels(job).inc()

    def threw(self, job: str, claim: Claim, error: str, dependency: str | None) -> None:
        if beacons_on():
            beacon("effect_threw", **occurrence_fields(claim), error=error, dependency=dependency)

    def settled(
        self,
        job: str,
        claim: Claim,
        outcome: str,
        *,
        duration: float | None = None,
        error: str | None = None,
        retry_after: timedelta | None = None,
    ) -> None:
        if beacons_on():
            beacon(
                _SETTLED[outcome],
                **occurrence_fields(claim),
                error=error,
                retry_after=retry_after.total_seconds() if retry_after is not None else None,
                duration=round(duration, 6) if duration is not None else None,
            )
        metrics = self.metrics
        if metrics is not None:
            metrics.occurrences.labels(job, outcome).inc()
            metrics.held.labels(job).dec()
            if duration is not None:
                metrics.durations.labels(job).observe(duration)
            if outcome == "done":
                metrics.last_success.labels(job).set_to_current_time()

    def missed(self, job: str, count: int, reason: str) -> None:
        if beacons_on():
            beacon("occurrence_missed", job=job, count=count, reason=reason)
        if self.metrics is not None:
            self.metrics.occurrences.labels(job, "missed").inc(count)

    def alert(self, key: str, opened: bool) -> None:
        if beacons_on():
            beacon("alert_opened" if opened else "alert_resolved", key=key)
        if self.metrics is not None:
            self.metrics.alerts_open.inc() if opened else self.metrics.alerts_open.dec()
