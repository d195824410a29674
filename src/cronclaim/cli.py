"""The ``cronclaim`` command. Every flag has a ``CRONCLAIM_*`` environment twin, named in
its help. Bad input gets one line on stderr naming the problem and a non-zero exit."""

from __future__ import annotations

import argparse
import getpass
import importlib
import json
import logging
import os
import signal
import socket
import sys
import threading
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING

from cronclaim.exceptions import ConfigurationError, CronclaimError, InvalidInput
from cronclaim.models import require_aware

if TYPE_CHECKING:
    from cronclaim.app import App
    from cronclaim.store import Store

DEFAULT_DATABASE = "sqlite:///cronclaim.db"
EXIT_ERROR = 2

Handler = Callable[[argparse.Namespace], int]


def env_default(name: str, default: str | None = None) -> str | None:
    return os.environ.get(name, default)


def _int_env(name: str) -> int | None:
    value = os.environ.get(name)
    if value is None or value == "":
        return None
    try:
        return int(value)
    except ValueError:
        print(f"cronclaim: error: {name}={value!r} is not a port number", file=sys.stderr)
        sys.exit(EXIT_ERROR)


def _operator() -> str:
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def add_database(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--database",
        default=env_default("CRONCLAIM_DATABASE_URL", DEFAULT_DATABASE),
        metavar="URL",
        help="sqlite:///path.db or postgresql://user@host/db "
        f"(env CRONCLAIM_DATABASE_URL; default {DEFAULT_DATABASE})",
    )


def add_app(parser: argparse.ArgumentParser, *, required: bool = True) -> None:
    parser.add_argument(
        "--app",
        default=env_default("CRONCLAIM_APP"),
        metavar="MODULE:ATTR",
        help="the cronclaim.App to use, e.g. myproject.jobs:app (env CRONCLAIM_APP)"
        + ("" if required else "; without it, --database is read directly"),
    )


def load_app(spec: str | None) -> App:
    """Import ``module:attr`` (the current directory is importable) and return the App."""
    from cronclaim.app import App

    if not spec:
        raise ConfigurationError("no app given; pass --app module:attr or set CRONCLAIM_APP")
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise ConfigurationError(f"--app {spec!r} must look like module:attr, e.g. jobs:app")
    if os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise ConfigurationError(
                f"cannot import {module_name!r} for --app {spec!r}: no module named {exc.name!r}"
            ) from None
        raise
    app = module
    for part in attr.split("."):
        try:
            app = getattr(app, part)
        except AttributeError:
            raise ConfigurationError(f"module {module_name!r} has no attribute {attr!r}") from None
    if not isinstance(app, App):
        raise ConfigurationError(f"{spec} is a {type(app).__name__}, not a cronclaim.App")
    return app


def parse_instant(text: str, what: str) -> datetime:
    """An ISO 8601 instant with an offset (``2026-05-19T07:00+02:00``, ``...Z``) or ``now``."""
    if text.strip().lower() == "now":
        return datetime.now(UTC)
    try:
        value = datetime.fromisoformat(text.strip().replace("Z", "+00:00").replace("z", "+00:00"))
    except ValueError:
        raise InvalidInput(
            f"{what} {text!r} is not an ISO 8601 time, e.g. 2026-05-19T07:00+02:00"
        ) from None
    return require_aware(value, what)


def configure_logging(level: str, log_format: str) -> None:
    from cronclaim.metrics import JsonLinesFormatter

    numeric = getattr(logging, level.upper(), None)
    if not isinstance(numeric, int):
        raise InvalidInput(f"--log-level {level!r} is not one of debug, info, warning, error")
    handler = logging.StreamHandler()
    if log_format == "json":
        handler.setFormatter(JsonLinesFormatter())
    elif log_format == "text":
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    else:
        raise InvalidInput(f"--log-format {log_format!r} is not text or json")
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)


