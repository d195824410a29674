"""Direct access to a test database, beneath the store: for setting up states the public
API cannot reach (a ``missed`` row), for checks that must not trust the store (the event
log is append-only), and for making a database unreachable on purpose."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import psycopg

from cronclaim.store import parse_database_url
from tests.conftest import ADMIN_URL


def backend_of(database_url: str) -> str:
    return parse_database_url(database_url).backend


def sql(database_url: str, statement: str) -> list[tuple[Any, ...]]:
    """Run one statement outside the store, committed; return its rows (if any)."""
    parsed = parse_database_url(database_url)
    if parsed.backend == "sqlite":
        conn = sqlite3.connect(parsed.target, isolation_level=None, timeout=30)
        try:
            return [tuple(r) for r in conn.execute(statement).fetchall()]
        finally:
            conn.close()
    with psycopg.connect(parsed.target, autocommit=True) as pg:
        cur = pg.execute(statement)
        return [tuple(r) for r in cur.fetchall()] if cur.description else []


def dbname_of(pg_url: str) -> str:
    name = psycopg.conninfo.conninfo_to_dict(pg_url).get("dbname")
    assert isinstance(name, str)
    return name


@contextlib.contextmanager
def empty_postgres_database(suffix: str) -> Iterator[str]:
    """A PostgreSQL database with no cronclaim schema, dropped afterwards."""
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    name = f"cronclaim_test_{os.getpid()}_{suffix}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.execute(f'CREATE DATABASE "{name}"')
    url = "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", "postgres"),
        host=info.get("host", "127.0.0.1"),
        port=info.get("port", "5432"),
        dbname=name,
    )
    try:
        yield url
    finally:
        with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


_SQLITE_LOCKER = """
import sqlite3, sys, time
conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=30)
conn.execute("BEGIN EXCLUSIVE")
print("locked", flush=True)
sys.stdin.readline()
conn.execute("ROLLBACK")
"""


@contextlib.contextmanager
def sqlite_write_lock(path: str) -> Iterator[None]:
    """Another process holds SQLite's write lock while inside."""
    locker = subprocess.Popen(
        [sys.executable, "-c", _SQLITE_LOCKER, path],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert locker.stdout is not None and locker.stdin is not None
        assert locker.stdout.readline().strip() == "locked"
        yield
    finally:
        if locker.stdin is not None:
            with contextlib.suppress(BrokenPipeError):
                locker.stdin.write("\n")
                locker.stdin.close()
        locker.wait(timeout=30)
        if locker.stdout is not None:
            locker.stdout.close()


@contextlib.contextmanager
def claims_write_locked(database_url: str) -> Iterator[None]:
    """While inside, writes to the claims wait (they neither fail nor proceed)."""
    parsed = parse_database_url(database_url)
    if parsed.backend == "sqlite":
        with sqlite_write_lock(parsed.target):
            yield
        return
    with psycopg.connect(parsed.target) as conn:  # a transaction, until the block ends
        conn.execute("LOCK TABLE cronclaim_claims IN EXCLUSIVE MODE")
        try:
            yield
        finally:
            conn.rollback()


@contextlib.contextmanager
def database_unreachable(database_url: str) -> Iterator[None]:
    """While inside, the store's writes cannot reach the database.

    SQLite: another process holds the write lock (``BEGIN EXCLUSIVE``), so a store opened
    with a short ``busy_timeout`` gives up. PostgreSQL: the database refuses new
    connections and its open ones are terminated, as when a server goes away.
    """
    parsed = parse_database_url(database_url)
    if parsed.backend == "sqlite":
        with sqlite_write_lock(parsed.target):
            yield
        return
    name = dbname_of(parsed.target)
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        try:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                "WHERE datname = %s AND pid <> pg_backend_pid()",
                (name,),
            )
            yield
        finally:
            admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
