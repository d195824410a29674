"""The expected-occurrence ledger, as a report: for each job and tick, how many tenants
were due and how many are done, running, retrying, failed or missed, and which ones did
not run. This is the exact answer to "how many of 3,000 tenants ran this morning?"."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cronclaim.models import ClaimState, Ledger, format_instant
from cronclaim.store import Store

#: Column order and labels of the report.
COLUMNS = (
    ("done", ClaimState.DONE),
    ("running", ClaimState.CLAIMED),
    ("retrying", ClaimState.RELEASED),
    ("pending", ClaimState.PENDING),
    ("failed", ClaimState.FAILED),
    ("missed", ClaimState.MISSED),
)


@dataclass(frozen=True)
class LedgerReport:
    at: datetime
    ledgers: list[Ledger]
    unknown_jobs: list[str]

    def as_json(self) -> dict[str, Any]:
        return {
            "at": format_instant(self.at),
            "jobs": [
                {
                    "job": ledger.job,
                    "tick": ledger.tick,
                    "due": ledger.due,
                    **{label: ledger.count(state) for label, state in COLUMNS},
                    "unrecorded": ledger.unrecorded,
                    "zones": ledger.zones,
                    "fanned_out_at": format_instant(ledger.fanned_out_at)
                    if ledger.fanned_out_at
                    else None,
                    "not_done": [
                        {
                            "tenant": c.occurrence.tenant,
                            "state": c.state.value,
                            "scheduled_for": format_instant(c.occurrence.scheduled_for),
                            "local_time": c.occurrence.local_time.isoformat()
                            if c.occurrence.local_time
                            else None,
                            "attempt": c.attempt,
                            "error": c.last_error,
                        }
                        for c in ledger.not_done
                    ],
                }
                for ledger in self.ledgers
            ],
            "unknown_jobs": self.unknown_jobs,
        }

    def as_text(self) -> str:
        if not self.ledgers and not self.unknown_jobs:
            return f"no ticks recorded at or before {format_instant(self.at)}"
        lines: list[str] = []
        for ledger in self.ledgers:
            ran = ledger.count(ClaimState.DONE)
            lines.append(
                f"{ledger.job}  tick {ledger.tick} (local time; {ledger.zones} zone(s))  "
                f"{ran:,} of {ledger.due:,} done"
            )
            counts = "  ".join(f"{label} {ledger.count(state):,}" for label, state in COLUMNS)
            if ledger.unrecorded:
                counts += f"  not yet fanned out {ledger.unrecorded:,}"
            lines.append(f"  {counts}")
            shown = ledger.not_done
            missing = ledger.due - ran
            if shown:
                lines.append(f"  not done ({missing:,}):" if missing else "  not done:")
                for claim in shown:
                    error = f"  {claim.last_error}" if claim.last_error else ""
                    lines.append(
                        f"    {claim.state.value:<9} {claim.occurrence.tenant:<24} "
                        f"attempt {claim.attempt}{error}"
                    )
                if missing > len(shown):
                    lines.append(f"    ... and {missing - len(shown):,} more")
        for name in self.unknown_jobs:
            lines.append(f"{name}: no ticks recorded at or before {format_instant(self.at)}")
        return "\n".join(lines)


def ledger_report(
    store: Store, *, job: str | None, at: datetime, ticks: int = 1, limit: int = 20
) -> LedgerReport:
    jobs = [job] if job else store.known_jobs()
    ledgers: list[Ledger] = []
    unknown: list[str] = []
    for name in jobs:
        labels = store.latest_ticks(name, at=at, count=max(1, ticks))
        if not labels:
            unknown.append(name)
        ledgers.extend(store.ledger(name, label, limit=limit) for label in labels)
    return LedgerReport(at=at, ledgers=ledgers, unknown_jobs=unknown)