def cmd_worker(args: argparse.Namespace) -> int:
    # A stop asked for while the app is still loading (a deploy that changes its mind)
    # is honoured once the worker exists, instead of killing the process mid-import.
    early_stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: early_stop.set())

    from cronclaim.alerts import load_alert_config
    from cronclaim.metrics import Metrics
    from cronclaim.worker import Worker

    configure_logging(args.log_level, args.log_format)
    app = load_app(args.app)
    alerts = load_alert_config(args.alerts) if args.alerts else None
    metrics = Metrics() if args.metrics_port is not None else None
    worker = Worker(
        app,
        concurrency=args.concurrency,
        jobs=args.job or None,
        burst=args.burst,
        catch_up=args.catch_up,
        grace=args.grace,
        poll=args.poll,
        alerts=alerts,
        metrics=metrics,
    )
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: worker.stop())
    if early_stop.is_set():
        return 0
    if metrics is not None:
        try:
            metrics.serve(args.metrics_port, args.metrics_host)
        except OSError as exc:
            raise ConfigurationError(
                f"cannot serve metrics on {args.metrics_host}:{args.metrics_port}: {exc}"
            ) from None
    worker.run()
    return 0


def cmd_audit(args: argparse.Namespace) -> int:
    from cronclaim.audit import run_audit
    from cronclaim.durations import parse_duration

    store, close = open_for_reading(args)
    try:
        report = run_audit(
            store,
            job=args.job,
            since=parse_instant(args.since, "--since") if args.since else None,
            older_than=parse_duration(args.older_than, "--older-than") if args.older_than else None,
        )
    finally:
        close()
    print(json.dumps(report.as_json(), indent=2) if args.json else report.as_text())
    return 0 if report.clean else 1


def parse_day_or_instant(text: str, what: str) -> tuple[datetime, date | None]:
    """A date (``2026-05-19``: a local day in each tenant's zone) or an ISO instant."""
    try:
        day = date.fromisoformat(text.strip())
    except ValueError:
        return parse_instant(text, what), None
    return datetime.combine(day, time(0), UTC), day


def cmd_replay(args: argparse.Namespace) -> int:
    from cronclaim.replay import replay

    start, first_day = parse_day_or_instant(args.from_, "--from")
    end, last_day = parse_day_or_instant(args.to, "--to")
    local_dates = None
    if first_day is not None or last_day is not None:
        if first_day is None or last_day is None:
            raise InvalidInput("--from and --to must both be dates or both be times")
        # Local days: widen to every UTC offset (-12h..+14h), then keep each tenant's own.
        start = start - timedelta(hours=14)
        end = datetime.combine(last_day + timedelta(days=1), time(0), UTC) + timedelta(hours=12)
        local_dates = (first_day, last_day)
    if args.now and not args.app:
        raise ConfigurationError("--now runs the job inline and needs --app module:attr")
    store, close = open_for_reading(args)
    try:
        plan = replay(
            store,
            job=args.job,
            start=start,
            end=end,
            tenant=args.tenant,
            force=args.force,
            dry_run=args.dry_run,
            requested_by=args.by,
            local_dates=local_dates,
        )
    finally:
        close()
    print(json.dumps(plan.as_json(), indent=2) if args.json else plan.as_text())
    if args.now and plan.applied:
        from cronclaim.worker import Worker

        app = load_app(args.app)
        worker = Worker(app, jobs=[args.job], burst=True, catch_up="1m")
        worker.run()
        print(
            f"ran inline: {worker.stats.done} done, {worker.stats.released} released, "
            f"{worker.stats.failed} failed"
        )
    return 0


