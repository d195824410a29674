"""The inference service over real HTTP on 127.0.0.1: forecasts, faults, the request log."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from datetime import date, timedelta

import httpx
import pytest

from cronclaim.demo.errors import (
    ServiceConnectionError,
    ServiceError,
    ServiceResponseError,
    ServiceTimeout,
)
from cronclaim.demo.faults import Fault, FaultKind
from cronclaim.demo.inference import (
    AsyncInferenceClient,
    ForecastRequest,
    InferenceClient,
    InferenceService,
)
from cronclaim.demo.platform import INCIDENT_WEEK
from cronclaim.demo.platform_db import PlatformDB

MONDAY, TUESDAY, WEDNESDAY = INCIDENT_WEEK[:3]
SHORT_TIMEOUT = 0.5  # stands in for the story's 5 s where a test waits for it to fire


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory) -> PlatformDB:
    path = tmp_path_factory.mktemp("inference") / "platform.db"
    return PlatformDB.generate(path, restaurants=["aitor", "mert"])


@pytest.fixture(scope="module")
def requests(db: PlatformDB) -> dict[tuple[str, date], ForecastRequest]:
    return {
        (restaurant, day): ForecastRequest.from_platform(db, restaurant, day)
        for restaurant in ("aitor", "mert")
        for day in (MONDAY, TUESDAY, WEDNESDAY)
    }


@pytest.fixture
def service() -> Iterator[InferenceService]:
    with InferenceService() as running:
        yield running
    assert not running.running


@pytest.fixture
def client(service: InferenceService) -> Iterator[InferenceClient]:
    """The story's client: 5 s, enough for a forecast on a loaded machine."""
    with InferenceClient(service.url, timeout=5.0, caller="worker-a") as c:
        yield c


@pytest.fixture
def impatient(service: InferenceService) -> Iterator[InferenceClient]:
    """A client whose timeout fires quickly, for the tests that wait for it."""
    with InferenceClient(service.url, timeout=SHORT_TIMEOUT, caller="worker-a") as c:
        yield c


def test_starts_on_a_free_port_and_answers_healthz(service: InferenceService) -> None:
    assert service.port > 0
    assert service.url == f"http://127.0.0.1:{service.port}"
    response = httpx.get(service.url + "/healthz")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


def test_forecasts_each_ingredient_for_fourteen_days(
    client: InferenceClient, requests: dict[tuple[str, date], ForecastRequest]
) -> None:
    request = requests["aitor", MONDAY]
    result = client.forecast(request)
    assert result.restaurant_id == "aitor"
    assert result.day == MONDAY
    assert set(result.ingredients) == set(request.history)
    assert all(len(f.forecast) == 14 for f in result.ingredients.values())
    cepes = result.ingredients["cepe-mushrooms"]
    assert cepes.at_risk
    assert cepes.stockout_date is not None and cepes.stockout_date <= MONDAY + timedelta(days=5)
    assert "cepe-mushrooms" in result.at_risk


