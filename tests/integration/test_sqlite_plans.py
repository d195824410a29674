"""SQLite's query plans for the named queries, on a fresh database (no statistics: nobody
runs ANALYZE on an embedded file). The claims and events tables grow by an occurrence a
tenant a tick, so a query that reads either whole gets slower every day: at 50,000 tenants
and 14 days the audit took 2 s reading every event, and the alert rules walked every claim
the job ever had on each evaluation."""

from __future__ import annotations

import re
import sqlite3
from pathlib import Path

import pytest

from cronclaim import App
from cronclaim.store.queries import load_queries

GROWING = {"cronclaim_claims", "cronclaim_events"}
# Queries that read what went wrong, by time: the events' partial index of trouble
# (released, failed, stale_rejected, missed, lease_expired) must be their outer loop.
TROUBLE_QUERIES = (
    "audit_stale_rejections",
    "audit_repeated_errors",
    "failures_since",
    "failed_since",
    "missed_since",
)
QUERIES = load_queries("sqlite")


def _statement(sql: str) -> bool:
    body = "\n".join(line for line in sql.splitlines() if not line.lstrip().startswith("--"))
    return re.match(r"\s*(SELECT|WITH|UPDATE|DELETE|INSERT)\b", body, re.I) is not None


STATEMENTS = sorted(name for name, sql in QUERIES.items() if _statement(sql))


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> sqlite3.Connection:
    path = Path(tmp_path_factory.mktemp("plans")) / "claims.db"
    app = App(f"sqlite:///{path}")
    app.store.upgrade()
    app.close()
    return sqlite3.connect(path)


def plan(conn: sqlite3.Connection, name: str) -> list[str]:
    sql = QUERIES[name]
    params = dict.fromkeys(re.findall(r"(?<!:):(\w+)", sql), 1)
    return [row[3] for row in conn.execute("EXPLAIN QUERY PLAN " + sql, params)]


def table_of(sql: str, name: str) -> str:
    """The table an alias in a plan line stands for (the name itself when no alias)."""
    aliases = dict(
        (alias, table) for table, alias in re.findall(r"\b(cronclaim_\w+)\s+AS\s+(\w+)", sql)
    )
    return aliases.get(name, name)


@pytest.fixture(scope="module")
def partial(conn: sqlite3.Connection) -> set[str]:
    """The partial indexes: a read through one (open claims, trouble events) is bounded."""
    rows = conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'index'").fetchall()
    return {name for name, sql in rows if sql and " WHERE " in sql}


def unbounded(conn: sqlite3.Connection, partial: set[str], name: str, pattern: str) -> list[str]:
    """Plan lines of ``name`` that ``pattern`` (groups: table or alias, index) matches on
    a growing table, read without an index or through one that is not partial."""
    found = []
    for line in plan(conn, name):
        match = re.match(pattern, line)
        if match is None or table_of(QUERIES[name], match[1]) not in GROWING:
            continue
        if match[2] is None or match[2] not in partial:
            found.append(line)
    return found


# A scan of the table or of a full index: every row, end to end.
READS_WHOLE = r"SCAN (\w+)(?: USING (?:COVERING )?INDEX (\w+))?"
# An index range on job alone: every row the job ever had.
WALKS_A_JOB = r"SEARCH (\w+) USING (?:COVERING )?INDEX (\w+) \(job=\?\)$"


@pytest.mark.parametrize("name", STATEMENTS)
def test_no_query_reads_a_growing_table_whole(
    conn: sqlite3.Connection, partial: set[str], name: str
) -> None:
    assert unbounded(conn, partial, name, READS_WHOLE) == []


# Queries that may read a job's rows through a full index by job alone, and why.
WHOLE_JOB = {
    # MAX(tenant) of the job: one seek to the end of the index range, not a walk.
    "dashboard_tenants_after": "max seek",
    "dashboard_tenants_done_after": "max seek",
    "dashboard_tenants_final_after": "max seek",
    "dashboard_tenants_open_after": "max seek",
    "dashboard_tenants_problems_after": "max seek",
    # Operator commands and the fallback for jobs never fanned out (direct claims): they
    # filter by instant, which no full index of the claims holds (docs/decisions.md #16).
    "replay_candidates": "left alone",
    "latest_claim_ticks": "left alone",
}


@pytest.mark.parametrize("name", STATEMENTS)
def test_no_query_walks_every_row_of_a_job(
    conn: sqlite3.Connection, partial: set[str], name: str
) -> None:
    walks = unbounded(conn, partial, name, WALKS_A_JOB)
    if name in WHOLE_JOB:
        assert walks != [], f"{name} no longer walks a job: drop it from WHOLE_JOB"
    else:
        assert walks == []


def test_closing_windows_reads_only_open_rows(conn: sqlite3.Connection) -> None:
    """The worker closes windows with SQLite's write lock held."""
    assert plan(conn, "windows_closed") == [
        "SEARCH cronclaim_claims USING INDEX cronclaim_claims_open (job=? AND scheduled_for<?)"
    ]


@pytest.mark.parametrize("name", TROUBLE_QUERIES)
def test_trouble_is_read_from_its_partial_index_first(conn: sqlite3.Connection, name: str) -> None:
    lines = [line for line in plan(conn, name) if line.startswith(("SCAN", "SEARCH"))]
    first = next(line for line in lines if "cronclaim_events" in line or line.split()[1] == "e")
    assert "USING INDEX cronclaim_events_trouble (at>?)" in first, lines
    # ... and the claims are looked up by id for each, not walked by job first.
    assert lines.index(first) == 0, lines
    claims = [
        line for line in lines if table_of(QUERIES[name], line.split()[1]) == "cronclaim_claims"
    ]
    assert all("INTEGER PRIMARY KEY (rowid=?)" in line for line in claims), lines