def cmd_alerts(args: argparse.Namespace) -> int:
    store, close = open_for_reading(args)
    try:
        alerts = store.alerts(open_only=not args.all)
        deliveries = store.outbox() if args.deliveries else []
    finally:
        close()
    if args.json:
        data = {
            "alerts": [
                {
                    "key": a.key,
                    "rule": a.rule,
                    "job": a.job,
                    "state": a.state,
                    "severity": a.severity,
                    "summary": a.summary,
                    "details": json.loads(a.details),
                    "opened_at": a.opened_at.isoformat(),
                    "resolved_at": a.resolved_at.isoformat() if a.resolved_at else None,
                }
                for a in alerts
            ],
            "deliveries": [
                {
                    "id": d.id,
                    "alert": d.alert_key,
                    "action": d.action,
                    "sink": d.sink,
                    "state": d.state,
                    "attempts": d.attempts,
                    "error": d.last_error,
                }
                for d in deliveries
            ],
        }
        print(json.dumps(data, indent=2))
        return 0
    if not alerts:
        print("no alerts" if args.all else "no open alerts")
    for a in alerts:
        print(f"{a.state:<8} {a.severity:<8} {a.key}  (since {a.opened_at:%Y-%m-%d %H:%M}Z)")
        print(f"         {a.summary}")
    for d in deliveries:
        error = f"  {d.last_error}" if d.last_error else ""
        print(
            f"delivery {d.id}: {d.action} {d.alert_key} -> {d.sink}: {d.state} "
            f"after {d.attempts} attempt(s){error}"
        )
    return 0


def cmd_check(args: argparse.Namespace) -> int:
    """Health check: exit 0 when the database answers at the current schema and every job
    of the app succeeded within its period plus window; 1 otherwise (one line each)."""
    from cronclaim.store.queries import load_migrations

    app = load_app(args.app)
    problems: list[str] = []
    try:
        store = app.store
        version = store.schema_version()
        latest = len(load_migrations("sqlite" if store.backend == "sqlite" else "postgres"))
        if version < latest:
            problems.append(f"schema at version {version}, cronclaim needs {latest}")
        now = store.now()
        for job in app.jobs.values():
            last = store.last_success(job.name)
            expected = job.schedule.period_hint() + job.window
            if last is None:
                problems.append(f"job {job.name}: no successful occurrence recorded yet")
            elif now - last > expected:
                problems.append(
                    f"job {job.name}: last success {last.isoformat()}, "
                    f"expected one every {expected}"
                )
    except CronclaimError as exc:
        problems.append(str(exc))
    finally:
        app.close()
    for problem in problems:
        print(f"unhealthy: {problem}", file=sys.stderr)
    if not problems:
        print("healthy")
    return 1 if problems else 0


def cmd_schedule(args: argparse.Namespace) -> int:
    from cronclaim.models import time_zone
    from cronclaim.schedule import format_upcoming

    app = load_app(args.app)
    job = app.jobs.get(args.job)
    if job is None:
        raise InvalidInput(f"unknown job {args.job!r}; the app defines: {', '.join(app.jobs)}")
    if args.zone:
        zone_name = args.zone
    elif args.tenant:
        found = next((t for t in job.iter_tenants() if t.id == args.tenant), None)
        if found is None:
            raise InvalidInput(f"job {job.name!r} has no tenant {args.tenant!r}")
        zone_name = found.time_zone
    else:
        zone_name = job.time_zone
    zone = time_zone(zone_name)
    after = parse_instant(args.after, "--after")
    who = f"tenant {args.tenant}, " if args.tenant else ""
    print(
        f"{job.name}  cron {job.schedule.expression!r}  ({who}{zone_name}; DST: "
        f"nonexistent={job.schedule.dst.nonexistent}, repeated={job.schedule.dst.repeated})"
    )
    for line in format_upcoming(job.schedule, zone, after, args.next):
        print(f"  {line}")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from cronclaim.status import ledger_report

    store, close = open_for_reading(args)
    try:
        at = parse_instant(args.at, "--at") if args.at else store.now()
        report = ledger_report(store, job=args.job, at=at, ticks=args.ticks, limit=args.limit)
    finally:
        close()
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        print(report.as_text())
    return 0


