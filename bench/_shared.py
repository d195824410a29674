"""What every benchmark script shares: writing its own section of RESULTS.md, and
throwaway PostgreSQL databases that are dropped whatever happens (with those that
crashed runs left behind)."""

from __future__ import annotations

import contextlib
import os
import re
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"
ADMIN_URL = os.environ.get(
    "CRONCLAIM_BENCH_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
)


def write_section(name: str, section: str) -> None:
    """Replace only the text between ``<!-- name:start -->`` and ``<!-- name:end -->``;
    create the file if it is missing."""
    start_mark, end_mark = f"<!-- {name}:start -->", f"<!-- {name}:end -->"
    block = f"{start_mark}\n{section}{end_mark}"
    if RESULTS.exists():
        text = RESULTS.read_text(encoding="utf-8")
        start, end = text.find(start_mark), text.find(end_mark)
        if start != -1 and end > start:
            text = text[:start] + block + text[end + len(end_mark) :]
        else:
            text = text.rstrip() + "\n\n" + block + "\n"
    else:
        text = (
            "# Benchmark results\n\nEach section is written by its script in `bench/` "
            "(see `bench/README.md`); re-run the script to refresh it.\n\n" + block + "\n"
        )
    RESULTS.write_text(text, encoding="utf-8")


def admin() -> psycopg.Connection[Any]:
    return psycopg.connect(ADMIN_URL, autocommit=True, connect_timeout=5)


def drop_orphans(conn: psycopg.Connection[Any], prefix: str) -> None:
    """Drop databases named ``<prefix><pid>_<hex>`` whose process is gone."""
    pattern = prefix.replace("_", "\\_") + "%"
    for (name,) in conn.execute(
        "SELECT datname FROM pg_database WHERE datname LIKE %s", [pattern]
    ).fetchall():
        match = re.fullmatch(re.escape(prefix) + r"(\d+)_[0-9a-f]{8}", str(name))
        if match and int(match[1]) != os.getpid() and not os.path.exists(f"/proc/{match[1]}"):
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@contextlib.contextmanager
def throwaway_database(prefix: str) -> Iterator[str]:
    """A database for this run (its conninfo), dropped at the end whatever happens."""
    name = f"{prefix}{os.getpid()}_{uuid.uuid4().hex[:8]}"
    with admin() as conn:
        drop_orphans(conn, prefix)
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        info = psycopg.conninfo.conninfo_to_dict(ADMIN_URL)
        info["dbname"] = name
        yield psycopg.conninfo.make_conninfo(**{k: str(v) for k, v in info.items()})
    finally:
        with admin() as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
