"""Where alerts go: PagerDuty, Slack, a signed generic webhook, or the log.

Every sink is synchronous and thread-safe, and :meth:`Sink.deliver` never raises for a
delivery problem: it returns a :class:`DeliveryResult` saying what happened, so the
caller (the alert outbox) can record it and decide when to try again. HTTP sinks retry
transient failures themselves within a bounded :class:`RetryPolicy`.
"""

from __future__ import annotations

import json
import logging
import random
import threading
import time
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass
from importlib import metadata
from types import TracebackType
from typing import ClassVar, Literal
from urllib.parse import urlsplit

import httpx

from cronclaim.alerts.model import BODY_SNIPPET_LENGTH, Alert, DeliveryResult
from cronclaim.alerts.payloads import pagerduty_event, slack_message, webhook_body
from cronclaim.alerts.retry import RetryPolicy, format_seconds, parse_retry_after
from cronclaim.alerts.signing import SIGNATURE_HEADER, TIMESTAMP_HEADER, compute_signature
from cronclaim.exceptions import ConfigurationError

PAGERDUTY_EVENTS_URL = "https://events.pagerduty.com/v2/enqueue"
EVENT_ID_HEADER = "X-Cronclaim-Event-Id"
DEFAULT_TIMEOUT = 10.0

try:
    _VERSION = metadata.version("cronclaim")
except metadata.PackageNotFoundError:  # pragma: no cover - running from a bare checkout
    _VERSION = "0"
USER_AGENT = f"cronclaim/{_VERSION}"


def check_url(url: object, what: str) -> str:
    """``url`` if it is an absolute http(s) URL with a host; ``ConfigurationError`` if not.

    The message shows at most the scheme and host: webhook URLs carry their secret in
    the path (Slack's do), and errors end up in logs.
    """
    if not isinstance(url, str) or not url.strip():
        raise ConfigurationError(f"{what} is empty")
    shown = redact_url(url)
    label = what if shown == _UNPARSEABLE else f"{what} {shown!r}"
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number
        httpx.URL(url)
    except (ValueError, httpx.InvalidURL):
        raise ConfigurationError(f"{label} is not a valid URL") from None
    if parts.scheme not in ("http", "https") or not host:
        raise ConfigurationError(
            f"{label} is not a valid URL; it must start with http:// or https:// and name a host"
        )
    if any(ch.isspace() for ch in url):
        raise ConfigurationError(f"{label} contains whitespace")
    return url


_UNPARSEABLE = "<unparseable URL>"


def redact_url(url: str) -> str:
    """``scheme://host[:port]/…``: enough to recognise an endpoint, nothing secret."""
    try:
        parts = urlsplit(url)
        netloc = parts.hostname or ""
        if parts.port is not None:
            netloc += f":{parts.port}"
    except ValueError:
        return _UNPARSEABLE
    if not parts.scheme or not netloc:
        return _UNPARSEABLE
    tail = "/\u2026" if parts.path not in ("", "/") or parts.query else ""
    return f"{parts.scheme}://{netloc}{tail}"


def _check_text(value: object, what: str) -> str:
    if not isinstance(value, str) or not value.strip():
        raise ConfigurationError(f"{what} is empty")
    return value


class Sink(ABC):
    """Something that delivers alerts.

    ``name`` identifies the sink in results and logs, and must be unique within one
    configuration (the outbox records delivery per sink name). :meth:`deliver` is
    synchronous and safe to call from several threads at once; it raises only for a
    programming error (an argument that is not an :class:`Alert`), and reports every
    delivery problem in the returned :class:`DeliveryResult`.
    """

    kind: ClassVar[str]

    def __init__(self, *, name: str) -> None:
        self._name = _check_text(name, f"{self.kind} sink name")

    @property
    def name(self) -> str:
        return self._name

    @abstractmethod
    def deliver(self, alert: Alert) -> DeliveryResult:
        """Deliver ``alert``; see the class docstring for the contract."""

    def close(self) -> None:  # noqa: B027 - optional hook; sinks without connections skip it
        """Release connections. Further deliveries reopen them."""

    def __enter__(self) -> Sink:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r})"