def open_for_reading(args: argparse.Namespace) -> tuple[Store, Callable[[], None]]:
    """The store of ``--app`` if given, else of ``--database``."""
    from cronclaim.clock import SystemClock
    from cronclaim.store import open_store

    if args.app:
        app = load_app(args.app)
        return app.store, app.close
    store = open_store(args.database, clock=SystemClock())
    return store, store.close


def cmd_db_upgrade(args: argparse.Namespace) -> int:
    from cronclaim.clock import SystemClock
    from cronclaim.store import open_store, redact

    store = open_store(args.database, clock=SystemClock(), migrate=True)
    try:
        applied = store.upgrade()
        for name in applied:
            print(f"applied {name}")
        print(f"{redact(args.database)}: schema at version {store.schema_version()}")
    finally:
        store.close()
    return 0


def cmd_example(args: argparse.Namespace) -> int:
    from cronclaim.example import run_example

    return run_example(args.database, out=sys.stdout)


def port_number(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a port number") from None
    if not 0 < port < 65536:
        raise argparse.ArgumentTypeError(f"{port} is not a port number (1-65535)")
    return port


def cmd_dashboard(args: argparse.Namespace) -> int:
    from cronclaim.web.app import LOOPBACK_HOSTS, create_app, token_from_environment
    from cronclaim.web.serve import is_loopback, serve

    hosts = [h.strip() for item in args.allowed_host or [] for h in item.split(",") if h.strip()]
    if not hosts:
        if is_loopback(args.host):
            hosts = list(LOOPBACK_HOSTS)
        elif args.host in {"0.0.0.0", "::"}:  # noqa: S104 - reported, never the default
            hosts = ["*"]
        else:
            hosts = [f"[{args.host}]" if ":" in args.host else args.host, *LOOPBACK_HOSTS]
    store, close = open_for_reading(args)  # opens now: a bad database fails before serving
    jobs = load_app(args.app).jobs if args.app else {}
    token = token_from_environment()
    if not is_loopback(args.host):
        print(
            f"cronclaim: warning: serving on {args.host}, not only this machine; without TLS "
            "in front, the token and session cookie cross the network in clear text",
            file=sys.stderr,
        )
    mode = "replays need CRONCLAIM_DASHBOARD_TOKEN" if token else (
        "read-only (set CRONCLAIM_DASHBOARD_TOKEN to allow replays)"
    )
    shown = f"[{args.host}]" if ":" in args.host else args.host
    print(f"cronclaim dashboard on http://{shown}:{args.port}/ ({mode})", file=sys.stderr)
    try:
        serve(
            create_app(store, jobs=jobs, token=token, allowed_hosts=hosts),
            host=args.host,
            port=args.port,
            log_level=args.log_level,
        )
    finally:
        close()
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    from pathlib import Path

    from cronclaim.demo.command import run_demo
    from cronclaim.demo.serve import serve

    directory = Path(args.dir) if args.dir else None
    if args.serve:
        if args.json:
            raise InvalidInput("--json reports the replay; it cannot be combined with --serve")
        return serve(sys.stdout, directory=directory, seed=args.seed, fast=args.fast)
    if args.fast:
        raise InvalidInput("--fast compresses the live schedules; use it with --serve")
    return run_demo(
        sys.stdout,
        directory=directory,
        as_json=args.json,
        seed=args.seed,
        inference_timeout=args.inference_timeout,
    )


def positive_seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number of seconds") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be a positive number of seconds")
    return value


