"""The incident that started the project: a side effect that throws inside the claim.

In the seed, inference timed out, the claim was never released, and every later day was
skipped as "already claimed". Under the guard the claim must end released, and the next
attempt after its backoff must acquire and complete it.
"""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.conftest import T0, AppFactory

from cronclaim import ClaimState, EventKind, NotAcquired


def test_timeout_inside_guard_releases_claim_and_retry_completes(
    make_app: AppFactory, clock
) -> None:
    app = make_app("worker-a")

    with pytest.raises(TimeoutError), app.claim(
        "inventory-predict", "aitor", T0, retry_after=timedelta(seconds=30)
    ):
        raise TimeoutError("inference did not answer within 5 s")

    occurrence = app.occurrence("inventory-predict", "aitor", T0)
    claim = app.store.get(occurrence)
    assert claim is not None
    assert claim.state is ClaimState.RELEASED
    assert claim.last_error == "TimeoutError: inference did not answer within 5 s"

    # Before the backoff has passed, nobody may take it (no hot retry loop) ...
    with pytest.raises(NotAcquired, match="retry not before"), app.claim(
        "inventory-predict", "aitor", T0
    ):
        pytest.fail("the body must not run while the backoff is pending")

    # ... and after it, the next attempt acquires and completes.
    clock.advance(timedelta(seconds=31))
    retried = make_app("worker-b")
    with retried.claim("inventory-predict", "aitor", T0) as run:
        assert run.attempt == 2
    claim = app.store.get(occurrence)
    assert claim is not None and claim.state is ClaimState.DONE
    kinds = [e.kind for e in app.store.events(occurrence)]
    assert kinds == [
        EventKind.ACQUIRED,
        EventKind.RELEASED,
        EventKind.ACQUIRED,
        EventKind.COMPLETED,
    ]


def test_next_day_is_not_blocked_by_a_failed_day(make_app: AppFactory) -> None:
    """The seed's five lost days: a failure on Monday must not touch Tuesday."""
    app = make_app()
    with pytest.raises(TimeoutError), app.claim("inventory-predict", "aitor", T0):
        raise TimeoutError
    tuesday = T0 + timedelta(days=1)
    outcome = app.run_once("inventory-predict", "aitor", tuesday, lambda run: "pushed")
    assert outcome.status == "done"
    assert outcome.value == "pushed"
