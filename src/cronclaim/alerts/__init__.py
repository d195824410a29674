"""Alert delivery: records, payloads, sinks (PagerDuty, Slack, signed webhook, log),
retries and configuration. No database code: the rules engine decides what to send and
the alert outbox persists it; this package only delivers.
"""

from cronclaim.alerts.config import (
    SINK_TYPES,
    AlertConfig,
    RuleSettings,
    alert_config_from_dict,
    load_alert_config,
)
from cronclaim.alerts.model import (
    MAX_KEY_LENGTH,
    MAX_SUMMARY_LENGTH,
    SEVERITIES,
    Alert,
    AlertAction,
    DeliveryResult,
    Link,
    Severity,
    alert_key,
    fit_summary,
)
from cronclaim.alerts.payloads import pagerduty_event, slack_message, webhook_body
from cronclaim.alerts.retry import RetryPolicy, parse_retry_after
from cronclaim.alerts.signing import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    compute_signature,
    verify_signature,
)
from cronclaim.alerts.sinks import (
    EVENT_ID_HEADER,
    PAGERDUTY_EVENTS_URL,
    HttpSink,
    LogSink,
    PagerDutySink,
    Sink,
    SlackSink,
    WebhookSink,
)

__all__ = [
    "EVENT_ID_HEADER",
    "MAX_KEY_LENGTH",
    "MAX_SUMMARY_LENGTH",
    "PAGERDUTY_EVENTS_URL",
    "SEVERITIES",
    "SIGNATURE_HEADER",
    "SINK_TYPES",
    "TIMESTAMP_HEADER",
    "Alert",
    "AlertAction",
    "AlertConfig",
    "DeliveryResult",
    "HttpSink",
    "Link",
    "LogSink",
    "PagerDutySink",
    "RetryPolicy",
    "RuleSettings",
    "Severity",
    "Sink",
    "SlackSink",
    "WebhookSink",
    "alert_config_from_dict",
    "alert_key",
    "compute_signature",
    "fit_summary",
    "load_alert_config",
    "pagerduty_event",
    "parse_retry_after",
    "slack_message",
    "verify_signature",
    "webhook_body",
]
