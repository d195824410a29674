"""What both backends share: turning rows into records, deciding claimability, and
wording why an occurrence could not be claimed."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronclaim.models import (
    Claim,
    ClaimState,
    Event,
    EventKind,
    Occurrence,
    check_name,
    require_positive,
)

MAX_ERROR_LENGTH = 4000
#: ClaimState by value, for every row of a batch: a lookup costs a tenth of an enum call.
_STATES = {state.value: state for state in ClaimState}


def check_call(worker: str, lease: timedelta | None = None) -> None:
    check_name(worker, "worker id", allow_colon=True)
    if lease is not None:
        require_positive(lease, "lease")


def clip_error(error: str | None) -> str | None:
    """Errors are stored whole up to a bound; a megabyte traceback must not bloat the log."""
    if error is None or len(error) <= MAX_ERROR_LENGTH:
        return error
    return error[: MAX_ERROR_LENGTH - 20] + " ...[truncated]"


def local_time_of(scheduled_for: datetime, local_time: str | None, zone: str | None) -> datetime:
    if zone:
        return scheduled_for.astimezone(ZoneInfo(zone))
    if local_time:
        return datetime.fromisoformat(local_time)
    return scheduled_for


def make_claim(
    values: Sequence[Any],
    *,
    occurrence: Occurrence | None = None,
    prior_state: str | None = None,
    prior_worker: str | None = None,
) -> Claim:
    """Build a Claim from a row whose instants are already datetimes (UTC).

    Pass ``occurrence`` when the caller already has it, to skip re-validating names.
    """
    (
        row_id,
        job,
        tenant,
        scheduled_for,
        local_time,
        zone,
        tick,
        state,
        token,
        attempt,
        worker,
        claimed_at,
        lease_expires_at,
        retry_at,
        finished_at,
        last_error,
        replays,
        replayed_at,
    ) = values
    if occurrence is None:
        occurrence = Occurrence(
            job=job,
            tenant=tenant,
            scheduled_for=scheduled_for,
            local_time=local_time_of(scheduled_for, local_time, zone),
            nominal=datetime.fromisoformat(tick) if tick else None,
        )
    return Claim(
        id=row_id,
        occurrence=occurrence,
        state=_STATES.get(state) or ClaimState(state),
        token=token,
        attempt=attempt,
        worker=worker,
        claimed_at=claimed_at,
        lease_expires_at=lease_expires_at,
        retry_at=retry_at,
        finished_at=finished_at,
        last_error=last_error,
        replays=replays,
        replayed_at=replayed_at,
        prior_state=ClaimState(prior_state) if prior_state is not None else None,
        prior_worker=prior_worker,
    )


def make_event(values: Sequence[Any]) -> Event:
    row_id, job, tenant, scheduled_for, kind, at, worker, attempt, token, error, detail = values
    return Event(
        id=row_id,
        job=job,
        tenant=tenant,
        scheduled_for=scheduled_for,
        kind=EventKind(kind),
        at=at,
        worker=worker,
        attempt=attempt,
        token=token,
        error=error,
        detail=detail,
    )


#: Number of columns of a claim row; acquisition queries append prior_state/prior_worker.
CLAIM_WIDTH = 18


def is_claimable(claim: Claim, now: datetime) -> bool:
    if claim.state is ClaimState.RELEASED or claim.state is ClaimState.PENDING:
        return claim.retry_at is None or claim.retry_at <= now
    if claim.state is ClaimState.CLAIMED:
        return claim.lease_expires_at is None or claim.lease_expires_at <= now
    return False


def refusal_reason(claim: Claim) -> str:
    """Why ``claim`` cannot be acquired now, in one sentence."""
    state = claim.state
    if state is ClaimState.CLAIMED:
        until = claim.lease_expires_at.isoformat() if claim.lease_expires_at else "?"
        return f"held by {claim.worker} until {until} (attempt {claim.attempt})"
    if state is ClaimState.DONE:
        at = claim.finished_at.isoformat() if claim.finished_at else "?"
        return f"already done at {at} by {claim.worker}"
    if state is ClaimState.RELEASED:
        at = claim.retry_at.isoformat() if claim.retry_at else "?"
        return f"released after attempt {claim.attempt}, retry not before {at}: {claim.last_error}"
    if state is ClaimState.PENDING:
        at = claim.retry_at.isoformat() if claim.retry_at else "?"
        return f"pending, paced to start at {at}"
    if state is ClaimState.FAILED:
        return f"failed after {claim.attempt} attempt(s): {claim.last_error}"
    return f"missed: {claim.last_error}"
