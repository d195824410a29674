"""Small apps for testing ``cronclaim.testing.sweep``: one correct job, and two with the
bugs the sweep exists to find. Module-level factories, so the sweep's kill cases can
rebuild them in a child process.

Side effects go to an "outbox" file in the case directory, one line per effect as the
outside world recorded it: ``<idempotency key>\\t<effect>``. Like a partner API, the
receiver drops a line whose key it already has; the effect itself is what the sweep
counts.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import sqlite3
import uuid
from collections.abc import Iterator
from pathlib import Path

from cronclaim import App
from cronclaim.clock import VirtualClock
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant
from cronclaim.testing import Harness, SweepEnv

log = logging.getLogger("tests.sweep_apps")

TENANTS = (Tenant(id="aitor", time_zone="Europe/Madrid"),)


def deliver(outbox: Path, key: str, effect: str) -> None:
    """The remote side: record ``effect`` unless ``key`` was delivered before."""
    with outbox.open("a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        keys = {line.split("\t", 1)[0] for line in f.read().splitlines()}
        if key not in keys:
            f.write(f"{key}\t{effect}\n")


def effects(outbox: Path) -> list[str]:
    if not outbox.exists():
        return []
    return [line.split("\t", 1)[1] for line in outbox.read_text().splitlines()]


@contextlib.contextmanager
def outbox_fixture(directory: Path) -> Iterator[Harness]:
    outbox = directory / "outbox.txt"
    yield Harness(params={"outbox": str(outbox)}, effects=lambda: effects(outbox))


def _app(env: SweepEnv, clock: VirtualClock) -> tuple[App, Path]:
    app = App(env.database_url, clock=clock, worker_id="sweep-test")
    return app, Path(env.params["outbox"])


def good_app(env: SweepEnv, clock: VirtualClock) -> App:
    """Reads, then sends two notifications with keys derived from the idempotency key."""
    app, outbox = _app(env, clock)

    @app.job(
        "notify",
        cron="0 7 * * *",
        tenants=lambda: TENANTS,
        window="3h",
        retry=Backoff(first=60, max_attempts=4),
    )
    def notify(tenant: Tenant, run: Run) -> None:
        items = run.call("menu", lambda: ["cepes", "txakoli"])
        for item in items:
            key = f"{run.idempotency_key}:{item}"
            run.call("send", deliver, outbox, key, f"{tenant.id} {item}")

    return app


def leaky_app(env: SweepEnv, clock: VirtualClock) -> App:
    """The story's pattern inside a job: its own claim table, released only on a non-OK
    answer, and a catch-and-log around the side effect."""
    app, outbox = _app(env, clock)
    claims = Path(env.workdir) / "naive-claims.db"

    @app.job(
        "notify",
        cron="0 7 * * *",
        tenants=lambda: TENANTS,
        window="3h",
        retry=Backoff(first=60, max_attempts=4),
    )
    def notify(tenant: Tenant, run: Run) -> None:
        key = f"notify:{tenant.id}:{run.occurrence.scheduled_for.date()}"
        conn = sqlite3.connect(claims, isolation_level=None)
        try:
            conn.execute("CREATE TABLE IF NOT EXISTS claims (key TEXT PRIMARY KEY)")
            if conn.execute("INSERT OR IGNORE INTO claims VALUES (?)", (key,)).rowcount == 0:
                return  # already claimed
            try:
                run.call("send", deliver, outbox, key, f"{tenant.id} cepes")
            except Exception as err:  # the outer catch-and-log: the claim stays held
                log.error("notify failed: %s", err)
        finally:
            conn.close()

    return app


def doubling_app(env: SweepEnv, clock: VirtualClock) -> App:
    """Sends with a fresh random key per attempt: a retry after the send doubles it."""
    app, outbox = _app(env, clock)

    @app.job(
        "notify",
        cron="0 7 * * *",
        tenants=lambda: TENANTS,
        window="3h",
        retry=Backoff(first=60, max_attempts=4),
    )
    def notify(tenant: Tenant, run: Run) -> None:
        run.call("send", deliver, outbox, str(uuid.uuid4()), f"{tenant.id} cepes")

    return app
