"""``cronclaim example``: the seed incident in miniature, against a real SQLite file.

A side effect times out inside the guard. The claim is released (not leaked), a second
worker racing for the same occurrence is turned away, and the retry after the backoff
completes it. Runs on a virtual clock, so the 30-second backoff takes no time.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from typing import TextIO
from zoneinfo import ZoneInfo

from cronclaim.app import App
from cronclaim.clock import VirtualClock
from cronclaim.exceptions import NotAcquired
from cronclaim.guard import Run
from cronclaim.store import parse_database_url


def run_example(database_url: str, out: TextIO) -> int:
    parsed = parse_database_url(database_url)
    if parsed.backend == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(parsed.target + suffix).unlink(missing_ok=True)
    madrid = ZoneInfo("Europe/Madrid")
    seven = datetime(2026, 5, 19, 7, 0, tzinfo=madrid)
    clock = VirtualClock(seven)
    worker_a = App(database_url, clock=clock, worker_id="worker-a")
    worker_b = App(database_url, clock=clock, worker_id="worker-b")
    calls = {"n": 0}

    def inventory_predict(run: Run) -> str:
        calls["n"] += 1
        if calls["n"] == 1:
            raise TimeoutError("inference did not answer within 5 s")
        return f"pushed at-risk alert (idempotency key {run.idempotency_key})"

    def show(label: str, app: App) -> None:
        claim = app.store.get(app.occurrence("inventory-predict", "aitor", seven))
        assert claim is not None
        out.write(
            f"  {label:<28} state={claim.state.value:<9} attempt={claim.attempt} "
            f"token={claim.token} error={claim.last_error}\n"
        )

    with worker_a, worker_b:
        out.write(f"occurrence inventory-predict / aitor / {seven.isoformat()} ({database_url})\n")
        out.write("07:00:00  worker-a claims and calls inference, which times out:\n")
        result = worker_a.run_once(
            "inventory-predict",
            "aitor",
            seven,
            inventory_predict,
            retry_after=timedelta(seconds=30),
        )
        out.write(f"  outcome: {result.status} ({result.reason})\n")
        show("claim after the timeout:", worker_a)
        clock.advance(timedelta(seconds=10))
        out.write("07:00:10  worker-b tries the same occurrence before the backoff ends:\n")
        try:
            with worker_b.claim("inventory-predict", "aitor", seven):
                pass
        except NotAcquired as exc:
            out.write(f"  refused: {exc.reason}\n")
        clock.advance(timedelta(seconds=30))
        out.write("07:00:40  worker-b retries after the backoff:\n")
        result = worker_b.run_once("inventory-predict", "aitor", seven, inventory_predict)
        out.write(f"  outcome: {result.status}: {result.value}\n")
        show("claim after the retry:", worker_b)
        clock.advance(timedelta(seconds=1))
        out.write("07:00:41  worker-a fires the same tick again:\n")
        result = worker_a.run_once("inventory-predict", "aitor", seven, inventory_predict)
        out.write(f"  outcome: {result.status} ({result.reason})\n")
        out.write("history:\n")
        for event in worker_a.store.events(
            worker_a.occurrence("inventory-predict", "aitor", seven)
        ):
            error = f" error={event.error}" if event.error else ""
            out.write(
                f"  {event.at.astimezone(madrid):%H:%M:%S}  {event.kind.value:<10} "
                f"worker={event.worker} attempt={event.attempt} token={event.token}{error}\n"
            )
        out.write(
            f"the side effect ran {calls['n']} times: once failed, once delivered; "
            "no claim leaked\n"
        )
    return 0