def test_the_request_log_says_who_asked_for_which_day_and_what_was_answered(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    client.forecast(requests["aitor", TUESDAY], idempotency_key="inventory-predict:aitor:x")
    [entry] = service.requests()
    assert (entry.restaurant_id, entry.day, entry.caller, entry.status) == (
        "aitor",
        TUESDAY,
        "worker-a",
        200,
    )
    assert entry.idempotency_key == "inventory-predict:aitor:x"
    assert entry.fault is None
    assert entry.answer is not None and "cepe-mushrooms" in entry.at_risk
    assert service.requests(restaurant_id="mert") == []


def test_a_bad_request_is_answered_400_naming_the_problem(
    service: InferenceService, client: InferenceClient
) -> None:
    with pytest.raises(ServiceResponseError) as caught:
        client.forecast({"restaurant_id": "aitor", "day": "Tuesday"})
    assert caught.value.status == 400
    assert "ISO date" in caught.value.body
    assert not caught.value.retryable
    assert service.requests()[0].status == 400


def test_a_hang_makes_the_client_timeout_fire(
    service: InferenceService,
    impatient: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.HANG, restaurant_id="aitor", day=TUESDAY)
    started = time.monotonic()
    with pytest.raises(ServiceTimeout) as caught:
        impatient.forecast(requests["aitor", TUESDAY])
    elapsed = time.monotonic() - started
    assert isinstance(caught.value, TimeoutError)  # thrown, like the story's AbortError
    assert not isinstance(caught.value, ServiceResponseError)
    assert SHORT_TIMEOUT * 0.9 <= elapsed < SHORT_TIMEOUT + 2.0
    [entry] = service.requests()
    assert (entry.fault, entry.status, entry.answer) == (FaultKind.HANG, None, None)


def test_a_5xx_is_a_response_error_not_a_timeout(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.ERROR, restaurant_id="aitor", status=503)
    with pytest.raises(ServiceResponseError) as caught:
        client.forecast(requests["aitor", MONDAY])
    assert caught.value.status == 503
    assert caught.value.retryable
    assert not isinstance(caught.value, TimeoutError)


@pytest.mark.parametrize("kind", [FaultKind.RESET, FaultKind.CLOSE])
def test_a_dropped_connection_is_a_connection_error(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
    kind: FaultKind,
) -> None:
    service.inject(kind, restaurant_id="aitor")
    with pytest.raises(ServiceConnectionError) as caught:
        client.forecast(requests["aitor", MONDAY])
    assert isinstance(caught.value, ConnectionError)
    assert service.requests()[0].fault is kind


def test_latency_below_the_timeout_still_answers(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.LATENCY, seconds=0.2)
    started = time.monotonic()
    result = client.forecast(requests["mert", MONDAY])
    assert time.monotonic() - started >= 0.2
    assert result.restaurant_id == "mert"
    assert service.requests()[0].fault is FaultKind.LATENCY


def test_latency_beyond_the_timeout_is_a_timeout(
    service: InferenceService,
    impatient: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.LATENCY, seconds=SHORT_TIMEOUT * 4)
    with pytest.raises(ServiceTimeout):
        impatient.forecast(requests["mert", MONDAY])


def test_faults_apply_per_restaurant_and_simulated_day_only(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.ERROR, restaurant_id="aitor", day=TUESDAY)
    assert client.forecast(requests["aitor", MONDAY]).day == MONDAY
    assert client.forecast(requests["mert", TUESDAY]).restaurant_id == "mert"
    with pytest.raises(ServiceResponseError):
        client.forecast(requests["aitor", TUESDAY])
    with pytest.raises(ServiceResponseError):
        client.forecast(requests["aitor", TUESDAY])  # in force until cleared
    service.faults.clear()
    assert client.forecast(requests["aitor", TUESDAY]).day == TUESDAY


def test_a_fault_limited_in_times_lets_the_retry_through(
    service: InferenceService,
    client: InferenceClient,
    impatient: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service.inject(FaultKind.HANG, restaurant_id="aitor", times=1)
    with pytest.raises(ServiceTimeout):
        impatient.forecast(requests["aitor", MONDAY])
    assert "cepe-mushrooms" in client.forecast(requests["aitor", MONDAY]).at_risk
    assert [e.status for e in service.requests()] == [None, 200]


def test_faults_are_controlled_through_the_admin_endpoint(
    service: InferenceService,
    client: InferenceClient,
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    fault_id = client.add_fault(Fault(kind=FaultKind.ERROR, restaurant_id="mert", status=502))
    assert list(service.faults.active()) == [fault_id]
    listed = httpx.get(service.url + "/v1/faults").json()["faults"]
    assert listed[0]["status"] == 502
    with pytest.raises(ServiceResponseError) as caught:
        client.forecast(requests["mert", MONDAY])
    assert caught.value.status == 502
    client.clear_faults()
    assert service.faults.active() == {}
    bad = httpx.post(service.url + "/v1/faults", json={"kind": "meteor"})
    assert bad.status_code == 400
    assert "unknown fault kind" in bad.json()["error"]


def test_the_async_client_keeps_the_same_distinction(
    service: InferenceService, requests: dict[tuple[str, date], ForecastRequest]
) -> None:
    service.inject(FaultKind.HANG, restaurant_id="aitor", day=MONDAY, times=1)

    async def run() -> tuple[BaseException | None, list[str]]:
        async with AsyncInferenceClient(service.url, timeout=SHORT_TIMEOUT) as c:
            try:
                await c.forecast(requests["aitor", MONDAY])
            except ServiceError as exc:
                error: BaseException | None = exc
            else:
                error = None
        async with AsyncInferenceClient(service.url, timeout=5.0) as c:
            result = await c.forecast(requests["aitor", MONDAY])
            return error, list(result.at_risk)

    error, at_risk = asyncio.run(run())
    assert isinstance(error, ServiceTimeout)
    assert "cepe-mushrooms" in at_risk


def test_stop_ends_a_hang_at_once_and_leaves_nothing_running(
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    service = InferenceService()
    service.start()
    service.inject(FaultKind.HANG, seconds=60)
    caught: list[BaseException] = []

    def call() -> None:
        with InferenceClient(service.url, timeout=30) as c:
            try:
                c.forecast(requests["aitor", MONDAY])
            except ServiceError as exc:
                caught.append(exc)

    caller = threading.Thread(target=call)
    caller.start()
    deadline = time.monotonic() + 5
    while not service.requests() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    service.stop()
    assert time.monotonic() - started < 2.0
    caller.join(5)
    assert not caller.is_alive()
    assert isinstance(caught[0], ServiceConnectionError)
    service.stop()  # idempotent
    before = {t.name for t in threading.enumerate()}
    assert not any(name.startswith("inference-") for name in before)


def test_a_stopped_service_refuses_connections(
    requests: dict[tuple[str, date], ForecastRequest],
) -> None:
    with InferenceService() as service:
        url = service.url
    with InferenceClient(url, timeout=SHORT_TIMEOUT) as c:
        with pytest.raises(ServiceConnectionError):
            c.forecast(requests["aitor", MONDAY])
        assert not c.health()


def test_a_fixed_port_can_be_asked_for() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with InferenceService(port=port) as service:
        assert service.port == port
        with InferenceClient(service.url) as c:
            assert c.health()
