"""Regenerate the dashboard screenshots of the README (``docs/img/dashboard-*.png``).

    .venv/bin/python scripts/screenshots.py [--out docs/img]

Two weeks of the demo's restaurants, made by the Worker in virtual time on a throwaway
SQLite file: the inference service times out for Aitor from 19 to 23 May (the story of
the seed), Mert's push gateway refuses first attempts now and then, and on the 21st no
worker is up until 20:00 UTC. The dashboard is served by uvicorn on 127.0.0.1 and
photographed with headless Chromium (Debian's ``/usr/bin/chromium``, driven by
Playwright; ``playwright install`` is never needed).
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import secrets
import sys
import tempfile
from datetime import UTC, date, datetime
from pathlib import Path

from cronclaim import App, VirtualClock
from cronclaim.demo.catalog import RESTAURANTS
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant
from cronclaim.web import create_app
from cronclaim.web.serve import serving
from cronclaim.worker import Worker

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
START = datetime(2026, 5, 12, tzinfo=UTC)
END = datetime(2026, 5, 25, 12, tzinfo=UTC)
OUTAGE = (date(2026, 5, 19), date(2026, 5, 23))
WORKER_DOWN = (datetime(2026, 5, 21, 3, tzinfo=UTC), datetime(2026, 5, 21, 20, tzinfo=UTC))


def tenants() -> list[Tenant]:
    return [Tenant(id=r.id, time_zone=r.time_zone) for r in RESTAURANTS]


def define(app: App) -> None:
    @app.job(
        "inventory-predict",
        cron="0 7 * * *",
        tenants=tenants,
        window="3h",
        retry=Backoff(first=30, factor=2, max_attempts=3),
    )
    def inventory_predict(tenant: Tenant, run: Run) -> None:
        local = run.occurrence.local_time
        if tenant.id == "aitor" and local and OUTAGE[0] <= local.date() <= OUTAGE[1]:
            raise TimeoutError("inference service did not answer within 5s")
        if tenant.id == "mert" and run.attempt == 1 and local and local.day % 3 == 0:
            raise ConnectionError("push gateway refused the connection")

    @app.job(
        "ingredient-reorder-alert",
        cron="30 9 * * *",
        tenants=tenants,
        window="3h",
        retry=Backoff(first=60, factor=2, max_attempts=4),
    )
    def reorder_alert(tenant: Tenant, run: Run) -> None:
        return None

    @app.job("cache-purge", cron="15 * * * *", time_zone="UTC", window="30m")
    def cache_purge(tenant: Tenant, run: Run) -> None:
        return None


def simulate(app: App, until: datetime, **kwargs: object) -> None:
    asyncio.run(Worker(app, concurrency=8, **kwargs).run_until(until))  # type: ignore[arg-type]


def build(database: Path) -> App:
    clock = VirtualClock(START)
    app = App(f"sqlite:///{database}", clock=clock, worker_id="worker-a1f3")
    define(app)
    simulate(app, WORKER_DOWN[0], catch_up="1m")
    clock.set(WORKER_DOWN[1])
    simulate(app, END, catch_up="24h")
    app.store.open_alert(
        key="failures:inventory-predict:inference",
        rule="failures",
        job="inventory-predict",
        severity="critical",
        summary="inventory-predict: aitor failed 5 days running (inference timeouts)",
        details="{}",
        deliveries=[],
    )
    return app


def shoot(app: App, out: Path) -> list[Path]:
    from playwright.sync_api import sync_playwright

    written = []
    shots = [
        ("dashboard-overview.png", "/", 1280),
        ("dashboard-job.png", "/jobs/inventory-predict", 1280),
        (
            "dashboard-occurrence.png",
            "/occurrence?job=inventory-predict&tenant=aitor&at=2026-05-20T05:00:00Z",
            1280,
        ),
    ]
    with (
        # A token, so the header offers "Sign in to repair" as on a writable dashboard.
        serving(create_app(app.store, jobs=app.jobs, token=secrets.token_hex(16))) as base,
        sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            for name, path, width in shots:
                page = browser.new_page(viewport={"width": width, "height": 800})
                page.goto(base + path)
                target = out / name
                page.screenshot(path=str(target), full_page=True)
                page.close()
                written.append(target)
        finally:
            browser.close()
    return written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    args = parser.parse_args(argv)
    if not Path(CHROMIUM).exists():
        print(f"screenshots: {CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 2
    args.out.mkdir(parents=True, exist_ok=True)
    logging.getLogger("cronclaim").setLevel(logging.ERROR)  # the failures are the point
    with tempfile.TemporaryDirectory(prefix="cronclaim-screenshots-") as tmp:
        app = build(Path(tmp) / "claims.db")
        try:
            for path in shoot(app, args.out):
                print(f"wrote {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
        finally:
            app.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
