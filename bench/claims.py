"""Claim throughput: the library against hand-written SQL, on SQLite and PostgreSQL.

    .venv/bin/python bench/claims.py [--n N] [--backend sqlite|postgres|all]

Measures occurrences per second, in one run and on the same tables (the cronclaim
migrations), for:

* ``raw`` — the baseline, no library: a hand-written insert-claim and complete, one
  occurrence at a time, each transition its own autocommit transaction. Measured twice:
  ``raw+events`` also appends an event row for each transition in the same
  transaction (what the library must do by contract), ``raw-events`` does not.
* ``store`` — the library's ``store.acquire(...)`` + ``store.complete(...)``.
* ``guard`` — the full guard, ``with app.claim(...) as run: pass`` (adds building the
  occurrence, the worker id and the heartbeat registration).
* batches of 1,000: ``store.acquire_batch`` + ``store.complete_batch``, against the raw
  batched equivalent (with and without events).

The machine is shared and noisy, so after a warm-up the variants run in rounds of short
turns, in a rotating order: each figure is the median of the rounds, each ratio the
median of per-turn ratios. Throughout, claims are held by another worker (a fan-out in
flight), so that a plan scanning every held claim shows. On PostgreSQL the generic and
custom plans of every prepared statement, the library's and the baseline's, are examined
after the warm-up and at the end. The figures go to stdout and, between the ``claims``
markers, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import platform
import re
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import psycopg
from _shared import RESULTS, throwaway_database, write_section
from psycopg import ClientCursor
from psycopg_pool import PoolTimeout

import cronclaim
from cronclaim import App, Occurrence
from cronclaim.store.queries import load_queries

BENCH_DIR = Path(__file__).resolve().parent

DB_PREFIX = "cronclaim_bench_claims_"  # other bench scripts use cronclaim_bench_*

BATCH = 1000
LEASE = dt.timedelta(minutes=2)
MADRID = ZoneInfo("Europe/Madrid")
SCHEDULED_FOR = dt.datetime(2026, 5, 19, 7, 0, tzinfo=MADRID)
LOCAL_TEXT = SCHEDULED_FOR.isoformat()
TICK = "2026-05-19T07:00"  # the nominal wall time, as the library stores it
SCHEDULED_US = (SCHEDULED_FOR - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) // dt.timedelta(
    microseconds=1
)
RAW_WORKER = "bench-raw"

TARGET_SINGLE = 0.7  # library single-claim lifecycle / raw, same backend
TARGET_BATCH = 20.0  # PostgreSQL batch / single-claim lifecycle


# -- raw SQL: the baseline. Written here, not taken from the library's .sql files. -----

SQLITE_RAW = {
    "insert": (
        "INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " VALUES (?, ?, ?, ?, ?, ?, 'claimed', 1, 1, ?, ?, ?)"
        " ON CONFLICT DO NOTHING RETURNING id, token"
    ),
    "complete": (
        "UPDATE cronclaim_claims SET state = 'done', finished_at = ?, lease_expires_at = NULL,"
        " last_error = NULL WHERE id = ? AND token = ? AND state = 'claimed'"
    ),
    "event": (
        "INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)"
        " VALUES (?, ?, ?, ?, ?, ?)"
    ),
    # Batches: one statement over a JSON array each way, the fastest form measured here
    # (a loop of 1,000 single-row inserts took twice as long).
    "insert_batch": (
        "INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " SELECT ?, value, ?, ?, ?, ?, 'claimed', 1, 1, ?, ?, ? FROM json_each(?) WHERE true"
        " ON CONFLICT DO NOTHING RETURNING id, token"
    ),
    "complete_batch": (
        "UPDATE cronclaim_claims SET state = 'done', finished_at = ?, lease_expires_at = NULL,"
        " last_error = NULL"
        " FROM (SELECT json_extract(value, '$[0]') AS id, json_extract(value, '$[1]') AS token"
        " FROM json_each(?)) AS b"
        " WHERE cronclaim_claims.id = b.id AND cronclaim_claims.token = b.token"
        " AND cronclaim_claims.state = 'claimed'"
    ),
}

PG_RAW = {
    "insert": (
        "INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'claimed', 1, 1, %s, now(), now() + %s::interval)"
        " ON CONFLICT DO NOTHING RETURNING id, token"
    ),
    "complete": (
        "UPDATE cronclaim_claims SET state = 'done', finished_at = now(),"
        " lease_expires_at = NULL, last_error = NULL"
        " WHERE id = %s AND token = %s AND state = 'claimed'"
    ),
    "insert_ev": (
        "WITH ins AS ("
        " INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " VALUES (%s, %s, %s, %s, %s, %s, 'claimed', 1, 1, %s, now(), now() + %s::interval)"
        " ON CONFLICT DO NOTHING RETURNING id, token, worker, claimed_at),"
        " ev AS (INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)"
        " SELECT id, 'acquired', claimed_at, worker, 1, token FROM ins)"
        " SELECT id, token FROM ins"
    ),
    "complete_ev": (
        "WITH upd AS ("
        " UPDATE cronclaim_claims SET state = 'done', finished_at = now(),"
        " lease_expires_at = NULL, last_error = NULL"
        " WHERE id = %s AND token = %s AND state = 'claimed'"
        " RETURNING id, finished_at, worker, attempt, token),"
        " ev AS (INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)"
        " SELECT id, 'completed', finished_at, worker, attempt, token FROM upd)"
        " SELECT id FROM upd"
    ),
    "insert_batch": (
        "INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " SELECT j, t, s, l, z, %(tick)s, 'claimed', 1, 1, %(worker)s, now(),"
        " now() + %(lease)s::interval"
        " FROM unnest(%(jobs)s::text[], %(tenants)s::text[], %(fors)s::timestamptz[],"
        " %(locals)s::text[], %(zones)s::text[]) AS b(j, t, s, l, z)"
        " ON CONFLICT DO NOTHING RETURNING id, token"
    ),
    "complete_batch": (
        "UPDATE cronclaim_claims AS c SET state = 'done', finished_at = now(),"
        " lease_expires_at = NULL, last_error = NULL"
        " FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS b(id, token)"
        " WHERE c.id = b.id AND c.token = b.token AND c.state = 'claimed'"
        " RETURNING c.id"
    ),
    "insert_batch_ev": (
        "WITH ins AS ("
        " INSERT INTO cronclaim_claims (job, tenant, scheduled_for, local_time, time_zone,"
        " tick, state, token, attempt, worker, claimed_at, lease_expires_at)"
        " SELECT j, t, s, l, z, %(tick)s, 'claimed', 1, 1, %(worker)s, now(),"
        " now() + %(lease)s::interval"
        " FROM unnest(%(jobs)s::text[], %(tenants)s::text[], %(fors)s::timestamptz[],"
        " %(locals)s::text[], %(zones)s::text[]) AS b(j, t, s, l, z)"
        " ON CONFLICT DO NOTHING RETURNING id, token, worker, claimed_at),"
        " ev AS (INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)"
        " SELECT id, 'acquired', claimed_at, worker, 1, token FROM ins)"
        " SELECT id, token FROM ins"
    ),
    "complete_batch_ev": (
        "WITH upd AS ("
        " UPDATE cronclaim_claims AS c SET state = 'done', finished_at = now(),"
        " lease_expires_at = NULL, last_error = NULL"
        " FROM unnest(%(ids)s::bigint[], %(tokens)s::bigint[]) AS b(id, token)"
        " WHERE c.id = b.id AND c.token = b.token AND c.state = 'claimed'"
        " RETURNING c.id, c.finished_at, c.worker, c.attempt, c.token),"
        " ev AS (INSERT INTO cronclaim_events (claim_id, kind, at, worker, attempt, token)"
        " SELECT id, 'completed', finished_at, worker, attempt, token FROM upd)"
        " SELECT count(*) FROM upd"
    ),
}


def now_us() -> int:
    return time.time_ns() // 1000


class BenchError(RuntimeError):
    pass


def check(condition: bool, what: str) -> None:
    if not condition:
        raise BenchError(what)


# -- the variants ----------------------------------------------------------------------


@dataclass
class Variant:
    name: str
    kind: str  # "single" or "batch"
    run: Callable[[str, int], int]  # (unique prefix, count) -> occurrences done
    describe: str


@dataclass
class Backend:
    name: str
    app: App
    variants: list[Variant]
    facts: dict[str, str]
    plan_report: Callable[[], list[str]] = lambda: []
    results: dict[str, list[float]] = field(default_factory=dict)  # per round
    turns: dict[str, list[float]] = field(default_factory=dict)  # per turn, for ratios


def tenants(prefix: str, count: int) -> list[str]:
    return [f"{prefix}-{i}" for i in range(count)]


def library_variants(app: App) -> list[Variant]:
    store = app.store
    worker = app.worker_id

    def store_single(prefix: str, count: int) -> int:
        for tenant in tenants(prefix, count):
            occurrence = Occurrence(job="bench-store", tenant=tenant, scheduled_for=SCHEDULED_FOR)
            claim = store.acquire(occurrence, worker=worker, lease=LEASE)
            store.complete(claim)
        return count

    def guard_single(prefix: str, count: int) -> int:
        for tenant in tenants(prefix, count):
            with app.claim("bench-guard", tenant, SCHEDULED_FOR, lease=LEASE):
                pass
        return count

    def store_batch(prefix: str, count: int) -> int:
        done = 0
        for b in range(count // BATCH):
            occurrences = [
                Occurrence(job="bench-batch", tenant=t, scheduled_for=SCHEDULED_FOR)
                for t in tenants(f"{prefix}.{b}", BATCH)
            ]
            claims = store.acquire_batch(occurrences, worker=worker, lease=LEASE)
            completed, stale = store.complete_batch(claims)
            check(len(completed) == BATCH and not stale, "library batch lost occurrences")
            done += len(completed)
        return done

    return [
        Variant("store", "single", store_single, "store.acquire + store.complete"),
        Variant("guard", "single", guard_single, "with app.claim(...): pass"),
        Variant("batch", "batch", store_batch, "store.acquire_batch + complete_batch"),
    ]


# -- SQLite ----------------------------------------------------------------------------


def sqlite_connect(path: str) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None, timeout=30)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=FULL")
    return conn


def sqlite_raw_variants(conn: sqlite3.Connection) -> list[Variant]:
    insert, complete, event = SQLITE_RAW["insert"], SQLITE_RAW["complete"], SQLITE_RAW["event"]
    insert_batch, complete_batch = SQLITE_RAW["insert_batch"], SQLITE_RAW["complete_batch"]
    lease_us = LEASE // dt.timedelta(microseconds=1)

    def claim_params(job: str, tenant: str, now: int) -> tuple[Any, ...]:
        return (
            job,
            tenant,
            SCHEDULED_US,
            LOCAL_TEXT,
            "Europe/Madrid",
            TICK,
            RAW_WORKER,
            now,
            now + lease_us,
        )

    def single(events: bool) -> Callable[[str, int], int]:
        job = "raw-ev" if events else "raw"

        def run(prefix: str, count: int) -> int:
            execute = conn.execute
            for tenant in tenants(prefix, count):
                if events:
                    execute("BEGIN IMMEDIATE")
                now = now_us()
                row = execute(insert, claim_params(job, tenant, now)).fetchone()
                check(row is not None, "raw insert lost")
                if events:
                    execute(event, (row[0], "acquired", now, RAW_WORKER, 1, row[1]))
                    execute("COMMIT")
                    execute("BEGIN IMMEDIATE")
                now = now_us()
                cur = execute(complete, (now, row[0], row[1]))
                check(cur.rowcount == 1, "raw complete lost")
                if events:
                    execute(event, (row[0], "completed", now, RAW_WORKER, 1, row[1]))
                    execute("COMMIT")
            return count

        return run

    def batch(events: bool) -> Callable[[str, int], int]:
        job = "raw-batch-ev" if events else "raw-batch"

        def run(prefix: str, count: int) -> int:
            execute = conn.execute
            done = 0
            for b in range(count // BATCH):
                execute("BEGIN IMMEDIATE")
                now = now_us()
                names = json.dumps(tenants(f"{prefix}.{b}", BATCH))
                won = execute(
                    insert_batch,
                    (
                        job,
                        SCHEDULED_US,
                        LOCAL_TEXT,
                        "Europe/Madrid",
                        TICK,
                        RAW_WORKER,
                        now,
                        now + lease_us,
                        names,
                    ),
                ).fetchall()
                check(len(won) == BATCH, "raw batch insert lost")
                if events:
                    conn.executemany(
                        event, [(i, "acquired", now, RAW_WORKER, 1, t) for i, t in won]
                    )
                execute("COMMIT")
                execute("BEGIN IMMEDIATE")
                now = now_us()
                cur = execute(complete_batch, (now, json.dumps([[i, t] for i, t in won])))
                check(cur.rowcount == BATCH, "raw batch complete lost")
                if events:
                    conn.executemany(
                        event, [(i, "completed", now, RAW_WORKER, 1, t) for i, t in won]
                    )
                execute("COMMIT")
                done += BATCH
            return done

        return run

    return [
        Variant("raw-events", "single", single(False), "INSERT claim; UPDATE done"),
        Variant("raw+events", "single", single(True), "BEGIN; INSERT claim; INSERT event; COMMIT"),
        Variant(
            "raw-batch-events", "batch", batch(False), "INSERT ... json_each; UPDATE ... json_each"
        ),
        Variant("raw-batch+events", "batch", batch(True), "the same, with event rows"),
    ]


@contextlib.contextmanager
def sqlite_backend() -> Iterator[Backend]:
    directory = tempfile.mkdtemp(prefix="cronclaim-bench-")
    path = os.path.join(directory, "claims.db")
    app = App(f"sqlite:///{path}", lease=LEASE)
    raw = sqlite_connect(path)
    try:
        store = app.store  # applies the migrations
        check(store.schema_version() >= 1, "SQLite schema missing")
        lib_conn = sqlite3.connect(path)
        try:
            journal = lib_conn.execute("PRAGMA journal_mode").fetchone()[0]
        finally:
            lib_conn.close()
        facts = {
            "SQLite": sqlite3.sqlite_version,
            "journal": f"{journal}, synchronous=FULL (library default and raw)",
            "file system": _filesystem(directory),
        }
        yield Backend(
            name="sqlite",
            app=app,
            variants=sqlite_raw_variants(raw) + library_variants(app),
            facts=facts,
        )
    finally:
        raw.close()
        app.close()
        for name in os.listdir(directory):
            os.unlink(os.path.join(directory, name))
        os.rmdir(directory)


# -- PostgreSQL ------------------------------------------------------------------------


def pg_raw_variants(conn: psycopg.Connection[Any]) -> list[Variant]:
    def single(events: bool) -> Callable[[str, int], int]:
        job = "raw-ev" if events else "raw"
        insert = PG_RAW["insert_ev" if events else "insert"]
        complete = PG_RAW["complete_ev" if events else "complete"]

        def run(prefix: str, count: int) -> int:
            execute = conn.execute
            for tenant in tenants(prefix, count):
                row = execute(
                    insert,
                    (
                        job,
                        tenant,
                        SCHEDULED_FOR,
                        LOCAL_TEXT,
                        "Europe/Madrid",
                        TICK,
                        RAW_WORKER,
                        LEASE,
                    ),
                ).fetchone()
                check(row is not None, "raw insert lost")
                cur = execute(complete, row)
                check(cur.rowcount == 1, "raw complete lost")
            return count

        return run

    def batch(events: bool) -> Callable[[str, int], int]:
        job = "raw-batch-ev" if events else "raw-batch"
        insert = PG_RAW["insert_batch_ev" if events else "insert_batch"]
        complete = PG_RAW["complete_batch_ev" if events else "complete_batch"]

        def run(prefix: str, count: int) -> int:
            done = 0
            for b in range(count // BATCH):
                names = tenants(f"{prefix}.{b}", BATCH)
                rows = conn.execute(
                    insert,
                    {
                        "worker": RAW_WORKER,
                        "lease": LEASE,
                        "tick": TICK,
                        "jobs": [job] * BATCH,
                        "tenants": names,
                        "fors": [SCHEDULED_FOR] * BATCH,
                        "locals": [LOCAL_TEXT] * BATCH,
                        "zones": ["Europe/Madrid"] * BATCH,
                    },
                ).fetchall()
                check(len(rows) == BATCH, "raw batch insert lost")
                cur = conn.execute(
                    complete, {"ids": [r[0] for r in rows], "tokens": [r[1] for r in rows]}
                )
                finished = cur.fetchone()[0] if events else cur.rowcount  # type: ignore[index]
                check(finished == BATCH, "raw batch complete lost")
                done += BATCH
            return done

        return run

    return [
        Variant("raw-events", "single", single(False), "INSERT claim; UPDATE done"),
        Variant(
            "raw+events", "single", single(True), "each as one CTE that also inserts the event"
        ),
        Variant("raw-batch-events", "batch", batch(False), "INSERT ... unnest; UPDATE ... unnest"),
        Variant("raw-batch+events", "batch", batch(True), "the same as CTEs with event rows"),
    ]


@contextlib.contextmanager
def pg_backend() -> Iterator[Backend]:
    with throwaway_database(DB_PREFIX) as conninfo:
        url = "postgresql://" + conninfo_to_url(conninfo)
        app = App(url, lease=LEASE, migrate=True, pool_size=2)
        raw = psycopg.connect(conninfo, autocommit=True)
        try:
            raw.execute("SET TIME ZONE 'UTC'")
            check(app.store.schema_version() >= 1, "PostgreSQL schema missing")
            settings: dict[str, str] = dict(
                raw.execute(
                    "SELECT name, setting FROM pg_settings WHERE name IN ('server_version',"
                    " 'fsync', 'synchronous_commit', 'wal_sync_method', 'plan_cache_mode',"
                    " 'shared_buffers', 'full_page_writes')"
                ).fetchall()
            )
            facts = {
                "PostgreSQL": settings["server_version"],
                "durability": (
                    f"fsync={settings['fsync']}, synchronous_commit="
                    f"{settings['synchronous_commit']}, wal_sync_method="
                    f"{settings['wal_sync_method']}"
                ),
                "server plan_cache_mode": settings["plan_cache_mode"],
                "psycopg": f"{psycopg.__version__} (prepares a statement after "
                f"{raw.prepare_threshold} executions)",
                "connection": "127.0.0.1:5432 over TCP; library pool, raw one connection",
            }
            yield Backend(
                name="postgres",
                app=app,
                variants=pg_raw_variants(raw) + library_variants(app),
                facts=facts,
                plan_report=lambda: pg_plan_report(app, raw),
            )
        finally:
            raw.close()
            app.close()


def conninfo_to_url(conninfo: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    return "{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", "postgres"),
        host=info.get("host", "127.0.0.1"),
        port=info.get("port", "5432"),
        dbname=info["dbname"],
    )


# -- PostgreSQL plans ------------------------------------------------------------------


def _sample_values(worker: str) -> dict[str, Any]:
    """A value for each named parameter of the statements examined, for EXPLAIN EXECUTE."""
    return {
        "now": None,
        "job": "bench-store",
        "tenant": "plan-0",
        "scheduled_for": SCHEDULED_FOR,
        "local_time": LOCAL_TEXT,
        "time_zone": "Europe/Madrid",
        "tick": TICK,
        "worker": worker,
        "lease": LEASE,
        "id": 1,
        "token": 1,
        "attempt": 1,
        "jobs": ["bench-batch"] * BATCH,
        "tenants": tenants("plan.x", BATCH),
        "scheduled_fors": [SCHEDULED_FOR] * BATCH,
        "local_times": [LOCAL_TEXT] * BATCH,
        "time_zones": ["Europe/Madrid"] * BATCH,
        "ticks": [TICK] * BATCH,
        "ids": list(range(1, BATCH + 1)),
        "tokens": [1] * BATCH,
        "attempts": [1] * BATCH,
        "workers": [worker] * BATCH,
        "fors": [SCHEDULED_FOR] * BATCH,
        "locals": [LOCAL_TEXT] * BATCH,
        "zones": ["Europe/Madrid"] * BATCH,
        "error": None,
        "retry_after": LEASE,
    }


# The raw statements' positional parameters, by name, for EXPLAIN EXECUTE.
RAW_PARAMS = {
    "insert": (
        "job",
        "tenant",
        "scheduled_for",
        "local_time",
        "time_zone",
        "tick",
        "worker",
        "lease",
    ),
    "complete": ("id", "token"),
}
RAW_PARAMS["insert_ev"] = RAW_PARAMS["insert"]
RAW_PARAMS["complete_ev"] = RAW_PARAMS["complete"]

_NAMED = re.compile(r"%\((\w+)\)[sbt]")
_ANY_PLACEHOLDER = re.compile(r"%\(\w+\)[sbt]|%[sbt]|\$\d+")


def _normal(sql: str) -> str:
    without_comments = "\n".join(line.split("--")[0] for line in sql.splitlines())
    return " ".join(_ANY_PLACEHOLDER.sub("?", without_comments).split())


def _access_paths(plan: list[str]) -> str:
    """The table access paths and joins of a plan, in one line: what decides its cost."""
    found = []
    for line in plan:
        text = line.strip().removeprefix("->").strip()
        scan = re.match(
            r"(Seq Scan|Index Scan|Index Only Scan|Bitmap Heap Scan|"
            r"Bitmap Index Scan) (?:using (\w+) )?on (\w+)",
            text,
        )
        if scan and (scan[2] or scan[3]).startswith("cronclaim_"):
            found.append(f"{scan[1]} {scan[2] or scan[3]}")
        elif re.match(r"(Hash Join|Merge Join|Nested Loop|Hash Anti Join|Hash Semi Join)", text):
            found.append(text.split("  ")[0])
    return ", ".join(found) or "no table scan"


def _total_cost(plan: list[str]) -> float:
    m = re.search(r"cost=[\d.]+\.\.([\d.]+)", plan[0]) if plan else None
    return float(m[1]) if m else float("nan")


def pg_plans(
    conn: psycopg.Connection[Any], who: str, queries: dict[str, str], worker: str
) -> list[str]:
    """Generic against custom plan of each statement psycopg prepared on ``conn``.

    psycopg prepares a query on its 5th execution (``prepare_threshold``); the server
    then plans it for the values given 5 times and may switch to a cached generic plan,
    made with the statistics of that moment (an empty table, early on) and kept until
    the table's statistics change. EXPLAIN EXECUTE under ``plan_cache_mode`` shows each.
    """
    by_text = {_normal(sql): label for label, sql in queries.items()}
    values = _sample_values(worker)
    lines: list[str] = []
    # psycopg prepares a query once per set of parameter types (an id that outgrows
    # int2...): statements with the same plans are reported together.
    seen: dict[tuple[str, str], list[int]] = {}
    prepared = conn.execute(
        "SELECT name, statement, generic_plans, custom_plans FROM pg_prepared_statements"
        " ORDER BY name"
    ).fetchall()
    row = conn.execute("SHOW plan_cache_mode").fetchone()
    mode = row[0] if row else "auto"
    cursor = ClientCursor(conn)
    try:
        for name, statement, generic, custom in prepared:
            label = by_text.get(_normal(statement))
            if label is None:
                continue
            params = (
                list(RAW_PARAMS[label])
                if who == "raw" and label in RAW_PARAMS
                else list(dict.fromkeys(_NAMED.findall(queries[label])))
            )
            if any(p not in values for p in params):
                lines.append(f"{who} `{label}`: not examined (no sample for its parameters)")
                continue
            args = ", ".join(["%s"] * len(params))
            plans = {}
            for forced in ("force_generic_plan", "force_custom_plan"):
                cursor.execute(f"SET plan_cache_mode = {forced}")
                cursor.execute(f"EXPLAIN EXECUTE {name}({args})", [values[p] for p in params])
                plans[forced] = [r[0] for r in cursor.fetchall()]
            generic_plan, custom_plan = plans["force_generic_plan"], plans["force_custom_plan"]
            same = _access_paths(generic_plan) == _access_paths(custom_plan)
            text = (
                f"generic (cost {_total_cost(generic_plan):.1f}): {_access_paths(generic_plan)}"
                + (
                    "; custom: same access paths"
                    if same
                    else f"; custom (cost {_total_cost(custom_plan):.1f}): "
                    f"{_access_paths(custom_plan)}"
                )
            )
            counts = seen.setdefault((label, text), [0, 0])
            counts[0] += generic
            counts[1] += custom
    finally:
        cursor.execute(f"SET plan_cache_mode = {mode}")
        cursor.close()
    for (label, text), (generic, custom) in seen.items():
        lines.append(f"{who} `{label}`: ran {generic}x generic, {custom}x custom; {text}")
    return lines


def pg_plan_report(app: App, raw: psycopg.Connection[Any]) -> list[str]:
    lines: list[str] = []
    pool = app.store._pool  # type: ignore[attr-defined]
    library_queries = load_queries("postgres")
    # The pool may have opened more than one connection: look at each idle one.
    conns = []
    try:
        for _ in range(pool.get_stats().get("pool_size", 1)):
            conns.append(pool.getconn(timeout=1))
    except PoolTimeout:  # fewer idle connections than counted: examine those
        pass
    try:
        for i, conn in enumerate(conns):
            who = "library" if len(conns) == 1 else f"library#{i + 1}"
            lines += pg_plans(conn, who, library_queries, app.worker_id)
    finally:
        for conn in conns:
            pool.putconn(conn)
    lines += pg_plans(raw, "raw", PG_RAW, RAW_WORKER)
    stats = raw.execute(
        "SELECT relname, n_live_tup, last_autoanalyze IS NOT NULL, last_analyze IS NOT NULL"
        " FROM pg_stat_user_tables WHERE relname IN ('cronclaim_claims', 'cronclaim_events')"
        " ORDER BY relname"
    ).fetchall()
    for relname, live, autoanalyzed, analyzed in stats:
        lines.append(
            f"`{relname}`: {live:,} live rows, analyzed: "
            f"{'yes' if autoanalyzed or analyzed else 'not yet'}"
        )
    return lines


# -- the run ---------------------------------------------------------------------------


def hold_claims(app: App, count: int) -> None:
    """Claims held by other workers throughout, as during a fan-out in flight."""
    store = app.store
    for start in range(0, count, BATCH):
        occurrences = [
            Occurrence(job="bench-held", tenant=f"held-{i}", scheduled_for=SCHEDULED_FOR)
            for i in range(start, min(count, start + BATCH))
        ]
        store.acquire_batch(occurrences, worker="other-worker", lease=dt.timedelta(hours=1))


def warm_up(backend: Backend, warmup: int, held: int) -> None:
    """Library first, on the empty tables (where plans made now are at their worst), then
    the claims held elsewhere, then the raw baseline (its plans made on fuller tables)."""
    library = [v for v in backend.variants if not v.name.startswith("raw")]
    raw = [v for v in backend.variants if v.name.startswith("raw")]
    for v in library:
        v.run(f"warm.{v.name}", warmup if v.kind == "single" else BATCH)
    hold_claims(backend.app, held)
    for v in raw:
        v.run(f"warm.{v.name}", warmup if v.kind == "single" else BATCH)


def measure(backend: Backend, n: int, chunk: int, rounds: int) -> None:
    """Rounds of finely interleaved chunks: every variant runs ``chunk`` single-claim
    occurrences (or one batch of 1,000) in turn, in a rotating order, so a burst of load
    from elsewhere on the machine falls on all of them alike."""
    variants = backend.variants
    iterations = max(1, n // chunk)
    for r in range(rounds):
        spent = dict.fromkeys((v.name for v in variants), 0.0)
        done = dict.fromkeys((v.name for v in variants), 0)
        for it in range(iterations):
            k = (r * iterations + it) % len(variants)
            order = variants[k:] + variants[:k]
            if it % 2:
                order.reverse()
            for v in order:
                count = chunk if v.kind == "single" else BATCH
                start = time.perf_counter()
                finished = v.run(f"r{r}.{it}.{v.name}", count)
                elapsed = time.perf_counter() - start
                check(finished == count, f"{v.name}: {finished} of {count}")
                spent[v.name] += elapsed
                done[v.name] += finished
                backend.turns.setdefault(v.name, []).append(finished / elapsed)
        for v in variants:
            backend.results.setdefault(v.name, []).append(done[v.name] / spent[v.name])
        print(
            f"  {backend.name} round {r + 1}/{rounds}: "
            + ", ".join(f"{v.name} {backend.results[v.name][-1]:,.0f}/s" for v in variants),
            flush=True,
        )


def ratio(backend: Backend, name: str, base: str) -> float:
    """Median, over the turns, of ``name``'s rate over ``base``'s in the same turn: turns
    run seconds apart, so a burst of load elsewhere cancels out of each ratio."""
    pairs = zip(backend.turns[name], backend.turns[base], strict=True)
    return statistics.median(a / b for a, b in pairs)


def median(backend: Backend, name: str) -> float:
    return statistics.median(backend.results[name])


def spread(backend: Backend, name: str) -> str:
    values = backend.results[name]
    return f"{min(values):,.0f}-{max(values):,.0f}"


def report(backends: list[Backend], args: argparse.Namespace, plans: dict[str, list[str]]) -> str:
    iterations = max(1, args.n // args.chunk)
    out: list[str] = []
    out.append("## Claims\n")
    out.append(
        f"`bench/claims.py --n {args.n} --rounds {args.rounds}` "
        f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC). Occurrences per second; one "
        "occurrence = claim + complete, one at a time on one connection. Each figure is "
        f"the median of {args.rounds} rounds (min-max after it); in each round every "
        f"variant ran {iterations} times in turn, in a rotating order — {args.chunk} "
        f"single-claim occurrences, or one batch of {BATCH:,} — so load from elsewhere on "
        f"this shared machine falls on all alike; {args.n:,} single-claim and "
        f"{iterations * BATCH:,} batched occurrences per variant per round. Warm-up first. "
        f"Throughout, {args.held:,} claims of the same tables are held by another worker "
        "(a fan-out in flight), so a plan that scans every held claim shows. Each backend's "
        "variants share one database with the cronclaim schema.\n"
    )
    out.append("Machine:\n")
    out.append(
        f"- {os.cpu_count()} cores ({_cpu_model()}), shared: other test suites ran "
        f"meanwhile; load average at the end {os.getloadavg()[0]:.2f}"
    )
    out.append(f"- Python {platform.python_version()}, cronclaim {cronclaim.__version__}")
    for b in backends:
        for key, value in b.facts.items():
            out.append(f"- {key}: {value}")
    out.append("")
    out.append(
        "Raw baseline: hand-written SQL in `bench/claims.py`, not the library's "
        "`.sql` files; each transition its own autocommit transaction, like the "
        "library's. **`raw+events` writes an event row per transition in the same "
        "transaction, as the library must (acquired, completed); `raw-events` writes "
        "none.** The raw statements return only id and token; the library returns "
        "and builds the whole claim.\n"
    )
    out.append("| backend | variant | what | occurrences/s |")
    out.append("|---|---|---|---:|")
    for b in backends:
        for v in b.variants:
            out.append(
                f"| {b.name} | {v.name} | {v.describe} | "
                f"{median(b, v.name):,.0f} ({spread(b, v.name)}) |"
            )
    out.append("")
    out.append(
        "Ratios: the median, over every turn, of one variant's rate over the other's in "
        "the same turn (seconds apart, so load from elsewhere cancels out); in brackets, "
        "the ratio of the medians above. Single-claim rates are bound by the two commit "
        "flushes per occurrence, batch rates by CPU, and on this shared machine the flush "
        "time varies several-fold with other work: a batch/single ratio moves with the "
        "load (compare it with the raw baseline's own, in the last row of each backend), "
        "while library/raw ratios of the same kind hold steadier.\n"
    )
    out.append("| backend | ratio | paired (of medians) | target |")
    out.append("|---|---|---:|---|")

    def row(b: Backend, name: str, base: str, target: float | None = None) -> None:
        paired, of_medians = ratio(b, name, base), median(b, name) / median(b, base)
        verdict = ""
        shown = f"{paired:.2f}"
        if target is not None:
            verdict = f"≥ {target:g}x: " + ("met" if paired >= target else "**missed**")
            if paired < target and float(shown) >= target:  # 0.699 is not 0.70
                shown = f"{paired:.3f}"
        out.append(f"| {b.name} | {name} / {base} | {shown}x ({of_medians:.2f}x) | {verdict} |")

    for b in backends:
        for lib in ("store", "guard"):
            for raw_name in ("raw+events", "raw-events"):
                row(b, lib, raw_name, TARGET_SINGLE)
        for raw_name in ("raw-batch+events", "raw-batch-events"):
            row(b, "batch", raw_name)
        for single in ("store", "guard"):
            row(b, "batch", single, TARGET_BATCH if b.name == "postgres" else None)
        row(b, "raw-batch+events", "raw+events")
    out.append("")
    out.append(
        f"Targets (issue 2): the library's single-claim lifecycle ≥ {TARGET_SINGLE}x "
        "the raw SQL lifecycle on the same backend; batch claim+complete on "
        f"PostgreSQL ≥ {TARGET_BATCH:.0f}x the single-claim lifecycle.\n"
    )
    for when, lines in plans.items():
        out.append(
            f"PostgreSQL plans {when} (generic: the plan the server caches after "
            "5 runs of a prepared statement; custom: planned for the values):\n"
        )
        out.extend(f"- {line}" for line in lines)
        out.append("")
    return "\n".join(out).rstrip() + "\n"


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _filesystem(path: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["df", "--output=fstype,source", path], capture_output=True, text=True, check=True
        ).stdout.split()
        return f"{out[2]} on {out[3]} ({path})"
    return path


def safely(examine: Callable[[], list[str]]) -> list[str]:
    """The plan report, or why it could not be made: the figures matter more."""
    try:
        return examine()
    except (psycopg.Error, LookupError, ValueError) as exc:
        return [f"plans not examined: {type(exc).__name__}: {exc}"]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument(
        "--n",
        type=int,
        default=400,
        help="single-claim occurrences per variant per round (default 400); "
        "batch variants run one batch of 1,000 per --chunk of them",
    )
    parser.add_argument("--rounds", type=int, default=7, help="measured rounds (default 7)")
    parser.add_argument(
        "--chunk",
        type=int,
        default=50,
        help="single-claim occurrences per turn of a variant (default 50)",
    )
    parser.add_argument(
        "--warmup",
        type=int,
        default=300,
        help="single-claim occurrences per variant to warm up (default 300)",
    )
    parser.add_argument(
        "--held",
        type=int,
        default=2000,
        help="claims held by another worker throughout (default 2000)",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args(argv)
    if args.n < 1 or args.rounds < 1 or args.chunk < 1:
        parser.error("--n, --rounds and --chunk must be positive")

    # SIGTERM unwinds like Ctrl-C, so the throwaway database is dropped either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    names = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    backends: list[Backend] = []
    plans: dict[str, list[str]] = {}
    started = time.perf_counter()
    for name in names:
        print(f"{name}: warming up, then {args.rounds} rounds", flush=True)
        with sqlite_backend() if name == "sqlite" else pg_backend() as backend:
            warm_up(backend, args.warmup, args.held)
            if name == "postgres":
                plans["after the warm-up"] = safely(backend.plan_report)
            measure(backend, args.n, args.chunk, args.rounds)
            if name == "postgres":
                plans["after the measured rounds"] = safely(backend.plan_report)
            backends.append(backend)
    section = report(backends, args, plans)
    print()
    print(section)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.no_write:
        return 0
    if args.backend == "all":
        write_section("claims", section)
        print(f"written to {RESULTS}")
    else:
        print("(RESULTS.md is written only by a run over all backends)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
