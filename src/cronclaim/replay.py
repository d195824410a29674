"""Replay and backfill: make missed and failed occurrences claimable again.

Replayed rows become ``pending`` at once with a renewed attempt budget; a worker then
runs them (or ``cronclaim replay --now`` runs them inline). A ``done`` occurrence is
replayed only with ``force``; running (``claimed``), ``pending`` and ``released`` ones
are left alone — they will run anyway. Every replay appends a ``replayed`` event naming
who asked, and the run sees ``run.is_replay`` (and ``run.stale`` when it starts later
than the job's ``stale_after``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from cronclaim.exceptions import InvalidInput
from cronclaim.models import Claim, ClaimState, format_instant, require_aware
from cronclaim.store import Store

REPLAYABLE = frozenset({ClaimState.MISSED, ClaimState.FAILED})


@dataclass(frozen=True, kw_only=True)
class ReplayPlan:
    """What a replay selected (and, unless a dry run, made claimable)."""

    job: str
    start: datetime
    end: datetime
    selected: list[Claim]
    skipped: list[tuple[Claim, str]] = field(default_factory=list)
    applied: bool = False
    replayed_ids: list[int] = field(default_factory=list)

    def as_json(self) -> dict[str, Any]:
        def row(claim: Claim) -> dict[str, Any]:
            occurrence = claim.occurrence
            return {
                "tenant": occurrence.tenant,
                "scheduled_for": format_instant(occurrence.scheduled_for),
                "local_time": occurrence.local_time.isoformat() if occurrence.local_time else None,
                "state": claim.state.value,
                "attempt": claim.attempt,
                "error": claim.last_error,
            }

        return {
            "job": self.job,
            "from": format_instant(self.start),
            "to": format_instant(self.end),
            "applied": self.applied,
            "selected": [row(c) for c in self.selected],
            "replayed": len(self.replayed_ids),
            "skipped": [{**row(c), "reason": reason} for c, reason in self.skipped],
        }

    def as_text(self) -> str:
        verb = "replayed" if self.applied else "would replay"
        lines = [
            f"{self.job} from {format_instant(self.start)} to {format_instant(self.end)}: "
            f"{verb} {len(self.replayed_ids) if self.applied else len(self.selected)} "
            f"occurrence(s)"
        ]
        for claim in self.selected:
            occurrence = claim.occurrence
            when = occurrence.local_time.isoformat() if occurrence.local_time else "?"
            lines.append(
                f"  {occurrence.tenant:<24} {when}  was {claim.state.value}"
                + (f": {claim.last_error}" if claim.last_error else "")
            )
        if self.skipped:
            lines.append(f"left alone: {len(self.skipped)}")
            for claim, reason in self.skipped[:20]:
                lines.append(f"  {claim.occurrence.tenant:<24} {reason}")
        return "\n".join(lines)


def replay(
    store: Store,
    *,
    job: str,
    start: datetime,
    end: datetime,
    tenant: str | None = None,
    force: bool = False,
    dry_run: bool = False,
    requested_by: str,
    local_dates: tuple[date, date] | None = None,
) -> ReplayPlan:
    """Replay ``job``'s missed and failed occurrences scheduled in ``[start, end]``.

    ``local_dates`` narrows the selection to occurrences whose local date (in the
    tenant's zone) lies in that inclusive range: "the 19th to the 23rd" means each
    restaurant's own days.
    """
    start = require_aware(start, "replay --from")
    end = require_aware(end, "replay --to")
    if end < start:
        raise InvalidInput(
            f"replay --to {format_instant(end)} is before --from {format_instant(start)}"
        )
    selected: list[Claim] = []
    skipped: list[tuple[Claim, str]] = []
    for claim in store.replay_candidates(job, start=start, end=end, tenant=tenant):
        local = claim.occurrence.local_time
        if (
            local_dates is not None
            and local is not None
            and not (local_dates[0] <= local.date() <= local_dates[1])
        ):
            continue
        if claim.state in REPLAYABLE or (force and claim.state is ClaimState.DONE):
            selected.append(claim)
        elif claim.state is ClaimState.DONE:
            skipped.append((claim, "done; replay it with --force"))
        else:
            skipped.append((claim, f"{claim.state.value}; it will run without a replay"))
    if dry_run or not selected:
        return ReplayPlan(job=job, start=start, end=end, selected=selected, skipped=skipped)
    ids = store.replay(selected, requested_by=requested_by)
    return ReplayPlan(
        job=job,
        start=start,
        end=end,
        selected=selected,
        skipped=skipped,
        applied=True,
        replayed_ids=ids,
    )
