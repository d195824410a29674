"""Workers as real OS processes (the `cronclaim worker` command) on both backends:
several workers sharing a tick, a worker killed mid-run, and a graceful stop."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from cronclaim import App, EventKind
from cronclaim.models import Occurrence

ROOT = Path(__file__).resolve().parents[2]


def current_tick() -> datetime:
    """A tick in the current minute, far enough from its end to be stable."""
    now = datetime.now(UTC)
    if now.second > 50:
        time.sleep(61 - now.second)
        now = datetime.now(UTC)
    return now.replace(second=0, microsecond=0)


class Fleet:
    def __init__(self, database_url: str, tmp: Path, **env: str) -> None:
        self.database_url = database_url
        self.effects = tmp / "effects"
        self.effects.mkdir()
        self.tick = current_tick()
        self.env = {
            **os.environ,
            "PYTHONPATH": str(ROOT),
            "FLEET_DATABASE_URL": database_url,
            "FLEET_EFFECTS": str(self.effects),
            "FLEET_CRON": f"{self.tick.minute} {self.tick.hour} * * *",
            **env,
        }
        self.processes: list[subprocess.Popen[bytes]] = []

    def start(self, *args: str) -> subprocess.Popen[bytes]:
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "cronclaim",
                "worker",
                "--app",
                "tests.apps.fleet:app",
                "--catch-up",
                "10m",
                "--log-level",
                "warning",
                *args,
            ],
            cwd=ROOT,
            env=self.env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        self.processes.append(process)
        return process

    def effects_by_process(self) -> dict[str, list[str]]:
        return {
            path.stem: [line.split()[0] for line in path.read_text().splitlines()]
            for path in self.effects.glob("*.txt")
        }

    def ledger(self) -> Counter[str]:
        app = App(self.database_url)
        try:
            ledger = app.store.ledger("fleet", self.tick.strftime("%Y-%m-%dT%H:%M"))
            return Counter({state.value: n for state, n in ledger.counts.items()})
        finally:
            app.close()

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.kill()
            process.communicate()  # reaps it and closes its pipes


@pytest.fixture
def fleet_factory(database_url: str, tmp_path: Path) -> Iterator[Callable[..., Fleet]]:
    fleets: list[Fleet] = []

    def make(**env: str) -> Fleet:
        fleet = Fleet(database_url, tmp_path, **env)
        fleets.append(fleet)
        return fleet

    yield make
    for fleet in fleets:
        fleet.stop_all()


def wait_for(predicate: Callable[[], bool], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_three_workers_share_one_tick_of_2000_tenants_each_exactly_once(
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory(FLEET_TENANTS="2000", FLEET_WORK_SECONDS="0.01", FLEET_LEASE="3s")
    workers = [fleet.start("--burst", "--concurrency", "4") for _ in range(3)]
    for worker in workers:
        _, err = worker.communicate(timeout=240)
        assert worker.returncode == 0, err.decode()

    effects = fleet.effects_by_process()
    ran = Counter(tenant for lines in effects.values() for tenant in lines)
    assert len(ran) == 2000
    assert set(ran.values()) == {1}, [t for t, n in ran.items() if n > 1][:5]
    assert len(effects) == 3, "every worker should have taken part"
    assert min(len(lines) for lines in effects.values()) >= 100, {
        pid: len(lines) for pid, lines in effects.items()
    }
    assert fleet.ledger() == Counter({"done": 2000})


def test_worker_killed_mid_run_is_taken_over_after_its_lease(
    fleet_factory: Callable[..., Fleet], tmp_path: Path, database_url: str
) -> None:
    mark = tmp_path / "hanging"
    fleet = fleet_factory(
        FLEET_TENANTS="3", FLEET_HANG_TENANT="t00001", FLEET_LEASE="2s", FLEET_MARK=str(mark)
    )
    first = fleet.start("--poll", "0.5s")
    wait_for(mark.exists, 60, "the hanging run to start")
    # The two quick tenants must be marked done first: a kill between "effect done" and
    # "marked done" rightly runs them again (at least once), which is not this test's point.
    wait_for(lambda: fleet.ledger().get("done", 0) == 2, 60, "the quick runs to complete")
    victim_pid = int(mark.read_text())
    first.send_signal(signal.SIGKILL)
    first.wait(timeout=10)
    killed_at = time.monotonic()

    survivor = fleet.start("--poll", "0.5s")
    wait_for(lambda: fleet.ledger().get("done", 0) == 3, 60, "the takeover to complete")
    assert time.monotonic() - killed_at >= 1.0  # not before the lease could expire
    survivor.send_signal(signal.SIGTERM)
    assert survivor.wait(timeout=30) == 0

    app = App(database_url)
    try:
        occurrence = Occurrence(job="fleet", tenant="t00001", scheduled_for=fleet.tick)
        events = app.store.events(occurrence)
    finally:
        app.close()
    kinds = [e.kind for e in events]
    assert kinds == [
        EventKind.ACQUIRED,
        EventKind.LEASE_EXPIRED,
        EventKind.TOOK_OVER,
        EventKind.COMPLETED,
    ]
    assert events[0].worker != events[2].worker
    assert str(victim_pid) in (events[0].worker or "")
    assert fleet.ledger() == Counter({"done": 3})
    ran = Counter(t for lines in fleet.effects_by_process().values() for t in lines)
    assert ran == Counter({"t00000": 1, "t00001": 1, "t00002": 1})


def test_sigterm_releases_running_work_and_exits_zero(
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory(FLEET_TENANTS="6", FLEET_WORK_SECONDS="20")
    worker = fleet.start("--concurrency", "2", "--grace", "0.5s", "--poll", "0.5s")
    wait_for(lambda: fleet.ledger().get("claimed", 0) == 2, 60, "two runs to start")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=30)
    assert worker.returncode == 0, err.decode()

    states = fleet.ledger()
    assert "claimed" not in states
    assert states == Counter({"released": 2, "pending": 4})


def test_sigterm_lets_running_work_finish_within_the_grace_period(
    fleet_factory: Callable[..., Fleet],
) -> None:
    fleet = fleet_factory(FLEET_TENANTS="6", FLEET_WORK_SECONDS="1.5")
    worker = fleet.start("--concurrency", "2", "--grace", "30s", "--poll", "0.5s")
    wait_for(lambda: fleet.ledger().get("claimed", 0) == 2, 60, "two runs to start")
    worker.send_signal(signal.SIGTERM)
    _, err = worker.communicate(timeout=60)
    assert worker.returncode == 0, err.decode()
    states = fleet.ledger()
    assert "claimed" not in states
    assert states["done"] >= 2
    assert states["done"] + states["pending"] == 6
