"""The seed incident end to end, in virtual time, on both backends.

Inference times out for one restaurant (Aitor's bar) for five mornings, with a
3-attempt budget per day. Under cronclaim: every failed day is visible in the audit, a
page goes out within the first hour, and once inference is back a replay of those days
delivers each day's alert exactly once.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from tests.conftest import AppFactory
from tests.receiver import Recorder

from cronclaim import App, ClaimState, EventKind, VirtualClock
from cronclaim.alerts import RetryPolicy, WebhookSink
from cronclaim.alerts.config import AlertConfig
from cronclaim.audit import run_audit
from cronclaim.jobs import Backoff
from cronclaim.models import Occurrence, Tenant
from cronclaim.replay import replay
from cronclaim.worker import Worker

MADRID = ZoneInfo("Europe/Madrid")
MONDAY = date(2026, 5, 18)
WEEK = [MONDAY + timedelta(days=i) for i in range(5)]
RESTAURANTS = [("aitor", "Europe/Madrid"), ("mert", "Europe/Istanbul"), ("iker", "Europe/Madrid")]


class Platform:
    """Inference that can be told to time out for one restaurant, and a push log that
    drops duplicates by idempotency key, like the push gateway."""

    def __init__(self, clock: VirtualClock) -> None:
        self.clock = clock
        self.outage_for: set[str] = set()
        self.pushes: dict[str, tuple[str, date, bool]] = {}
        self.duplicates = 0

    def infer(self, tenant: str) -> list[str]:
        if tenant in self.outage_for:
            raise TimeoutError("inference did not answer within 5 s")
        return ["cepe-mushrooms"]

    def push(self, key: str, tenant: str, day: date, replayed: bool) -> None:
        if key in self.pushes:
            self.duplicates += 1
            return
        self.pushes[key] = (tenant, day, replayed)


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


def build(app: App, platform: Platform) -> None:
    @app.job(
        "inventory-predict",
        cron="0 7 * * *",
        tenants=lambda: [Tenant(id=i, time_zone=z) for i, z in RESTAURANTS],
        window="3h",
        retry=Backoff(first=30, factor=2, max_attempts=3),
        stale_after="4h",
    )
    def inventory_predict(tenant: Tenant, run: Any) -> None:
        at_risk = run.call("inference", platform.infer, tenant.id)
        if run.stale and not run.is_replay:
            return  # a late catch-up recomputes, but a 07:00 push at 15:00 helps nobody
        if at_risk:
            day = run.occurrence.local_time.date()
            run.call("push", platform.push, run.idempotency_key, tenant.id, day, run.is_replay)


def test_five_lost_days_are_visible_paged_within_the_hour_and_replayed(
    make_app: AppFactory, clock: VirtualClock, receiver: Recorder
) -> None:
    clock.set(datetime(2026, 5, 18, 4, 0, tzinfo=UTC))
    app = make_app("worker-a")
    platform = Platform(clock)
    platform.outage_for.add("aitor")
    build(app, platform)
    sink = WebhookSink(f"{receiver.url}/page", "secret", retry=RetryPolicy(max_attempts=1))
    config = AlertConfig(sinks=(sink,))
    try:
        worker = Worker(app, concurrency=4, alerts=config, alert_interval="1m", catch_up="1m")
        asyncio.run(worker.run_until(datetime(2026, 5, 22, 21, 0, tzinfo=UTC)))

        # Five failed days for Aitor, each with its three attempts, none leaked.
        report = run_audit(
            app.store, job="inventory-predict", since=clock.now() - timedelta(days=7)
        )
        failed = report.findings["failed"]
        assert [f.claim.occurrence.tenant for f in failed] == ["aitor"] * 5
        assert [f.claim.occurrence.local_time.date() for f in failed] == WEEK
        assert all(f.claim.attempt == 3 for f in failed)
        assert all("TimeoutError" in (f.claim.last_error or "") for f in failed)
        assert report.counts["orphan"] == 0
        # The other restaurants got every day's alert.
        assert sorted(t for t, _, _ in platform.pushes.values()) == ["iker"] * 5 + ["mert"] * 5

        # A page within the first hour of the first failure (07:00 in Bilbao, Monday).
        first = datetime(2026, 5, 18, 7, 0, tzinfo=MADRID)
        pages = [r.json() for r in receiver.requests if r.path == "/page"]
        triggers = [p for p in pages if p["action"] == "trigger"]
        assert triggers, "no page was sent"
        first_page = min(
            datetime.fromisoformat(p["occurred_at"].replace("Z", "+00:00")) for p in triggers
        )
        assert first <= first_page <= first + timedelta(hours=1)
        assert any(p["key"] == "cronclaim/inventory-predict/inference-failed" for p in triggers)

        # Saturday: inference is back; the on-call replays Aitor's five days.
        platform.outage_for.clear()
        clock.set(datetime(2026, 5, 23, 8, 0, tzinfo=UTC))
        plan = replay(
            app.store,
            job="inventory-predict",
            tenant="aitor",
            start=datetime(2026, 5, 18, tzinfo=UTC),
            end=datetime(2026, 5, 22, 23, 59, tzinfo=UTC),
            requested_by="oncall@example",
        )
        assert plan.applied and len(plan.replayed_ids) == 5
        asyncio.run(
            Worker(app, concurrency=4, catch_up="1m").run_until(clock.now() + timedelta(minutes=5))
        )
    finally:
        config.close()

    replayed = sorted((d, r) for t, d, r in platform.pushes.values() if t == "aitor")
    assert replayed == [(day, True) for day in WEEK]  # each day's alert, once
    assert platform.duplicates == 0
    monday = Occurrence(
        job="inventory-predict",
        tenant="aitor",
        scheduled_for=datetime(2026, 5, 18, 7, 0, tzinfo=MADRID),
    )
    events = app.store.events(monday)
    replay_event = next(e for e in events if e.kind is EventKind.REPLAYED)
    assert replay_event.worker == "oncall@example"
    claim = app.store.get(monday)
    assert claim is not None and claim.state is ClaimState.DONE and claim.replays == 1
    assert run_audit(
        app.store, job="inventory-predict", since=clock.now() - timedelta(days=7)
    ).clean
