"""Alert configuration from a TOML file or Python dicts: the sinks, and the rule
thresholds the rules engine reads.

```toml
[rules]
failures_per_hour = 5
failure_window = "1h"

[[sinks]]
type = "pagerduty"
routing_key_env = "CRONCLAIM_PAGERDUTY_KEY"

[[sinks]]
type = "log"
```

Secrets (routing keys, webhook URLs, signing secrets) can be given inline or, better,
as ``<key>_env`` naming an environment variable. Every problem raises
:class:`~cronclaim.exceptions.ConfigurationError` with one line naming the file, the
sink (``sinks[1] (slack)``) and what is wrong; nothing is half-built.
"""

from __future__ import annotations

import os
import random
import time
import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TypedDict

import httpx

from cronclaim.alerts.retry import RetryPolicy
from cronclaim.alerts.sinks import (
    DEFAULT_TIMEOUT,
    PAGERDUTY_EVENTS_URL,
    LogSink,
    PagerDutySink,
    Sink,
    SlackSink,
    WebhookSink,
    check_url,
)
from cronclaim.durations import parse_duration
from cronclaim.exceptions import ConfigurationError, InvalidInput

SINK_TYPES = ("log", "pagerduty", "slack", "webhook")
_HTTP_KEYS = frozenset({"timeout", "max_attempts", "max_total"})
_KEYS: dict[str, frozenset[str]] = {
    "pagerduty": frozenset({"routing_key", "routing_key_env", "url", "client", "client_url"})
    | _HTTP_KEYS,
    "slack": frozenset({"webhook_url", "webhook_url_env"}) | _HTTP_KEYS,
    "webhook": frozenset({"url", "url_env", "secret", "secret_env"}) | _HTTP_KEYS,
    "log": frozenset({"logger"}),
}
_RULE_KEYS = ("failures_per_hour", "failure_window", "missed", "orphans", "dead_man")


