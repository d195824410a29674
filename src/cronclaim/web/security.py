"""What stands between a browser and a replay: sessions signed with a key derived from
the dashboard token, a CSRF token per session, a same-origin check on every POST, a
bound on login attempts, and the security headers of every response.

Sessions are stateless: the cookie carries who signed in, until when, and a nonce,
signed with HMAC-SHA256 under a key derived from ``CRONCLAIM_DASHBOARD_TOKEN``. Changing
the token signs every session out; restarting the dashboard does not. The CSRF token of
a session is an HMAC of its nonce, so it needs no storage either.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
import threading
import time
import unicodedata
from collections import deque
from dataclasses import dataclass
from urllib.parse import urlsplit

from starlette.datastructures import MutableHeaders
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

SESSION_COOKIE = "cronclaim_session"
SESSION_SECONDS = 8 * 3600
#: Failed sign-ins allowed per client address per window before it must wait.
LOGIN_ATTEMPTS = 5
LOGIN_WINDOW_SECONDS = 60.0
MAX_NAME_LENGTH = 40

#: No inline script or style anywhere: everything comes from /static.
CONTENT_SECURITY_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
SECURITY_HEADERS = (
    (b"content-security-policy", CONTENT_SECURITY_POLICY.encode()),
    (b"x-frame-options", b"DENY"),
    (b"x-content-type-options", b"nosniff"),
    # Same-origin requests keep their Referer (the fallback of the origin check);
    # nothing leaks to other sites.
    (b"referrer-policy", b"same-origin"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
)


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


@dataclass(frozen=True)
class Session:
    """A signed-in operator: the name they gave (may be empty), and the session nonce."""

    name: str
    nonce: str
    expires: int


class Sessions:
    """Issues and verifies session cookies and CSRF tokens; ``None`` token: read-only."""

    def __init__(self, token: str | None) -> None:
        self.token = token or None
        secret = (self.token or secrets.token_urlsafe(32)).encode()
        self._key = hmac.new(secret, b"cronclaim-dashboard-session-v1", hashlib.sha256).digest()

    @property
    def writable(self) -> bool:
        return self.token is not None

    def check_token(self, given: str) -> bool:
        if self.token is None:
            return False
        return hmac.compare_digest(given.encode(), self.token.encode())

    def _mac(self, data: bytes) -> bytes:
        return hmac.new(self._key, data, hashlib.sha256).digest()

    def issue(self, name: str, *, now: float | None = None) -> tuple[Session, str]:
        """A new session for ``name`` and its cookie value."""
        moment = time.time() if now is None else now
        session = Session(
            name=name, nonce=secrets.token_urlsafe(18), expires=int(moment) + SESSION_SECONDS
        )
        payload = _b64(
            json.dumps(
                {"n": session.name, "s": session.nonce, "e": session.expires},
                separators=(",", ":"),
            ).encode()
        )
        return session, f"{payload}.{_b64(self._mac(payload.encode()))}"

    def verify(self, cookie: str | None, *, now: float | None = None) -> Session | None:
        """The session a cookie proves, or ``None`` (absent, forged, expired, read-only)."""
        if self.token is None or not cookie or cookie.count(".") != 1:
            return None
        payload, mac = cookie.split(".")
        try:
            if not hmac.compare_digest(_unb64(mac), self._mac(payload.encode())):
                return None
            data = json.loads(_unb64(payload))
        except (binascii.Error, ValueError):
            return None
        if not isinstance(data, dict):
            return None
        name, nonce, expires = data.get("n"), data.get("s"), data.get("e")
        if not (isinstance(name, str) and isinstance(nonce, str) and isinstance(expires, int)):
            return None
        if expires <= (time.time() if now is None else now):
            return None
        return Session(name=name, nonce=nonce, expires=expires)

    def csrf_token(self, session: Session) -> str:
        return _b64(self._mac(b"csrf:" + session.nonce.encode()))

    def check_csrf(self, session: Session, given: str | None) -> bool:
        return bool(given) and hmac.compare_digest(
            (given or "").encode(), self.csrf_token(session).encode()
        )


def clean_name(raw: str) -> str:
    """The operator name given at sign-in, as it will appear in the event log."""
    name = " ".join(raw.split())[:MAX_NAME_LENGTH]
    return "".join(ch for ch in name if unicodedata.category(ch)[0] != "C" and ch not in "@:")


def same_origin(request: Request) -> bool:
    """Whether a POST comes from a page of this dashboard: its Origin (or, when a
    browser sends none, its Referer) names the host the request was sent to."""
    host = request.headers.get("host")
    if not host:
        return False
    origin = request.headers.get("origin")
    if origin is not None:
        return origin != "null" and urlsplit(origin).netloc == host
    referer = request.headers.get("referer")
    return bool(referer) and urlsplit(referer).netloc == host


class LoginThrottle:
    """At most ``LOGIN_ATTEMPTS`` failed sign-ins per address per window."""

    def __init__(
        self, attempts: int = LOGIN_ATTEMPTS, window: float = LOGIN_WINDOW_SECONDS
    ) -> None:
        self.attempts = attempts
        self.window = window
        self._failures: dict[str, deque[float]] = {}
        self._lock = threading.Lock()

    def _recent(self, address: str, now: float) -> deque[float]:
        failures = self._failures.setdefault(address, deque())
        while failures and failures[0] <= now - self.window:
            failures.popleft()
        return failures

    def blocked(self, address: str) -> bool:
        with self._lock:
            return len(self._recent(address, time.monotonic())) >= self.attempts

    def failed(self, address: str) -> None:
        with self._lock:
            now = time.monotonic()
            self._recent(address, now).append(now)
            if len(self._failures) > 10_000:  # bound the memory an attacker can take
                self._failures = {a: f for a, f in self._failures.items() if f}

    def succeeded(self, address: str) -> None:
        with self._lock:
            self._failures.pop(address, None)


class SecurityHeaders:
    """ASGI middleware: the security headers on every response, ``no-store`` on every
    page (they show live state, and some show results of a mutation), and the server
    time spent, as ``Server-Timing: app;dur=<ms>``."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        static = str(scope.get("path", "")).startswith("/static/")

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in SECURITY_HEADERS:
                    headers[name.decode()] = value.decode()
                if not static:
                    headers["cache-control"] = "no-store"
                elapsed = (time.perf_counter() - started) * 1000
                headers["server-timing"] = f"app;dur={elapsed:.1f}"
            await send(message)

        await self.app(scope, receive, send_with_headers)
