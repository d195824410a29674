"""``cronclaim.testing``: the fault-injection sweep finds the story's bugs, and passes a
job that handles every fault; plus ``inject`` and ``capture_events`` on their own."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from cronclaim import App, ClaimState
from cronclaim.guard import Run
from cronclaim.models import Occurrence, Tenant
from cronclaim.testing import (
    InjectedTimeout,
    VirtualClock,
    capture_events,
    inject,
    sweep,
)
from cronclaim.worker import Worker
from tests.apps.sweep_apps import doubling_app, good_app, leaky_app, outbox_fixture
from tests.conftest import truncate_postgres

MONDAY = datetime(2026, 5, 18, 4, 0, tzinfo=UTC)  # 06:00 in Bilbao


def fresh(database_url: str) -> Any:
    """A database per sweep case: a SQLite file in the case, or the emptied test server."""
    if database_url.startswith("sqlite"):
        return None

    def url(directory: Path) -> str:
        truncate_postgres(database_url)
        return database_url

    return url


def test_sweep_passes_a_job_that_keys_its_effects_and_lets_faults_propagate(
    tmp_path: Path,
) -> None:
    report = sweep(good_app, start=MONDAY, fixture=outbox_fixture, workdir=tmp_path)
    report.assert_clean()
    [job] = report.jobs
    assert job.calls == ["menu", "send", "send"]
    # menu, send #1, send #2; three kinds; before and after each.
    assert len(job.cases) == 3 * 3 * 2
    for case in job.cases:
        assert case.state is ClaimState.DONE
        assert case.attempts == 2, case.summary()
        assert sorted(case.effects) == ["aitor cepes", "aitor txakoli"]
    assert "ok" in report.as_text()


def test_a_killed_worker_process_is_taken_over_on_both_backends(
    database_url: str, tmp_path: Path
) -> None:
    report = sweep(
        good_app,
        start=MONDAY,
        fixture=outbox_fixture,
        kinds=("kill",),
        positions=("after",),
        calls="first",
        database=fresh(database_url),
        workdir=tmp_path,
    )
    report.assert_clean()
    [job] = report.jobs
    assert [str(c.injection) for c in job.cases] == ["kill after menu", "kill after send #1/2"]
    for case in job.cases:
        assert case.history == ["acquired", "lease_expired", "took_over", "completed"]


def test_sweep_reports_the_storys_leaky_claim_pattern(tmp_path: Path) -> None:
    report = sweep(
        leaky_app,
        start=MONDAY,
        fixture=outbox_fixture,
        kinds=("timeout", "kill"),
        positions=("before",),
        workdir=tmp_path,
    )
    assert not report.clean
    [job] = report.jobs
    timeout, kill = job.cases
    # The swallowed timeout: attempt 1 "succeeds", nothing is retried, the alert is lost.
    assert any("no retry" in p and "swallowed" in p for p in timeout.problems)
    assert any(p.startswith("lost: aitor cepes") for p in timeout.problems)
    # The killed worker: cronclaim retries, but the job's own claim row skips the retry.
    assert kill.attempts == 2
    assert any(p.startswith("lost: aitor cepes") for p in kill.problems)
    with pytest.raises(AssertionError, match="lost: aitor cepes"):
        report.assert_clean()


def test_sweep_reports_an_effect_doubled_by_a_retry_after_the_call(tmp_path: Path) -> None:
    report = sweep(
        doubling_app,
        start=MONDAY,
        fixture=outbox_fixture,
        kinds=("kill", "exception"),
        positions=("after",),
        workdir=tmp_path,
    )
    [job] = report.jobs
    assert len(job.cases) == 2
    for case in job.cases:
        assert case.state is ClaimState.DONE
        assert any("doubled: aitor cepes (2 times)" in p for p in case.problems), case.problems


def test_sweep_says_when_a_job_makes_no_call_through_run_call(tmp_path: Path) -> None:
    def silent_app(env: Any, clock: VirtualClock) -> App:
        app = App(env.database_url, clock=clock)
        app.job("report", cron="0 7 * * *")(lambda tenant, run: None)
        return app

    report = sweep(silent_app, start=MONDAY, kinds=("exception",), workdir=tmp_path)
    [job] = report.jobs
    assert job.cases == []
    assert "nothing to inject" in job.notes[0]


def test_inject_and_capture_events_around_one_run(tmp_path: Path) -> None:
    clock = VirtualClock(MONDAY)
    app = App(f"sqlite:///{tmp_path / 'claims.db'}", clock=clock, worker_id="w")
    sent: list[int] = []

    @app.job("notify", cron="0 7 * * *", tenants=lambda: [Tenant(id="aitor", time_zone="UTC")],
             window="1h")
    def notify(tenant: Tenant, run: Run) -> None:
        run.call("send", sent.append, run.attempt)

    with capture_events() as events, inject("send", "timeout", position="after") as injected:
        asyncio.run(Worker(app, catch_up="1s").run_until(MONDAY + timedelta(hours=4)))
    app.close()

    assert injected.fired == 1
    assert sent == [1, 2]  # the first send happened, its answer was "lost", the retry re-sent
    calls = [(e["phase"], e["attempt"]) for e in events if e["event"] == "call"]
    assert calls == [("before", 1), ("after", 1), ("before", 2), ("after", 2)]
    claim = app.store.get(
        Occurrence(job="notify", tenant="aitor", scheduled_for=MONDAY + timedelta(hours=3))
    )
    assert claim is not None and claim.state is ClaimState.DONE
    assert "InjectedTimeout" in (app.store.events(claim.occurrence)[1].error or "")
    assert issubclass(InjectedTimeout, TimeoutError)
