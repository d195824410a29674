"""Alert configuration: the TOML format, and one clear line for every mistake."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from cronclaim.alerts import (
    AlertConfig,
    LogSink,
    PagerDutySink,
    RuleSettings,
    SlackSink,
    WebhookSink,
    alert_config_from_dict,
    load_alert_config,
)
from cronclaim.exceptions import ConfigurationError

EXAMPLE = """
[rules]
failures_per_hour = 5
failure_window = "1h"
missed = true
orphans = true
dead_man = false

[[sinks]]
type = "pagerduty"
routing_key_env = "CRONCLAIM_PAGERDUTY_KEY"   # or routing_key = "..."
url = "http://127.0.0.1:9999/v2/enqueue"      # optional override
max_attempts = 3
max_total = "2m"
timeout = "5s"

[[sinks]]
type = "slack"
webhook_url_env = "CRONCLAIM_SLACK_WEBHOOK"

[[sinks]]
type = "webhook"
url = "https://example.com/hooks/cronclaim"
secret_env = "CRONCLAIM_WEBHOOK_SECRET"

[[sinks]]
type = "log"
"""

ENV = {
    "CRONCLAIM_PAGERDUTY_KEY": "R0UT1NGKEY0123456789abcdefABCDEF",
    "CRONCLAIM_SLACK_WEBHOOK": "https://hooks.slack.com/services/T000/B000/XXXXSECRETXXXX",
    "CRONCLAIM_WEBHOOK_SECRET": "s3cret",
}


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "alerts.toml"
    path.write_text(text, encoding="utf-8")
    return path


def test_the_documented_example_loads(tmp_path: Path) -> None:
    config = load_alert_config(write(tmp_path, EXAMPLE), env=ENV)

    assert [type(s) for s in config.sinks] == [PagerDutySink, SlackSink, WebhookSink, LogSink]
    assert [s.name for s in config.sinks] == ["pagerduty", "slack", "webhook", "log"]
    pagerduty = config.sink("pagerduty")
    assert isinstance(pagerduty, PagerDutySink)
    assert pagerduty.endpoint == "http://127.0.0.1:9999/…"
    assert pagerduty.timeout == 5.0
    assert (pagerduty.retry.max_attempts, pagerduty.retry.max_total) == (3, 120.0)
    slack = config.sink("slack")
    assert isinstance(slack, SlackSink) and slack.endpoint == "https://hooks.slack.com/…"
    assert config.rules == RuleSettings(
        failures_per_hour=5,
        failure_window=timedelta(hours=1),
        missed=True,
        orphans=True,
        dead_man=False,
    )
    assert config.source == str(tmp_path / "alerts.toml")
    config.close()


def test_rules_default_to_the_seed_thresholds(tmp_path: Path) -> None:
    config = load_alert_config(write(tmp_path, '[[sinks]]\ntype = "log"\n'), env={})

    assert config.rules == RuleSettings()
    assert (config.rules.failures_per_hour, config.rules.failure_window) == (5, timedelta(hours=1))
    assert config.rules.missed and config.rules.orphans and config.rules.dead_man


def test_empty_file_means_no_sinks_and_default_rules(tmp_path: Path) -> None:
    assert load_alert_config(write(tmp_path, ""), env={}) == AlertConfig(
        source=str(tmp_path / "alerts.toml")
    )


def test_python_dicts_give_the_same_configuration() -> None:
    config = alert_config_from_dict(
        {
            "rules": {"failures_per_hour": 3, "failure_window": 1800},
            "sinks": [
                {"type": "pagerduty", "routing_key": "inline-key", "name": "oncall"},
                {"type": "webhook", "url": "http://127.0.0.1:8080/hook", "secret": "x"},
                {"type": "log", "logger": "myapp.alerts"},
            ],
        },
        env={},
    )

    assert [s.name for s in config.sinks] == ["oncall", "webhook", "log"]
    oncall = config.sink("oncall")
    assert isinstance(oncall, PagerDutySink)
    assert oncall.endpoint == "https://events.pagerduty.com/…"
    assert config.rules.failure_window == timedelta(minutes=30)
    log = config.sink("log")
    assert isinstance(log, LogSink) and log.logger.name == "myapp.alerts"
    with pytest.raises(KeyError, match="no sink named 'slack'"):
        config.sink("slack")


def test_os_environ_is_the_default_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in ENV.items():
        monkeypatch.setenv(name, value)

    assert len(load_alert_config(write(tmp_path, EXAMPLE)).sinks) == 4


SINK_ERRORS: list[tuple[str, str, str]] = [
    (
        "unknown type",
        '[[sinks]]\ntype = "pagerduy"\n',
        "sinks[0]: unknown type 'pagerduy'; expected one of: log, pagerduty, slack, webhook",
    ),
    (
        "missing type",
        '[[sinks]]\nurl = "https://example.com"\n',
        "sinks[0]: missing 'type'; expected one of: log, pagerduty, slack, webhook",
    ),
    (
        "missing routing key",
        '[[sinks]]\ntype = "log"\n[[sinks]]\ntype = "pagerduty"\n',
        "sinks[1] (pagerduty): missing 'routing_key' (or 'routing_key_env' naming an "
        "environment variable that holds the integration key)",
    ),
    (
        "env var not set",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key_env = "NOT_SET_ANYWHERE"\n',
        "sinks[0] (pagerduty): environment variable NOT_SET_ANYWHERE (from "
        "'routing_key_env') is not set",
    ),
    (
        "env var empty",
        '[[sinks]]\ntype = "slack"\nwebhook_url_env = "EMPTY"\n',
        "sinks[0] (slack): environment variable EMPTY (from 'webhook_url_env') is empty",
    ),
    (
        "both inline and env",
        '[[sinks]]\ntype = "webhook"\nurl = "https://example.com/h"\nsecret = "a"\n'
        'secret_env = "CRONCLAIM_WEBHOOK_SECRET"\n',
        "sinks[0] (webhook): give either 'secret' or 'secret_env', not both",
    ),
    (
        "missing slack webhook",
        '[[sinks]]\ntype = "slack"\n',
        "sinks[0] (slack): missing 'webhook_url' (or 'webhook_url_env' naming an "
        "environment variable that holds the webhook URL)",
    ),
    (
        "missing webhook secret",
        '[[sinks]]\ntype = "webhook"\nurl = "https://example.com/h"\n',
        "sinks[0] (webhook): missing 'secret' (or 'secret_env' naming an environment "
        "variable that holds the signing secret)",
    ),
    (
        "invalid URL scheme",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key = "k"\nurl = "ftp://127.0.0.1/v2/enqueue"\n',
        "sinks[0] (pagerduty): 'url' 'ftp://127.0.0.1/…' is not a valid URL; it must start "
        "with http:// or https:// and name a host",
    ),
    (
        "URL without host",
        '[[sinks]]\ntype = "webhook"\nurl = "https:///hooks"\nsecret = "a"\n',
        "sinks[0] (webhook): 'url' is not a valid URL; it must start with http:// or "
        "https:// and name a host",
    ),
    (
        "URL with a bad port",
        '[[sinks]]\ntype = "webhook"\nurl = "http://127.0.0.1:99999/h"\nsecret = "a"\n',
        "sinks[0] (webhook): 'url' is not a valid URL",
    ),
    (
        "URL from env is checked and redacted",
        '[[sinks]]\ntype = "slack"\nwebhook_url_env = "BAD_SLACK_URL"\n',
        "sinks[0] (slack): 'webhook_url' (from BAD_SLACK_URL) is not a valid URL; it must "
        "start with http:// or https:// and name a host",
    ),
    (
        "URL not a string",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key = "k"\nurl = 9999\n',
        "sinks[0] (pagerduty): 'url' must be a string, not int",
    ),
    (
        "invalid client_url",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key = "k"\nclient_url = "dashboard"\n',
        "sinks[0] (pagerduty): 'client_url' is not a valid URL; it must start with http:// "
        "or https:// and name a host",
    ),
    (
        "unknown sink key",
        '[[sinks]]\ntype = "slack"\nwebhook = "https://hooks.slack.com/x"\n',
        "sinks[0] (slack): unknown key 'webhook'; expected one of: max_attempts, max_total, "
        "name, timeout, type, webhook_url, webhook_url_env",
    ),
    (
        "duplicate names",
        '[[sinks]]\ntype = "log"\n[[sinks]]\ntype = "log"\nlogger = "other"\n',
        "sinks[1] (log): name 'log' is already used by sinks[0]; give each sink a distinct 'name'",
    ),
    (
        "empty name",
        '[[sinks]]\ntype = "log"\nname = " "\n',
        "sinks[0] (log): 'name' is empty",
    ),
    (
        "bad timeout",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key = "k"\ntimeout = "5 parsecs"\n',
        "sinks[0] (pagerduty): 'timeout' '5 parsecs' is not a duration; write e.g. '90s', "
        "'2m', '3h', '1d' or '1h30m'",
    ),
    (
        "zero max_attempts",
        '[[sinks]]\ntype = "pagerduty"\nrouting_key = "k"\nmax_attempts = 0\n',
        "sinks[0] (pagerduty): 'max_attempts' must be a positive integer, not 0",
    ),
    (
        "sink is not a table",
        'sinks = ["pagerduty"]\n',
        "sinks[0]: must be a table, not str",
    ),
]


@pytest.mark.parametrize(
    ("toml", "expected"), [e[1:] for e in SINK_ERRORS], ids=[e[0] for e in SINK_ERRORS]
)
def test_every_sink_mistake_is_one_line_naming_file_sink_and_problem(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = write(tmp_path, toml)
    env = {**ENV, "EMPTY": "  ", "BAD_SLACK_URL": "hooks.slack.com/services/T0/B0/SECRET"}

    with pytest.raises(ConfigurationError) as caught:
        load_alert_config(path, env=env)

    assert str(caught.value) == f"{path}: {expected}"
    assert "\n" not in str(caught.value)
    assert "SECRET" not in str(caught.value)


FILE_ERRORS: list[tuple[str, str, str]] = [
    (
        "unknown top-level key",
        '[[sink]]\ntype = "log"\n',
        "unknown top-level key 'sink'; expected 'sinks' or 'rules'",
    ),
    (
        "sinks not an array",
        'sinks = "log"\n',
        "'sinks' must be an array of tables ([[sinks]]), not str",
    ),
    ("rules not a table", "rules = 5\n", "[rules] must be a table, not int"),
    (
        "unknown rule",
        "[rules]\nfailure_per_hour = 5\n",
        "[rules]: unknown key 'failure_per_hour'; expected one of: failures_per_hour, "
        "failure_window, missed, orphans, dead_man",
    ),
    (
        "zero threshold",
        "[rules]\nfailures_per_hour = 0\n",
        "[rules]: failures_per_hour must be a positive integer, got 0",
    ),
    (
        "threshold not a number",
        '[rules]\nfailures_per_hour = "five"\n',
        "[rules]: failures_per_hour must be a positive integer, got 'five'",
    ),
    (
        "bad window",
        '[rules]\nfailure_window = "an hour"\n',
        "[rules]: failure_window 'an hour' is not a duration; write e.g. '90s', '2m', '3h', "
        "'1d' or '1h30m'",
    ),
    (
        "window not a duration",
        "[rules]\nfailure_window = true\n",
        "[rules]: failure_window must be a duration such as '1h', not True",
    ),
    (
        "flag not a boolean",
        '[rules]\nmissed = "yes"\n',
        "[rules]: missed must be true or false, got 'yes'",
    ),
]


@pytest.mark.parametrize(
    ("toml", "expected"), [e[1:] for e in FILE_ERRORS], ids=[e[0] for e in FILE_ERRORS]
)
def test_every_file_and_rules_mistake_is_one_line_naming_the_file(
    tmp_path: Path, toml: str, expected: str
) -> None:
    path = write(tmp_path, toml)

    with pytest.raises(ConfigurationError) as caught:
        load_alert_config(path, env={})

    assert str(caught.value) == f"{path}: {expected}"


def test_invalid_toml_names_the_file_and_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, '[[sinks]]\ntype = "log\n')

    with pytest.raises(ConfigurationError) as caught:
        load_alert_config(path, env={})

    message = str(caught.value)
    assert message.startswith(f"{path}: invalid TOML: ")
    assert "(at line 2, column" in message and "\n" not in message


def test_missing_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.toml"

    with pytest.raises(ConfigurationError) as caught:
        load_alert_config(path, env={})

    assert str(caught.value) == (
        f"{path}: cannot read alert configuration: No such file or directory"
    )


def test_dict_errors_name_the_given_source() -> None:
    with pytest.raises(ConfigurationError) as caught:
        alert_config_from_dict({"sinks": [{"type": "sms"}]}, source="settings.ALERTS", env={})

    assert str(caught.value) == (
        "settings.ALERTS: sinks[0]: unknown type 'sms'; expected one of: log, pagerduty, "
        "slack, webhook"
    )


def test_a_bad_sink_after_good_ones_builds_nothing(tmp_path: Path) -> None:
    bad: dict[str, Any] = {
        "sinks": [{"type": "log"}, {"type": "pagerduty", "routing_key_env": "UNSET"}]
    }

    with pytest.raises(ConfigurationError, match=r"sinks\[1\] \(pagerduty\)"):
        alert_config_from_dict(bad, env={})
