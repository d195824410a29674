"""The ``cronclaim`` command. Every flag has a ``CRONCLAIM_*`` environment twin, named in
its help. Bad input gets one line on stderr naming the problem and a non-zero exit."""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import sys
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
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


def cmd_worker(args: argparse.Namespace) -> int:
    from cronclaim.worker import Worker

    app = load_app(args.app)
    worker = Worker(
        app,
        concurrency=args.concurrency,
        jobs=args.job or None,
        burst=args.burst,
        catch_up=args.catch_up,
        grace=args.grace,
        poll=args.poll,
    )
    logging.basicConfig(
        level=getattr(logging, args.log_level.upper(), logging.INFO),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    worker.run()
    return 0


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
        help="debug, info, warning or error (env CRONCLAIM_LOG_LEVEL; default info)",
    )
    worker.set_defaults(handler=cmd_worker)

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
