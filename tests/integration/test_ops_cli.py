"""The operations commands as a user runs them (`python -m cronclaim ...` in a subprocess),
on both backends: audit exit codes, replay dry runs that change nothing, status,
schedule, check; plus metrics over HTTP and JSON-lines beacons from a real worker."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import os
import socket
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest

from cronclaim import App, ClaimState, EventKind, SystemClock, VirtualClock
from cronclaim.jobs import Backoff
from cronclaim.metrics import JsonLinesFormatter, Metrics
from cronclaim.models import Occurrence, Tenant
from cronclaim.worker import Worker
from tests.conftest import AppFactory

ROOT = Path(__file__).resolve().parents[2]
MONDAY = datetime(2026, 5, 18, tzinfo=UTC)


def cronclaim(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "cronclaim", *args],
        check=False,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})},
        capture_output=True,
        text=True,
        timeout=120,
    )


def snapshot(database_url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every cronclaim table, to compare before and after."""
    tables = [
        "cronclaim_claims",
        "cronclaim_events",
        "cronclaim_jobs",
        "cronclaim_ticks",
        "cronclaim_alerts",
        "cronclaim_alert_outbox",
    ]
    if database_url.startswith("sqlite"):
        import sqlite3

        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}
    with psycopg.connect(database_url) as conn:
        return {t: conn.execute(f"SELECT * FROM {t} ORDER BY 1, 2").fetchall() for t in tables}


def failing_week(app: App, clock: VirtualClock) -> None:
    """Monday to Wednesday of a job for three tenants; 'bad' fails every day."""
    clock.set(MONDAY + timedelta(hours=6))

    @app.job(
        "report",
        cron="0 7 * * *",
        window="3h",
        tenants=lambda: [Tenant(id=t) for t in ("good", "bad", "slow")],
        retry=Backoff(first=60, factor=1, max_attempts=2),
    )
    def report(tenant: Tenant, run: Any) -> None:
        if tenant.id == "bad":
            raise ConnectionError("warehouse refused the connection")

    asyncio.run(Worker(app, catch_up="1m").run_until(MONDAY + timedelta(days=2, hours=8)))


def test_audit_exits_0_when_clean_1_when_it_finds_something_2_on_error(
    make_app: AppFactory, clock: VirtualClock, database_url: str
) -> None:
    app = make_app()
    app.store  # noqa: B018 - creates the schema
    clean = cronclaim("audit", "--database", database_url)
    assert clean.returncode == 0, clean.stderr
    assert "clean" in clean.stdout

    failing_week(app, clock)
    found = cronclaim("audit", "--database", database_url, "--since", "2026-05-01T00:00Z", "--json")
    assert found.returncode == 1, found.stderr
    report = json.loads(found.stdout)
    assert report["counts"]["failed"] == 3
    assert {f["tenant"] for f in report["findings"]["failed"]} == {"bad"}
    assert report["counts"]["repeated_error"] == 3
    text = cronclaim("audit", "--database", database_url, "--since", "2026-05-01T00:00Z")
    assert text.returncode == 1
    assert "warehouse refused the connection" in text.stdout

    broken = cronclaim("audit", "--database", "mysql://nowhere/x")
    assert broken.returncode == 2
    assert broken.stderr.count("\n") == 1
    assert "unsupported database URL scheme 'mysql'" in broken.stderr


def test_audit_older_than_finds_claims_held_too_long_like_the_seed_query(
    make_app: AppFactory, database_url: str
) -> None:
    held_since = datetime.now(UTC) - timedelta(hours=2)
    app = make_app(clock_=VirtualClock(held_since))
    occurrence = Occurrence(job="inventory-predict", tenant="aitor", scheduled_for=held_since)
    # A holder with a long lease that never settles: the lease is still live.
    app.store.acquire(occurrence, worker="stuck-worker", lease=timedelta(hours=3))

    default = cronclaim("audit", "--database", database_url, "--json")
    assert json.loads(default.stdout)["counts"]["orphan"] == 0
    seed_check = cronclaim("audit", "--database", database_url, "--older-than", "1h", "--json")
    assert seed_check.returncode == 1
    orphans = json.loads(seed_check.stdout)["findings"]["orphan"]
    assert [(o["tenant"], o["worker"]) for o in orphans] == [("aitor", "stuck-worker")]