def add_demo(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    demo = sub.add_parser(
        "demo",
        help="replay the incident week: the story's naive claim pattern, then cronclaim",
        description="Replays Mon 2026-05-18 .. Sun 05-24 twice in virtual time (the story's "
        "naive claim table, then cronclaim) and prints a day-by-day timeline and a "
        "comparison; with --serve, runs the restaurant platform live instead.",
    )
    demo.add_argument(
        "--json",
        action="store_true",
        default=env_default("CRONCLAIM_DEMO_JSON", "") in {"1", "true", "yes"},
        help="print the comparison as JSON (env CRONCLAIM_DEMO_JSON=1)",
    )
    demo.add_argument(
        "--serve",
        action="store_true",
        default=env_default("CRONCLAIM_DEMO_SERVE", "") in {"1", "true", "yes"},
        help="run the platform live on the real clock (services on 127.0.0.1, a real "
        "worker) until Ctrl-C (env CRONCLAIM_DEMO_SERVE=1)",
    )
    demo.add_argument(
        "--fast",
        action="store_true",
        default=env_default("CRONCLAIM_DEMO_FAST", "") in {"1", "true", "yes"},
        help="with --serve: run the jobs every few minutes instead of at 07:00 and 09:30 "
        "(env CRONCLAIM_DEMO_FAST=1)",
    )
    demo.add_argument(
        "--dir",
        default=env_default("CRONCLAIM_DEMO_DIR"),
        metavar="DIR",
        help="keep the databases here, and reuse the generated platform and fitted models "
        "on the next run (env CRONCLAIM_DEMO_DIR; default: a temporary directory)",
    )
    demo.add_argument(
        "--inference-timeout",
        type=positive_seconds,
        default=env_default("CRONCLAIM_DEMO_INFERENCE_TIMEOUT", "0.25"),
        metavar="SECONDS",
        help="real seconds the replay's inference client waits, standing in for the story's "
        "5 s (env CRONCLAIM_DEMO_INFERENCE_TIMEOUT; default 0.25)",
    )
    demo.add_argument(
        "--seed",
        type=int,
        default=env_default("CRONCLAIM_DEMO_SEED", "606"),
        metavar="N",
        help="seed of the generated platform (env CRONCLAIM_DEMO_SEED; default 606)",
    )
    demo.set_defaults(handler=cmd_demo)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="cronclaim",
        description="Scheduled jobs that run their side effect once per occurrence.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    db = sub.add_parser("db", help="manage the database schema")
    db_sub = db.add_subparsers(dest="db_command", metavar="ACTION", required=True)
    upgrade = db_sub.add_parser("upgrade", help="apply pending schema migrations")
    add_database(upgrade)
    upgrade.set_defaults(handler=cmd_db_upgrade)

    worker = sub.add_parser(
        "worker", help="run the app's jobs: fan out due ticks, claim, run, retry"
    )
    add_app(worker)
    worker.add_argument(
        "--concurrency",
        type=int,
        default=int(env_default("CRONCLAIM_CONCURRENCY", "10") or 10),
        help="occurrences run at once (env CRONCLAIM_CONCURRENCY; default 10)",
    )
    worker.add_argument(
        "--job",
        action="append",
        metavar="NAME",
        help="run only this job (repeatable; default: every job of the app)",
    )
    worker.add_argument(
        "--burst",
        action="store_true",
        default=env_default("CRONCLAIM_BURST", "") in {"1", "true", "yes"},
        help="process everything due now, retries included, then exit (for an external "
        "cron, a Kubernetes CronJob or CI) (env CRONCLAIM_BURST=1)",
    )
    worker.add_argument(
        "--catch-up",
        default=env_default("CRONCLAIM_CATCH_UP", "24h"),
        metavar="DURATION",
        help="how far back a freshly started worker looks for ticks it has not seen; ticks "
        "whose window closed are recorded as missed (env CRONCLAIM_CATCH_UP; default 24h)",
    )
    worker.add_argument(
        "--grace",
        default=env_default("CRONCLAIM_GRACE", "30s"),
        metavar="DURATION",
        help="on SIGTERM/SIGINT, how long running work may finish before it is cancelled "
        "and released (env CRONCLAIM_GRACE; default 30s)",
    )
    worker.add_argument(
        "--poll",
        default=env_default("CRONCLAIM_POLL", "30s"),
        metavar="DURATION",
        help="longest sleep between looks for work other workers released "
        "(env CRONCLAIM_POLL; default 30s)",
    )
    worker.add_argument(
        "--log-level",
        default=env_default("CRONCLAIM_LOG_LEVEL", "info"),
        help="debug, info, warning or error; beacons log at info "
        "(env CRONCLAIM_LOG_LEVEL; default info)",
    )
    worker.add_argument(
        "--log-format",
        default=env_default("CRONCLAIM_LOG_FORMAT", "text"),
        choices=("text", "json"),
        help="text, or json for one JSON object per line (env CRONCLAIM_LOG_FORMAT)",
    )
    worker.add_argument(
        "--alerts",
        default=env_default("CRONCLAIM_ALERTS"),
        metavar="FILE",
        help="a TOML file of alert sinks and rule thresholds (see docs/alerts.md) "
        "(env CRONCLAIM_ALERTS; default: no alerting)",
    )
    worker.add_argument(
        "--metrics-port",
        type=int,
        default=_int_env("CRONCLAIM_METRICS_PORT"),
        metavar="PORT",
        help="serve Prometheus metrics on this port (env CRONCLAIM_METRICS_PORT; default off)",
    )
    worker.add_argument(
        "--metrics-host",
        default=env_default("CRONCLAIM_METRICS_HOST", "127.0.0.1"),
        help="address for the metrics server (env CRONCLAIM_METRICS_HOST; default 127.0.0.1)",
    )
    worker.set_defaults(handler=cmd_worker)

    audit = sub.add_parser(
        "audit",
        help="orphans, failures, retries, misses and stale holders; exit 0 clean, 1 found, 2 error",
    )
    add_app(audit, required=False)
    add_database(audit)
    audit.add_argument("--job", help="one job (default: all)")
    audit.add_argument(
        "--since",
        metavar="TIME",
        help="look at occurrences scheduled since this ISO 8601 time (default: 7 days ago)",
    )
    audit.add_argument(
        "--older-than",
        metavar="DURATION",
        help="a claim held longer than this is an orphan whatever its lease "
        "(default 24h: the seed's check)",
    )
    audit.add_argument("--json", action="store_true", help="print JSON")
    audit.set_defaults(handler=cmd_audit)

    replay = sub.add_parser(
        "replay",
        help="make missed/failed occurrences claimable again (backfill), or run them now",
    )
    add_app(replay, required=False)
    add_database(replay)
    replay.add_argument("--job", required=True)
    replay.add_argument("--tenant", help="one tenant (default: all)")
    replay.add_argument(
        "--from",
        dest="from_",
        required=True,
        metavar="DAY|TIME",
        help="first local day (2026-05-19) or ISO 8601 time",
    )
    replay.add_argument(
        "--to",
        required=True,
        metavar="DAY|TIME",
        help="last local day (inclusive) or ISO 8601 time",
    )
    replay.add_argument(
        "--dry-run",
        action="store_true",
        help="print exactly what would be replayed; change nothing",
    )
    replay.add_argument(
        "--force", action="store_true", help="also replay occurrences that are done"
    )
    replay.add_argument(
        "--now", action="store_true", help="run the replayed occurrences inline (needs --app)"
    )
    replay.add_argument(
        "--by",
        default=env_default("CRONCLAIM_REPLAY_BY", _operator()),
        metavar="NAME",
        help="who asked, recorded in the event log (env CRONCLAIM_REPLAY_BY; default user@host)",
    )
    replay.add_argument("--json", action="store_true", help="print JSON")
    replay.set_defaults(handler=cmd_replay)

    alerts = sub.add_parser("alerts", help="list open alerts (and their deliveries)")
    add_app(alerts, required=False)
    add_database(alerts)
    alerts.add_argument("--all", action="store_true", help="resolved ones too")
    alerts.add_argument(
        "--deliveries", action="store_true", help="also list the outbox: what went to which sink"
    )
    alerts.add_argument("--json", action="store_true", help="print JSON")
    alerts.set_defaults(handler=cmd_alerts)

    check = sub.add_parser(
        "check",
        help="health check: exit 0 if the database answers and every job succeeded within "
        "its period, 1 otherwise",
    )
    add_app(check)
    check.set_defaults(handler=cmd_check)

    schedule = sub.add_parser(
        "schedule", help="print a job's upcoming occurrences in local time and UTC"
    )
    schedule.add_argument("job", metavar="JOB")
    add_app(schedule)
    schedule.add_argument("--tenant", help="show the occurrences in this tenant's time zone")
    schedule.add_argument("--zone", help="show the occurrences in this IANA time zone")
    schedule.add_argument(
        "--next", type=int, default=10, metavar="N", help="how many occurrences (default 10)"
    )
    schedule.add_argument(
        "--after",
        default="now",
        metavar="TIME",
        help="start after this ISO 8601 time (default now)",
    )
    schedule.set_defaults(handler=cmd_schedule)

    status = sub.add_parser(
        "status", help="the ledger of a job's latest ticks: due, done, retrying, failed, missed"
    )
    status.add_argument("job", metavar="JOB", nargs="?", help="one job (default: all)")
    add_app(status, required=False)
    add_database(status)
    status.add_argument(
        "--at", metavar="TIME", help="the tick at or before this ISO 8601 time (default now)"
    )
    status.add_argument(
        "--ticks",
        type=int,
        default=1,
        metavar="N",
        help="how many recent ticks per job (default 1)",
    )
    status.add_argument(
        "--limit",
        type=int,
        default=20,
        metavar="N",
        help="list at most N occurrences that are not done (default 20)",
    )
    status.add_argument("--json", action="store_true", help="print JSON")
    status.set_defaults(handler=cmd_status)

    example = sub.add_parser(
        "example", help="run a short example of claims against SQLite and print what happened"
    )
    example.add_argument(
        "--database",
        default=env_default("CRONCLAIM_DATABASE_URL", "sqlite:///cronclaim-example.db"),
        metavar="URL",
        help="database to use (env CRONCLAIM_DATABASE_URL; default "
        "sqlite:///cronclaim-example.db, recreated on each run)",
    )
    example.set_defaults(handler=cmd_example)

    dashboard = sub.add_parser(
        "dashboard",
        help="serve the web dashboard: every occurrence, and replay from the browser "
        "(read-only unless CRONCLAIM_DASHBOARD_TOKEN is set)",
    )
    add_app(dashboard, required=False)
    add_database(dashboard)
    dashboard.add_argument(
        "--host",
        default=env_default("CRONCLAIM_DASHBOARD_HOST", "127.0.0.1"),
        help="address to listen on (env CRONCLAIM_DASHBOARD_HOST; default 127.0.0.1, this "
        "machine only)",
    )
    dashboard.add_argument(
        "--port",
        type=port_number,
        default=env_default("CRONCLAIM_DASHBOARD_PORT", "8787"),
        help="port to listen on (env CRONCLAIM_DASHBOARD_PORT; default 8787)",
    )
    dashboard.add_argument(
        "--allowed-host",
        action="append",
        default=[h for h in [env_default("CRONCLAIM_DASHBOARD_ALLOWED_HOSTS")] if h],
        metavar="NAME",
        help="a host name browsers may use to reach the dashboard, e.g. behind a proxy "
        "(repeatable; env CRONCLAIM_DASHBOARD_ALLOWED_HOSTS, comma-separated; an IPv6 "
        "address in brackets; default: 127.0.0.1, localhost and [::1] on a loopback "
        "address)",
    )
    dashboard.add_argument(
        "--log-level",
        default=env_default("CRONCLAIM_LOG_LEVEL", "info"),
        type=str.lower,
        choices=["debug", "info", "warning", "error"],
        help="access and error log level (env CRONCLAIM_LOG_LEVEL; default info)",
    )
    dashboard.set_defaults(handler=cmd_dashboard)
    add_demo(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handler: Handler = args.handler
    try:
        return handler(args)
    except CronclaimError as exc:
        print(f"cronclaim: error: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        print("cronclaim: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:
        # The reader (e.g. `| head`) went away; that is not an error of ours.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
