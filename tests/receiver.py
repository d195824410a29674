"""A local HTTP receiver on 127.0.0.1 for tests of alert sinks and webhooks: it records
every request and answers from a script, else like the real service would."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Reply:
    status: int
    body: bytes = b""
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0


class Recorder:
    """Records every request; answers from a script, else like the real service would.

    Default answers by path: ``/v2/enqueue`` as PagerDuty (202 and a JSON receipt),
    ``/services/...`` as Slack (200 ``ok``), anything else 200 with an empty body.
    """

    def __init__(self) -> None:
        self.requests: list[Received] = []
        self._script: list[Reply] = []
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length", "0"))
                body = self.rfile.read(length)
                received = Received(
                    "POST", self.path, {k.lower(): v for k, v in self.headers.items()}, body
                )
                reply = recorder._record(received)
                if reply.delay:
                    time.sleep(reply.delay)
                try:
                    self.send_response(reply.status)
                    for name, value in reply.headers.items():
                        self.send_header(name, value)
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up (a timeout test)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host!s}:{port}"

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)

    def answer(
        self,
        status: int,
        body: bytes | str = b"",
        *,
        times: int = 1,
        headers: dict[str, str] | None = None,
        delay: float = 0.0,
    ) -> None:
        """Answer the next ``times`` requests with ``status`` (then back to defaults)."""
        data = body.encode() if isinstance(body, str) else body
        with self._lock:
            self._script.extend(
                Reply(status, data, dict(headers or {}), delay) for _ in range(times)
            )

    def _record(self, received: Received) -> Reply:
        with self._lock:
            self.requests.append(received)
            if self._script:
                return self._script.pop(0)
        if received.path.startswith("/v2/enqueue"):
            receipt = {
                "status": "success",
                "message": "Event processed",
                "dedup_key": json.loads(received.body).get("dedup_key"),
            }
            return Reply(202, json.dumps(receipt).encode(), {"Content-Type": "application/json"})
        if received.path.startswith("/services/"):
            return Reply(200, b"ok", {"Content-Type": "text/html"})
        return Reply(200)
