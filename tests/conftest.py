"""Shared fixtures: a fresh PostgreSQL database per test run, SQLite files per test, and
app factories. PostgreSQL tests never skip silently: under CI=true an unreachable
server fails the run."""

from __future__ import annotations

import os
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest

import cronclaim
from cronclaim.clock import Clock, VirtualClock

ADMIN_URL = os.environ.get(
    "CRONCLAIM_TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)
BACKENDS = ("sqlite", "postgres")
T0 = datetime(2026, 5, 18, 5, 0, tzinfo=UTC)


def _admin() -> psycopg.Connection[Any]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def _drop_orphaned_test_databases(conn: psycopg.Connection[Any]) -> None:
    """Drop databases left by earlier runs that crashed before their cleanup."""
    rows = conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE 'cronclaim\\_test\\_%'"
    ).fetchall()
    for (name,) in rows:
        try:
            pid = int(name.split("_")[2])
        except (IndexError, ValueError):
            continue
        if pid != os.getpid() and not os.path.exists(f"/proc/{pid}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    """A database created for this test run, upgraded to the current schema, dropped after."""
    try:
        admin = _admin()
    except psycopg.OperationalError as exc:
        message = f"PostgreSQL unreachable at {ADMIN_URL}: {' '.join(str(exc).split())}"
        if os.environ.get("CI") == "true":
            pytest.fail(message, pytrace=False)
        pytest.skip(message)
    name = f"cronclaim_test_{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin:
        _drop_orphaned_test_databases(admin)
        admin.execute(f'CREATE DATABASE "{name}"')
    info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
    info["dbname"] = name
    url = "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", "postgres"),
        host=info.get("host", "127.0.0.1"),
        port=info.get("port", "5432"),
        dbname=name,
    )
    store = cronclaim.App(url, migrate=True).store
    store.close()
    try:
        yield url
    finally:
        with _admin() as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def truncate_postgres(url: str) -> None:
    with psycopg.connect(url, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema() "
                "AND tablename LIKE 'cronclaim\\_%' AND tablename <> 'cronclaim_migrations'"
            ).fetchall()
        ]
        if tables:
            conn.execute(
                "TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY"
            )


@pytest.fixture(params=BACKENDS)
def database_url(request: pytest.FixtureRequest, tmp_path: Any) -> str:
    """The URL of an empty claims database, once per backend."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'claims.db'}"
    url: str = request.getfixturevalue("pg_url")
    truncate_postgres(url)
    return url


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        callspec = getattr(item, "callspec", None)
        if callspec is not None and callspec.params.get("database_url") == "postgres":
            item.add_marker(pytest.mark.postgres)


@pytest.fixture
def clock() -> VirtualClock:
    return VirtualClock(T0)


AppFactory = Callable[..., cronclaim.App]


@pytest.fixture
def make_app(database_url: str, clock: VirtualClock) -> Iterator[AppFactory]:
    """Build apps on the test's database; all share the virtual clock unless told."""
    apps: list[cronclaim.App] = []

    def factory(
        worker_id: str = "worker-1", *, clock_: Clock | None = None, **kwargs: Any
    ) -> cronclaim.App:
        app = cronclaim.App(
            database_url, clock=clock_ or clock, worker_id=worker_id, **kwargs
        )
        apps.append(app)
        return app

    yield factory
    for app in apps:
        app.close()
