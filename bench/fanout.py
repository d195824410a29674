"""Fan-out: one tick of N tenants, end to end, against Procrastinate.

    .venv/bin/python bench/fanout.py [--n 10000,100000] [--backend sqlite|postgres|all]
                                     [--peer/--no-peer] [--flavours async,sync]

Measures in one run, side by side on this machine:

* ``cronclaim``: one tick of N tenants (in four time zones, one of them half an hour
  off UTC) of a job whose side effect does nothing, end to end with the real
  :class:`cronclaim.worker.Worker` in ``burst`` mode: the fan-out, the claims (direct
  for the free capacity, pending rows for the rest), the runs, the batched completions,
  each with its event. On PostgreSQL (a throwaway database ``cronclaim_bench_fanout_
  <pid>_<hex>``, truncated before each measurement) and on SQLite (a fresh temporary
  file per measurement, WAL, ``synchronous=FULL``: the library's defaults). Async and
  sync job functions. Every measurement runs in a fresh subprocess, so its peak RSS
  (``ru_maxrss``) is its own; the CPU seconds it used are given too. Afterwards the
  subprocess checks that every occurrence is ``done`` with exactly an ``acquired`` and
  a ``completed`` event.
* ``store alone``: ``store.acquire_batch`` + ``store.complete_batch`` of 500, one
  thread, no worker: the database's share of the work, so a ceiling for the above.
* ``idle``: a worker (not burst) with the largest N of tenants and nothing due, left
  alone for ``--idle`` seconds after it settled: the CPU time it used, as a share of one
  core (both backends at once: they are idle).
* Procrastinate (the peer, ``--peer``), at N = 10,000 on its own throwaway database: the
  tick as its periodic feature defers it (one periodic task per tenant, each with its
  tenant as argument, all deferred by its ``PeriodicDeferrer``: one
  ``procrastinate_defer_periodic_job`` round trip each, deduplicated by the database),
  then one procrastinate worker running a no-op async task until the queue is empty.
  Its two phases are timed apart too.

Logging is at WARNING (beacons off, as with ``cronclaim worker --log-level WARNING``);
``--beacons`` adds one N = 10,000 async measurement per backend with beacons on (INFO,
rendered as JSON lines to /dev/null). Measurements are interleaved (repeat by repeat,
backend by backend) so load from the other processes on this shared machine falls on
all alike; each figure is the median of ``--repeat`` runs. The table, the ratios and the
targets go to stdout and, between the ``fanout`` markers, to ``bench/RESULTS.md`` (only
for a run over both backends with the peer). Set ``CRONCLAIM_BENCH_PG_ADMIN_URL`` to
use another server.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import importlib.util
import json
import logging
import os
import platform
import resource
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from _shared import RESULTS, throwaway_database, write_section

DB_PREFIX = "cronclaim_bench_fanout_"  # other bench scripts use cronclaim_bench_*

JOB = "noop"
ZONES = ("UTC", "Europe/Madrid", "America/New_York", "Asia/Kolkata")
CRON = "0 * * * *"  # the peer's: hourly, one tick per tenant due within its max_delay
PEER_N = 10_000
STORE_BATCH = 500
STORE_N = 20_000
CHILD_TIMEOUT = 600.0

TARGET_PG_S = 10.0  # 100,000 occurrences end to end
TARGET_SQLITE_S = 5.0
TARGET_PEER_RATIO = 20.0
TARGET_RSS_MB = 200.0
TARGET_IDLE_PCT = 1.0
TARGET_N = 100_000


class BenchError(RuntimeError):
    pass


# -- the measured processes ----------------------------------------------------------------


def _tenants(n: int) -> Any:
    def tenants() -> Iterator[tuple[str, str]]:
        for i in range(n):
            yield f"tenant-{i:06d}", ZONES[i % len(ZONES)]

    return tenants


def _configure_logging(beacons: bool) -> None:
    root = logging.getLogger()
    root.handlers[:] = []
    if beacons:
        from cronclaim.metrics import JsonLinesFormatter

        handler: logging.Handler = logging.StreamHandler(open(os.devnull, "w"))  # noqa: SIM115
        handler.setFormatter(JsonLinesFormatter())
        root.addHandler(handler)
        root.setLevel(logging.INFO)
    else:
        handler = logging.StreamHandler(sys.stderr)
        root.addHandler(handler)
        root.setLevel(logging.WARNING)


def _tick_cron() -> str:
    """Hourly at ten minutes ago: with the one-hour catch-up exactly one tick per tenant
    is due, the last 10 minutes ago in the whole-hour zones and 40 in Asia/Kolkata
    (+05:30), and the next at least 20 minutes away. (At minute 0, a run that crossed the
    hour fanned out the next tick of three zones too, and burst ran it.)"""
    return f"{(dt.datetime.now(dt.UTC).minute - 10) % 60} * * * *"


def _make_app(spec: dict[str, Any], *, cron: str) -> Any:
    from cronclaim import App

    app = App(spec["url"], migrate=spec["backend"] == "sqlite")
    tenants = _tenants(spec["n"])
    if spec["flavour"] == "async":

        async def noop_async(tenant: Any, run: Any) -> None:
            return None

        app.job(JOB, cron=cron, tenants=tenants, window="2h")(noop_async)
    else:

        def noop_sync(tenant: Any, run: Any) -> None:
            return None

        app.job(JOB, cron=cron, tenants=tenants, window="2h")(noop_sync)
    return app


def _rusage() -> tuple[float, float]:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime, usage.ru_maxrss / 1024.0


def _verify(spec: dict[str, Any]) -> dict[str, int]:
    """Every occurrence done, with exactly an acquired and a completed event."""
    states_sql = "SELECT state, COUNT(*) FROM cronclaim_claims WHERE job = 'noop' GROUP BY state"
    events_sql = (
        "SELECT e.kind, COUNT(*) FROM cronclaim_events AS e"
        " JOIN cronclaim_claims AS c ON c.id = e.claim_id WHERE c.job = 'noop' GROUP BY e.kind"
    )
    if spec["backend"] == "sqlite":
        conn = sqlite3.connect(spec["path"])
        try:
            states = dict(conn.execute(states_sql).fetchall())
            events = dict(conn.execute(events_sql).fetchall())
        finally:
            conn.close()
    else:
        with psycopg.connect(spec["url"]) as pg:
            states = dict(pg.execute(states_sql).fetchall())
            events = dict(pg.execute(events_sql).fetchall())
    n = spec["n"]
    if states != {"done": n} or events != {"acquired": n, "completed": n}:
        raise BenchError(f"not every occurrence ran once: states {states}, events {events}")
    return {"done": n, "events": 2 * n}


def child_tick(spec: dict[str, Any]) -> dict[str, Any]:
    """One tick of N tenants, end to end with the worker in burst mode."""
    from cronclaim.worker import Worker

    _configure_logging(spec["beacons"])
    app = _make_app(spec, cron=_tick_cron())
    app.store  # noqa: B018 - opened (and the SQLite schema made) before the clock starts
    cpu0, rss0 = _rusage()
    began = time.perf_counter()
    worker = Worker(
        app,
        concurrency=spec["concurrency"],
        burst=True,
        catch_up="1h",
        batch_size=spec["batch_size"],
    )
    worker.run()
    wall = time.perf_counter() - began
    cpu1, rss1 = _rusage()
    stats = worker.stats
    app.close()
    checked = _verify(spec)
    return {
        "wall": wall,
        "cpu": cpu1 - cpu0,
        "rss_mb": rss1,
        "rss_before_mb": rss0,
        "done": stats.done,
        **checked,
    }


def child_store(spec: dict[str, Any]) -> dict[str, Any]:
    """acquire_batch + complete_batch through the store alone, one thread."""
    from cronclaim import App, Occurrence
    from cronclaim.models import time_zone

    _configure_logging(False)
    app = App(spec["url"], migrate=spec["backend"] == "sqlite")
    store = app.store
    now = dt.datetime.now(dt.UTC).replace(minute=0, second=0, microsecond=0)
    occurrences = [
        Occurrence(
            job="store-alone",
            tenant=f"tenant-{i:06d}",
            scheduled_for=now,
            local_time=now.astimezone(time_zone(ZONES[i % len(ZONES)])),
        )
        for i in range(spec["n"])
    ]
    lease = dt.timedelta(minutes=2)
    cpu0, _ = _rusage()
    began = time.perf_counter()
    for start in range(0, len(occurrences), STORE_BATCH):
        claims = store.acquire_batch(
            occurrences[start : start + STORE_BATCH], worker="bench-store", lease=lease
        )
        done, stale = store.complete_batch(claims)
        if len(done) != len(claims) or stale:
            raise BenchError("the store alone lost a completion")
    wall = time.perf_counter() - began
    cpu1, rss = _rusage()
    app.close()
    return {"wall": wall, "cpu": cpu1 - cpu0, "rss_mb": rss}


def child_idle(spec: dict[str, Any]) -> dict[str, Any]:
    """A worker with nothing due, until SIGTERM."""
    from cronclaim.worker import Worker

    _configure_logging(False)
    # Hourly at a minute a quarter of an hour from now: in the whole-hour zones the next
    # tick is 15 minutes away, in Asia/Kolkata (+05:30) the last was 15 minutes ago,
    # beyond the one-minute catch-up. Nothing comes due while measured.
    minute = (dt.datetime.now(dt.UTC).minute + 15) % 60
    app = _make_app(spec, cron=f"{minute} * * * *")
    Worker(app, concurrency=spec["concurrency"], catch_up="1m").run()
    app.close()
    return {}


def child_peer(spec: dict[str, Any]) -> dict[str, Any]:
    """Procrastinate: the tick as periodic defers, then one worker."""
    import asyncio

    import procrastinate
    from procrastinate.periodic import PeriodicDeferrer

    _configure_logging(False)
    # Its warning that the app is defined in __main__ is about imports, not this.
    logging.getLogger("procrastinate").setLevel(logging.ERROR)
    n = spec["n"]

    def make_app(periodic: bool) -> Any:
        app = procrastinate.App(connector=procrastinate.PsycopgConnector(conninfo=spec["conninfo"]))

        @app.task(name="noop")
        async def noop(timestamp: int, tenant: str) -> None:
            return None

        if periodic:
            for i in range(n):
                tenant = f"tenant-{i:06d}"
                app.periodic(cron=CRON, periodic_id=tenant, task_kwargs={"tenant": tenant})(noop)
        return app

    async def run() -> dict[str, Any]:
        deferring = make_app(periodic=True)
        working = make_app(periodic=False)  # its worker must not defer again
        async with deferring.open_async():
            await deferring.schema_manager.apply_schema_async()
            cpu0, _ = _rusage()
            began = time.perf_counter()
            # What its worker's periodic deferrer does at a tick, for every periodic task
            # (max_delay: the tick may be up to an hour old, as cronclaim's catch-up).
            deferrer = PeriodicDeferrer(registry=deferring.periodic_registry, max_delay=7200)
            await deferrer.defer_jobs(deferrer.get_previous_tasks(at=time.time()))
            deferred = time.perf_counter()
        async with working.open_async():
            await working.run_worker_async(
                wait=False,
                concurrency=spec["concurrency"],
                install_signal_handlers=False,
                delete_jobs="never",
            )
        ended = time.perf_counter()
        cpu1, rss = _rusage()
        with psycopg.connect(spec["conninfo"]) as pg:
            counts = dict(
                pg.execute(
                    "SELECT status::text, COUNT(*) FROM procrastinate_jobs GROUP BY status"
                ).fetchall()
            )
        if counts != {"succeeded": n}:
            raise BenchError(f"procrastinate did not run every job once: {counts}")
        return {
            "defer": deferred - began,
            "work": ended - deferred,
            "wall": ended - began,
            "cpu": cpu1 - cpu0,
            "rss_mb": rss,
        }

    return asyncio.run(run())


CHILDREN = {"tick": child_tick, "store": child_store, "idle": child_idle, "peer": child_peer}


def child_main(raw: str) -> int:
    spec = json.loads(raw)
    result = CHILDREN[spec["kind"]](spec)
    print(json.dumps(result), flush=True)
    return 0


# -- the conducting process ----------------------------------------------------------------


@dataclass
class Series:
    """Repeated measurements of one configuration."""

    label: str
    backend: str
    flavour: str
    n: int
    runs: list[dict[str, Any]] = field(default_factory=list)

    def median(self, key: str) -> float:
        return statistics.median(r[key] for r in self.runs)

    @property
    def rate(self) -> float:
        return self.n / self.median("wall")

    def spread(self) -> str:
        walls = sorted(r["wall"] for r in self.runs)
        return f"{walls[0]:.2f}-{walls[-1]:.2f}" if len(walls) > 1 else ""


def run_child(spec: dict[str, Any]) -> dict[str, Any]:
    out = subprocess.run(
        [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
        capture_output=True,
        text=True,
        timeout=CHILD_TIMEOUT,
        check=False,
    )
    if out.returncode != 0:
        raise BenchError(
            f"measurement {spec['kind']} {spec.get('backend', '')} failed "
            f"(exit {out.returncode}):\n{out.stderr[-3000:]}"
        )
    if out.stderr.strip():
        print(out.stderr.rstrip(), file=sys.stderr)
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def pg_url(conninfo: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(conninfo)
    return "postgresql://{user}@{host}:{port}/{dbname}".format(
        user=info.get("user", "postgres"),
        host=info.get("host", "127.0.0.1"),
        port=info.get("port", "5432"),
        dbname=info["dbname"],
    )


def truncate(conninfo: str) -> None:
    """Empty the cronclaim tables (the schema stays), so each measurement starts alike."""
    with psycopg.connect(conninfo, autocommit=True) as conn:
        tables = [
            r[0]
            for r in conn.execute(
                "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()"
                " AND tablename LIKE 'cronclaim\\_%' AND tablename <> 'cronclaim_migrations'"
            ).fetchall()
        ]
        conn.execute("TRUNCATE " + ", ".join(f'"{t}"' for t in tables) + " RESTART IDENTITY")


@dataclass
class Places:
    """Where each backend's measurements run."""

    tmp: str
    pg_conninfo: str | None = None
    sqlite_count: int = 0

    def spec(self, backend: str) -> dict[str, Any]:
        if backend == "sqlite":
            self.sqlite_count += 1
            path = os.path.join(self.tmp, f"claims-{self.sqlite_count}.db")
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path + suffix)
            return {"backend": "sqlite", "url": f"sqlite:///{path}", "path": path}
        assert self.pg_conninfo is not None
        truncate(self.pg_conninfo)
        return {"backend": "postgres", "url": pg_url(self.pg_conninfo)}

    def done_with(self, spec: dict[str, Any]) -> None:
        if spec["backend"] == "sqlite":
            for suffix in ("", "-wal", "-shm"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(spec["path"] + suffix)


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def peak_rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024.0
    return float("nan")


def measure_idle(specs: list[dict[str, Any]], seconds: float) -> list[dict[str, Any]]:
    """Start an idle worker per spec, wait until each settled, then measure all at once."""
    procs: list[subprocess.Popen[str]] = []
    try:
        for spec in specs:
            procs.append(
                subprocess.Popen(
                    [sys.executable, str(Path(__file__).resolve()), "--child", json.dumps(spec)],
                    stdout=subprocess.DEVNULL,
                    stderr=subprocess.PIPE,
                    text=True,
                )
            )
        settled_after: list[float] = []
        began = time.monotonic()
        for proc in procs:
            # Settled: the first fan-out (it walks every tenant to learn their time
            # zones) is over when a whole second passes with almost no CPU used.
            last = cpu_seconds(proc.pid)
            while True:
                time.sleep(1.0)
                if proc.poll() is not None:
                    why = proc.stderr.read() if proc.stderr else ""
                    raise BenchError(f"idle worker exited: {why}")
                now = cpu_seconds(proc.pid)
                if now - last < 0.02:
                    break
                last = now
                if time.monotonic() - began > 180:
                    raise BenchError("idle worker did not settle within 180 s")
            settled_after.append(time.monotonic() - began)
        start = [cpu_seconds(p.pid) for p in procs]  # the start-up's CPU, too
        time.sleep(seconds)
        end = [cpu_seconds(p.pid) for p in procs]
        rss = [peak_rss_mb(p.pid) for p in procs]
        return [
            {
                "cpu": e - s,
                "pct": 100.0 * (e - s) / seconds,
                "startup_cpu": su,
                "settled_after": sa,
                "rss_mb": r,
            }
            for s, e, su, sa, r in zip(start, end, start, settled_after, rss, strict=True)
        ]
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
            if proc.stderr is not None:
                proc.stderr.close()


# -- facts and the report -------------------------------------------------------------------


def _cpu_model() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown CPU"


def _busy_jiffies() -> tuple[int, int, int]:
    """(busy, steal, total) jiffies of the whole machine, every process included; steal
    is time the hypervisor gave this virtual machine's cores to others."""
    parts = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:9]]
    idle = parts[3] + parts[4]
    return sum(parts) - idle, parts[7], sum(parts)


