"""A small HTTP server on 127.0.0.1 in a background thread, with fault injection.

Both demo services (inference, push) are subclasses: they turn a :class:`Request` into a
:class:`Response`, or into a :class:`Drop` (reset or close the connection without
answering). One connection per request (HTTP/1.0 style), so a reset or a hang affects
exactly the request it was meant for. ``stop()`` wakes every hang and latency wait, shuts
the open connections and joins the handler threads: nothing is left running.
"""

from __future__ import annotations

import contextlib
import json
import logging
import socket
import struct
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Self

from cronclaim.demo.faults import Fault, FaultKind, FaultPlan

log = logging.getLogger("cronclaim.demo.http")

MAX_BODY_BYTES = 1 << 20
JSON_HEADERS = (("Content-Type", "application/json"),)


@dataclass(frozen=True, kw_only=True, slots=True)
class Request:
    method: str
    path: str
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    client: str

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` if it is not."""
        try:
            return json.loads(self.body)
        except (UnicodeDecodeError, json.JSONDecodeError) as exc:
            raise ValueError(f"body is not JSON: {exc}") from None


@dataclass(frozen=True, kw_only=True, slots=True)
class Response:
    status: int
    body: bytes = b""
    headers: tuple[tuple[str, str], ...] = field(default=())

    @classmethod
    def json(
        cls, status: int, payload: object, headers: tuple[tuple[str, str], ...] = ()
    ) -> Response:
        body = json.dumps(payload, ensure_ascii=False).encode()
        return cls(status=status, body=body, headers=JSON_HEADERS + headers)


@dataclass(frozen=True, kw_only=True, slots=True)
class Drop:
    """End the connection without a response: a TCP reset, or a clean close."""

    reset: bool


Reply = Response | Drop


class LocalServer:
    """Base class: subclasses implement :meth:`handle`. Start on port 0, read :attr:`port`."""

    service = "server"

    def __init__(self, *, host: str = "127.0.0.1", port: int = 0) -> None:
        self._host = host
        self._requested_port = port
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self.faults = FaultPlan()

    # -- lifecycle ---------------------------------------------------------------------

    def start(self) -> int:
        """Bind, start serving in a background thread and return the port."""
        if self._httpd is not None:
            raise RuntimeError(f"{self.service} is already running on port {self.port}")
        self._stopping.clear()
        httpd = _Server((self._host, self._requested_port), _handler_for(self))
        self._httpd = httpd
        self._thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name=f"{self.service}-{httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self.port

    def stop(self) -> None:
        """Stop accepting, end hangs and open connections, join every thread. Idempotent."""
        httpd, thread = self._httpd, self._thread
        if httpd is None:
            return
        self._stopping.set()
        httpd.shutdown()
        httpd.abort_connections()
        httpd.server_close()
        if thread is not None:
            thread.join()
        self._httpd = None
        self._thread = None

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def running(self) -> bool:
        return self._httpd is not None

    @property
    def port(self) -> int:
        if self._httpd is None:
            raise RuntimeError(f"{self.service} is not running")
        return int(self._httpd.server_address[1])

    @property
    def url(self) -> str:
        return f"http://{self._host}:{self.port}"

    # -- for subclasses ----------------------------------------------------------------

    def handle(self, request: Request) -> Reply:
        raise NotImplementedError

    def wait(self, seconds: float) -> bool:
        """Sleep up to ``seconds``; True if the server is stopping (cut short)."""
        return self._stopping.wait(seconds)

    def apply_fault(self, fault: Fault, answer: Response | None = None) -> Reply:
        """What to do for a request a fault matched; ``answer`` is sent after a latency."""
        if fault.kind is FaultKind.LATENCY:
            if self.wait(fault.delay):
                return Drop(reset=False)
            return answer if answer is not None else Response(status=204)
        if fault.kind is FaultKind.HANG:
            self.wait(fault.delay)
            return Drop(reset=False)
        if fault.kind is FaultKind.RESET:
            return Drop(reset=True)
        if fault.kind is FaultKind.CLOSE:
            return Drop(reset=False)
        return Response.json(fault.status, {"error": "injected fault", "status": fault.status})

    def handle_fault_admin(self, request: Request) -> Response:
        """``GET``/``POST``/``DELETE /v1/faults``: list, add, or clear the faults in force."""
        if request.method == "GET":
            listed = [{"id": i, **f.to_json()} for i, f in self.faults.active().items()]
            return Response.json(200, {"faults": listed})
        if request.method == "DELETE":
            self.faults.clear()
            return Response.json(200, {"faults": []})
        if request.method == "POST":
            try:
                fault = Fault.from_json(request.json())
            except (ValueError, TypeError) as exc:
                return Response.json(400, {"error": str(exc)})
            return Response.json(201, {"id": self.faults.add(fault), **fault.to_json()})
        return Response.json(405, {"error": f"{request.method} not allowed on /v1/faults"})


class _Server(ThreadingHTTPServer):
    daemon_threads = False  # server_close() joins the handler threads
    block_on_close = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler]) -> None:
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()
        super().__init__(address, handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def abort_connections(self) -> None:
        """Unblock handler threads still reading from idle or slow clients."""
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already closed by its handler
                sock.shutdown(socket.SHUT_RDWR)


def _handler_for(server: LocalServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = f"cronclaim-demo-{server.service}"
        sys_version = ""
        timeout = 30.0

        def do_GET(self) -> None:
            self._dispatch()

        def do_POST(self) -> None:
            self._dispatch()

        def do_PUT(self) -> None:
            self._dispatch()

        def do_DELETE(self) -> None:
            self._dispatch()

        def log_message(self, format: str, *args: Any) -> None:
            log.debug("%s %s", server.service, format % args)

        def _dispatch(self) -> None:
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                self._send(Response.json(400, {"error": "Content-Length is not a number"}))
                return
            if length < 0 or length > MAX_BODY_BYTES:
                self._send(Response.json(413, {"error": "body too large"}))
                return
            try:
                body = self.rfile.read(length) if length else b""
            except OSError:
                self.close_connection = True  # the client went away mid-request
                return
            request = Request(
                method=self.command,
                path=self.path,
                headers={k.lower(): v for k, v in self.headers.items()},
                body=body,
                client=self.client_address[0],
            )
            try:
                reply = server.handle(request)
            except Exception:
                log.exception("%s failed on %s %s", server.service, self.command, self.path)
                reply = Response.json(500, {"error": "internal error"})
            if isinstance(reply, Drop):
                self.close_connection = True
                if reply.reset:
                    # SO_LINGER with a zero timeout makes close() send RST, not FIN.
                    self.connection.setsockopt(
                        socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
                    )
                    self.connection.close()
                return
            self._send(reply)

        def _send(self, reply: Response) -> None:
            try:
                self.send_response(reply.status)
                for name, value in reply.headers:
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(reply.body)))
                self.end_headers()
                self.wfile.write(reply.body)
            except OSError:
                self.close_connection = True  # the client went away first (timed out)

    return Handler
