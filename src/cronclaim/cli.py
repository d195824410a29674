"""The ``cronclaim`` command. Every flag has a ``CRONCLAIM_*`` environment twin, named in
its help. Bad input gets one line on stderr naming the problem and a non-zero exit."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence

from cronclaim.exceptions import CronclaimError

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
