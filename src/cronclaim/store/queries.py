"""Loads the named SQL queries and migrations shipped under ``store/sql/<backend>/``.

A queries file is a sequence of blocks, each introduced by ``-- name: <name>`` and a
comment line saying what the query does. Python never assembles SQL from strings.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources

_NAME = re.compile(r"^-- name: ([a-z_][a-z0-9_]*)\s*$", re.MULTILINE)
_MIGRATION = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def _sql_dir(backend: str) -> resources.abc.Traversable:
    return resources.files("cronclaim.store").joinpath("sql", backend)


@cache
def load_queries(backend: str) -> dict[str, str]:
    """Every named query of every ``*.sql`` file of the backend (one file per subject:
    the claim lifecycle, audit, the dashboard), in one namespace."""
    queries: dict[str, str] = {}
    files = sorted(
        (entry for entry in _sql_dir(backend).iterdir() if entry.name.endswith(".sql")),
        key=lambda entry: entry.name,
    )
    for entry in files:
        where = f"{backend}/{entry.name}"
        parts = _NAME.split(entry.read_text(encoding="utf-8"))
        # parts = [preamble, name1, body1, name2, body2, ...]
        for name, body in zip(parts[1::2], parts[2::2], strict=True):
            if name in queries:
                raise RuntimeError(f"query {name!r} in {where} is defined twice")
            sql = body.strip()
            if not sql.startswith("--"):
                raise RuntimeError(f"query {name!r} in {where} lacks its description")
            queries[name] = sql
    return queries


@cache
def load_migrations(backend: str) -> tuple[Migration, ...]:
    found = []
    for entry in _sql_dir(backend).joinpath("migrations").iterdir():
        match = _MIGRATION.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text(encoding="utf-8")))
    found.sort(key=lambda m: m.version)
    versions = [m.version for m in found]
    if versions != list(range(1, len(found) + 1)):
        raise RuntimeError(f"{backend} migrations are not numbered 1..n: {versions}")
    return tuple(found)
