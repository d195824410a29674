"""Alert records: what the rules engine hands to a sink, and what a sink reports back.

An :class:`Alert` is one state change of one incident. Its ``key`` is the incident's
identity (PagerDuty's ``dedup_key``): it names the job and the failing dependency, never
the tenant, so 3,000 restaurants failing on one inference outage open ONE incident and
one ``resolve`` closes it. Tenants affected, counts and sample errors go in ``details``.
"""

from __future__ import annotations

import hashlib
import json
import math
import types
import unicodedata
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, get_args

from cronclaim.exceptions import InvalidInput
from cronclaim.models import format_instant, require_aware

AlertAction = Literal["trigger", "resolve"]
Severity = Literal["critical", "error", "warning", "info"]

ACTIONS: tuple[AlertAction, ...] = get_args(AlertAction)
#: Most severe first; PagerDuty's ``payload.severity`` values.
SEVERITIES: tuple[Severity, ...] = get_args(Severity)

#: PagerDuty Events API v2 limits (``dedup_key`` and ``payload.summary``).
MAX_KEY_LENGTH = 255
MAX_SUMMARY_LENGTH = 1024
#: How much of a response body a :class:`DeliveryResult` keeps.
BODY_SNIPPET_LENGTH = 512


def _text(value: object, what: str, *, limit: int | None = None, one_line: bool = True) -> str:
    if not isinstance(value, str):
        raise InvalidInput(f"{what} must be a string, not {type(value).__name__}")
    if not value.strip():
        raise InvalidInput(f"{what} is empty")
    if limit is not None and len(value) > limit:
        raise InvalidInput(
            f"{what} is {len(value)} characters long; the limit is {limit}: {value[:40]!r}..."
        )
    allowed = "" if one_line else "\n\t"
    if any(unicodedata.category(ch) == "Cc" and ch not in allowed for ch in value):
        raise InvalidInput(f"{what} {value[:40]!r} contains a control character")
    return value


def _optional_text(value: object, what: str) -> str | None:
    return None if value is None else _text(value, what)


def _check_json(value: object, what: str) -> None:
    """Reject what a sink could not send: non-string keys, NaN, sets, datetimes, ..."""
    if value is None or isinstance(value, str | bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidInput(f"{what} is {value}, which JSON cannot carry")
        return
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str):
                raise InvalidInput(f"{what} has a non-string key {key!r}")
            _check_json(item, f"{what}[{key!r}]")
        return
    if isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _check_json(item, f"{what}[{index}]")
        return
    raise InvalidInput(
        f"{what} is a {type(value).__name__}; details must be JSON values "
        "(str, int, float, bool, None, lists and string-keyed mappings of them)"
    )