def pg_facts(conninfo: str) -> dict[str, str]:
    with psycopg.connect(conninfo) as conn:
        settings = dict(
            conn.execute(
                "SELECT name, setting FROM pg_settings WHERE name IN ('server_version',"
                " 'fsync', 'synchronous_commit', 'shared_buffers')"
            ).fetchall()
        )
    return {
        "PostgreSQL": (
            f"{settings['server_version']} at 127.0.0.1:5432 (TCP), fsync={settings['fsync']},"
            f" synchronous_commit={settings['synchronous_commit']}"
        )
    }


def _filesystem(path: str) -> str:
    with contextlib.suppress(OSError, subprocess.SubprocessError):
        out = subprocess.run(
            ["df", "--output=fstype,source", path], capture_output=True, text=True, check=True
        ).stdout.split()
        return f"{out[2]} on {out[3]}"
    return "unknown file system"


def verdict(ok: bool) -> str:
    return "met" if ok else "**missed**"


@dataclass
class Report:
    args: argparse.Namespace
    series: list[Series]
    store: dict[str, dict[str, Any]]
    idle: dict[str, dict[str, Any]]
    peer: dict[str, dict[str, Any]]
    facts: list[str]
    seconds: float

    def find(self, backend: str, flavour: str, n: int, label: str = "") -> Series | None:
        for s in self.series:
            if (s.backend, s.flavour, s.n, s.label) == (backend, flavour, n, label):
                return s
        return None

    def render(self) -> str:
        a = self.args
        out: list[str] = ["## Fan-out\n"]
        out.append(
            f"`bench/fanout.py --n {','.join(map(str, a.n))} --flavours "
            f"{','.join(a.flavours)} --repeat {a.repeat} --concurrency {a.concurrency}` "
            f"({dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC, {self.seconds:.0f} s). One tick of "
            f"N tenants (4 time zones) of a no-op job, end to end with `cronclaim.worker.Worker"
            f"(app, concurrency={a.concurrency}, burst=True)` (batch size {a.batch_size}, the "
            "default): fan-out, claims, runs, completions, every transition with its event, "
            "checked afterwards (each occurrence `done`, one `acquired` and one `completed` "
            "event). Each measurement in a fresh process; wall time and CPU are the "
            "worker's `run()` alone (the database opened and the schema made before). "
            f"Median of {a.repeat} interleaved runs (min-max). Logging at WARNING: beacons "
            "off.\n"
        )
        out.append("Machine:\n")
        out.extend(f"- {f}" for f in self.facts)
        out.append("")
        out.append(
            "| what | backend | job | N | wall s | occurrences/s | CPU s (worker process) "
            "| peak RSS MB |"
        )
        out.append("|---|---|---|---:|---:|---:|---:|---:|")
        for s in self.series:
            what = "cronclaim worker" + (f", {s.label}" if s.label else "")
            spread = f" ({s.spread()})" if s.spread() else ""
            out.append(
                f"| {what} | {s.backend} | {s.flavour} | {s.n:,} | "
                f"{s.median('wall'):.2f}{spread} | {s.rate:,.0f} | {s.median('cpu'):.2f} | "
                f"{max(r['rss_mb'] for r in s.runs):.0f} |"
            )
        for backend, r in self.store.items():
            out.append(
                f"| store alone: acquire_batch + complete_batch of {STORE_BATCH} | {backend} "
                f"| - | {r['n']:,} | {r['wall']:.2f} | {r['n'] / r['wall']:,.0f} | "
                f"{r['cpu']:.2f} | {r['rss_mb']:.0f} |"
            )
        for r in self.peer.values():
            what = (
                f"Procrastinate: periodic defers + 1 worker (concurrency "
                f"{self.args.peer_concurrency})"
            )
            out.append(
                f"| {what} | postgres | async | {r['n']:,} | {r['wall']:.2f} (defer "
                f"{r['defer']:.2f}, work {r['work']:.2f}) | {r['n'] / r['wall']:,.0f} (defer "
                f"{r['n'] / r['defer']:,.0f}/s, work {r['n'] / r['work']:,.0f}/s) | "
                f"{r['cpu']:.2f} | {r['rss_mb']:.0f} |"
            )
        out.append("")
        if self.idle:
            out.append(
                f"Idle: a worker (not burst, default poll 30 s) with {max(a.n):,} tenants and "
                f"nothing due, measured for {a.idle:.0f} s after its first fan-out settled:\n"
            )
            out.append(
                "| backend | CPU s over the window | share of one core | start-up CPU s "
                "(first fan-out) | peak RSS MB |"
            )
            out.append("|---|---:|---:|---:|---:|")
            for backend, r in self.idle.items():
                out.append(
                    f"| {backend} | {r['cpu']:.2f} | {r['pct']:.2f}% | {r['startup_cpu']:.1f} | "
                    f"{r['rss_mb']:.0f} |"
                )
            out.append("")
        out.extend(self.ratios())
        out.extend(self.targets())
        out.extend(self.notes())
        return "\n".join(out).rstrip() + "\n"

    def notes(self) -> list[str]:
        """What the figures say, computed from them."""
        out = ["Reading the figures:\n"]
        top = max(self.args.n)
        for backend, r in self.store.items():
            s = self.find(backend, "async", top)
            if s is None:
                continue
            alone = r["n"] / r["wall"]
            what = (
                f"the store alone ({alone:,.0f}/s: claims then completions with their "
                f"events, batches of {STORE_BATCH}, one thread, no worker)"
            )
            if backend == "sqlite":
                out.append(
                    f"- sqlite: end to end (async, N={top:,}) runs at {s.rate / alone:.0%} of "
                    f"{what}. That is its ceiling: SQLite has one writer at a time, so the "
                    "fan-out's claims and the completions take turns on its write lock "
                    f"whatever the worker does: {top / alone:.1f} s for {top:,} on this "
                    "machine in this run."
                )
            else:
                out.append(
                    f"- postgres: end to end (async, N={top:,}) runs at {s.rate / alone:.0%} "
                    f"of {what}: the worker claims and completes at once on two "
                    "connections, and the server works on both."
                )
        for backend in self.store:
            on = self.find(backend, "async", self.args.peer_n, "beacons on")
            off = self.find(backend, "async", self.args.peer_n)
            if on is not None and off is not None:
                out.append(
                    f"- {backend}: beacons on (INFO, two JSON lines per occurrence, to "
                    f"/dev/null) cost {off.rate / on.rate:.1f}x the time at "
                    f"N={self.args.peer_n:,}."
                )
        for backend in self.store:
            sync, asyn = self.find(backend, "sync", top), self.find(backend, "async", top)
            if sync is not None and asyn is not None:
                out.append(
                    f"- {backend}: a sync job runs at {sync.rate / asyn.rate:.0%} of an async "
                    "one (each run is handed to a thread and back)."
                )
        if self.idle:
            worst = max(r["startup_cpu"] for r in self.idle.values())
            out.append(
                "- Idle: between ticks a worker wakes once per poll (30 s) for one small "
                "query per job; every 10 minutes it walks its tenants again to learn their "
                f"time zones, about as much as its start-up (≤ {worst:.1f} s of CPU for "
                f"{top:,} tenants, interpreter start included): ≤ {worst / 6:.2f}% of a core "
                "averaged, outside the window measured. CPU is read from /proc (10 ms "
                "resolution)."
            )
        peer = self.peer.get("periodic")
        if peer is not None:
            out.append(
                f"- Procrastinate: its periodic deferrer defers one job per periodic task, a "
                f"round trip each ({peer['n'] / peer['defer']:,.0f}/s); its worker fetches "
                f"and finishes one job per round trip ({peer['n'] / peer['work']:,.0f}/s)."
            )
        out.append("")
        return out

    def ratios(self) -> list[str]:
        out = ["| ratio | value |", "|---|---:|"]
        peer = self.peer.get("periodic")
        for flavour in self.args.flavours:
            pg = self.find("postgres", flavour, self.args.peer_n)
            lite = self.find("sqlite", flavour, self.args.peer_n)
            if peer is not None:
                peer_rate = peer["n"] / peer["wall"]
                for s in (pg, lite):
                    if s is not None:
                        out.append(
                            f"| cronclaim {s.backend} {flavour} ÷ Procrastinate periodic, "
                            f"N={self.args.peer_n:,} | {s.rate / peer_rate:.1f}x |"
                        )
            for n in self.args.n:
                pg_s, lite_s = self.find("postgres", flavour, n), self.find("sqlite", flavour, n)
                if pg_s is not None and lite_s is not None:
                    ratio = pg_s.rate / lite_s.rate
                    out.append(f"| PostgreSQL ÷ SQLite, {flavour}, N={n:,} | {ratio:.2f}x |")
        out.append("")
        return out

    def targets(self) -> list[str]:
        out = ["| target | measured | verdict |", "|---|---|---|"]
        for flavour in self.args.flavours:
            for backend, limit in (("postgres", TARGET_PG_S), ("sqlite", TARGET_SQLITE_S)):
                s = self.find(backend, flavour, TARGET_N)
                if s is not None:
                    wall = s.median("wall")
                    out.append(
                        f"| {TARGET_N:,} occurrences end to end ≤ {limit:.0f} s ({backend}, "
                        f"{flavour}) | {wall:.1f} s | {verdict(wall <= limit)} |"
                    )
        peer = self.peer.get("periodic")
        if peer is not None:
            peer_rate = peer["n"] / peer["wall"]
            for flavour in self.args.flavours:
                s = self.find("postgres", flavour, self.args.peer_n)
                if s is not None:
                    ratio = s.rate / peer_rate
                    out.append(
                        f"| ≥ {TARGET_PEER_RATIO:.0f}x Procrastinate's occurrences/s (postgres, "
                        f"{flavour}, N={self.args.peer_n:,}) | {ratio:.1f}x | "
                        f"{verdict(ratio >= TARGET_PEER_RATIO)} |"
                    )
        for s in self.series:
            if s.n == TARGET_N and not s.label:
                rss = max(r["rss_mb"] for r in s.runs)
                out.append(
                    f"| peak RSS < {TARGET_RSS_MB:.0f} MB at {TARGET_N:,} tenants ({s.backend}, "
                    f"{s.flavour}) | {rss:.0f} MB | {verdict(rss < TARGET_RSS_MB)} |"
                )
        for backend, r in self.idle.items():
            out.append(
                f"| idle CPU < {TARGET_IDLE_PCT:.0f}% ({backend}) | {r['pct']:.2f}% | "
                f"{verdict(r['pct'] < TARGET_IDLE_PCT)} |"
            )
        out.append("")
        return out