def test_replay_dry_run_changes_nothing_and_the_real_replay_records_who_asked(
    make_app: AppFactory, clock: VirtualClock, database_url: str
) -> None:
    app = make_app()
    failing_week(app, clock)
    before = snapshot(database_url)

    dry = cronclaim(
        "replay",
        "--database",
        database_url,
        "--job",
        "report",
        "--from",
        "2026-05-18",
        "--to",
        "2026-05-19",
        "--dry-run",
        "--json",
    )
    assert dry.returncode == 0, dry.stderr
    plan = json.loads(dry.stdout)
    assert plan["applied"] is False
    assert [(r["tenant"], r["state"]) for r in plan["selected"]] == [("bad", "failed")] * 2
    assert {r["reason"] for r in plan["skipped"]} == {"done; replay it with --force"}
    assert snapshot(database_url) == before

    real = cronclaim(
        "replay",
        "--database",
        database_url,
        "--job",
        "report",
        "--from",
        "2026-05-18",
        "--to",
        "2026-05-19",
        "--by",
        "ana@oncall",
    )
    assert real.returncode == 0, real.stderr
    assert "replayed 2 occurrence(s)" in real.stdout
    monday = Occurrence(job="report", tenant="bad", scheduled_for=MONDAY + timedelta(hours=7))
    claim = app.store.get(monday)
    assert claim is not None and claim.state is ClaimState.PENDING and claim.attempt == 0
    replayed = [e for e in app.store.events(monday) if e.kind is EventKind.REPLAYED]
    assert [(e.worker, e.detail) for e in replayed] == [
        ("ana@oncall", "was failed; requested by ana@oncall")
    ]
    wednesday = Occurrence(
        job="report", tenant="bad", scheduled_for=MONDAY + timedelta(days=2, hours=7)
    )
    assert app.store.get(wednesday).state is ClaimState.FAILED  # outside --to

    forced = cronclaim(
        "replay",
        "--database",
        database_url,
        "--job",
        "report",
        "--tenant",
        "good",
        "--from",
        "2026-05-18",
        "--to",
        "2026-05-18",
        "--force",
    )
    assert "replayed 1 occurrence(s)" in forced.stdout


def test_status_and_schedule_commands(
    make_app: AppFactory, clock: VirtualClock, database_url: str
) -> None:
    app = make_app()
    failing_week(app, clock)
    status = cronclaim("status", "report", "--database", database_url, "--at", "2026-05-19T12:00Z")
    assert status.returncode == 0, status.stderr
    assert "report  tick 2026-05-19T07:00" in status.stdout
    assert "2 of 3 done" in status.stdout
    assert "failed    bad" in status.stdout

    schedule = cronclaim(
        "schedule",
        "fleet",
        "--app",
        "tests.apps.fleet:app",
        "--zone",
        "Europe/Madrid",
        "--after",
        "2026-03-27T00:00Z",
        "--next",
        "4",
        env={"FLEET_DATABASE_URL": database_url, "FLEET_CRON": "30 2 * * *"},
    )
    assert schedule.returncode == 0, schedule.stderr
    lines = schedule.stdout.splitlines()
    assert "Europe/Madrid" in lines[0]
    assert len(lines) >= 5
    assert "03:00" in schedule.stdout  # 2026-03-29: 02:30 does not exist and moves


def test_check_exits_1_without_a_recent_success_and_0_after(
    database_url: str, tmp_path: Path
) -> None:
    env = {
        "FLEET_DATABASE_URL": database_url,
        "FLEET_TENANTS": "2",
        "FLEET_EFFECTS": str(tmp_path),
        "FLEET_CRON": "* * * * *",
    }
    unhealthy = cronclaim("check", "--app", "tests.apps.fleet:app", env=env)
    assert unhealthy.returncode == 1
    assert "no successful occurrence recorded yet" in unhealthy.stderr
    run = cronclaim(
        "worker",
        "--app",
        "tests.apps.fleet:app",
        "--burst",
        "--catch-up",
        "2m",
        "--log-level",
        "warning",
        env=env,
    )
    assert run.returncode == 0, run.stderr
    healthy = cronclaim("check", "--app", "tests.apps.fleet:app", env=env)
    assert healthy.returncode == 0, healthy.stderr
    assert healthy.stdout.strip() == "healthy"


