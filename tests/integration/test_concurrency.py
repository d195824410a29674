"""Invariant 1, one winner: four OS processes race for the same 5,000 occurrences, and
every occurrence is won exactly once, on each backend: fresh claims in batches, takeovers
of expired leases in batches, and fresh claims one by one."""

from __future__ import annotations

import json
import multiprocessing
from pathlib import Path
from typing import Any

import pytest

from tests.dbtools import backend_of, sql
from tests.integration.processes import RACE_JOB, race

COUNT = 5000
RACERS = 4
CHUNK = 500
TIMEOUT = 120  # seconds for the whole race; normally a few

Wins = dict[str, list[str]]  # racer -> tenants it won


def without_commit_flush(database_url: str) -> str:
    """The URL with commits not waiting for the disk: a race is about locking and
    visibility, which this leaves alone; durability is the crash test's business."""
    if backend_of(database_url) == "sqlite":
        return database_url + "?synchronous=normal"
    return database_url + "?options=-c%20synchronous_commit%3Doff"


def run_race(database_url: str, tmp_path: Path, mode: str, *, rounds: int = 1) -> list[Wins]:
    """Run the racers (each in its own shuffled order); the tenants each won, by round."""
    racers_url = without_commit_flush(database_url)
    ctx = multiprocessing.get_context("spawn")
    start = ctx.Barrier(RACERS)
    outputs = {f"racer-{n}": tmp_path / f"racer-{n}.json" for n in range(RACERS)}
    processes = [
        ctx.Process(
            target=race,
            # Different chunk sizes make the racers' batches overlap partially.
            args=(racers_url, worker, mode, COUNT, CHUNK + 100 * n, n, start, str(out), rounds),
            name=worker,
        )
        for n, (worker, out) in enumerate(outputs.items())
    ]
    for p in processes:
        p.start()
    try:
        for p in processes:
            p.join(timeout=TIMEOUT)
    finally:
        for p in processes:
            if p.is_alive():  # pragma: no cover - only when the race hangs
                p.kill()
                p.join()
    assert [p.exitcode for p in processes] == [0] * RACERS
    reports: dict[str, list[dict[str, Any]]] = {
        worker: json.loads(out.read_text()) for worker, out in outputs.items()
    }
    if mode == "single":
        # Thousands of calls each: every racer was still claiming when the last began.
        # (A batch round can be over in milliseconds, and SQLite's lock is not fair: one
        # racer may legitimately win every batch.)
        results = [report[0] for report in reports.values()]
        assert max(r["began"] for r in results) < min(r["ended"] for r in results)
    return [
        {worker: report[round_]["won"] for worker, report in reports.items()}
        for round_ in range(rounds)
    ]


def assert_reported_wins_are_disjoint_and_complete(wins: Wins) -> None:
    reported = [tenant for won in wins.values() for tenant in won]
    assert len(reported) == COUNT, "the racers' reported wins overlap or miss some"
    assert sorted(reported) == [f"t{i:05d}" for i in range(COUNT)]


def assert_rows_held_by_the_reported_winners(database_url: str, wins: Wins, token: int) -> None:
    rows = sql(
        database_url,
        f"SELECT tenant, worker, token, state FROM cronclaim_claims WHERE job = '{RACE_JOB}'",
    )
    assert len(rows) == COUNT
    assert {(t, state) for _, _, t, state in rows} == {(token, "claimed")}
    holder = {tenant: worker for tenant, worker, _, _ in rows}
    for worker, won in wins.items():
        assert all(holder[tenant] == worker for tenant in won)


def events_per_claim(database_url: str, kind: str, token: int) -> set[int]:
    """The set of per-claim counts of ``kind`` events carrying ``token``."""
    counts = sql(
        database_url,
        "SELECT c.id, count(e.id) FROM cronclaim_claims AS c "
        "LEFT JOIN cronclaim_events AS e "
        f"  ON e.claim_id = c.id AND e.kind = '{kind}' AND e.token = {token} "
        f"WHERE c.job = '{RACE_JOB}' GROUP BY c.id",
    )
    assert len(counts) == COUNT
    return {n for _, n in counts}


def test_racing_batch_acquires_and_takeovers_win_each_occurrence_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    fresh, takeover = run_race(database_url, tmp_path, "batch", rounds=2)

    assert_reported_wins_are_disjoint_and_complete(fresh)
    assert events_per_claim(database_url, "acquired", token=1) == {1}

    assert_reported_wins_are_disjoint_and_complete(takeover)
    assert_rows_held_by_the_reported_winners(database_url, takeover, token=2)
    assert events_per_claim(database_url, "took_over", token=2) == {1}
    assert events_per_claim(database_url, "lease_expired", token=1) == {1}
    assert sorted(
        sql(database_url, "SELECT kind, count(*) FROM cronclaim_events GROUP BY kind")
    ) == [("acquired", COUNT), ("lease_expired", COUNT), ("took_over", COUNT)]


def test_racing_single_acquires_win_each_occurrence_exactly_once(
    database_url: str, tmp_path: Path
) -> None:
    [wins] = run_race(database_url, tmp_path, "single")
    assert_reported_wins_are_disjoint_and_complete(wins)
    assert_rows_held_by_the_reported_winners(database_url, wins, token=1)
    assert events_per_claim(database_url, "acquired", token=1) == {1}
    assert sql(database_url, "SELECT count(*) FROM cronclaim_events") == [(COUNT,)]


pytestmark = [pytest.mark.slow, pytest.mark.timeout(TIMEOUT * 2)]
