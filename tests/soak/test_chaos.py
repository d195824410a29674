"""Chaos: worker processes are killed with SIGKILL at random and replaced while they
run a job every minute for a while. Afterwards every occurrence that came due is done
exactly once in the store, nothing is left claimed, and an effect repeats only where a
takeover explains it (a kill between "effect done" and "marked done": at least once).

Marked ``soak``; bounded by CRONCLAIM_SOAK_SECONDS (default 30) so CI runs it too;
set it higher for a longer soak.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Iterator
from pathlib import Path

import pytest

from cronclaim import App, ClaimState, EventKind

ROOT = Path(__file__).resolve().parents[2]
SECONDS = float(os.environ.get("CRONCLAIM_SOAK_SECONDS", "30"))
WORKERS = 3

pytestmark = [pytest.mark.soak, pytest.mark.timeout(int(SECONDS) + 240)]


@pytest.fixture
def processes() -> Iterator[list[subprocess.Popen[bytes]]]:
    started: list[subprocess.Popen[bytes]] = []
    yield started
    for process in started:
        if process.poll() is None:
            process.kill()
        process.communicate()


def test_random_sigkills_lose_nothing_and_double_nothing_unexplained(
    database_url: str, tmp_path: Path, processes: list[subprocess.Popen[bytes]]
) -> None:
    effects = tmp_path / "effects"
    effects.mkdir()
    env = {
        **os.environ,
        "PYTHONPATH": str(ROOT),
        "CHAOS_DATABASE_URL": database_url,
        "CHAOS_EFFECTS": str(effects),
    }

    def start(*extra: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cronclaim",
                "worker",
                "--app",
                "tests.apps.chaos:app",
                "--concurrency",
                "4",
                "--poll",
                "0.5s",
                "--catch-up",
                "1m",
                "--log-level",
                "error",
                *extra,
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        processes.append(process)
        return process

    app = App(database_url)
    app.store  # noqa: B018 - the schema exists before the workers race to use it
    began = time.time()
    rng = random.Random(606)
    live = [start() for _ in range(WORKERS)]
    kills = 0
    while time.time() - began < SECONDS:
        time.sleep(rng.uniform(1.0, 3.0))
        victim = live.pop(rng.randrange(len(live)))
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        kills += 1
        live.append(start())
    time.sleep(1.5)  # let the last replacement get going before the deploy's SIGTERM
    for process in live:
        process.send_signal(signal.SIGTERM)
    for process in live:
        assert process.wait(timeout=120) == 0
    ended = time.time()

    # Leases of the killed workers expire after 3 s; then one burst drains what is left.
    time.sleep(4)
    drain = start("--burst")
    _, err = drain.communicate(timeout=180)
    assert drain.returncode == 0, err.decode()[-2000:]

    seen: dict[str, list[tuple[int, str]]] = defaultdict(list)
    for path in effects.glob("*.txt"):
        for line in path.read_text().splitlines():
            key, token, pid = line.split()
            seen[key].append((int(token), pid))

    rows = app.store.replay_candidates(
        "chaos",
        start=app.store.now().replace(year=2000),
        end=app.store.now().replace(year=2100),
    )
    try:
        assert kills >= SECONDS / 3 - 1
        assert rows, "no occurrence came due"
        due_minutes = {row.occurrence.scheduled_for for row in rows}
        assert len(due_minutes) >= int((ended - began) // 60)
        assert {row.state for row in rows} == {ClaimState.DONE}, [
            (r.occurrence.idempotency_key, r.state) for r in rows if r.state is not ClaimState.DONE
        ]
        for tick in {row.occurrence.tick for row in rows}:
            ledger = app.store.ledger("chaos", tick)
            assert (ledger.due, ledger.count(ClaimState.DONE), ledger.unrecorded) == (
                ledger.due, ledger.due, 0
            ), f"tick {tick}: {ledger}"
        for row in rows:
            key = row.occurrence.idempotency_key
            ran = seen.get(key, [])
            assert ran, f"{key} is done but its effect never happened"
            tokens = [token for token, _ in ran]
            assert len(tokens) == len(set(tokens)), f"{key}: two effects under one token {ran}"
            if len(ran) > 1:
                kinds = {e.kind for e in app.store.events(row.occurrence)}
                assert EventKind.TOOK_OVER in kinds or EventKind.RELEASED in kinds, (
                    f"{key} ran {len(ran)} times without a takeover or release"
                )
    finally:
        app.close()