@dataclass(frozen=True, slots=True)
class Verdict:
    """How an HTTP sink reads one response."""

    outcome: Literal["ok", "retry", "fail"]
    error: str | None = None


class HttpSink(Sink):
    """A sink that POSTs to one URL, retrying transient failures per ``retry``.

    ``sleep``, ``clock`` (monotonic seconds), ``wall_clock`` (Unix seconds, for
    signatures and HTTP-date ``Retry-After``) and ``rng`` (jitter, in [0, 1)) are
    injectable so tests and virtual-time demos do not wait. ``timeout`` bounds each
    phase (connect, write, read) of one request, and is cut to what is left of
    ``retry.max_total``. ``transport`` is passed to httpx (proxies, test transports).
    """

    def __init__(
        self,
        url: str,
        *,
        name: str,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(name=name)
        self._url = check_url(url, f"{self.kind} URL")
        if isinstance(timeout, bool) or not isinstance(timeout, int | float) or timeout <= 0:
            raise ConfigurationError(f"{self.kind} timeout must be a positive number of seconds")
        self.timeout = float(timeout)
        self.retry = retry if retry is not None else RetryPolicy()
        self._sleep = sleep
        self._clock = clock
        self._wall_clock = wall_clock
        self._rng = rng
        self._transport = transport
        self._client: httpx.Client | None = None
        self._lock = threading.Lock()

    @property
    def endpoint(self) -> str:
        """The URL with its path hidden, safe to log."""
        return redact_url(self._url)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, endpoint={self.endpoint!r})"

    def close(self) -> None:
        with self._lock:
            client, self._client = self._client, None
        if client is not None:
            client.close()

    def _http(self) -> httpx.Client:
        with self._lock:
            if self._client is None:
                self._client = httpx.Client(
                    transport=self._transport,
                    follow_redirects=False,
                    headers={"User-Agent": USER_AGENT},
                )
            return self._client

    @abstractmethod
    def _request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        """Body and extra headers for one attempt (built again for each attempt)."""

    def _verdict(self, response: httpx.Response) -> Verdict:
        status = response.status_code
        if 200 <= status < 300:
            return Verdict("ok")
        error = f"HTTP {status}: {self._describe(response)}"
        if status == 429 or status >= 500:
            return Verdict("retry", error)
        if 300 <= status < 400:
            where = response.headers.get("Location")
            moved = f" to {redact_url(where)}" if where else ""
            error = f"HTTP {status}: redirect{moved} not followed; configure the final URL"
        return Verdict("fail", error)

    def _describe(self, response: httpx.Response) -> str:
        """The receiver's own words for a failed response."""
        text = " ".join(response.text.split())
        return text[:200] or response.reason_phrase or "no body"

    def deliver(self, alert: Alert) -> DeliveryResult:
        if not isinstance(alert, Alert):
            raise TypeError(f"deliver() takes an Alert, not {type(alert).__name__}")
        policy = self.retry
        client = self._http()
        start = self._clock()
        attempt = 0
        while True:
            attempt += 1
            left = policy.max_total - (self._clock() - start)
            body, headers = self._request(alert)
            headers.setdefault("Content-Type", "application/json")
            status: int | None = None
            snippet: str | None = None
            retry_after: float | None = None
            timeout = max(0.001, min(self.timeout, left))
            try:
                response = client.post(
                    self._url, content=body, headers=headers, timeout=httpx.Timeout(timeout)
                )
            except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
                verdict = Verdict("fail", f"cannot send: {_exception_text(exc)}")
            except httpx.TimeoutException as exc:
                verdict = Verdict(
                    "retry", f"timed out after {format_seconds(timeout)} ({type(exc).__name__})"
                )
            except httpx.RequestError as exc:
                verdict = Verdict("retry", f"connection failed: {_exception_text(exc)}")
            else:
                status = response.status_code
                snippet = response.text[:BODY_SNIPPET_LENGTH]
                verdict = self._verdict(response)
                if verdict.outcome == "retry":
                    retry_after = parse_retry_after(
                        response.headers.get("Retry-After"), self._wall_clock
                    )

            ok, retryable, error = verdict.outcome == "ok", False, verdict.error
            if verdict.outcome == "retry":
                retryable = True
                if attempt >= policy.max_attempts:
                    tries = "attempt" if attempt == 1 else "attempts"
                    error = f"{verdict.error}; gave up after {attempt} {tries}"
                else:
                    wait = policy.wait(attempt, retry_after, self._rng)
                    if self._clock() - start + wait < policy.max_total:
                        self._sleep(wait)
                        continue
                    tries = "attempt" if attempt == 1 else "attempts"
                    error = (
                        f"{verdict.error}; gave up after {attempt} {tries}: waiting "
                        f"{format_seconds(wait)} more would exceed the "
                        f"{format_seconds(policy.max_total)} delivery budget"
                    )
            return DeliveryResult(
                sink=self.name,
                ok=ok,
                attempts=attempt,
                status=status,
                error=error,
                body=snippet,
                retryable=retryable,
                retry_after=retry_after,
                elapsed=max(0.0, self._clock() - start),
            )


