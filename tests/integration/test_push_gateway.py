"""The APNs-shaped push gateway over real HTTP on 127.0.0.1."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from cronclaim.demo.errors import PushRejected, ServiceConnectionError, ServiceTimeout
from cronclaim.demo.faults import FaultKind
from cronclaim.demo.platform import device_token
from cronclaim.demo.push import (
    MAX_PAYLOAD_BYTES,
    AsyncPushClient,
    PushClient,
    PushGateway,
    alert_payload,
    apns_id_for,
)

WATCH = device_token(606, "aitor", "Aitor's Apple Watch")
PHONE = device_token(606, "aitor", "Aitor's iPhone")
OLD_PHONE = device_token(606, "lars", "Lars's old iPhone")
UNKNOWN = "f" * 64
KEY = "inventory-predict:aitor:2026-05-18T05:00:00Z"
RECEIVED = datetime(2026, 5, 18, 5, 0, 4, tzinfo=UTC)


@pytest.fixture
def gateway() -> Iterator[PushGateway]:
    with PushGateway([WATCH, PHONE], unregistered=[OLD_PHONE], clock=lambda: RECEIVED) as running:
        yield running
    assert not running.running


@pytest.fixture
def client(gateway: PushGateway) -> Iterator[PushClient]:
    with PushClient(gateway.url, timeout=5.0) as c:
        yield c


def cepe_alert(client: PushClient, device: str = WATCH, *, key: str = KEY) -> str:
    return client.send_alert(
        device,
        title="Pintxos del Mercado: cèpe mushrooms at risk",
        body="Runs out Fri 22 May; order today for Thursday's delivery.",
        apns_id=apns_id_for(key, device, "cepe-mushrooms"),
        collapse_id="at-risk:cepe-mushrooms",
        custom={"restaurant_id": "aitor", "ingredient": "cepe-mushrooms"},
    )


def test_a_delivery_is_recorded_with_headers_payload_and_time(
    gateway: PushGateway, client: PushClient
) -> None:
    apns_id = cepe_alert(client)
    assert apns_id == apns_id_for(KEY, WATCH, "cepe-mushrooms")
    [push] = gateway.deliveries()
    assert push.apns_id == apns_id
    assert push.device == WATCH
    assert push.collapse_id == "at-risk:cepe-mushrooms"
    assert (push.push_type, push.priority) == ("alert", 10)
    assert push.title == "Pintxos del Mercado: cèpe mushrooms at risk"
    assert push.payload["aps"]["sound"] == "default"
    assert push.payload["ingredient"] == "cepe-mushrooms"
    assert push.received_at == RECEIVED
    assert gateway.deliveries(device=PHONE) == []


def test_a_duplicate_apns_id_is_acknowledged_but_not_delivered_again(
    gateway: PushGateway, client: PushClient
) -> None:
    first = cepe_alert(client)
    second = cepe_alert(client)  # the job retried after a crash between push and done
    assert second == first
    assert len(gateway.deliveries()) == 1
    assert gateway.duplicates_dropped == 1
    assert [a.duplicate for a in gateway.attempts()] == [False, True]


def test_each_device_and_ingredient_gets_its_own_alert(
    gateway: PushGateway, client: PushClient
) -> None:
    cepe_alert(client, WATCH)
    cepe_alert(client, PHONE)
    client.send_alert(
        WATCH, title="eggs at risk", body="...", apns_id=apns_id_for(KEY, WATCH, "eggs")
    )
    assert len(gateway.deliveries()) == 3
    assert len(gateway.deliveries(device=WATCH)) == 2
    assert gateway.duplicates_dropped == 0


def test_apns_ids_are_stable_uuids_that_differ_by_occurrence_device_and_ingredient() -> None:
    base = apns_id_for(KEY, WATCH, "cepe-mushrooms")
    assert base == apns_id_for(KEY, WATCH.upper(), "cepe-mushrooms")
    assert len(base) == 36 and base.count("-") == 4
    others = {
        apns_id_for(KEY.replace("05-18", "05-19"), WATCH, "cepe-mushrooms"),
        apns_id_for(KEY, PHONE, "cepe-mushrooms"),
        apns_id_for(KEY, WATCH, "eggs"),
    }
    assert base not in others and len(others) == 3


def test_concurrent_retries_of_one_alert_deliver_it_once(
    gateway: PushGateway, client: PushClient
) -> None:
    acknowledged: list[str] = []
    lock = threading.Lock()

    def send() -> None:
        with PushClient(gateway.url) as own:
            apns_id = cepe_alert(own)
        with lock:
            acknowledged.append(apns_id)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(set(acknowledged)) == 1 and len(acknowledged) == 8
    assert len(gateway.deliveries()) == 1
    assert gateway.duplicates_dropped == 7


def test_unknown_device_token_is_400_bad_device_token(
    gateway: PushGateway, client: PushClient
) -> None:
    with pytest.raises(PushRejected) as caught:
        cepe_alert(client, UNKNOWN)
    assert (caught.value.status, caught.value.reason) == (400, "BadDeviceToken")
    assert not caught.value.retryable
    with pytest.raises(PushRejected, match="BadDeviceToken"):
        client.send_alert("not-a-token", title="t", body="b")
    assert gateway.deliveries() == []


def test_unregistered_device_is_410_with_a_timestamp(
    gateway: PushGateway, client: PushClient
) -> None:
    with pytest.raises(PushRejected) as caught:
        cepe_alert(client, OLD_PHONE)
    assert (caught.value.status, caught.value.reason) == (410, "Unregistered")
    assert '"timestamp"' in caught.value.body
    gateway.unregister(PHONE)
    with pytest.raises(PushRejected, match="Unregistered"):
        cepe_alert(client, PHONE)
    gateway.register(PHONE)
    cepe_alert(client, PHONE)
    assert len(gateway.deliveries()) == 1


def test_payload_over_4096_bytes_is_payload_too_large(
    gateway: PushGateway, client: PushClient
) -> None:
    payload = alert_payload("t", "x" * MAX_PAYLOAD_BYTES)
    with pytest.raises(PushRejected) as caught:
        client.send(WATCH, payload)
    assert (caught.value.status, caught.value.reason) == (413, "PayloadTooLarge")
    fits = alert_payload("t", "x" * (MAX_PAYLOAD_BYTES - 100))
    client.send(WATCH, fits)
    assert len(gateway.deliveries()) == 1


@pytest.mark.parametrize(
    ("headers", "reason"),
    [
        ({"apns-push-type": "background"}, "InvalidPushType"),
        ({"apns-push-type": "alert", "apns-priority": "7"}, "BadPriority"),
        ({"apns-push-type": "alert", "apns-id": "not-a-uuid"}, "BadMessageId"),
        ({"apns-push-type": "alert", "apns-collapse-id": "c" * 65}, "BadCollapseId"),
    ],
)
def test_bad_headers_are_refused_like_apns(
    gateway: PushGateway, headers: dict[str, str], reason: str
) -> None:
    response = httpx.post(
        f"{gateway.url}/3/device/{WATCH}", json=alert_payload("t", "b"), headers=headers
    )
    assert response.status_code == 400
    assert response.json() == {"reason": reason}


def test_a_body_without_an_alert_is_refused(gateway: PushGateway) -> None:
    response = httpx.post(
        f"{gateway.url}/3/device/{WATCH}",
        json={"aps": {"sound": "default"}},
        headers={"apns-push-type": "alert"},
    )
    assert response.status_code == 400
    empty = httpx.post(f"{gateway.url}/3/device/{WATCH}", headers={"apns-push-type": "alert"})
    assert empty.json() == {"reason": "PayloadEmpty"}


def test_other_paths_and_methods(gateway: PushGateway) -> None:
    assert httpx.post(f"{gateway.url}/3/devices/{WATCH}").json() == {"reason": "BadPath"}
    assert httpx.get(f"{gateway.url}/3/device/{WATCH}").status_code == 405
    assert httpx.get(f"{gateway.url}/healthz").json()["status"] == "ok"


def test_an_injected_5xx_is_retryable_and_the_retry_delivers_once(
    gateway: PushGateway, client: PushClient
) -> None:
    gateway.inject(FaultKind.ERROR, status=503, times=1)
    with pytest.raises(PushRejected) as caught:
        cepe_alert(client)
    assert (caught.value.status, caught.value.reason) == (503, "ServiceUnavailable")
    assert caught.value.retryable
    assert gateway.deliveries() == []
    cepe_alert(client)
    cepe_alert(client)
    assert len(gateway.deliveries()) == 1
    assert gateway.duplicates_dropped == 1


def test_faults_can_target_one_device(gateway: PushGateway, client: PushClient) -> None:
    gateway.inject(FaultKind.ERROR, device=PHONE, status=500)
    cepe_alert(client, WATCH)
    with pytest.raises(PushRejected, match="InternalServerError"):
        cepe_alert(client, PHONE)
    assert [p.device for p in gateway.deliveries()] == [WATCH]


def test_latency_delays_but_delivers(gateway: PushGateway, client: PushClient) -> None:
    gateway.inject(FaultKind.LATENCY, seconds=0.2)
    started = time.monotonic()
    cepe_alert(client)
    assert time.monotonic() - started >= 0.2
    assert len(gateway.deliveries()) == 1


def test_a_hang_makes_the_client_time_out(gateway: PushGateway) -> None:
    gateway.inject(FaultKind.HANG, times=1)
    with PushClient(gateway.url, timeout=0.3) as impatient:
        with pytest.raises(ServiceTimeout):
            cepe_alert(impatient)
        assert gateway.deliveries() == []
        cepe_alert(impatient)
    assert len(gateway.deliveries()) == 1


@pytest.mark.parametrize("kind", [FaultKind.RESET, FaultKind.CLOSE])
def test_a_dropped_connection_is_a_connection_error(
    gateway: PushGateway, client: PushClient, kind: FaultKind
) -> None:
    gateway.inject(kind, times=1)
    with pytest.raises(ServiceConnectionError):
        cepe_alert(client)
    assert gateway.deliveries() == []
    assert gateway.attempts()[0].fault is kind


def test_faults_through_the_admin_endpoint(gateway: PushGateway, client: PushClient) -> None:
    created = httpx.post(
        f"{gateway.url}/v1/faults", json={"kind": "error", "status": 503, "device": WATCH}
    )
    assert created.status_code == 201
    with pytest.raises(PushRejected):
        cepe_alert(client)
    assert httpx.delete(f"{gateway.url}/v1/faults").status_code == 200
    cepe_alert(client)
    listed = httpx.get(f"{gateway.url}/v1/deliveries").json()
    assert [d["device"] for d in listed["deliveries"]] == [WATCH]


def test_the_async_client_delivers_and_dedups(gateway: PushGateway) -> None:
    async def run() -> list[str]:
        async with AsyncPushClient(gateway.url) as c:
            return [
                await c.send_alert(
                    WATCH, title="t", body="b", apns_id=apns_id_for(KEY, WATCH, "eggs")
                )
                for _ in range(2)
            ]

    ids = asyncio.run(run())
    assert ids[0] == ids[1]
    assert len(gateway.deliveries()) == 1
    assert gateway.duplicates_dropped == 1


def test_the_gateway_stops_cleanly_during_a_hang() -> None:
    gateway = PushGateway([WATCH])
    gateway.start()
    gateway.inject(FaultKind.HANG, seconds=60)
    errors: list[Exception] = []

    def send() -> None:
        with PushClient(gateway.url, timeout=30) as c:
            try:
                cepe_alert(c)
            except (ServiceConnectionError, ServiceTimeout) as exc:
                errors.append(exc)

    sender = threading.Thread(target=send)
    sender.start()
    deadline = time.monotonic() + 5
    while not gateway.attempts() and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    gateway.stop()
    assert time.monotonic() - started < 2.0
    sender.join(5)
    assert not sender.is_alive()
    assert len(errors) == 1
