"""What both backends share: turning rows into records, deciding claimability, and
wording why an occurrence could not be claimed."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import fields
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from cronclaim.models import (
    AlertState,
    Claim,
    ClaimState,
    Event,
    EventKind,
    Occurrence,
    OutboxItem,
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
    return _claim(
        row_id,
        occurrence,
        _STATES.get(state) or ClaimState(state),
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
        ClaimState(prior_state) if prior_state is not None else None,
        prior_worker,
    )


_OCCURRENCE_FIELDS = ("job", "tenant", "scheduled_for", "local_time", "nominal")
if tuple(f.name for f in fields(Occurrence)) != _OCCURRENCE_FIELDS:  # pragma: no cover
    raise RuntimeError("Occurrence's fields changed: update with_tenant()")
_set_job, _set_tenant, _set_scheduled_for, _set_local_time, _set_nominal = (
    getattr(Occurrence, name).__set__ for name in _OCCURRENCE_FIELDS
)
_CLAIM_FIELDS = (
    "id",
    "occurrence",
    "state",
    "token",
    "attempt",
    "worker",
    "claimed_at",
    "lease_expires_at",
    "retry_at",
    "finished_at",
    "last_error",
    "replays",
    "replayed_at",
    "prior_state",
    "prior_worker",
)
if tuple(f.name for f in fields(Claim)) != _CLAIM_FIELDS:  # pragma: no cover
    raise RuntimeError("Claim's fields changed: update _claim()")
(
    _set_id,
    _set_occurrence,
    _set_state,
    _set_token,
    _set_attempt,
    _set_worker,
    _set_claimed_at,
    _set_lease_expires_at,
    _set_retry_at,
    _set_finished_at,
    _set_last_error,
    _set_replays,
    _set_replayed_at,
    _set_prior_state,
    _set_prior_worker,
) = (getattr(Claim, name).__set__ for name in _CLAIM_FIELDS)


def _claim(
    row_id: int,
    occurrence: Occurrence,
    state: ClaimState,
    token: int,
    attempt: int,
    worker: str | None,
    claimed_at: datetime | None,
    lease_expires_at: datetime | None,
    retry_at: datetime | None,
    finished_at: datetime | None,
    last_error: str | None,
    replays: int,
    replayed_at: datetime | None,
    prior_state: ClaimState | None,
    prior_worker: str | None,
) -> Claim:
    """A Claim from all its fields, in declaration order: the same record its
    constructor makes (it checks nothing), in a third of the time. A frozen dataclass's
    ``__init__`` sets each field through ``object.__setattr__``, and the store builds
    two claims per occurrence."""
    claim = object.__new__(Claim)
    _set_id(claim, row_id)
    _set_occurrence(claim, occurrence)
    _set_state(claim, state)
    _set_token(claim, token)
    _set_attempt(claim, attempt)
    _set_worker(claim, worker)
    _set_claimed_at(claim, claimed_at)
    _set_lease_expires_at(claim, lease_expires_at)
    _set_retry_at(claim, retry_at)
    _set_finished_at(claim, finished_at)
    _set_last_error(claim, last_error)
    _set_replays(claim, replays)
    _set_replayed_at(claim, replayed_at)
    _set_prior_state(claim, prior_state)
    _set_prior_worker(claim, prior_worker)
    return claim


def with_tenant(template: Occurrence, tenant: str) -> Occurrence:
    """``template``, an occurrence the constructor checked, for another tenant whose id
    the caller checked. Skipping the constructor's checks, the same for every tenant of
    a tick, saves two thirds of building an occurrence."""
    occurrence = object.__new__(Occurrence)
    _set_job(occurrence, template.job)
    _set_tenant(occurrence, tenant)
    _set_scheduled_for(occurrence, template.scheduled_for)
    _set_local_time(occurrence, template.local_time)
    _set_nominal(occurrence, template.nominal)
    return occurrence


def make_claims(rows: Iterable[Sequence[Any]], *, with_prior: bool = False) -> list[Claim]:
    """:func:`make_claim` for the rows of one query; ``with_prior``: each row ends with
    the acquisition's prior state and worker.

    The rows of one tick share its job, instant, local time, zone and tick: their
    occurrence is built (and checked) once, then copied for each other tenant, whose id
    is checked.
    """
    templates: dict[tuple[Any, ...], Occurrence] = {}
    claims: list[Claim] = []
    for row in rows:
        key = (row[1], row[3], row[4], row[5], row[6])
        template = templates.get(key)
        if template is None:
            claim = make_claim(
                row[:CLAIM_WIDTH],
                prior_state=row[CLAIM_WIDTH] if with_prior else None,
                prior_worker=row[CLAIM_WIDTH + 1] if with_prior else None,
            )
            templates[key] = claim.occurrence
        else:
            tenant = check_name(row[2], "tenant", allow_colon=True)
            claim = make_claim(
                row[:CLAIM_WIDTH],
                occurrence=with_tenant(template, tenant),
                prior_state=row[CLAIM_WIDTH] if with_prior else None,
                prior_worker=row[CLAIM_WIDTH + 1] if with_prior else None,
            )
        claims.append(claim)
    return claims


TextForms = tuple[str | None, str | None, str]


def text_forms(occurrences: Iterable[Occurrence]) -> list[TextForms]:
    """``(local_time, time_zone, tick)`` as stored, for each occurrence.

    A fan-out's occurrences share the datetime objects of a few ticks, so the texts are
    made once per object rather than once per tenant (they were two thirds of the cost
    of building a batch). The cache holds the objects it is keyed by, so no id is reused
    while it lives.
    """
    cache: dict[tuple[int, int], tuple[object, object, TextForms]] = {}
    forms: list[TextForms] = []
    for occurrence in occurrences:
        local, nominal = occurrence.local_time, occurrence.nominal
        hit = cache.get((id(local), id(nominal)))
        if hit is None:
            text = local.isoformat() if local is not None else None
            hit = (local, nominal, (text, occurrence.time_zone, occurrence.tick))
            cache[id(local), id(nominal)] = hit
        forms.append(hit[2])
    return forms


def fresh_claim(
    row_id: int,
    occurrence: Occurrence,
    *,
    worker: str,
    claimed_at: datetime,
    lease_expires_at: datetime,
) -> Claim:
    """The row a fresh claim inserts (token 1, attempt 1), without reading it back."""
    return _claim(
        row_id,
        occurrence,
        ClaimState.CLAIMED,
        1,  # token
        1,  # attempt
        worker,
        claimed_at,
        lease_expires_at,
        None,  # retry_at
        None,  # finished_at
        None,  # last_error
        0,  # replays
        None,  # replayed_at
        None,  # prior_state
        None,  # prior_worker
    )


def completed_claim(claim: Claim, finished_at: datetime) -> Claim:
    """``claim``'s row once its completion is written, without reading it back.

    Only the holder of the current token completes, and nothing but a heartbeat (the
    lease, cleared here) changes a claimed row between its acquisition and then: the
    acquisition ``claim`` came from describes every other column.
    """
    return _claim(
        claim.id,
        claim.occurrence,
        ClaimState.DONE,
        claim.token,
        claim.attempt,
        claim.worker,
        claim.claimed_at,
        None,  # lease_expires_at
        None,  # retry_at
        finished_at,
        None,  # last_error
        claim.replays,
        claim.replayed_at,
        None,  # prior_state
        None,  # prior_worker
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


def _same(value: Any) -> Any:
    return value


def make_alert_state(values: Sequence[Any], instant: Callable[[Any], Any] = _same) -> AlertState:
    """An alert row; ``instant`` turns the backend's stored instants into datetimes."""
    key, rule, job, state, severity, summary, details, opened, updated, resolved = values
    return AlertState(
        key=key,
        rule=rule,
        job=job,
        state=state,
        severity=severity,
        summary=summary,
        details=details,
        opened_at=instant(opened),
        updated_at=instant(updated),
        resolved_at=None if resolved is None else instant(resolved),
    )


def make_outbox_item(values: Sequence[Any], instant: Callable[[Any], Any] = _same) -> OutboxItem:
    """An outbox row: the six columns of a due delivery, or all ten of a listing."""
    item_id, key, action, sink, payload = values[:5]
    if len(values) == 6:
        return OutboxItem(
            id=item_id,
            alert_key=key,
            action=action,
            sink=sink,
            payload=payload,
            attempts=values[5],
        )
    state, attempts, created, sent, error = values[5:]
    return OutboxItem(
        id=item_id,
        alert_key=key,
        action=action,
        sink=sink,
        payload=payload,
        state=state,
        attempts=attempts,
        created_at=None if created is None else instant(created),
        sent_at=None if sent is None else instant(sent),
        last_error=error,
    )