def _exception_text(exc: BaseException) -> str:
    text = str(exc) or type(exc).__name__
    cause = exc.__cause__ or exc.__context__
    if not str(exc) and cause is not None:
        text = str(cause) or type(cause).__name__
    return " ".join(text.split())


class PagerDutySink(HttpSink):
    """PagerDuty Events API v2.

    ``routing_key`` is the integration key of an Events API v2 integration. The alert
    key becomes the ``dedup_key``, so repeated triggers of one incident update it and a
    resolve closes it. PagerDuty answers 202 with ``{"status": "success", "message":
    "Event processed", "dedup_key": ...}``; 400 means the event is invalid (not
    retried); 429 (throttled) and 5xx are retried.
    """

    kind = "pagerduty"

    def __init__(
        self,
        routing_key: str,
        url: str = PAGERDUTY_EVENTS_URL,
        *,
        name: str = "pagerduty",
        client: str | None = "cronclaim",
        client_url: str | None = None,
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            name=name,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            transport=transport,
        )
        self._routing_key = _check_text(routing_key, "pagerduty routing_key")
        self.client = client
        self.client_url = None if client_url is None else check_url(client_url, "client_url")

    def event(self, alert: Alert) -> dict[str, object]:
        """The exact JSON document :meth:`deliver` sends for ``alert``."""
        return pagerduty_event(
            alert, self._routing_key, client=self.client, client_url=self.client_url
        )

    def _request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        return _json_bytes(self.event(alert)), {}

    def _describe(self, response: httpx.Response) -> str:
        # {"status": "invalid event", "message": "Event object is invalid",
        #  "errors": ["Length of 'routing_key' is incorrect (should be 32 characters)"]}
        try:
            document = response.json()
        except ValueError:
            return super()._describe(response)
        if not isinstance(document, dict):
            return super()._describe(response)
        words = [str(document[k]) for k in ("status", "message") if document.get(k)]
        errors = document.get("errors")
        if isinstance(errors, list) and errors:
            words.append("; ".join(str(e) for e in errors))
        return ": ".join(words) or super()._describe(response)


