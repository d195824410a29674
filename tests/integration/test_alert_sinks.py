"""Alert sinks against a real HTTP server on 127.0.0.1: exact payloads, signatures,
retries and their bounds. Nothing leaves the machine; waits go through a fake clock."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from cronclaim.alerts import (
    Alert,
    HttpSink,
    Link,
    LogSink,
    PagerDutySink,
    RetryPolicy,
    SlackSink,
    WebhookSink,
    alert_key,
    fit_summary,
    slack_message,
    verify_signature,
)
from tests.receiver import Recorder

OCCURRED = datetime(2026, 5, 19, 5, 0, 7, tzinfo=UTC)
ROUTING_KEY = "R0UT1NGKEY0123456789abcdefABCDEF"
SECRET = "s3cret-shared-with-the-receiver"
NOW = 1_779_166_800.0  # 2026-05-19T05:00:00Z, the wall clock of signed deliveries


# -- the local server (tests/receiver.py) -------------------------------------------


@pytest.fixture
def server() -> Iterator[Recorder]:
    recorder = Recorder()
    recorder.start()
    try:
        yield recorder
    finally:
        recorder.stop()


class FakeTime:
    """A monotonic clock that only sleeping moves; records every wait."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def sinks() -> Iterator[Callable[[HttpSink], HttpSink]]:
    """Register a sink to be closed after the test."""
    made: list[HttpSink] = []

    def track(sink: HttpSink) -> HttpSink:
        made.append(sink)
        return sink

    yield track
    for sink in made:
        sink.close()


def make_alert(**overrides: Any) -> Alert:
    values: dict[str, Any] = {
        "key": alert_key("inventory-predict", "inference-timeout"),
        "action": "trigger",
        "summary": "inventory-predict: 7 tenants failed 5+ times in 1h (TimeoutError)",
        "severity": "critical",
        "source": "cronclaim-worker-1",
        "job": "inventory-predict",
        "occurred_at": OCCURRED,
        "rule": "failures_per_hour",
    }
    values.update(overrides)
    return Alert(**values)


def pagerduty(
    server: Recorder, fake_time: FakeTime, retry: RetryPolicy | None = None, **kwargs: Any
) -> PagerDutySink:
    return PagerDutySink(
        ROUTING_KEY,
        f"{server.url}/v2/enqueue",
        retry=retry,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=lambda: 0.0,
        **kwargs,
    )


# -- PagerDuty ----------------------------------------------------------------------


def test_pagerduty_trigger_sends_the_documented_event_exactly(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(pagerduty(server, fake_time, client_url="https://cronclaim.example.com/"))
    alert = make_alert(
        component="inference",
        group="restaurants",
        class_="TimeoutError",
        details={"tenants_affected": 7, "sample_errors": ["AbortError: timeout 5s"]},
        links=(Link(href="https://cronclaim.example.com/jobs/inventory-predict", text="Job"),),
    )

    result = sink.deliver(alert)

    assert result.ok, result
    assert (result.status, result.attempts, result.error) == (202, 1, None)
    assert "Event processed" in (result.body or "")
    [request] = server.requests
    assert request.path == "/v2/enqueue"
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "cronclaim/inventory-predict/inference-timeout",
        "payload": {
            "summary": "inventory-predict: 7 tenants failed 5+ times in 1h (TimeoutError)",
            "source": "cronclaim-worker-1",
            "severity": "critical",
            "timestamp": "2026-05-19T05:00:07Z",
            "component": "inference",
            "group": "restaurants",
            "class": "TimeoutError",
            "custom_details": {
                "tenants_affected": 7,
                "sample_errors": ["AbortError: timeout 5s"],
                "job": "inventory-predict",
                "rule": "failures_per_hour",
            },
        },
        "client": "cronclaim",
        "client_url": "https://cronclaim.example.com/",
        "links": [{"href": "https://cronclaim.example.com/jobs/inventory-predict", "text": "Job"}],
    }


