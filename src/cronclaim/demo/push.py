"""A local push gateway shaped like APNs, and its clients.

``POST /3/device/{token}`` with the APNs headers (``apns-id``, ``apns-collapse-id``,
``apns-push-type: alert``, ``apns-priority``) and a JSON body
``{"aps": {"alert": {"title": ..., "body": ...}, "sound": "default"}, ...custom}``.

It validates like APNs: ``400 BadDeviceToken`` for a token it does not know,
``410 Unregistered`` for a device that was unregistered, ``413 PayloadTooLarge`` above
4096 bytes (APNs answers 413 for this reason), ``400 BadMessageId``/``BadCollapseId``/
``BadPriority``/``InvalidPushType`` for bad headers. It records every delivery with the
time it was received, and *drops duplicates* by ``apns-id``: a second request with an
``apns-id`` already delivered answers 200 with that same id but records nothing (it is
counted in :attr:`PushGateway.duplicates_dropped`). Callers make the id with
:func:`apns_id_for` from the occurrence's idempotency key, the device and the
ingredient, so a job retried after a crash between "pushed" and "marked done" does not
buzz the owner's watch twice.

Faults (5xx, latency, hang, reset, close) can be injected per device, like the inference
service's (``gateway.inject(...)`` or ``POST /v1/faults``).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from types import TracebackType
from typing import Any, Self

import httpx

from cronclaim.demo._http import LocalServer, Reply, Request, Response
from cronclaim.demo.errors import PushRejected, translate_transport_error
from cronclaim.demo.faults import Fault, FaultKind

SERVICE = "push"
MAX_PAYLOAD_BYTES = 4096
MAX_COLLAPSE_ID_BYTES = 64
#: Namespace of the deterministic ``apns-id`` UUIDs (UUID version 5).
APNS_ID_NAMESPACE = uuid.UUID("6f1d7c2e-5b0a-4c43-9a51-cc0c1a1a0606")
_PATH = re.compile(r"/3/device/([^/?]+)")
_TOKEN = re.compile(r"[0-9a-fA-F]{64}")
_UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}")
_ERROR_REASONS = {
    429: "TooManyRequests",
    500: "InternalServerError",
    503: "ServiceUnavailable",
}


def apns_id_for(idempotency_key: str, device_token: str, ingredient_id: str) -> str:
    """The ``apns-id`` of one alert: the same for every attempt of the same occurrence,
    device and ingredient, different for anything else."""
    name = "\n".join((idempotency_key, device_token.lower(), ingredient_id))
    return str(uuid.uuid5(APNS_ID_NAMESPACE, name))


def alert_payload(
    title: str, body: str, *, sound: str = "default", custom: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """An APNs alert payload; ``custom`` keys sit beside ``aps``."""
    payload: dict[str, Any] = {"aps": {"alert": {"title": title, "body": body}, "sound": sound}}
    for key, value in (custom or {}).items():
        if key == "aps":
            raise ValueError("custom payload keys must not be 'aps'")
        payload[key] = value
    return payload


@dataclass(frozen=True, kw_only=True, slots=True)
class ReceivedPush:
    """One notification the gateway accepted and recorded."""

    apns_id: str
    device: str
    collapse_id: str | None
    priority: int
    push_type: str
    title: str | None
    body: str | None
    payload: Mapping[str, Any]
    received_at: datetime


@dataclass(frozen=True, kw_only=True, slots=True)
class PushAttempt:
    """Every request to ``/3/device/...``, accepted or not; ``status`` is ``None`` when
    the connection was dropped without an answer."""

    at: datetime
    device: str | None
    apns_id: str | None
    status: int | None
    reason: str | None
    duplicate: bool
    fault: FaultKind | None


class PushGateway(LocalServer):
    """The gateway on 127.0.0.1 (port 0 by default: read ``port`` after start).

    ``tokens`` are the registered device tokens, ``unregistered`` the ones that answer
    410. ``clock`` stamps receipts (default: the wall clock, UTC).
    """

    service = SERVICE

    def __init__(
        self,
        tokens: Iterable[str] = (),
        *,
        unregistered: Iterable[str] = (),
        clock: Callable[[], datetime] | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> None:
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._registered: set[str] = {t.lower() for t in tokens}
        self._unregistered: dict[str, datetime] = {}
        for token in unregistered:
            self._unregistered[token.lower()] = self._clock()
        self._delivered: dict[str, ReceivedPush] = {}
        self._attempts: list[PushAttempt] = []
        self._duplicates = 0

    # -- devices -----------------------------------------------------------------------

    def register(self, token: str) -> None:
        with self._lock:
            self._registered.add(token.lower())
            self._unregistered.pop(token.lower(), None)

    def unregister(self, token: str) -> None:
        """From now on the device answers ``410 Unregistered``."""
        with self._lock:
            self._registered.discard(token.lower())
            self._unregistered[token.lower()] = self._clock()

    # -- what happened -----------------------------------------------------------------

    def deliveries(self, device: str | None = None) -> list[ReceivedPush]:
        """Recorded deliveries in the order received, optionally for one device."""
        with self._lock:
            pushes = list(self._delivered.values())
        if device is None:
            return pushes
        return [p for p in pushes if p.device == device.lower()]

    @property
    def duplicates_dropped(self) -> int:
        with self._lock:
            return self._duplicates

    def attempts(self) -> list[PushAttempt]:
        with self._lock:
            return list(self._attempts)

    def inject(
        self,
        kind: FaultKind | str,
        *,
        device: str | None = None,
        seconds: float | None = None,
        status: int = 503,
        times: int | None = None,
    ) -> int:
        """Shorthand for ``faults.add(Fault(...))``; returns the fault's id."""
        return self.faults.add(
            Fault(
                kind=FaultKind(kind),
                device=device.lower() if device else None,
                seconds=seconds,
                status=status,
                times=times,
            )
        )

    # -- HTTP --------------------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            return Response.json(200, {"status": "ok", "service": SERVICE})
        if path == "/v1/faults":
            return self.handle_fault_admin(request)
        if path == "/v1/deliveries" and request.method == "GET":
            return Response.json(
                200,
                {
                    "deliveries": [_push_json(p) for p in self.deliveries()],
                    "duplicates_dropped": self.duplicates_dropped,
                },
            )
        match = _PATH.fullmatch(path)
        if match is None:
            return _reason(404, "BadPath")
        if request.method != "POST":
            return _reason(405, "MethodNotAllowed")
        return self._push(request, match.group(1).lower())

    def _push(self, request: Request, device: str) -> Reply:
        apns_id = request.headers.get("apns-id")
        fault = self.faults.take(device=device)
        if fault is not None:
            if fault.kind is FaultKind.ERROR:
                self._attempt(device, apns_id, fault.status, _error_reason(fault.status), fault)
                return _reason(fault.status, _error_reason(fault.status))
            if fault.kind is not FaultKind.LATENCY:
                self._attempt(device, apns_id, None, None, fault)
                return self.apply_fault(fault)
            if self.wait(fault.delay):
                return self.apply_fault(Fault(kind=FaultKind.CLOSE))
        reply, duplicate, recorded_id = self._accept(request, device, apns_id)
        reason = None if reply.status == 200 else _reason_of(reply)
        self._attempt(device, recorded_id, reply.status, reason, fault, duplicate=duplicate)
        return reply

    def _accept(
        self, request: Request, device: str, apns_id: str | None
    ) -> tuple[Response, bool, str | None]:
        """Validate like APNs, then record the push or drop it as a duplicate."""
        headers = request.headers
        push_type = headers.get("apns-push-type", "")
        if push_type != "alert":
            return _reason(400, "InvalidPushType"), False, apns_id
        priority_text = headers.get("apns-priority", "10")
        if priority_text not in ("5", "10"):
            return _reason(400, "BadPriority"), False, apns_id
        if apns_id is not None and not _UUID.fullmatch(apns_id):
            return _reason(400, "BadMessageId"), False, apns_id
        apns_id = (apns_id or str(uuid.uuid4())).lower()
        collapse_id = headers.get("apns-collapse-id")
        if collapse_id is not None and len(collapse_id.encode()) > MAX_COLLAPSE_ID_BYTES:
            return _reason(400, "BadCollapseId"), False, apns_id
        if not _TOKEN.fullmatch(device):
            return _reason(400, "BadDeviceToken"), False, apns_id
        if len(request.body) > MAX_PAYLOAD_BYTES:
            return _reason(413, "PayloadTooLarge"), False, apns_id
        if not request.body:
            return _reason(400, "PayloadEmpty"), False, apns_id
        try:
            payload = json.loads(request.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return _reason(400, "BadPayload"), False, apns_id
        aps = payload.get("aps") if isinstance(payload, dict) else None
        alert = aps.get("alert") if isinstance(aps, dict) else None
        if not isinstance(alert, dict | str):
            return _reason(400, "BadPayload"), False, apns_id
        ok = Response(status=200, headers=(("apns-id", apns_id),))
        with self._lock:
            if device in self._unregistered:
                since = int(self._unregistered[device].timestamp() * 1000)
                return (
                    Response.json(410, {"reason": "Unregistered", "timestamp": since}),
                    False,
                    apns_id,
                )
            if device not in self._registered:
                return _reason(400, "BadDeviceToken"), False, apns_id
            if apns_id in self._delivered:
                self._duplicates += 1
                return ok, True, apns_id
            self._delivered[apns_id] = ReceivedPush(
                apns_id=apns_id,
                device=device,
                collapse_id=collapse_id,
                priority=int(priority_text),
                push_type=push_type,
                title=alert.get("title") if isinstance(alert, dict) else None,
                body=alert.get("body") if isinstance(alert, dict) else alert,
                payload=payload,
                received_at=self._clock(),
            )
        return ok, False, apns_id

    def _attempt(
        self,
        device: str | None,
        apns_id: str | None,
        status: int | None,
        reason: str | None,
        fault: Fault | None,
        *,
        duplicate: bool = False,
    ) -> None:
        entry = PushAttempt(
            at=self._clock(),
            device=device,
            apns_id=apns_id,
            status=status,
            reason=reason,
            duplicate=duplicate,
            fault=fault.kind if fault else None,
        )
        with self._lock:
            self._attempts.append(entry)


def _reason(status: int, reason: str) -> Response:
    return Response.json(status, {"reason": reason})


def _error_reason(status: int) -> str:
    return _ERROR_REASONS.get(status, "InternalServerError" if status >= 500 else "BadRequest")


def _reason_of(response: Response) -> str | None:
    try:
        data = json.loads(response.body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return None
    reason = data.get("reason") if isinstance(data, dict) else None
    return reason if isinstance(reason, str) else None


def _push_json(push: ReceivedPush) -> dict[str, Any]:
    return {
        "apns_id": push.apns_id,
        "device": push.device,
        "collapse_id": push.collapse_id,
        "title": push.title,
        "body": push.body,
        "received_at": push.received_at.isoformat(),
    }


# -- the clients -------------------------------------------------------------------------


def _request_headers(
    apns_id: str | None, collapse_id: str | None, priority: int, push_type: str, topic: str | None
) -> dict[str, str]:
    headers = {"apns-push-type": push_type, "apns-priority": str(priority)}
    if apns_id is not None:
        headers["apns-id"] = apns_id
    if collapse_id is not None:
        headers["apns-collapse-id"] = collapse_id
    if topic is not None:
        headers["apns-topic"] = topic
    return headers


def _acknowledged(response: httpx.Response, url: str) -> str:
    if response.status_code == 200:
        return str(response.headers.get("apns-id", ""))
    text = response.text
    try:
        reason = str(response.json().get("reason", "Unknown"))
    except (ValueError, AttributeError):
        reason = "Unknown"
    raise PushRejected(
        f"push gateway answered {response.status_code} {reason} at {url}",
        service=SERVICE,
        url=url,
        status=response.status_code,
        body=text,
        reason=reason,
    )


class PushClient:
    """Sends notifications to the gateway. ``send`` returns the acknowledged ``apns-id``.

    Raises :class:`~cronclaim.demo.errors.PushRejected` for a non-200 answer (its
    ``reason`` is the APNs reason, ``retryable`` says whether to try again), and
    :class:`~cronclaim.demo.errors.ServiceTimeout` /
    :class:`~cronclaim.demo.errors.ServiceConnectionError` when no answer came.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        *,
        topic: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.topic = topic
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def send(
        self,
        device_token: str,
        payload: Mapping[str, Any],
        *,
        apns_id: str | None = None,
        collapse_id: str | None = None,
        priority: int = 10,
        push_type: str = "alert",
    ) -> str:
        """Send ``payload`` as it is (see :func:`alert_payload`)."""
        path = f"/3/device/{device_token}"
        url = self.base_url + path
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers = _request_headers(apns_id, collapse_id, priority, push_type, self.topic)
        headers["content-type"] = "application/json"
        try:
            response = self._http.post(path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, service=SERVICE, url=url) from exc
        return _acknowledged(response, url)

    def send_alert(
        self,
        device_token: str,
        *,
        title: str,
        body: str,
        apns_id: str | None = None,
        collapse_id: str | None = None,
        priority: int = 10,
        custom: Mapping[str, Any] | None = None,
    ) -> str:
        return self.send(
            device_token,
            alert_payload(title, body, custom=custom),
            apns_id=apns_id,
            collapse_id=collapse_id,
            priority=priority,
        )


class AsyncPushClient:
    """The async twin of :class:`PushClient` (same errors, same timeout)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        *,
        topic: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.topic = topic
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def send(
        self,
        device_token: str,
        payload: Mapping[str, Any],
        *,
        apns_id: str | None = None,
        collapse_id: str | None = None,
        priority: int = 10,
        push_type: str = "alert",
    ) -> str:
        path = f"/3/device/{device_token}"
        url = self.base_url + path
        content = json.dumps(payload, ensure_ascii=False).encode()
        headers = _request_headers(apns_id, collapse_id, priority, push_type, self.topic)
        headers["content-type"] = "application/json"
        try:
            response = await self._http.post(path, content=content, headers=headers)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, service=SERVICE, url=url) from exc
        return _acknowledged(response, url)

    async def send_alert(
        self,
        device_token: str,
        *,
        title: str,
        body: str,
        apns_id: str | None = None,
        collapse_id: str | None = None,
        priority: int = 10,
        custom: Mapping[str, Any] | None = None,
    ) -> str:
        return await self.send(
            device_token,
            alert_payload(title, body, custom=custom),
            apns_id=apns_id,
            collapse_id=collapse_id,
            priority=priority,
        )