def _thaw(value: object) -> object:
    """A plain JSON-ready copy: mappings become dicts, tuples become lists."""
    if isinstance(value, Mapping):
        return {key: _thaw(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_thaw(item) for item in value]
    return value


def fit_summary(text: str, limit: int = MAX_SUMMARY_LENGTH) -> str:
    """``text`` on one line, cut to ``limit`` characters with an ellipsis if longer.

    Use it when a summary embeds something unbounded (an exception message): an
    :class:`Alert` rejects a summary over the limit rather than cut it silently.
    """
    flat = " ".join("".join(" " if unicodedata.category(c) == "Cc" else c for c in text).split())
    return flat if len(flat) <= limit else flat[: limit - 1] + "\u2026"


def alert_key(job: str, cause: str, *, namespace: str = "cronclaim") -> str:
    """The incident key for ``job`` failing because of ``cause``.

    ``alert_key("inventory-predict", "inference-timeout")`` is
    ``"cronclaim/inventory-predict/inference-timeout"``. Leave the tenant out: one key
    per job and failing dependency is what makes a fleet-wide outage one incident.
    """
    parts = [
        _text(namespace, "alert key namespace"),
        _text(job, "alert key job"),
        _text(cause, "alert key cause"),
    ]
    return _text("/".join(p.strip() for p in parts), "alert key", limit=MAX_KEY_LENGTH)


@dataclass(frozen=True, kw_only=True, slots=True)
class Link:
    """A link shown with the alert (a runbook, the dashboard page of the job)."""

    href: str
    text: str | None = None

    def __post_init__(self) -> None:
        _text(self.href, "link href")
        if not self.href.startswith(("http://", "https://")):
            raise InvalidInput(f"link href {self.href!r} must be an http(s) URL")
        _optional_text(self.text, "link text")


@dataclass(frozen=True, kw_only=True, slots=True)
class Alert:
    """One trigger or resolve of one incident, ready for any sink.

    ``occurred_at`` is when the rule saw the change (normalised to UTC; naive datetimes
    are rejected). ``details`` must be JSON values; it is copied and frozen. ``class_``
    is PagerDuty's ``payload.class`` (``class`` is a Python keyword).
    """

    key: str
    action: AlertAction
    summary: str
    severity: Severity
    source: str
    job: str
    occurred_at: datetime
    rule: str
    component: str | None = None
    group: str | None = None
    class_: str | None = None
    details: Mapping[str, object] = field(default_factory=dict, hash=False)
    links: tuple[Link, ...] = ()

    def __post_init__(self) -> None:
        _text(self.key, "alert key", limit=MAX_KEY_LENGTH)
        if self.action not in ACTIONS:
            raise InvalidInput(f"alert action must be 'trigger' or 'resolve', got {self.action!r}")
        _text(self.summary, "alert summary", limit=MAX_SUMMARY_LENGTH)
        if self.severity not in SEVERITIES:
            raise InvalidInput(
                f"alert severity must be one of {', '.join(SEVERITIES)}, got {self.severity!r}"
            )
        _text(self.source, "alert source")
        _text(self.job, "alert job")
        _text(self.rule, "alert rule")
        _optional_text(self.component, "alert component")
        _optional_text(self.group, "alert group")
        _optional_text(self.class_, "alert class_")
        object.__setattr__(self, "occurred_at", require_aware(self.occurred_at, "occurred_at"))
        if not isinstance(self.details, Mapping):
            raise InvalidInput(
                f"alert details must be a mapping, not {type(self.details).__name__}"
            )
        _check_json(self.details, "alert details")
        # A private plain copy: later changes to the caller's dict do not reach the alert.
        plain = _thaw(self.details)
        assert isinstance(plain, dict)
        object.__setattr__(self, "details", types.MappingProxyType(plain))
        links = tuple(self.links)
        for link in links:
            if not isinstance(link, Link):
                raise InvalidInput(f"alert links must be Link records, not {type(link).__name__}")
        object.__setattr__(self, "links", links)

    @property
    def is_trigger(self) -> bool:
        return self.action == "trigger"

    @property
    def id(self) -> str:
        """Stable identity of this state change (key, action, instant): the same alert
        built again after a restart has the same id, so receivers can deduplicate."""
        text = f"{self.key}\n{self.action}\n{format_instant(self.occurred_at)}"
        return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]

    def to_dict(self) -> dict[str, object]:
        """The alert as JSON values; the body of :class:`~cronclaim.alerts.WebhookSink`."""
        return {
            "id": self.id,
            "key": self.key,
            "action": self.action,
            "summary": self.summary,
            "severity": self.severity,
            "source": self.source,
            "job": self.job,
            "component": self.component,
            "group": self.group,
            "class": self.class_,
            "rule": self.rule,
            "occurred_at": format_instant(self.occurred_at),
            "details": _thaw(self.details),
            "links": [{"href": link.href, "text": link.text} for link in self.links],
        }

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Alert:
        """The inverse of :meth:`to_dict` (the alert outbox stores alerts as JSON)."""
        occurred = datetime.fromisoformat(str(data["occurred_at"]).replace("Z", "+00:00"))
        links = data.get("links") or []
        return cls(
            key=str(data["key"]),
            action=data["action"],
            summary=str(data["summary"]),
            severity=data["severity"],
            source=str(data["source"]),
            job=str(data["job"]),
            occurred_at=occurred,
            rule=str(data["rule"]),
            component=data.get("component"),
            group=data.get("group"),
            class_=data.get("class"),
            details=dict(data.get("details") or {}),
            links=tuple(Link(href=link["href"], text=link.get("text")) for link in links),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class DeliveryResult:
    """What one :meth:`Sink.deliver` call achieved.

    ``ok`` is True once the receiver accepted the alert. When it is False,
    ``retryable`` says whether a later delivery may succeed (transient failures that
    exhausted the attempt or time budget) or never will (a 400, a revoked webhook), and
    ``retry_after`` carries the receiver's last ``Retry-After`` in seconds, if any.
    ``status`` is the last HTTP status (None when no response arrived, or for sinks
    without HTTP); ``body`` the start of the last response body.
    """

    sink: str
    ok: bool
    attempts: int
    status: int | None = None
    error: str | None = None
    body: str | None = None
    retryable: bool = False
    retry_after: float | None = None
    elapsed: float = 0.0

    def __str__(self) -> str:
        outcome = "delivered" if self.ok else f"failed ({self.error})"
        tries = "attempt" if self.attempts == 1 else "attempts"
        return f"{self.sink}: {outcome} after {self.attempts} {tries}"
