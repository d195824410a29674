"""The pure logic both stores share: what is claimable, how a refusal is worded, how long
an error may be."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from cronclaim import Claim, ClaimState, InvalidInput, Occurrence
from cronclaim.store import parse_database_url, redact
from cronclaim.store.rows import (
    MAX_ERROR_LENGTH,
    check_call,
    clip_error,
    is_claimable,
    refusal_reason,
)

NOW = datetime(2026, 5, 19, 5, 0, tzinfo=UTC)
US = timedelta(microseconds=1)


def claim(state: ClaimState, **change: object) -> Claim:
    fields: dict[str, object] = {
        "id": 1,
        "occurrence": Occurrence(job="j", tenant="t", scheduled_for=NOW),
        "state": state,
        "token": 1,
        "attempt": 1,
        "worker": "worker-a",
        "claimed_at": NOW,
        "lease_expires_at": None,
        "retry_at": None,
        "finished_at": None,
        "last_error": None,
    }
    fields.update(change)
    return Claim(**fields)  # type: ignore[arg-type]


def test_claimed_row_is_claimable_from_the_instant_its_lease_expires() -> None:
    held = claim(ClaimState.CLAIMED, lease_expires_at=NOW)
    assert not is_claimable(held, NOW - US)
    assert is_claimable(held, NOW)


def test_released_row_is_claimable_from_its_retry_at() -> None:
    released = claim(ClaimState.RELEASED, retry_at=NOW)
    assert not is_claimable(released, NOW - US)
    assert is_claimable(released, NOW)


@pytest.mark.parametrize("state", [ClaimState.DONE, ClaimState.FAILED, ClaimState.MISSED])
def test_final_rows_are_never_claimable(state: ClaimState) -> None:
    assert not is_claimable(claim(state, finished_at=NOW), NOW + timedelta(days=3650))


def test_refusal_of_a_held_claim_names_holder_lease_end_and_attempt() -> None:
    reason = refusal_reason(claim(ClaimState.CLAIMED, lease_expires_at=NOW, attempt=3))
    assert reason == f"held by worker-a until {NOW.isoformat()} (attempt 3)"


def test_refusal_of_a_done_claim_says_when_and_by_whom() -> None:
    reason = refusal_reason(claim(ClaimState.DONE, finished_at=NOW))
    assert reason == f"already done at {NOW.isoformat()} by worker-a"


def test_refusal_of_a_released_claim_names_retry_time_and_error() -> None:
    reason = refusal_reason(claim(ClaimState.RELEASED, retry_at=NOW, last_error="HTTP 503"))
    assert reason == f"released after attempt 1, retry not before {NOW.isoformat()}: HTTP 503"


def test_refusal_of_a_failed_claim_names_attempts_and_error() -> None:
    reason = refusal_reason(claim(ClaimState.FAILED, attempt=5, last_error="gone"))
    assert reason == "failed after 5 attempt(s): gone"


def test_refusal_of_a_missed_claim_gives_the_reason() -> None:
    assert refusal_reason(claim(ClaimState.MISSED, last_error="window closed")) == (
        "missed: window closed"
    )


def test_errors_within_the_bound_are_kept_whole() -> None:
    assert clip_error(None) is None
    assert clip_error("") == ""
    text = "e" * MAX_ERROR_LENGTH
    assert clip_error(text) == text


def test_errors_over_the_bound_are_clipped_and_marked() -> None:
    clipped = clip_error("e" * (MAX_ERROR_LENGTH + 1))
    assert clipped is not None
    assert len(clipped) <= MAX_ERROR_LENGTH
    assert clipped.endswith("[truncated]")


def test_check_call_refuses_a_bad_worker_or_lease() -> None:
    with pytest.raises(InvalidInput, match="worker id is empty"):
        check_call("", timedelta(seconds=1))
    with pytest.raises(InvalidInput, match="lease must be positive"):
        check_call("worker-a", timedelta(0))
    check_call("host:123:abc", timedelta(seconds=1))


# -- database URLs (the parser alone; the contract suite opens them) -------------------------


@pytest.mark.parametrize(
    ("url", "backend", "target"),
    [
        ("sqlite:///claims.db", "sqlite", "claims.db"),
        ("sqlite:////var/lib/cronclaim/claims.db", "sqlite", "/var/lib/cronclaim/claims.db"),
        ("SQLITE:///claims.db", "sqlite", "claims.db"),
        ("postgresql://u@h:5432/db", "postgresql", "postgresql://u@h:5432/db"),
        ("postgres://u@h/db", "postgresql", "postgres://u@h/db"),
        ("postgresql://h1:5432,h2:5433/db", "postgresql", "postgresql://h1:5432,h2:5433/db"),
        (
            "postgresql:///db?host=/run/postgresql",
            "postgresql",
            "postgresql:///db?host=/run/postgresql",
        ),
    ],
)
def test_database_urls_name_backend_and_target(url: str, backend: str, target: str) -> None:
    parsed = parse_database_url(url)
    assert (parsed.backend, parsed.target) == (backend, target)


def test_sqlite_url_options_are_kept() -> None:
    parsed = parse_database_url("sqlite:///claims.db?synchronous=normal&busy_timeout=0.2")
    assert parsed.options == {"synchronous": "normal", "busy_timeout": "0.2"}


def test_redact_hides_the_password_only() -> None:
    assert (
        redact("postgresql://app:hunter2@db:5432/claims") == "postgresql://app:***@db:5432/claims"
    )
    assert redact("postgresql://app@db/claims") == "postgresql://app@db/claims"