def test_pagerduty_trigger_omits_optional_fields_that_are_not_set(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(pagerduty(server, fake_time))

    assert sink.deliver(make_alert()).ok

    assert server.requests[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "trigger",
        "dedup_key": "cronclaim/inventory-predict/inference-timeout",
        "payload": {
            "summary": "inventory-predict: 7 tenants failed 5+ times in 1h (TimeoutError)",
            "source": "cronclaim-worker-1",
            "severity": "critical",
            "timestamp": "2026-05-19T05:00:07Z",
            "custom_details": {"job": "inventory-predict", "rule": "failures_per_hour"},
        },
        "client": "cronclaim",
    }


def test_pagerduty_resolve_carries_only_routing_key_action_and_dedup_key(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(pagerduty(server, fake_time))
    resolve = make_alert(
        action="resolve",
        summary="inventory-predict recovered",
        severity="info",
        details={"tenants_affected": 0},
    )

    result = sink.deliver(resolve)

    assert result.ok and result.status == 202
    assert server.requests[0].json() == {
        "routing_key": ROUTING_KEY,
        "event_action": "resolve",
        "dedup_key": "cronclaim/inventory-predict/inference-timeout",
    }


def test_fleet_wide_outage_is_one_incident_and_one_resolve_closes_it(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    # 3,000 restaurants fail on one inference outage; the key names the job and the
    # failing dependency, not the tenant, so they all fall into one incident.
    failures = [(f"restaurant-{n:04d}", "inference-timeout") for n in range(3000)]
    incidents: dict[str, list[str]] = {}
    for tenant, cause in failures:
        incidents.setdefault(alert_key("inventory-predict", cause), []).append(tenant)
    assert list(incidents) == ["cronclaim/inventory-predict/inference-timeout"]

    sink = sinks(pagerduty(server, fake_time))
    [(key, tenants)] = incidents.items()
    trigger = make_alert(
        key=key,
        summary=f"inventory-predict failing for {len(tenants)} tenants (inference-timeout)",
        details={"tenants_affected": len(tenants), "sample_tenants": tenants[:3]},
    )
    assert sink.deliver(trigger).ok
    resolve = make_alert(key=key, action="resolve", summary="recovered", severity="info")
    assert sink.deliver(resolve).ok

    sent = [r.json() for r in server.requests]
    assert [(e["event_action"], e["dedup_key"]) for e in sent] == [
        ("trigger", "cronclaim/inventory-predict/inference-timeout"),
        ("resolve", "cronclaim/inventory-predict/inference-timeout"),
    ]
    assert sent[0]["payload"]["custom_details"]["tenants_affected"] == 3000
    # A different failing dependency is a different incident.
    assert alert_key("inventory-predict", "push-gateway-5xx") != key


def test_pagerduty_400_invalid_event_is_reported_and_not_retried(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(
        400,
        json.dumps(
            {
                "status": "invalid event",
                "message": "Event object is invalid",
                "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"],
            }
        ),
        headers={"Content-Type": "application/json"},
        times=5,
    )
    sink = sinks(pagerduty(server, fake_time))

    result = sink.deliver(make_alert())

    assert not result.ok
    assert (result.status, result.attempts, result.retryable) == (400, 1, False)
    assert result.error == (
        "HTTP 400: invalid event: Event object is invalid: "
        "Length of 'routing_key' is incorrect (should be 32 characters)"
    )
    assert len(server.requests) == 1
    assert fake_time.sleeps == []


def test_503_then_success_is_delivered_on_the_second_attempt(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(503, "upstream unavailable")
    sink = sinks(pagerduty(server, fake_time))

    result = sink.deliver(make_alert())

    assert result.ok
    assert (result.attempts, result.status) == (2, 202)
    assert len(server.requests) == 2
    assert server.requests[0].body == server.requests[1].body
    assert fake_time.sleeps == [0.5]  # initial_backoff, rng pinned to no jitter


def test_backoff_doubles_and_jitter_only_shortens_it(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(500, times=4)
    jittered = FakeTime()
    sink = sinks(pagerduty(server, fake_time))
    sink_jittered = sinks(
        PagerDutySink(
            ROUTING_KEY,
            f"{server.url}/v2/enqueue",
            sleep=jittered.sleep,
            clock=jittered.clock,
            rng=lambda: 0.999,
        )
    )

    assert sink.deliver(make_alert()).attempts == 5
    server.answer(500, times=4)
    assert sink_jittered.deliver(make_alert()).attempts == 5

    assert fake_time.sleeps == [0.5, 1.0, 2.0, 4.0]
    for wait, full in zip(jittered.sleeps, fake_time.sleeps, strict=True):
        assert full / 2 <= wait < full


def test_429_honours_retry_after(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(429, "Request Limit Exceeded", headers={"Retry-After": "7"})
    sink = sinks(pagerduty(server, fake_time))

    result = sink.deliver(make_alert())

    assert result.ok and result.attempts == 2
    assert fake_time.sleeps == [7.0]


def test_retry_after_is_capped(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(429, headers={"Retry-After": "3600"})
    sink = sinks(pagerduty(server, fake_time, RetryPolicy(retry_after_cap=20, max_total=120)))

    assert sink.deliver(make_alert()).ok
    assert fake_time.sleeps == [20.0]


def test_retry_after_beyond_the_budget_gives_up_and_reports_it(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(429, headers={"Retry-After": "45"})
    sink = sinks(pagerduty(server, fake_time, RetryPolicy(max_total=30, retry_after_cap=60)))

    result = sink.deliver(make_alert())

    assert not result.ok and result.retryable
    assert (result.attempts, result.status, result.retry_after) == (1, 429, 45.0)
    assert result.error == (
        "HTTP 429: Too Many Requests; gave up after 1 attempt: waiting 45s more would exceed the "
        "30s delivery budget"
    )
    assert fake_time.sleeps == []


def test_connection_refused_is_retried_then_reported(
    fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    # A bound socket that never listens: connecting is refused, and no one else can take
    # the port while the test runs.
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
        sink = sinks(
            PagerDutySink(
                ROUTING_KEY,
                f"http://127.0.0.1:{port}/v2/enqueue",
                retry=RetryPolicy(max_attempts=3),
                sleep=fake_time.sleep,
                clock=fake_time.clock,
                rng=lambda: 0.0,
            )
        )

        result = sink.deliver(make_alert())

    assert not result.ok
    assert result.retryable
    assert (result.attempts, result.status) == (3, None)
    assert result.error is not None
    assert result.error.startswith("connection failed: ")
    assert result.error.endswith("; gave up after 3 attempts")
    assert fake_time.sleeps == [0.5, 1.0]


def test_total_time_is_bounded_by_the_delivery_budget(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(503, times=1000)
    policy = RetryPolicy(max_attempts=1000, initial_backoff=1, max_backoff=4, max_total=10)
    sink = sinks(pagerduty(server, fake_time, policy))

    result = sink.deliver(make_alert())

    assert not result.ok and result.retryable
    assert fake_time.now < 10
    assert fake_time.sleeps == [1.0, 2.0, 4.0]  # the next 4 s would end at 11 s
    assert result.attempts == 4 == len(server.requests)
    assert result.error == (
        "HTTP 503: Service Unavailable; gave up after 4 attempts: waiting 4s more would "
        "exceed the 10s delivery budget"
    )


def test_a_slow_receiver_times_out_and_is_retried(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(202, "{}", delay=1.0)
    sink = sinks(pagerduty(server, fake_time, timeout=0.2))

    started = time.monotonic()
    result = sink.deliver(make_alert())

    assert result.ok and result.attempts == 2
    assert time.monotonic() - started < 1.0
    assert fake_time.sleeps == [0.5]


def test_redirects_are_reported_not_followed(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(301, headers={"Location": "https://elsewhere.example.com/v2/enqueue"})
    sink = sinks(pagerduty(server, fake_time))

    result = sink.deliver(make_alert())

    assert not result.ok and not result.retryable and result.attempts == 1
    assert result.error == (
        "HTTP 301: redirect to https://elsewhere.example.com/… not followed; "
        "configure the final URL"
    )


def test_one_sink_delivers_from_many_threads_at_once(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(pagerduty(server, fake_time))
    results = []
    lock = threading.Lock()

    def send(n: int) -> None:
        result = sink.deliver(make_alert(details={"n": n}))
        with lock:
            results.append(result)

    threads = [threading.Thread(target=send, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)

    assert len(results) == 16 and all(r.ok for r in results)
    numbers = sorted(r.json()["payload"]["custom_details"]["n"] for r in server.requests)
    assert numbers == list(range(16))


# -- Slack --------------------------------------------------------------------------


def slack(server: Recorder, fake_time: FakeTime, **kwargs: Any) -> SlackSink:
    return SlackSink(
        f"{server.url}/services/T000/B000/XXXXSECRETXXXX",
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        rng=lambda: 0.0,
        **kwargs,
    )


def test_slack_trigger_sends_text_fallback_and_blocks(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(slack(server, fake_time))
    alert = make_alert(
        summary="inventory-predict: 7 tenants failed <5s> & gave up",
        component="inference",
        details={"tenants_affected": 7, "sample_tenants": ["aitor", "mert"]},
        links=(Link(href="https://cronclaim.example.com/jobs/inventory-predict", text="Job"),),
    )

    result = sink.deliver(alert)

    assert result.ok and (result.status, result.body) == (200, "ok")
    [request] = server.requests
    assert request.path == "/services/T000/B000/XXXXSECRETXXXX"
    assert request.json() == {
        "text": "[CRITICAL] inventory-predict: 7 tenants failed &lt;5s&gt; &amp; gave up",
        "blocks": [
            {
                "type": "header",
                "text": {
                    "type": "plain_text",
                    "text": ":red_circle: CRITICAL: inventory-predict",
                    "emoji": True,
                },
            },
            {
                "type": "section",
                "text": {
                    "type": "mrkdwn",
                    "text": "inventory-predict: 7 tenants failed &lt;5s&gt; &amp; gave up",
                },
                "fields": [
                    {"type": "mrkdwn", "text": "*Job*\ninventory-predict"},
                    {"type": "mrkdwn", "text": "*Severity*\ncritical"},
                    {"type": "mrkdwn", "text": "*Rule*\nfailures_per_hour"},
                    {"type": "mrkdwn", "text": "*Occurred at*\n2026-05-19T05:00:07Z"},
                    {"type": "mrkdwn", "text": "*tenants_affected*\n7"},
                    {"type": "mrkdwn", "text": '*sample_tenants*\n["aitor", "mert"]'},
                ],
            },
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": "key `cronclaim/inventory-predict/inference-timeout` · "
                        "source `cronclaim-worker-1` · component `inference` · "
                        "<https://cronclaim.example.com/jobs/inventory-predict|Job>",
                    }
                ],
            },
        ],
    }


def test_slack_resolve_is_marked_resolved(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(slack(server, fake_time))

    assert sink.deliver(
        make_alert(action="resolve", summary="inventory-predict recovered", severity="critical")
    ).ok

    message = server.requests[0].json()
    assert message["text"] == "[RESOLVED] inventory-predict recovered"
    assert message["blocks"][0]["text"]["text"] == ":white_check_mark: RESOLVED: inventory-predict"
    assert {"type": "mrkdwn", "text": "*Severity*\ncritical (resolved)"} in message["blocks"][1][
        "fields"
    ]


def test_slack_keeps_within_ten_fields(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(slack(server, fake_time))

    assert sink.deliver(make_alert(details={f"d{n}": n for n in range(12)})).ok

    fields = server.requests[0].json()["blocks"][1]["fields"]
    assert len(fields) == 10
    assert fields[-1] == {"type": "mrkdwn", "text": "*More details*\n7 more in the alert payload"}


@pytest.mark.parametrize(
    ("status", "code"),
    [
        (400, "invalid_payload"),
        (403, "action_prohibited"),
        (404, "no_service"),
        (404, "channel_not_found"),
        (410, "channel_is_archived"),
    ],
)
def test_slack_error_bodies_are_reported_and_not_retried(
    server: Recorder,
    fake_time: FakeTime,
    sinks: Callable[[HttpSink], HttpSink],
    status: int,
    code: str,
) -> None:
    server.answer(status, code, times=3)
    sink = sinks(slack(server, fake_time))

    result = sink.deliver(make_alert())

    assert not result.ok and not result.retryable
    assert (result.status, result.attempts, result.body) == (status, 1, code)
    assert result.error == f"HTTP {status}: {code}"
    assert len(server.requests) == 1


def test_slack_500_rollup_error_is_retried(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(500, "rollup_error")
    sink = sinks(slack(server, fake_time))

    assert sink.deliver(make_alert()).attempts == 2


def test_slack_429_honours_retry_after(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(429, "rate_limited", headers={"Retry-After": "3"}, times=2)
    sink = sinks(slack(server, fake_time))

    result = sink.deliver(make_alert())

    assert result.ok and result.attempts == 3
    assert fake_time.sleeps == [3.0, 3.0]


def test_slack_webhook_url_is_never_shown_whole(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(404, "no_service")
    sink = sinks(slack(server, fake_time))

    result = sink.deliver(make_alert())

    assert "XXXXSECRETXXXX" not in repr(sink)
    assert "XXXXSECRETXXXX" not in str(result)
    assert sink.endpoint == f"{server.url}/…"


# -- Generic webhook ----------------------------------------------------------------


def webhook(server: Recorder, fake_time: FakeTime, wall_clock: Callable[[], float]) -> WebhookSink:
    return WebhookSink(
        f"{server.url}/hooks/cronclaim",
        SECRET,
        sleep=fake_time.sleep,
        clock=fake_time.clock,
        wall_clock=wall_clock,
        rng=lambda: 0.0,
    )


def test_webhook_posts_the_alert_signed_with_hmac_sha256(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    sink = sinks(webhook(server, fake_time, lambda: NOW))
    alert = make_alert(details={"tenants_affected": 7})

    assert sink.deliver(alert).ok

    [request] = server.requests
    timestamp = request.headers["x-cronclaim-timestamp"]
    signature = request.headers["x-cronclaim-signature"]
    assert timestamp == "1779166800"
    assert signature.startswith("sha256=") and len(signature) == len("sha256=") + 64
    assert request.headers["x-cronclaim-event-id"] == alert.id
    assert request.headers["content-type"] == "application/json"
    assert request.json() == {
        "version": 1,
        "id": alert.id,
        "key": "cronclaim/inventory-predict/inference-timeout",
        "action": "trigger",
        "summary": "inventory-predict: 7 tenants failed 5+ times in 1h (TimeoutError)",
        "severity": "critical",
        "source": "cronclaim-worker-1",
        "job": "inventory-predict",
        "component": None,
        "group": None,
        "class": None,
        "rule": "failures_per_hour",
        "occurred_at": "2026-05-19T05:00:07Z",
        "details": {"tenants_affected": 7},
        "links": [],
    }

    # The receiver's check, exactly as docs/alerts.md shows it.
    assert verify_signature(SECRET, timestamp, request.body, signature, now=NOW + 10)
    # Tampered body, wrong secret, stale or far-future timestamp: all rejected.
    tampered = request.body.replace(b'"tenants_affected":7', b'"tenants_affected":0')
    assert tampered != request.body
    assert not verify_signature(SECRET, timestamp, tampered, signature, now=NOW)
    assert not verify_signature("another-secret", timestamp, request.body, signature, now=NOW)
    assert not verify_signature(SECRET, timestamp, request.body, signature, now=NOW + 301)
    assert not verify_signature(SECRET, timestamp, request.body, signature, now=NOW - 301)
    assert verify_signature(SECRET, timestamp, request.body, signature, now=NOW + 300)
    # A timestamp changed in transit breaks the signature too.
    assert not verify_signature(SECRET, "1779166801", request.body, signature, now=NOW)
    # Malformed headers are a plain False, never an exception.
    assert not verify_signature(SECRET, "soon", request.body, signature, now=NOW)
    assert not verify_signature(SECRET, timestamp, request.body, signature[7:], now=NOW)
    assert not verify_signature(SECRET, timestamp, request.body, "sha256=zz", now=NOW)


def test_webhook_signs_each_retry_afresh(
    server: Recorder, fake_time: FakeTime, sinks: Callable[[HttpSink], HttpSink]
) -> None:
    server.answer(502)
    sink = sinks(webhook(server, fake_time, lambda: NOW + fake_time.now * 100))

    assert sink.deliver(make_alert()).attempts == 2

    first, second = server.requests
    assert first.body == second.body
    assert first.headers["x-cronclaim-timestamp"] != second.headers["x-cronclaim-timestamp"]
    for request in (first, second):
        stamp = request.headers["x-cronclaim-timestamp"]
        assert verify_signature(
            SECRET, stamp, request.body, request.headers["x-cronclaim-signature"], now=int(stamp)
        )
    assert first.headers["x-cronclaim-event-id"] == second.headers["x-cronclaim-event-id"]


# -- Log ----------------------------------------------------------------------------


def test_log_sink_writes_one_structured_line_per_alert(caplog: pytest.LogCaptureFixture) -> None:
    sink = LogSink("cronclaim.test.alerts")
    with caplog.at_level(logging.INFO, logger="cronclaim.test.alerts"):
        trigger = sink.deliver(make_alert(details={"tenants_affected": 7}))
        resolve = sink.deliver(make_alert(action="resolve", summary="recovered"))

    assert trigger.ok and resolve.ok and trigger.attempts == 1
    first, second = caplog.records
    assert first.levelno == logging.CRITICAL and second.levelno == logging.INFO
    line = json.loads(first.getMessage())
    assert line["event"] == "alert_triggered"
    assert line["key"] == "cronclaim/inventory-predict/inference-timeout"
    assert line["details"] == {"tenants_affected": 7}
    assert json.loads(second.getMessage())["event"] == "alert_resolved"
    assert "\n" not in first.getMessage()


# -- the record ---------------------------------------------------------------------


def test_alert_rejects_what_no_sink_could_send() -> None:
    from cronclaim.exceptions import InvalidInput

    with pytest.raises(InvalidInput, match="naive datetime"):
        make_alert(occurred_at=datetime(2026, 5, 19, 5, 0))
    with pytest.raises(InvalidInput, match="the limit is 1024"):
        make_alert(summary="x" * 1025)
    with pytest.raises(InvalidInput, match="the limit is 255"):
        make_alert(key="k" * 256)
    with pytest.raises(InvalidInput, match="severity must be one of"):
        make_alert(severity="fatal")
    with pytest.raises(InvalidInput, match="action must be"):
        make_alert(action="acknowledge")
    with pytest.raises(InvalidInput, match="JSON values"):
        make_alert(details={"when": datetime(2026, 5, 19, tzinfo=UTC)})
    with pytest.raises(InvalidInput, match="JSON cannot carry"):
        make_alert(details={"ratio": float("nan")})
    madrid = datetime(2026, 5, 19, 7, 0, 7, tzinfo=ZoneInfo("Europe/Madrid"))
    assert make_alert(occurred_at=madrid).occurred_at == OCCURRED
    assert make_alert(occurred_at=madrid).occurred_at.tzinfo is UTC


def test_details_are_copied_and_frozen() -> None:
    details: dict[str, Any] = {"tenants": ["aitor"]}
    alert = make_alert(details=details)
    details["tenants"].append("mert")
    details["extra"] = 1

    assert dict(alert.details) == {"tenants": ["aitor"]}
    with pytest.raises(TypeError):
        alert.details["extra"] = 1  # type: ignore[index]


def test_fit_summary_cuts_long_error_text_to_the_pagerduty_limit() -> None:
    text = fit_summary("inference failed:\n" + "x" * 2000)

    assert len(text) == 1024 and text.endswith("\u2026") and "\n" not in text
    assert make_alert(summary=text).summary == text


def test_slack_message_stays_within_block_kit_limits_for_huge_alerts() -> None:
    alert = make_alert(
        summary="&" * 1024,  # escapes to 5,120 characters
        job="j" * 300,
        source="s" * 5000,
        details={"x" * 3000: "<" * 5000, "n": list(range(2000))},
    )

    message = slack_message(alert)

    blocks = message["blocks"]
    assert isinstance(blocks, list)
    header, section, context = blocks
    assert len(message["text"]) <= 3000  # type: ignore[arg-type]
    assert len(header["text"]["text"]) <= 150
    assert len(section["text"]["text"]) <= 3000
    assert section["text"]["text"].endswith("&amp;\u2026")  # never half an entity
    assert len(section["fields"]) <= 10
    assert all(len(f["text"]) <= 2000 for f in section["fields"])
    assert 0 < len(context["elements"][0]["text"]) <= 3000
