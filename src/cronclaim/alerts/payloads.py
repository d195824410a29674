"""The exact bodies each sink sends for an :class:`Alert`. Pure functions, no I/O.

- PagerDuty Events API v2 (``POST /v2/enqueue``): a trigger carries ``routing_key``,
  ``event_action``, ``dedup_key`` (the alert key) and ``payload`` (summary, source,
  severity, ISO 8601 timestamp, the optional component/group/class, and
  ``custom_details``); a resolve carries only ``routing_key``, ``event_action`` and
  ``dedup_key``.
- Slack incoming webhook: a plain ``text`` (used in notifications and by clients that
  cannot show blocks) plus Block Kit ``blocks``.
- Generic webhook: the alert's own JSON, with a ``version`` for receivers.
"""

from __future__ import annotations

import json
from collections.abc import Mapping

from cronclaim.alerts.model import Alert, Link
from cronclaim.models import format_instant

WEBHOOK_BODY_VERSION = 1

# Block Kit limits: header text 150, section text 3000, 10 fields of 2000 each.
_HEADER_LIMIT = 150
_SECTION_LIMIT = 3000
_FIELD_LIMIT = 2000
_MAX_FIELDS = 10
_TEXT_LIMIT = 3000
_LABEL_LIMIT = 100

_SEVERITY_EMOJI = {
    "critical": ":red_circle:",
    "error": ":large_orange_circle:",
    "warning": ":warning:",
    "info": ":information_source:",
}
_RESOLVED_EMOJI = ":white_check_mark:"


def pagerduty_event(
    alert: Alert,
    routing_key: str,
    *,
    client: str | None = "cronclaim",
    client_url: str | None = None,
) -> dict[str, object]:
    """The Events API v2 request body for ``alert``."""
    event: dict[str, object] = {
        "routing_key": routing_key,
        "event_action": alert.action,
        "dedup_key": alert.key,
    }
    if not alert.is_trigger:
        return event
    payload: dict[str, object] = {
        "summary": alert.summary,
        "source": alert.source,
        "severity": alert.severity,
        "timestamp": format_instant(alert.occurred_at),
    }
    for name, value in (
        ("component", alert.component),
        ("group", alert.group),
        ("class", alert.class_),
    ):
        if value is not None:
            payload[name] = value
    payload["custom_details"] = {**_plain(alert.details), "job": alert.job, "rule": alert.rule}
    event["payload"] = payload
    if client is not None:
        event["client"] = client
    if client_url is not None:
        event["client_url"] = client_url
    if alert.links:
        event["links"] = [_pagerduty_link(link) for link in alert.links]
    return event


def _pagerduty_link(link: Link) -> dict[str, str]:
    return {"href": link.href} if link.text is None else {"href": link.href, "text": link.text}


def slack_message(alert: Alert) -> dict[str, object]:
    """The incoming-webhook body for ``alert``: ``text`` fallback plus ``blocks``."""
    resolved = not alert.is_trigger
    label = "RESOLVED" if resolved else alert.severity.upper()
    emoji = _RESOLVED_EMOJI if resolved else _SEVERITY_EMOJI[alert.severity]
    header = _cut(f"{emoji} {label}: {alert.job}", _HEADER_LIMIT)
    text = _mrkdwn(f"[{label}] {alert.summary}", _TEXT_LIMIT)

    fields = [
        _field("Job", alert.job),
        _field("Severity", f"{alert.severity} (resolved)" if resolved else alert.severity),
        _field("Rule", alert.rule),
        _field("Occurred at", format_instant(alert.occurred_at)),
    ]
    details = list(alert.details.items())
    room = _MAX_FIELDS - len(fields)
    shown = details if len(details) <= room else details[: room - 1]
    fields.extend(_field(name, _detail_text(value)) for name, value in shown)
    if len(shown) < len(details):
        more = len(details) - len(shown)
        fields.append(_field("More details", f"{more} more in the alert payload"))

    context = [f"key `{_escape(alert.key)}`", f"source `{_escape(_cut(alert.source, 200))}`"]
    for name, value in (
        ("component", alert.component),
        ("group", alert.group),
        ("class", alert.class_),
    ):
        if value is not None:
            context.append(f"{name} `{_escape(_cut(value, 200))}`")
    context.extend(
        f"<{link.href}|{_escape(link.text)}>" if link.text else f"<{link.href}>"
        for link in alert.links
    )

    blocks: list[dict[str, object]] = [
        {"type": "header", "text": {"type": "plain_text", "text": header, "emoji": True}},
        {
            "type": "section",
            "text": {"type": "mrkdwn", "text": _mrkdwn(alert.summary, _SECTION_LIMIT)},
            "fields": fields,
        },
        {
            "type": "context",
            "elements": [{"type": "mrkdwn", "text": _mrkdwn_join(context, _SECTION_LIMIT)}],
        },
    ]
    return {"text": text, "blocks": blocks}


def webhook_body(alert: Alert) -> bytes:
    """The generic webhook's request body: compact, key-sorted UTF-8 JSON."""
    document = {"version": WEBHOOK_BODY_VERSION, **alert.to_dict()}
    return json.dumps(
        document, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def _plain(details: Mapping[str, object]) -> dict[str, object]:
    loaded: dict[str, object] = json.loads(json.dumps(dict(details), allow_nan=False))
    return loaded


def _field(label: str, value: str) -> dict[str, str]:
    title = f"*{_mrkdwn(label, _LABEL_LIMIT)}*\n"
    return {"type": "mrkdwn", "text": title + _mrkdwn(value, _FIELD_LIMIT - len(title))}


def _detail_text(value: object) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, ensure_ascii=False, separators=(", ", ": "))


def _escape(text: str) -> str:
    """Slack's three control characters in mrkdwn text."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _cut(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def _mrkdwn(text: str, limit: int) -> str:
    """``text`` escaped for mrkdwn and no longer than ``limit``, never cutting an entity."""
    escaped = _escape(text)
    if len(escaped) <= limit:
        return escaped
    raw = text[: max(0, limit - 1)]
    while raw and len(_escape(raw)) > limit - 1:
        # Each pass drops at least one character, and enough for the entities in excess.
        raw = raw[: len(raw) - max(1, (len(_escape(raw)) - (limit - 1)) // 5)]
    return _escape(raw) + "\u2026"


def _mrkdwn_join(parts: list[str], limit: int) -> str:
    """Already-escaped context parts joined with a middle dot, cut at a part boundary."""
    kept: list[str] = []
    length = 0
    for part in parts:
        extra = len(part) + (3 if kept else 0)
        if length + extra > limit:
            continue
        kept.append(part)
        length += extra
    return " \u00b7 ".join(kept)
