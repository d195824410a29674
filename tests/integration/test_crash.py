"""Invariants 2 and 4 across a real crash: a process holding a claim is killed with
SIGKILL; once its lease runs out another process takes the occurrence over, and the dead
holder's late completion is refused by its stale fencing token and recorded."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time

import pytest

import cronclaim
from cronclaim import Claim, ClaimState, EventKind, Occurrence, StaleClaim
from tests.integration.processes import CRASH_JOB, T0, hold_until_killed, take_over

LEASE_SECONDS = 1.0
OCC = Occurrence(job=CRASH_JOB, tenant="aitor", scheduled_for=T0)
WAIT = 60  # seconds: a bound on steps that normally take one or two


def wait_for_heartbeat(database_url: str, claim: Claim) -> bool:
    assert claim.lease_expires_at is not None
    app = cronclaim.App(database_url, worker_id="observer")
    try:
        deadline = time.monotonic() + WAIT
        while time.monotonic() < deadline:
            row = app.store.get(OCC)
            assert row is not None
            if row.lease_expires_at is not None and row.lease_expires_at > claim.lease_expires_at:
                return True
            time.sleep(0.05)
        return False
    finally:
        app.close()


def test_killed_holder_is_taken_over_after_its_lease_and_its_late_complete_is_refused(
    database_url: str,
) -> None:
    ctx = multiprocessing.get_context("spawn")

    # 1. A worker claims the occurrence, hands us its claim, and is killed mid-run.
    parent_end, child_end = ctx.Pipe(duplex=False)
    holder = ctx.Process(target=hold_until_killed, args=(database_url, LEASE_SECONDS, child_end))
    holder.start()
    child_end.close()
    try:
        assert parent_end.poll(WAIT), "the holder never claimed the occurrence"
        dead_claim: Claim = parent_end.recv()
        # It was alive and heart-beating before the kill: its lease moved forward.
        assert wait_for_heartbeat(database_url, dead_claim), "the holder never heart-beat"
    finally:
        assert holder.pid is not None
        os.kill(holder.pid, signal.SIGKILL)
        holder.join(WAIT)
        parent_end.close()
    assert holder.exitcode == -signal.SIGKILL
    assert (dead_claim.worker, dead_claim.token, dead_claim.state) == (
        "doomed-worker",
        1,
        ClaimState.CLAIMED,
    )

    observer = cronclaim.App(database_url, worker_id="observer")
    try:
        store = observer.store
        # Killed while holding: the row still says so (nothing released it) ...
        orphan = store.get(OCC)
        assert orphan is not None
        assert (orphan.state, orphan.worker, orphan.token) == (
            ClaimState.CLAIMED,
            "doomed-worker",
            1,
        )
        assert orphan.lease_expires_at is not None

        # 2. ... until its lease runs out and another process takes it over.
        parent_end, child_end = ctx.Pipe(duplex=False)
        rescuer = ctx.Process(target=take_over, args=(database_url, child_end, WAIT))
        rescuer.start()
        child_end.close()
        try:
            assert parent_end.poll(WAIT), "the rescuer never answered"
            rescued: Claim | None = parent_end.recv()
        finally:
            rescuer.join(WAIT)
            parent_end.close()
        assert rescuer.exitcode == 0
        assert rescued is not None, "the occurrence was never taken over"
        assert (rescued.worker, rescued.token, rescued.attempt) == ("rescuer", 2, 2)
        assert rescued.took_over
        assert rescued.prior_worker == "doomed-worker"

        events = store.events(OCC)
        assert [e.kind for e in events] == [
            EventKind.ACQUIRED,
            EventKind.LEASE_EXPIRED,
            EventKind.TOOK_OVER,
        ]
        # Not before the lease (as last extended by the dead holder's heartbeats) expired.
        assert events[2].at >= orphan.lease_expires_at

        # 3. The dead holder's late completion arrives: refused, and recorded.
        with pytest.raises(StaleClaim) as caught:
            store.complete(dead_claim)
        assert caught.value.token == 1
        assert caught.value.current is not None
        assert caught.value.current.worker == "rescuer"
        rejected = store.events(OCC)[-1]
        assert (rejected.kind, rejected.worker, rejected.token, rejected.detail) == (
            EventKind.STALE_REJECTED,
            "doomed-worker",
            1,
            "complete",
        )
        current = store.get(OCC)
        assert current is not None
        assert (current.state, current.worker, current.token) == (
            ClaimState.CLAIMED,
            "rescuer",
            2,
        )
        # The rescuer's run settles the occurrence; the dead one could not.
        assert store.complete(rescued).state is ClaimState.DONE
    finally:
        observer.close()


pytestmark = [pytest.mark.slow, pytest.mark.timeout(WAIT * 4)]