class SlackSink(HttpSink):
    """A Slack incoming webhook.

    Slack answers 200 with the body ``ok``; errors come as a status with a short code in
    the body (400 ``invalid_payload``, 403 ``action_prohibited``, 404 ``no_service`` or
    ``channel_not_found``, 410 ``channel_is_archived``, 500 ``rollup_error``) and 429
    with ``Retry-After`` when posting too fast. 429 and 5xx are retried; the rest are
    reported at once. The webhook URL is a secret: it is never logged or shown whole.
    """

    kind = "slack"

    def __init__(
        self,
        webhook_url: str,
        *,
        name: str = "slack",
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            webhook_url,
            name=name,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            transport=transport,
        )

    def message(self, alert: Alert) -> dict[str, object]:
        """The exact JSON document :meth:`deliver` sends for ``alert``."""
        return slack_message(alert)

    def _request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        return _json_bytes(self.message(alert)), {}


class WebhookSink(HttpSink):
    """A JSON POST of the alert to any URL, signed with HMAC-SHA256.

    The body is :func:`~cronclaim.alerts.payloads.webhook_body`. Each attempt carries
    ``X-Cronclaim-Timestamp`` (Unix seconds) and ``X-Cronclaim-Signature:
    sha256=<hex>`` over ``f"{timestamp}.{body}"`` (see :mod:`cronclaim.alerts.signing`),
    and ``X-Cronclaim-Event-Id`` (the alert's stable id, for deduplication). Any 2xx is
    success.
    """

    kind = "webhook"

    def __init__(
        self,
        url: str,
        secret: str | bytes,
        *,
        name: str = "webhook",
        timeout: float = DEFAULT_TIMEOUT,
        retry: RetryPolicy | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
        wall_clock: Callable[[], float] = time.time,
        rng: Callable[[], float] = random.random,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        super().__init__(
            url,
            name=name,
            timeout=timeout,
            retry=retry,
            sleep=sleep,
            clock=clock,
            wall_clock=wall_clock,
            rng=rng,
            transport=transport,
        )
        if isinstance(secret, bytes):
            if not secret:
                raise ConfigurationError("webhook secret is empty")
            self._secret: bytes = secret
        else:
            self._secret = _check_text(secret, "webhook secret").encode("utf-8")

    def _request(self, alert: Alert) -> tuple[bytes, dict[str, str]]:
        body = webhook_body(alert)
        stamp = int(self._wall_clock())
        return body, {
            TIMESTAMP_HEADER: str(stamp),
            SIGNATURE_HEADER: compute_signature(self._secret, stamp, body),
            EVENT_ID_HEADER: alert.id,
        }


_LOG_LEVELS = {
    "critical": logging.CRITICAL,
    "error": logging.ERROR,
    "warning": logging.WARNING,
    "info": logging.INFO,
}


class LogSink(Sink):
    """One structured log line per alert, on the standard ``logging`` module.

    The message is a JSON object: ``event`` (``alert_triggered`` or ``alert_resolved``)
    followed by the alert's fields. Triggers log at the level matching their severity,
    resolves at INFO. The record also carries the alert dict as ``record.alert``.
    """

    kind = "log"

    def __init__(
        self, logger: str | logging.Logger = "cronclaim.alerts", *, name: str = "log"
    ) -> None:
        super().__init__(name=name)
        if isinstance(logger, logging.Logger):
            self.logger = logger
        else:
            self.logger = logging.getLogger(_check_text(logger, "log sink logger"))

    def deliver(self, alert: Alert) -> DeliveryResult:
        if not isinstance(alert, Alert):
            raise TypeError(f"deliver() takes an Alert, not {type(alert).__name__}")
        event = "alert_triggered" if alert.is_trigger else "alert_resolved"
        fields = alert.to_dict()
        level = _LOG_LEVELS[alert.severity] if alert.is_trigger else logging.INFO
        line = json.dumps({"event": event, **fields}, ensure_ascii=False, sort_keys=False)
        self.logger.log(level, "%s", line, extra={"alert": fields, "beacon": event})
        return DeliveryResult(sink=self.name, ok=True, attempts=1)


def _json_bytes(document: object) -> bytes:
    return json.dumps(document, ensure_ascii=False, allow_nan=False).encode("utf-8")