@dataclass(frozen=True, kw_only=True, slots=True)
class RuleSettings:
    """Thresholds for the rules engine, as plain data (the engine lives elsewhere).

    - ``failures_per_hour``: page when a job fails this many times within
      ``failure_window`` (the seed's "5+ throws/hour").
    - ``missed``: alert on any missed occurrence.
    - ``orphans``: alert when the audit finds orphaned claims.
    - ``dead_man``: alert when a job has no successful tick in its expected period.
    """

    failures_per_hour: int = 5
    failure_window: timedelta = timedelta(hours=1)
    missed: bool = True
    orphans: bool = True
    dead_man: bool = True

    def __post_init__(self) -> None:
        count = self.failures_per_hour
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise InvalidInput(f"failures_per_hour must be a positive integer, got {count!r}")
        if not isinstance(self.failure_window, timedelta) or self.failure_window <= timedelta(0):
            raise InvalidInput(
                f"failure_window must be a positive duration, got {self.failure_window!r}"
            )
        for name in ("missed", "orphans", "dead_man"):
            if not isinstance(getattr(self, name), bool):
                raise InvalidInput(f"{name} must be true or false, got {getattr(self, name)!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class AlertConfig:
    """Sinks and rule thresholds, as loaded. ``source`` names where they came from."""

    sinks: tuple[Sink, ...] = ()
    rules: RuleSettings = field(default_factory=RuleSettings)
    source: str = "<python>"

    def sink(self, name: str) -> Sink:
        for sink in self.sinks:
            if sink.name == name:
                return sink
        known = ", ".join(s.name for s in self.sinks) or "none"
        raise KeyError(f"no sink named {name!r} in {self.source} (sinks: {known})")

    def close(self) -> None:
        for sink in self.sinks:
            sink.close()


@dataclass(frozen=True, kw_only=True, slots=True)
class _Hooks:
    """Test and virtual-time hooks handed to every HTTP sink built from configuration."""

    sleep: Callable[[float], None] | None = None
    clock: Callable[[], float] | None = None
    wall_clock: Callable[[], float] | None = None
    rng: Callable[[], float] | None = None
    transport: httpx.BaseTransport | None = None


class _HttpOptions(TypedDict):
    timeout: float
    retry: RetryPolicy
    sleep: Callable[[float], None]
    clock: Callable[[], float]
    wall_clock: Callable[[], float]
    rng: Callable[[], float]
    transport: httpx.BaseTransport | None


def load_alert_config(
    path: str | os.PathLike[str],
    *,
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], float] | None = None,
    rng: Callable[[], float] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> AlertConfig:
    """Read ``path`` (TOML) into an :class:`AlertConfig`.

    ``env`` (default ``os.environ``) resolves the ``*_env`` keys. The remaining keyword
    arguments are passed to every HTTP sink (see :class:`~cronclaim.alerts.HttpSink`).
    """
    source = os.fspath(path)
    try:
        with Path(source).open("rb") as handle:
            data = tomllib.load(handle)
    except OSError as exc:
        raise ConfigurationError(
            f"{source}: cannot read alert configuration: {exc.strerror or exc}"
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{source}: invalid TOML: {_one_line(str(exc))}") from None
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{source}: invalid TOML: not UTF-8 ({exc.reason})") from None
    hooks = _Hooks(sleep=sleep, clock=clock, wall_clock=wall_clock, rng=rng, transport=transport)
    return _build(data, source, os.environ if env is None else env, hooks)


def alert_config_from_dict(
    data: Mapping[str, object],
    *,
    source: str = "<dict>",
    env: Mapping[str, str] | None = None,
    sleep: Callable[[float], None] | None = None,
    clock: Callable[[], float] | None = None,
    wall_clock: Callable[[], float] | None = None,
    rng: Callable[[], float] | None = None,
    transport: httpx.BaseTransport | None = None,
) -> AlertConfig:
    """Like :func:`load_alert_config`, from the same structure as Python dicts and lists."""
    hooks = _Hooks(sleep=sleep, clock=clock, wall_clock=wall_clock, rng=rng, transport=transport)
    return _build(data, source, os.environ if env is None else env, hooks)


def _one_line(text: str) -> str:
    return " ".join(text.split())


def _build(data: object, source: str, env: Mapping[str, str], hooks: _Hooks) -> AlertConfig:
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{source}: expected a table, got {type(data).__name__}")
    unknown = sorted(set(data) - {"sinks", "rules"})
    if unknown:
        raise ConfigurationError(
            f"{source}: unknown top-level key {unknown[0]!r}; expected 'sinks' or 'rules'"
        )
    rules = _rules(data.get("rules", {}), source)
    raw_sinks = data.get("sinks", [])
    if not isinstance(raw_sinks, list):
        raise ConfigurationError(
            f"{source}: 'sinks' must be an array of tables ([[sinks]]), "
            f"not {type(raw_sinks).__name__}"
        )
    sinks: list[Sink] = []
    seen: dict[str, int] = {}
    for index, spec in enumerate(raw_sinks):
        sink = _sink(spec, f"{source}: sinks[{index}]", env, hooks)
        if sink.name in seen:
            raise ConfigurationError(
                f"{source}: sinks[{index}] ({sink.kind}): name {sink.name!r} is already used "
                f"by sinks[{seen[sink.name]}]; give each sink a distinct 'name'"
            )
        seen[sink.name] = index
        sinks.append(sink)
    return AlertConfig(sinks=tuple(sinks), rules=rules, source=source)


def _rules(data: object, source: str) -> RuleSettings:
    where = f"{source}: [rules]"
    if not isinstance(data, Mapping):
        raise ConfigurationError(f"{where} must be a table, not {type(data).__name__}")
    unknown = sorted(set(data) - set(_RULE_KEYS))
    if unknown:
        raise ConfigurationError(
            f"{where}: unknown key {unknown[0]!r}; expected one of: {', '.join(_RULE_KEYS)}"
        )
    values: dict[str, object] = {}
    try:
        if "failures_per_hour" in data:
            values["failures_per_hour"] = data["failures_per_hour"]
        if "failure_window" in data:
            window = data["failure_window"]
            if isinstance(window, bool) or not isinstance(window, str | int | float):
                raise InvalidInput(
                    f"failure_window must be a duration such as '1h', not {window!r}"
                )
            values["failure_window"] = parse_duration(window, "failure_window")
        for name in ("missed", "orphans", "dead_man"):
            if name in data:
                values[name] = data[name]
        # Types are checked by RuleSettings itself, with the messages the tests pin.
        return RuleSettings(**values)  # type: ignore[arg-type]
    except InvalidInput as exc:
        raise ConfigurationError(f"{where}: {exc}") from None


class _Spec:
    """One ``[[sinks]]`` table being read; every error names the sink."""

    def __init__(self, data: Mapping[str, object], where: str, env: Mapping[str, str]) -> None:
        self.data = data
        self.where = where
        self.env = env

    def fail(self, problem: str) -> ConfigurationError:
        return ConfigurationError(f"{self.where}: {problem}")

    def text(self, key: str, default: str | None = None) -> str | None:
        value = self.data.get(key, default)
        if value is None:
            return None
        if not isinstance(value, str):
            raise self.fail(f"{key!r} must be a string, not {type(value).__name__}")
        if not value.strip():
            raise self.fail(f"{key!r} is empty")
        return value

    def secret(self, key: str, what: str) -> str:
        """``key`` inline, or from the environment variable named by ``key_env``."""
        env_key = f"{key}_env"
        if key in self.data and env_key in self.data:
            raise self.fail(f"give either {key!r} or {env_key!r}, not both")
        if env_key in self.data:
            variable = self.text(env_key)
            assert variable is not None
            value = self.env.get(variable)
            if value is None:
                raise self.fail(f"environment variable {variable} (from {env_key!r}) is not set")
            if not value.strip():
                raise self.fail(f"environment variable {variable} (from {env_key!r}) is empty")
            return value.strip()
        value = self.text(key)
        if value is None:
            raise self.fail(
                f"missing {key!r} (or {env_key!r} naming an environment variable that holds {what})"
            )
        return value

    def url(self, key: str, value: str, origin: str | None = None) -> str:
        label = f"{key!r}" if origin is None else f"{key!r} (from {origin})"
        try:
            return check_url(value, label)
        except ConfigurationError as exc:
            raise self.fail(str(exc)) from None

    def seconds(self, key: str) -> float | None:
        if key not in self.data:
            return None
        value = self.data[key]
        if isinstance(value, bool) or not isinstance(value, str | int | float):
            raise self.fail(f"{key!r} must be a duration such as '10s', not {value!r}")
        try:
            return parse_duration(value, repr(key)).total_seconds()
        except InvalidInput as exc:
            raise self.fail(str(exc)) from None

    def http_options(self, hooks: _Hooks) -> _HttpOptions:
        default = RetryPolicy()
        attempts = self.data.get("max_attempts", default.max_attempts)
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise self.fail(f"'max_attempts' must be a positive integer, not {attempts!r}")
        total = self.seconds("max_total")
        timeout = self.seconds("timeout")
        return _HttpOptions(
            timeout=DEFAULT_TIMEOUT if timeout is None else timeout,
            retry=RetryPolicy(
                max_attempts=attempts,
                max_total=default.max_total if total is None else total,
            ),
            sleep=hooks.sleep or time.sleep,
            clock=hooks.clock or time.monotonic,
            wall_clock=hooks.wall_clock or time.time,
            rng=hooks.rng or random.random,
            transport=hooks.transport,
        )


def _sink(spec: object, where: str, env: Mapping[str, str], hooks: _Hooks) -> Sink:
    if not isinstance(spec, Mapping):
        raise ConfigurationError(f"{where}: must be a table, not {type(spec).__name__}")
    kind = spec.get("type")
    if kind is None:
        raise ConfigurationError(
            f"{where}: missing 'type'; expected one of: {', '.join(SINK_TYPES)}"
        )
    if kind not in SINK_TYPES:
        raise ConfigurationError(
            f"{where}: unknown type {kind!r}; expected one of: {', '.join(SINK_TYPES)}"
        )
    assert isinstance(kind, str)
    s = _Spec(spec, f"{where} ({kind})", env)
    allowed = _KEYS[kind] | {"type", "name"}
    unknown = sorted(set(spec) - allowed)
    if unknown:
        raise s.fail(f"unknown key {unknown[0]!r}; expected one of: {', '.join(sorted(allowed))}")
    name = s.text("name", kind)
    assert name is not None
    try:
        if kind == "log":
            return LogSink(s.text("logger", "cronclaim.alerts") or "cronclaim.alerts", name=name)
        options = s.http_options(hooks)
        if kind == "pagerduty":
            client_url = s.text("client_url")
            return PagerDutySink(
                s.secret("routing_key", "the integration key"),
                s.url("url", s.text("url", PAGERDUTY_EVENTS_URL) or PAGERDUTY_EVENTS_URL),
                name=name,
                client=s.text("client", "cronclaim"),
                client_url=None if client_url is None else s.url("client_url", client_url),
                **options,
            )
        if kind == "slack":
            origin = _origin(spec, "webhook_url")
            url = s.url("webhook_url", s.secret("webhook_url", "the webhook URL"), origin)
            return SlackSink(url, name=name, **options)
        origin = _origin(spec, "url")
        url = s.url("url", s.secret("url", "the URL"), origin)
        return WebhookSink(
            url,
            s.secret("secret", "the signing secret"),
            name=name,
            **options,
        )
    except (ConfigurationError, InvalidInput) as exc:
        message = str(exc)
        if message.startswith(s.where):
            raise
        raise s.fail(message) from None


def _origin(spec: Mapping[str, object], key: str) -> str | None:
    variable = spec.get(f"{key}_env")
    return variable if isinstance(variable, str) else None