# -- main -------------------------------------------------------------------------------------


def _list(kind: type, text: str) -> list[Any]:
    return [kind(x.replace("_", "")) for x in text.split(",") if x.strip()]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--child", help=argparse.SUPPRESS)
    parser.add_argument(
        "--n",
        type=lambda t: _list(int, t),
        default=[10_000, 100_000],
        help="tenants per tick, comma-separated (default 10000,100000)",
    )
    parser.add_argument("--backend", choices=("sqlite", "postgres", "all"), default="all")
    parser.add_argument(
        "--peer",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="measure Procrastinate too (default on; needs PostgreSQL)",
    )
    parser.add_argument(
        "--flavours",
        type=lambda t: _list(str, t),
        default=["async", "sync"],
        help="job functions to measure: async, sync or both (default async,sync)",
    )
    parser.add_argument("--repeat", type=int, default=3, help="runs per figure (default 3)")
    parser.add_argument(
        "--concurrency", type=int, default=1000, help="the worker's --concurrency (default 1000)"
    )
    parser.add_argument(
        "--batch-size", type=int, default=500, help="the worker's batch size (default 500)"
    )
    parser.add_argument(
        "--peer-n",
        type=int,
        default=PEER_N,
        help=f"tenants of the peer's tick, and of the ratios (default {PEER_N:,})",
    )
    parser.add_argument(
        "--peer-concurrency",
        type=int,
        default=10,
        help="the procrastinate worker's concurrency (default 10)",
    )
    parser.add_argument(
        "--idle", type=float, default=30.0, help="seconds of idle measured (0: skip; default 30)"
    )
    parser.add_argument(
        "--beacons",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="also measure N=10,000 async with beacons on (default on)",
    )
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args(argv)
    if args.child:
        return child_main(args.child)
    if not set(args.flavours) <= {"async", "sync"} or not args.flavours:
        parser.error("--flavours takes async, sync or both")
    if args.repeat < 1 or any(n < 1 for n in args.n):
        parser.error("--repeat and --n must be positive")
    if args.peer and importlib.util.find_spec("procrastinate") is None:
        parser.error(
            "the peer needs procrastinate: .venv/bin/pip install -e '.[bench]' (or --no-peer)"
        )

    # SIGTERM unwinds like Ctrl-C: the throwaway databases and files go either way.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    backends = ("sqlite", "postgres") if args.backend == "all" else (args.backend,)
    started = time.perf_counter()
    busy0 = _busy_jiffies()
    load0 = os.getloadavg()
    speed0 = calibrate()
    tmp = tempfile.mkdtemp(prefix="cronclaim-bench-fanout-")
    facts: list[str] = []
    try:
        with contextlib.ExitStack() as stack:
            places = Places(tmp)
            if "postgres" in backends:
                places.pg_conninfo = stack.enter_context(throwaway_database(DB_PREFIX))
                from cronclaim import App

                schema = App(pg_url(places.pg_conninfo), migrate=True)
                schema.store.upgrade()
                schema.close()
                facts.extend(f"{k}: {v}" for k, v in pg_facts(places.pg_conninfo).items())
            if "sqlite" in backends:
                facts.append(
                    f"SQLite {sqlite3.sqlite_version}, WAL, synchronous=FULL, a temporary file "
                    f"({_filesystem(tmp)})"
                )
            report = conduct(args, backends, places)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    busy1 = _busy_jiffies()
    speed1 = calibrate()
    seconds = time.perf_counter() - started
    total = max(1, busy1[2] - busy0[2])
    machine_busy = (busy1[0] - busy0[0]) / total * 100
    steal = (busy1[1] - busy0[1]) / total * 100
    import cronclaim

    facts[:0] = [
        f"{os.cpu_count()} cores ({_cpu_model()}), {_memory()}, shared: other processes "
        f"(other sessions' test suites, benchmarks, servers) ran meanwhile. Load average "
        f"{load0[0]:.1f} at the start, {os.getloadavg()[0]:.1f} at the end; all processes "
        f"together kept the cores {machine_busy:.0f}% busy over the run (this script's "
        f"own processes included; {steal:.0f}% stolen by the hypervisor). A fixed "
        f"pure-Python loop (a million additions) took {speed0:.0f} ms at the start and "
        f"{speed1:.0f} ms at the end (to compare runs: the speed of this machine's cores "
        "drifts over the day, with the load average low or not)",
        f"Python {platform.python_version()}, cronclaim {cronclaim.__version__}, procrastinate "
        f"{_version('procrastinate')}, psycopg {psycopg.__version__}",
    ]
    report.facts = facts
    report.seconds = seconds
    section = report.render()
    print()
    print(section)
    if args.no_write:
        return 0
    if args.backend == "all" and args.peer:
        write_section("fanout", section)
        print(f"written to {RESULTS}")
    else:
        print("(RESULTS.md is written only by a run over both backends with the peer)")
    return 0


