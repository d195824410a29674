"""Alert rules and the persisted outbox end to end: a worker in virtual time, real HTTP to
a local receiver (PagerDuty Events v2 shape, signed webhooks), both backends."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from cronclaim import App, VirtualClock
from cronclaim.alerts import (
    PagerDutySink,
    RetryPolicy,
    WebhookSink,
    alert_config_from_dict,
    verify_signature,
)
from cronclaim.alerts.config import AlertConfig, RuleSettings
from cronclaim.alerts.engine import AlertEngine
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant
from cronclaim.worker import Worker
from tests.conftest import AppFactory
from tests.receiver import Recorder

MONDAY = datetime(2026, 5, 18, tzinfo=UTC)
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SECRET = "webhook-secret"
NO_RETRY = RetryPolicy(max_attempts=1)


@pytest.fixture
def receiver() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


@pytest.fixture
def configs() -> Iterator[list[AlertConfig]]:
    """Alert configurations to close (their sinks hold HTTP connections) after the test."""
    made: list[AlertConfig] = []
    yield made
    for config in made:
        config.close()


def pagerduty_config(receiver: Recorder, configs: list[AlertConfig], **rules: Any) -> AlertConfig:
    sink = PagerDutySink(ROUTING_KEY, url=f"{receiver.url}/v2/enqueue", retry=NO_RETRY)
    config = AlertConfig(sinks=(sink,), rules=RuleSettings(**rules))
    configs.append(config)
    return config


class Inference:
    """A dependency the job calls through run.call; it fails while told to."""

    def __init__(self) -> None:
        self.failing: set[str] = set()  # tenants, or "*" for everyone
        self.calls = 0

    def predict(self, tenant: str) -> str:
        self.calls += 1
        if "*" in self.failing or tenant in self.failing:
            raise TimeoutError("inference did not answer within 5 s")
        return "ok"


def define(app: App, inference: Inference, tenants: int, **job: Any) -> None:
    job.setdefault("retry", Backoff(first=60, factor=1, max_attempts=3))

    def fleet() -> Iterator[Tenant]:
        for i in range(tenants):
            yield Tenant(id=f"r{i:03d}", time_zone="UTC")

    @app.job("inventory-predict", cron="0 7 * * *", tenants=fleet, window="3h", **job)
    def predict(tenant: Tenant, run: Any) -> None:
        run.call("inference", inference.predict, tenant.id)


def simulate(app: App, until: datetime, config: AlertConfig, **kwargs: Any) -> Worker:
    kwargs.setdefault("catch_up", "2h")  # a fresh deployment: no ticks from yesterday
    worker = Worker(app, concurrency=50, alerts=config, alert_interval="1m", **kwargs)
    asyncio.run(worker.run_until(until))
    return worker


def pagerduty_events(receiver: Recorder) -> list[dict[str, Any]]:
    return [r.json() for r in receiver.requests if r.path == "/v2/enqueue"]


def test_fleet_wide_outage_opens_one_incident_and_recovery_resolves_it(
    make_app: AppFactory,
    clock: VirtualClock,
    receiver: Recorder,
    configs: list[AlertConfig],
) -> None:
    clock.set(MONDAY + timedelta(hours=6))
    app = make_app()
    inference = Inference()
    inference.failing.add("*")
    define(app, inference, tenants=30)
    config = pagerduty_config(receiver, configs)

    simulate(app, MONDAY + timedelta(hours=7, minutes=30), config)

    events = pagerduty_events(receiver)
    failing = [
        e for e in events if e["dedup_key"] == "cronclaim/inventory-predict/inference-failing"
    ]
    assert [e["event_action"] for e in failing] == ["trigger"]
    trigger = failing[0]
    assert trigger["routing_key"] == ROUTING_KEY
    payload = trigger["payload"]
    assert payload["severity"] == "critical"
    assert payload["component"] == "inference"
    assert payload["group"] == "inventory-predict"
    # It pages as soon as the threshold is crossed, then keeps counting without paging.
    assert payload["custom_details"]["failures"] >= 5
    assert "tenants calling inference" in payload["summary"]
    state = app.store.alert("cronclaim/inventory-predict/inference-failing")
    assert state is not None and json.loads(state.details)["tenants_failing"] == 30
    # Every tenant exhausted its attempts: one incident for them all, not thirty.
    failed = [e for e in events if e["dedup_key"] == "cronclaim/inventory-predict/inference-failed"]
    assert [e["event_action"] for e in failed] == ["trigger"]
    assert failed[0]["payload"]["custom_details"]["failed"] >= 1
    # The stored alert keeps counting (no second page): all 30 by now.
    state = app.store.alert("cronclaim/inventory-predict/inference-failed")
    assert state is not None and json.loads(state.details)["failed"] == 30
    assert len(events) == 2, [(e["event_action"], e["dedup_key"]) for e in events]

    # Inference recovers; the next morning succeeds; the failing incident resolves.
    inference.failing.clear()
    simulate(app, MONDAY + timedelta(days=1, hours=8, minutes=30), config)
    resolves = [e for e in pagerduty_events(receiver) if e["event_action"] == "resolve"]
    assert resolves == [
        {
            "routing_key": ROUTING_KEY,
            "event_action": "resolve",
            "dedup_key": "cronclaim/inventory-predict/inference-failing",
        }
    ]
    assert [a.key for a in app.store.alerts()] == ["cronclaim/inventory-predict/inference-failed"]


def test_one_tenant_failing_repeatedly_is_an_incident_of_its_own(
    make_app: AppFactory,
    clock: VirtualClock,
    receiver: Recorder,
    configs: list[AlertConfig],
) -> None:
    clock.set(MONDAY + timedelta(hours=6))
    app = make_app()
    inference = Inference()
    inference.failing.add("r002")
    define(app, inference, tenants=5, retry=Backoff(first=300, factor=1, max_attempts=8))

    # Attempts at 07:00, 07:05 ... 07:20: five in the hour, none exhausted yet.
    simulate(app, MONDAY + timedelta(hours=7, minutes=22), pagerduty_config(receiver, configs))

    keys = [e["dedup_key"] for e in pagerduty_events(receiver) if e["event_action"] == "trigger"]
    assert keys == ["cronclaim/inventory-predict/inference-failing/r002"]


def test_delivery_is_retried_after_a_503_and_never_repeated_after_a_restart(
    make_app: AppFactory,
    clock: VirtualClock,
    receiver: Recorder,
    configs: list[AlertConfig],
) -> None:
    clock.set(MONDAY + timedelta(hours=6))
    app = make_app()
    inference = Inference()
    inference.failing.add("*")
    define(app, inference, tenants=3)
    config = pagerduty_config(receiver, configs)
    receiver.answer(503, "busy", times=2)

    simulate(app, MONDAY + timedelta(hours=7, minutes=30), config)

    deliveries = app.store.outbox()
    assert {d.state for d in deliveries} == {"sent"}
    first = deliveries[0]
    assert first.attempts == 3  # 503, 503, then 202: retried, not lost
    assert first.last_error is not None and "503" in first.last_error
    accepted = [e for e in pagerduty_events(receiver)]
    keys = [e["dedup_key"] for e in accepted]
    assert len(accepted) == 2 + len(deliveries)  # two refused, then each delivered once
    assert sorted(set(keys)) == sorted(d.alert_key for d in deliveries)

    # A restarted worker (a new engine over the same database) sends nothing again.
    sent = len(pagerduty_events(receiver))
    restarted = AlertEngine(app.store, config, list(app.jobs.values()), clock=clock)
    restarted.evaluate()
    restarted.deliver()
    simulate(app, MONDAY + timedelta(hours=9), config)
    assert len(pagerduty_events(receiver)) == sent


def test_signed_webhook_deliveries_verify(
    make_app: AppFactory,
    clock: VirtualClock,
    receiver: Recorder,
    configs: list[AlertConfig],
) -> None:
    clock.set(MONDAY + timedelta(hours=6))
    app = make_app()
    inference = Inference()
    inference.failing.add("*")
    define(app, inference, tenants=3)
    config = alert_config_from_dict(
        {"sinks": [{"type": "webhook", "url": f"{receiver.url}/hooks/cronclaim", "secret": SECRET}]}
    )
    configs.append(config)
    sink = config.sinks[0]
    assert isinstance(sink, WebhookSink)

    simulate(app, MONDAY + timedelta(hours=7, minutes=10), config)

    hooks = [r for r in receiver.requests if r.path == "/hooks/cronclaim"]
    assert hooks
    for request in hooks:
        assert verify_signature(
            SECRET,
            request.headers["x-cronclaim-timestamp"],
            request.body,
            request.headers["x-cronclaim-signature"],
            tolerance=10**9,
        )
        assert not verify_signature(
            "wrong-secret",
            request.headers["x-cronclaim-timestamp"],
            request.body,
            request.headers["x-cronclaim-signature"],
            tolerance=10**9,
        )
    bodies = [json.loads(r.body) for r in hooks]
    assert {b["key"] for b in bodies} == {
        "cronclaim/inventory-predict/inference-failed",
    } | {b["key"] for b in bodies if b["key"].endswith("failing")}


def test_a_job_with_no_success_in_its_period_trips_the_dead_mans_switch(
    make_app: AppFactory,
    clock: VirtualClock,
    receiver: Recorder,
    configs: list[AlertConfig],
) -> None:
    clock.set(MONDAY + timedelta(hours=6))
    app = make_app()
    inference = Inference()
    inference.failing.add("*")
    define(app, inference, tenants=2)

    simulate(app, MONDAY + timedelta(days=1, hours=12), pagerduty_config(receiver, configs))

    keys = {e["dedup_key"] for e in pagerduty_events(receiver) if e["event_action"] == "trigger"}
    assert "cronclaim/inventory-predict/no-success" in keys
