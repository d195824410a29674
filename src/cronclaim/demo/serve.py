"""``cronclaim demo --serve``: the platform live, on the real clock, until Ctrl-C.

The platform is generated with its history ending yesterday, so today has stock and
usage. The inference service, the push gateway, a partner endpoint (postbacks, CDN
purges) and an alert receiver listen on 127.0.0.1; a real :class:`~cronclaim.worker.
Worker` runs the reference app's four jobs against an embedded SQLite file. Faults can
be injected while it runs (``POST /v1/faults`` on any of the services).
"""

from __future__ import annotations

import contextlib
import logging
import signal
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TextIO

from cronclaim.alerts import AlertConfig, PagerDutySink, RuleSettings, WebhookSink
from cronclaim.demo.inference import InferenceService
from cronclaim.demo.jobs import FAST_SCHEDULES, Schedules, build_app
from cronclaim.demo.platform import DEFAULT_SEED, generate_platform
from cronclaim.demo.platform_db import NotFound, PlatformDB
from cronclaim.demo.push import PushGateway
from cronclaim.demo.receivers import AlertReceiver, PartnerReceiver
from cronclaim.worker import Worker

ROUTING_KEY = "live0routing0key0for0cronclaim00"
WEBHOOK_SECRET = "cronclaim-demo-webhook-secret"  # noqa: S105 - a local demo receiver


def live_platform(directory: Path, seed: int, today: date) -> PlatformDB:
    """The platform with history up to yesterday, reused if ``directory`` has it."""
    path = directory / f"live-platform-{seed}.db"
    if path.exists():
        db = PlatformDB(path)
        with contextlib.suppress(NotFound):
            if db.seed == seed and db.history_end == today - timedelta(days=1):
                return db
    db = PlatformDB(path)
    db.load(generate_platform(seed, history_end=today - timedelta(days=1)))
    return db


@contextlib.contextmanager
def _directory(directory: Path | None) -> Iterator[Path]:
    if directory is not None:
        directory.mkdir(parents=True, exist_ok=True)
        yield directory
        return
    with tempfile.TemporaryDirectory(prefix="cronclaim-demo-serve-") as scratch:
        yield Path(scratch)


def serve(
    out: TextIO,
    *,
    directory: Path | None = None,
    seed: int = DEFAULT_SEED,
    fast: bool = False,
    today: date | None = None,
) -> int:
    """Run until SIGINT/SIGTERM; returns the exit status."""
    day = today or datetime.now(UTC).date()
    schedules = FAST_SCHEDULES if fast else Schedules()
    with _directory(directory) as where, contextlib.ExitStack() as stack:
        out.write(
            f"generating the platform (history to {day - timedelta(days=1)}) in {where} ...\n"
        )
        out.flush()
        platform = live_platform(where, seed, day)
        devices = [d for r in platform.restaurants() for d in r.devices]
        inference = stack.enter_context(InferenceService())
        gateway = stack.enter_context(
            PushGateway(
                [d.token for d in devices if d.registered],
                unregistered=[d.token for d in devices if not d.registered],
            )
        )
        partner = stack.enter_context(PartnerReceiver())
        alerts = stack.enter_context(AlertReceiver())
        database = f"sqlite:///{where / 'live-claims.db'}"
        app = build_app(
            database,
            platform_db=platform,
            inference_url=inference.url,
            push_url=gateway.url,
            partner_url=partner.url,
            postbacks=where / "live-postbacks.db",
            worker_id="cronclaim-demo-live",
            schedules=schedules,
        )
        stack.callback(app.close)
        paging = _alerting(alerts)
        stack.callback(paging.close)
        # catch_up 1m: a fresh platform's earlier ticks were never due to anyone; they
        # would all be recorded (and paged) as missed.
        worker = Worker(app, concurrency=8, poll="5s", catch_up="1m", alerts=paging)
        lines = [
            f"cronclaim demo --serve: {len(list(platform.restaurants()))} restaurants, jobs "
            + ", ".join(f"{job.name} ({job.schedule.expression})" for job in app.jobs.values()),
            f"  inference service  {inference.url}   (POST /v1/faults to make it fail, "
            "GET /v1/requests)",
            f"  push gateway       {gateway.url}   (GET /v1/deliveries)",
            f"  partner endpoint   {partner.url}   (postbacks and CDN purges)",
            f"  alert receiver     {alerts.url}   (pages: {alerts.PAGERDUTY_PATH})",
            f"  claims database    {database}   (cronclaim status --database {database})",
            f"  e.g. curl -X POST {inference.url}/v1/faults "
            '-d \'{"kind": "hang", "restaurant_id": "aitor", "times": 2}\'',
            "Ctrl-C to stop.",
        ]
        # Ctrl-C from now on stops the worker (before it starts, it does not start).
        for sig in (signal.SIGINT, signal.SIGTERM):
            stack.callback(signal.signal, sig, signal.signal(sig, lambda *_: worker.stop()))
        out.write("\n".join(lines) + "\n")
        out.flush()
        logging.basicConfig(
            level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
        )
        worker.run()
        out.write(
            f"stopped: {len(gateway.deliveries())} push(es) delivered, "
            f"{len(partner.postbacks())} postback(s), {len(alerts.pages())} page(s)\n"
        )
    return 0


def _alerting(receiver: AlertReceiver) -> AlertConfig:
    return AlertConfig(
        sinks=(
            PagerDutySink(ROUTING_KEY, receiver.pagerduty_url, timeout=5.0),
            WebhookSink(receiver.webhook_url, WEBHOOK_SECRET, timeout=5.0),
        ),
        rules=RuleSettings(failures_per_hour=5),
        source="cronclaim demo --serve",
    )