def calibrate() -> float:
    """Milliseconds a fixed pure-Python loop takes (best of 3): how fast this shared
    machine runs Python right now, to compare runs taken at different times."""
    best = float("inf")
    for _ in range(3):
        began = time.perf_counter()
        total = 0
        for i in range(1_000_000):
            total += i & 7
        best = min(best, time.perf_counter() - began)
    return best * 1000


def _memory() -> str:
    with contextlib.suppress(OSError):
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return f"{int(line.split()[1]) / 1024 / 1024:.0f} GiB RAM"
    return "unknown RAM"


def _version(name: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def conduct(args: argparse.Namespace, backends: tuple[str, ...], places: Places) -> Report:
    series: dict[tuple[str, str, int, str], Series] = {}
    plan: list[tuple[str, str, int, str]] = [
        (backend, flavour, n, "")
        for n in args.n
        for flavour in args.flavours
        for backend in backends
    ]
    if args.beacons:
        plan += [(backend, "async", args.peer_n, "beacons on") for backend in backends]
    for key in plan:
        series[key] = Series(label=key[3], backend=key[0], flavour=key[1], n=key[2])
    for repeat in range(args.repeat):
        for backend, flavour, n, label in plan:
            if label and repeat > 0:
                continue  # the beacon cost is measured once
            spec = places.spec(backend)
            spec.update(
                kind="tick",
                n=n,
                flavour=flavour,
                concurrency=args.concurrency,
                batch_size=args.batch_size,
                beacons=bool(label),
            )
            try:
                result = run_child(spec)
            finally:
                places.done_with(spec)
            series[backend, flavour, n, label].runs.append(result)
            print(
                f"[{repeat + 1}/{args.repeat}] {backend:8s} {flavour:5s} N={n:>7,} "
                f"{label:10s} {result['wall']:6.2f} s  {n / result['wall']:8,.0f}/s  "
                f"cpu {result['cpu']:5.2f} s  rss {result['rss_mb']:4.0f} MB",
                flush=True,
            )
    store: dict[str, dict[str, Any]] = {}
    for backend in backends:
        spec = places.spec(backend)
        spec.update(kind="store", n=STORE_N)
        try:
            result = run_child(spec)
        finally:
            places.done_with(spec)
        store[backend] = {**result, "n": STORE_N}
        print(f"store alone {backend:8s} {STORE_N / result['wall']:8,.0f}/s", flush=True)
    peer: dict[str, dict[str, Any]] = {}
    if args.peer:
        with throwaway_database(DB_PREFIX) as conninfo:
            result = run_child(
                {
                    "kind": "peer",
                    "conninfo": conninfo,
                    "n": args.peer_n,
                    "concurrency": args.peer_concurrency,
                }
            )
        peer["periodic"] = {**result, "n": args.peer_n}
        n = args.peer_n
        print(
            f"procrastinate defer {n / result['defer']:7,.0f}/s  work "
            f"{n / result['work']:7,.0f}/s  end to end {n / result['wall']:7,.0f}/s",
            flush=True,
        )
    idle: dict[str, dict[str, Any]] = {}
    if args.idle > 0:
        specs = []
        for backend in backends:
            spec = places.spec(backend)
            spec.update(
                kind="idle",
                n=max(args.n),
                flavour="async",
                concurrency=args.concurrency,
                beacons=False,
            )
            specs.append(spec)
        try:
            for backend, result in zip(backends, measure_idle(specs, args.idle), strict=True):
                idle[backend] = result
                print(f"idle {backend:8s} {result['pct']:.2f}% of a core", flush=True)
        finally:
            for spec in specs:
                places.done_with(spec)
    return Report(
        args=args,
        series=list(series.values()),
        store=store,
        idle=idle,
        peer=peer,
        facts=[],
        seconds=0.0,
    )


if __name__ == "__main__":
    sys.exit(main())
