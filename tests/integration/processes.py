"""Code that runs in child processes of the integration tests (spawned, so it must be
importable on its own and light to import)."""

from __future__ import annotations

import contextlib
import json
import random
import time
from datetime import UTC, datetime, timedelta
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import cronclaim
from cronclaim import NotAcquired, Occurrence
from cronclaim.clock import VirtualClock

T0 = datetime(2026, 5, 18, 5, 0, tzinfo=UTC)
RACE_JOB = "race"
CRASH_JOB = "inventory-predict"


def race_occurrences(count: int) -> list[Occurrence]:
    return [Occurrence(job=RACE_JOB, tenant=f"t{i:05d}", scheduled_for=T0) for i in range(count)]


def race(
    database_url: str,
    worker: str,
    mode: str,
    count: int,
    chunk: int,
    seed: int,
    start: Any,
    out: str,
    rounds: int = 1,
) -> None:
    """Try to claim every one of ``count`` occurrences, ``rounds`` times; write to ``out``
    the tenants won in each round, with when the round began and ended.

    ``mode`` is ``batch`` (acquire_batch in chunks) or ``single`` (one acquire each);
    ``seed`` shuffles this racer's order. ``start`` is a barrier shared by all racers,
    passed once every store is open and again before each later round. With more than
    one round the racers share a virtual clock that jumps an hour per round, so every
    lease won in one round has expired in the next: later rounds race for takeovers.
    Single rounds use the database's own clock.
    """
    clock = VirtualClock(T0) if rounds > 1 else None
    app = cronclaim.App(database_url, worker_id=worker, clock=clock)
    try:
        store = app.store
        occurrences = race_occurrences(count)
        random.Random(seed).shuffle(occurrences)
        lease = timedelta(minutes=30)
        results = []
        for round_ in range(rounds):
            if clock is not None:
                clock.set(T0 + timedelta(hours=round_))
            start.wait(timeout=120)
            began = time.time()
            won: list[str] = []
            if mode == "batch":
                for i in range(0, count, chunk):
                    batch = occurrences[i : i + chunk]
                    won.extend(
                        c.occurrence.tenant
                        for c in store.acquire_batch(batch, worker=worker, lease=lease)
                    )
            else:
                for occurrence in occurrences:
                    with contextlib.suppress(NotAcquired):
                        claim = store.acquire(occurrence, worker=worker, lease=lease)
                        won.append(claim.occurrence.tenant)
            results.append({"won": won, "began": began, "ended": time.time()})
        Path(out).write_text(json.dumps(results), encoding="utf-8")
    finally:
        app.close()


def hold_until_killed(database_url: str, lease_seconds: float, conn: Connection) -> None:
    """Claim the crash occurrence, hand the claim to the parent, then sleep (to be killed)."""
    app = cronclaim.App(database_url, worker_id="doomed-worker")
    with app.claim(CRASH_JOB, "aitor", T0, lease=timedelta(seconds=lease_seconds)) as run:
        conn.send(run.claim)
        conn.close()
        time.sleep(600)
    raise SystemExit("not killed")  # pragma: no cover


def take_over(database_url: str, conn: Connection, deadline_seconds: float) -> None:
    """Poll until the crash occurrence can be taken over; send back the claim won."""
    app = cronclaim.App(database_url, worker_id="rescuer")
    occurrence = Occurrence(job=CRASH_JOB, tenant="aitor", scheduled_for=T0)
    deadline = time.monotonic() + deadline_seconds
    try:
        while True:
            try:
                claim = app.store.acquire(occurrence, worker="rescuer", lease=timedelta(minutes=5))
            except NotAcquired:
                if time.monotonic() > deadline:
                    conn.send(None)
                    return
                time.sleep(0.05)
                continue
            conn.send(claim)
            return
    finally:
        conn.close()
        app.close()
