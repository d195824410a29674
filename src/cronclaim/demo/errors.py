"""What the demo's service clients raise, and the one place httpx errors are translated.

The story turns on one distinction: the inference service *answered* non-OK (the old
code released the claim) versus the call *threw* (it did not). The clients keep it:
an answer with a bad status is a :class:`ServiceResponseError`; no answer at all is a
:class:`ServiceTimeout` (also a builtin ``TimeoutError``) or a
:class:`ServiceConnectionError` (also a builtin ``ConnectionError``).

These are the reference application's errors, not cronclaim's: cronclaim treats them
like any exception a job raises.
"""

from __future__ import annotations

import httpx


class ServiceError(Exception):
    """Root of every error the demo's service clients raise."""

    def __init__(self, message: str, *, service: str, url: str) -> None:
        super().__init__(message)
        self.service = service
        self.url = url


class ServiceTimeout(ServiceError, TimeoutError):
    """The call threw: no response arrived within the client's timeout."""


class ServiceConnectionError(ServiceError, ConnectionError):
    """The call threw: connection refused, reset, or closed without a response."""


class ServiceResponseError(ServiceError):
    """The service answered, with a status other than 200.

    ``retryable`` is true for 5xx and 429: the same request may succeed later. A 4xx is
    the caller's fault and will fail the same way again.
    """

    def __init__(self, message: str, *, service: str, url: str, status: int, body: str) -> None:
        super().__init__(message, service=service, url=url)
        self.status = status
        self.body = body

    @property
    def retryable(self) -> bool:
        return self.status >= 500 or self.status == 429


class PushRejected(ServiceResponseError):
    """The push gateway refused a notification; ``reason`` is the APNs reason string
    (``BadDeviceToken``, ``Unregistered``, ``PayloadTooLarge``, ...)."""

    def __init__(
        self, message: str, *, service: str, url: str, status: int, body: str, reason: str
    ) -> None:
        super().__init__(message, service=service, url=url, status=status, body=body)
        self.reason = reason


def translate_transport_error(exc: httpx.TransportError, *, service: str, url: str) -> ServiceError:
    """The demo error for an httpx failure in which no response was received."""
    detail = str(exc) or type(exc).__name__
    if isinstance(exc, httpx.TimeoutException):
        return ServiceTimeout(
            f"{service} did not answer in time ({type(exc).__name__}: {detail}) at {url}",
            service=service,
            url=url,
        )
    return ServiceConnectionError(
        f"{service} gave no response ({type(exc).__name__}: {detail}) at {url}",
        service=service,
        url=url,
    )
