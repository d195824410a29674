"""Local HTTP receivers that record what the platform sends out: pages from cronclaim's
alert sinks, webhook postbacks to partners, and purge requests to the CDN.

Each is a :class:`~cronclaim.demo._http.LocalServer` on 127.0.0.1 that keeps every
request it received, in order, so the demo and the tests count real HTTP requests
rather than trusting what the sender believes it sent. The partner receiver
deduplicates by ``Idempotency-Key`` like a well-behaved partner API: a repeated key is
acknowledged and recorded as a duplicate, never applied twice.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from cronclaim.demo._http import LocalServer, Reply, Request, Response

IDEMPOTENCY_HEADER = "idempotency-key"


@dataclass(frozen=True, kw_only=True, slots=True)
class Received:
    """One request a receiver got. ``duplicate`` is set by receivers that deduplicate."""

    at: datetime
    method: str
    path: str
    headers: Mapping[str, str]
    body: bytes
    duplicate: bool = False

    def json(self) -> Any:
        """The body parsed as JSON (``None`` if it is not JSON)."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError):
            return None


class RecordingServer(LocalServer):
    """A local server that records every request; subclasses decide the answer."""

    service = "receiver"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._lock = threading.Lock()
        self._received: list[Received] = []

    def received(self, path_prefix: str = "") -> list[Received]:
        """Requests received so far, oldest first, optionally under one path."""
        with self._lock:
            return [r for r in self._received if r.path.startswith(path_prefix)]

    def _record(self, request: Request, *, duplicate: bool = False) -> Received:
        entry = Received(
            at=self._clock(),
            method=request.method,
            path=request.path.split("?", 1)[0],
            headers=dict(request.headers),
            body=request.body,
            duplicate=duplicate,
        )
        with self._lock:
            self._received.append(entry)
        return entry


class AlertReceiver(RecordingServer):
    """Stands in for PagerDuty and for a webhook endpoint, so pages are real requests.

    ``POST /v2/enqueue`` answers like PagerDuty's Events API v2 (202 with the dedup key);
    ``POST /hooks/<name>`` answers 200. Faults can be injected like on the other services.
    """

    service = "alerts"
    PAGERDUTY_PATH = "/v2/enqueue"
    WEBHOOK_PATH = "/hooks/cronclaim"

    @property
    def pagerduty_url(self) -> str:
        return self.url + self.PAGERDUTY_PATH

    @property
    def webhook_url(self) -> str:
        return self.url + self.WEBHOOK_PATH

    def pages(self) -> list[Received]:
        """The PagerDuty events received (triggers and resolves)."""
        return self.received(self.PAGERDUTY_PATH)

    def webhooks(self) -> list[Received]:
        return self.received("/hooks/")

    def handle(self, request: Request) -> Reply:
        path = request.path.split("?", 1)[0]
        if path == "/v1/faults":
            return self.handle_fault_admin(request)
        if request.method != "POST":
            return Response.json(405, {"error": "use POST"})
        fault = self.faults.take()
        if fault is not None:
            return self.apply_fault(fault)
        if path == self.PAGERDUTY_PATH:
            self._record(request)
            body = _json_object(request.body)
            return Response.json(
                202,
                {
                    "status": "success",
                    "message": "Event processed",
                    "dedup_key": body.get("dedup_key"),
                },
            )
        if path.startswith("/hooks/"):
            self._record(request)
            return Response.json(200, {"ok": True})
        return Response.json(404, {"error": f"no route {path}"})


class PartnerReceiver(RecordingServer):
    """A partner's webhook endpoint (``POST /postbacks/<restaurant>``) and the CDN's purge
    API (``POST /purge``), both deduplicating by ``Idempotency-Key``."""

    service = "partner"

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock)
        self._keys: set[str] = set()

    def postbacks(self, *, include_duplicates: bool = False) -> list[Received]:
        return [r for r in self.received("/postbacks/") if include_duplicates or not r.duplicate]

    def purges(self, *, include_duplicates: bool = False) -> list[Received]:
        return [r for r in self.received("/purge") if include_duplicates or not r.duplicate]

    def handle(self, request: Request) -> Reply:
        path = request.path.split("?", 1)[0]
        if path == "/v1/faults":
            return self.handle_fault_admin(request)
        if request.method != "POST":
            return Response.json(405, {"error": "use POST"})
        if not (path.startswith("/postbacks/") or path == "/purge"):
            return Response.json(404, {"error": f"no route {path}"})
        fault = self.faults.take()
        if fault is not None:
            return self.apply_fault(fault)
        key = request.headers.get(IDEMPOTENCY_HEADER)
        if not key:
            return Response.json(400, {"error": "an Idempotency-Key header is required"})
        with self._lock:
            duplicate = key in self._keys
            self._keys.add(key)
        self._record(request, duplicate=duplicate)
        return Response.json(200, {"ok": True, "duplicate": duplicate})


def _json_object(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}