def test_metrics_count_outcomes_and_are_served_over_http(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app()
    metrics = Metrics()
    clock.set(MONDAY + timedelta(hours=6))

    @app.job(
        "report",
        cron="0 7 * * *",
        window="3h",
        tenants=lambda: [Tenant(id=t) for t in ("a", "b", "c")],
        retry=Backoff(first=60, factor=1, max_attempts=2),
    )
    def report(tenant: Tenant, run: Any) -> None:
        if tenant.id == "b":
            raise ConnectionError("refused")

    asyncio.run(Worker(app, metrics=metrics, catch_up="1m").run_until(MONDAY + timedelta(hours=8)))

    sample = metrics.registry.get_sample_value
    assert sample("cronclaim_occurrences_total", {"job": "report", "outcome": "done"}) == 2
    assert sample("cronclaim_occurrences_total", {"job": "report", "outcome": "released"}) == 1
    assert sample("cronclaim_occurrences_total", {"job": "report", "outcome": "failed"}) == 1
    assert sample("cronclaim_claims_held", {"job": "report"}) == 0
    assert sample("cronclaim_fanned_out_total", {"job": "report"}) == 3
    assert sample("cronclaim_attempt_duration_seconds_count", {"job": "report"}) == 4
    assert sample("cronclaim_last_success_timestamp_seconds", {"job": "report"}) > 0

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    metrics.serve(port)
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        body = response.read().decode()
    assert 'cronclaim_occurrences_total{job="report",outcome="done"} 2.0' in body


@pytest.fixture
def beacon_lines() -> Iterator[io.StringIO]:
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonLinesFormatter())
    logger = logging.getLogger("cronclaim.beacon")
    logger.addHandler(handler)
    previous = logger.level
    logger.setLevel(logging.INFO)
    try:
        yield out
    finally:
        logger.removeHandler(handler)
        logger.setLevel(previous)


def test_every_transition_emits_a_named_json_beacon_with_the_occurrence(
    make_app: AppFactory, clock: VirtualClock, beacon_lines: io.StringIO
) -> None:
    app = make_app()
    clock.set(MONDAY + timedelta(hours=6))
    calls = {"n": 0}

    @app.job(
        "push",
        cron="0 7 * * *",
        window="3h",
        tenants=lambda: [Tenant(id="aitor")],
        retry=Backoff(first=60, factor=1, max_attempts=3),
    )
    def push(tenant: Tenant, run: Any) -> None:
        calls["n"] += 1
        if calls["n"] == 1:
            run.call("inference", _timeout)

    asyncio.run(Worker(app, catch_up="1m").run_until(MONDAY + timedelta(hours=8)))

    events = [json.loads(line) for line in beacon_lines.getvalue().splitlines()]
    names = [e["event"] for e in events]
    # cron_fired summarises the fan-out once it has finished: after the claims it made.
    fired = [e for e in events if e["event"] == "cron_fired"]
    assert [(e["job"], e["tenants"], e["recorded"], e["missed"]) for e in fired] == [
        ("push", 1, 1, 0)
    ]
    assert [n for n in names if n != "cron_fired"] == [
        "claim_acquired",
        "effect_threw",
        "claim_released",
        "claim_acquired",
        "claim_completed",
    ]
    threw = next(e for e in events if e["event"] == "effect_threw")
    assert threw["dependency"] == "inference"
    assert threw["error"] == "TimeoutError: inference did not answer"
    assert threw["idempotency_key"] == "push:aitor:2026-05-18T07:00:00Z"
    assert {"job", "tenant", "scheduled_for", "attempt", "token", "worker"} <= set(threw)
    assert events[-1]["attempt"] == 2


def _timeout() -> None:
    raise TimeoutError("inference did not answer")


def test_guard_emits_beacons_too(make_app: AppFactory, beacon_lines: io.StringIO) -> None:
    app = make_app(clock_=SystemClock())
    when = datetime(2026, 5, 18, 7, tzinfo=UTC)
    app.run_once("push", "aitor", when, lambda run: None)
    app.run_once("push", "aitor", when, lambda run: None)
    names = [json.loads(line)["event"] for line in beacon_lines.getvalue().splitlines()]
    assert names == ["claim_acquired", "claim_completed", "claim_skipped"]
