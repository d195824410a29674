"""Serving the dashboard with uvicorn: in the foreground for ``cronclaim dashboard``, or
on a background thread for tests, screenshots and benchmarks."""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn
from starlette.types import ASGIApp

from cronclaim.exceptions import ConfigurationError


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def _config(app: ASGIApp, **kwargs: object) -> uvicorn.Config:
    return uvicorn.Config(
        app,
        lifespan="off",
        server_header=False,
        # The client address goes into the event log with each replay: take it from the
        # connection, never from a header a client can set.
        proxy_headers=False,
        **kwargs,  # type: ignore[arg-type]
    )


def listen(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port`` (port 0: a free one), or a one-line error."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    family, _, _, _, address = infos[0]
    sock = socket.socket(family, socket.SOCK_STREAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigurationError(f"cannot listen on {host}:{port}: {exc.strerror}") from None
    return sock


def serve(app: ASGIApp, *, host: str, port: int, log_level: str = "info") -> None:
    """Serve until interrupted (SIGINT/SIGTERM)."""
    sock = listen(host, port)
    try:
        uvicorn.Server(_config(app, log_level=log_level)).run(sockets=[sock])
    finally:
        sock.close()


@contextmanager
def serving(app: ASGIApp, *, host: str = "127.0.0.1", timeout: float = 30.0) -> Iterator[str]:
    """Serve on a free port of ``host`` from a background thread; yields the base URL and
    stops the server (and its thread) on exit."""
    sock = listen(host, 0)
    bound, port = sock.getsockname()[:2]
    server = uvicorn.Server(_config(app, log_level="warning", access_log=False))
    thread = threading.Thread(
        target=server.run, kwargs={"sockets": [sock]}, name="cronclaim-dashboard", daemon=True
    )
    thread.start()
    deadline = time.monotonic() + timeout
    try:
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the dashboard did not start on {bound}:{port}")
            time.sleep(0.02)
        yield f"http://{f'[{bound}]' if ':' in bound else bound}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout)
        sock.close()
