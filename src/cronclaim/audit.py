"""The audit: everything that went wrong or is stuck, with counts and the occurrences.

Findings, by kind:

* ``orphan``: claimed, but the lease expired long ago and nobody took it over, or held
  longer than ``older_than`` (``--older-than 24h`` is the seed's ``released_at IS NULL
  AND claimed_at < now - 24h``);
* ``failed``: attempts or window exhausted;
* ``retrying``: released, waiting for a retry;
* ``missed``: came due, never ran within its window;
* ``stale_rejected``: a late heartbeat/complete/release refused for a stale fencing token
  (a zombie worker that lost its lease);
* ``repeated_error``: an occurrence whose attempts keep failing with the same error.

``cronclaim audit`` exits 0 when clean, 1 when it found something, 2 on error, so it can
run from cron or CI.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cronclaim.models import Claim, format_instant
from cronclaim.store import Store

KINDS = ("orphan", "failed", "retrying", "missed", "stale_rejected", "repeated_error")
#: By default the audit looks back this far.
DEFAULT_SINCE = timedelta(days=7)
#: A lease expired this long ago without a takeover is an orphan.
LEASE_GRACE = timedelta(minutes=5)
#: Without --older-than, a claim held this long is an orphan whatever its lease says.
DEFAULT_OLDER_THAN = timedelta(hours=24)


@dataclass(frozen=True, kw_only=True)
class Finding:
    kind: str
    claim: Claim
    detail: str
    count: int = 1

    def as_json(self) -> dict[str, Any]:
        occurrence = self.claim.occurrence
        return {
            "kind": self.kind,
            "job": occurrence.job,
            "tenant": occurrence.tenant,
            "scheduled_for": format_instant(occurrence.scheduled_for),
            "local_time": occurrence.local_time.isoformat() if occurrence.local_time else None,
            "state": self.claim.state.value,
            "attempt": self.claim.attempt,
            "worker": self.claim.worker,
            "detail": self.detail,
            "count": self.count,
        }


@dataclass(frozen=True, kw_only=True)
class AuditReport:
    now: datetime
    since: datetime
    job: str | None
    findings: dict[str, list[Finding]] = field(default_factory=dict)

    @property
    def counts(self) -> dict[str, int]:
        return {kind: len(self.findings.get(kind, [])) for kind in KINDS}

    @property
    def clean(self) -> bool:
        return not any(self.findings.get(kind) for kind in KINDS)

    def as_json(self) -> dict[str, Any]:
        return {
            "now": format_instant(self.now),
            "since": format_instant(self.since),
            "job": self.job,
            "clean": self.clean,
            "counts": self.counts,
            "findings": {k: [f.as_json() for f in self.findings.get(k, [])] for k in KINDS},
        }

    def as_text(self) -> str:
        scope = f"job {self.job}" if self.job else "all jobs"
        head = f"audit of {scope} since {format_instant(self.since)}"
        if self.clean:
            return f"{head}: clean (no orphans, failures, retries, misses or stale holders)"
        lines = [head + ":"]
        for kind in KINDS:
            found = self.findings.get(kind, [])
            if not found:
                continue
            lines.append(f"  {kind.replace('_', ' ')}: {len(found)}")
            for finding in found[:50]:
                occurrence = finding.claim.occurrence
                when = occurrence.local_time.isoformat() if occurrence.local_time else "?"
                lines.append(f"    {occurrence.job} {occurrence.tenant} {when}  {finding.detail}")
            if len(found) > 50:
                lines.append(f"    ... and {len(found) - 50} more (use --json for all)")
        return "\n".join(lines)


def run_audit(
    store: Store,
    *,
    job: str | None = None,
    since: datetime | None = None,
    older_than: timedelta | None = None,
    now: datetime | None = None,
    limit: int = 10_000,
) -> AuditReport:
    now = now or store.now()
    since = since or now - DEFAULT_SINCE
    held = older_than if older_than is not None else DEFAULT_OLDER_THAN
    findings: dict[str, list[Finding]] = {}

    orphans = store.orphans(
        job=job, lease_cutoff=now - LEASE_GRACE, held_cutoff=now - held, limit=limit
    )
    findings["orphan"] = [
        Finding(kind="orphan", claim=c, detail=_orphan_detail(c, now)) for c in orphans
    ]
    for state, kind in (("failed", "failed"), ("released", "retrying"), ("missed", "missed")):
        rows = store.claims_in_state(state, job=job, since=since, limit=limit)
        findings[kind] = [Finding(kind=kind, claim=c, detail=_state_detail(c)) for c in rows]
    findings["stale_rejected"] = [
        Finding(
            kind="stale_rejected",
            claim=r.claim,
            detail=(
                f"{r.action or 'call'} by {r.worker} with stale token {r.token} refused at "
                f"{format_instant(r.at)} (current token {r.claim.token}, {r.claim.state.value})"
            ),
        )
        for r in store.stale_rejections(job=job, since=since, limit=limit)
    ]
    findings["repeated_error"] = [
        Finding(
            kind="repeated_error",
            claim=claim,
            detail=f"{count} attempts failed with: {error}",
            count=count,
        )
        for claim, error, count in store.repeated_errors(job=job, since=since, limit=limit)
    ]
    return AuditReport(now=now, since=since, job=job, findings=findings)


def _orphan_detail(claim: Claim, now: datetime) -> str:
    held = now - claim.claimed_at if claim.claimed_at else None
    lease = claim.lease_expires_at
    lapsed = f"lease expired {_ago(now - lease)} ago" if lease and lease <= now else "lease live"
    return f"held by {claim.worker} for {_ago(held) if held else '?'}; {lapsed}; not taken over"


def _state_detail(claim: Claim) -> str:
    if claim.state.value == "released":
        at = format_instant(claim.retry_at) if claim.retry_at else "?"
        return f"attempt {claim.attempt} failed, retry at {at}: {claim.last_error}"
    if claim.state.value == "failed":
        return f"failed after {claim.attempt} attempt(s): {claim.last_error}"
    return claim.last_error or "missed"


def _ago(delta: timedelta) -> str:
    seconds = int(delta.total_seconds())
    if seconds >= 86400:
        return f"{seconds / 86400:.1f}d"
    if seconds >= 3600:
        return f"{seconds / 3600:.1f}h"
    if seconds >= 60:
        return f"{seconds // 60}m"
    return f"{seconds}s"
