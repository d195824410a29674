"""``cronclaim demo``: the incident week replayed twice, in virtual time.

Monday 2026-05-18 to Sunday 05-24, twelve restaurants. On 23 restaurant-days (seven
restaurants; Aitor's bar in Bilbao Monday to Friday) the inference service hangs on the
first two requests of the morning, so the client times out; it answers normally after
that. On one more restaurant-day it answers 503 once, the failure the old code did
handle. The same week runs twice, each time on a fresh copy of the platform with its own
services:

* **naive**: the story's code (:mod:`cronclaim.demo.naive`): a hand-rolled claim table,
  release only on a non-OK answer, an outer catch-and-log that swallows the timeout.
* **cronclaim**: the reference app (:mod:`cronclaim.demo.jobs`) under the
  :class:`~cronclaim.worker.Worker`, on a :class:`~cronclaim.clock.VirtualClock`.

In both, the owner orders what a delivered reorder list says, the day it arrives, so an
alert that arrives in time prevents the stock-out and one that does not, does not.
Every figure of the comparison is read back after the run: from the claim tables, the
platform database, the push gateway's and the inference service's records, and the
requests the alert receiver got. The story's 5 s inference timeout is scaled down to
``inference_timeout`` seconds of real time (the hung service holds the connection
longer), so a timeout costs a fraction of a second.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sqlite3
import time
from collections import Counter, defaultdict
from collections.abc import Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from datetime import time as wall_time
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from cronclaim.alerts import AlertConfig, PagerDutySink, RuleSettings, WebhookSink
from cronclaim.audit import run_audit
from cronclaim.clock import VirtualClock
from cronclaim.demo.catalog import RESTAURANTS
from cronclaim.demo.inference import ForecastRequest, IncomingDelivery, LoggedRequest
from cronclaim.demo.jobs import AT_RISK, INVENTORY_JOBS, PREDICT, REORDER, REORDER_LIST, build_app
from cronclaim.demo.naive import REFIRES, Fire, NaiveCron
from cronclaim.demo.platform import (
    DEFAULT_SEED,
    HISTORY_END,
    INCIDENT_WEEK,
    STORY_INGREDIENT,
    STORY_RESTAURANT,
    Delivery,
    Restaurant,
    generate_platform,
)
from cronclaim.demo.platform_db import PlatformDB
from cronclaim.demo.push import PushGateway, ReceivedPush
from cronclaim.demo.receivers import AlertReceiver
from cronclaim.demo.warm import (
    ForecastKey,
    WarmInferenceService,
    fit_week,
    fitted_from_json,
    fitted_to_json,
    warm_answer,
)
from cronclaim.models import ClaimState, Event, EventKind, Occurrence
from cronclaim.worker import Worker

WEEK: tuple[date, ...] = INCIDENT_WEEK
#: Before Monday 07:00 anywhere (Sydney's is Sunday 21:00 UTC) ...
START = datetime(2026, 5, 17, 20, 0, tzinfo=UTC)
#: ... and after Sunday 09:30 everywhere (Lima's is 14:30 UTC), before any Monday 05-25.
END = datetime(2026, 5, 24, 20, 0, tzinfo=UTC)
MON, TUE, WED, THU, FRI, SAT, SUN = WEEK
#: The restaurant-days on which inference hangs on the morning's first requests.
OUTAGE: Mapping[str, tuple[date, ...]] = {
    "aitor": (MON, TUE, WED, THU, FRI),  # the story: five days from Monday
    "mert": (WED, THU, FRI, SAT),  # "same flow, mushroom": oysters at risk from Wednesday
    "lucia": (MON, TUE, WED),
    "sophie": (TUE, WED, THU),
    "joao": (WED, THU, FRI),
    "niamh": (MON, TUE, THU),
    "lars": (THU, FRI),
}
#: How many requests of each outage restaurant-day hang before the service recovers.
HANGS_PER_DAY = 2
#: How long a hung request holds the connection (the client gives up long before).
HANG_SECONDS = 10.0
#: One restaurant-day on which inference answers 503 once: the path the old code handled.
NON_OK: tuple[str, date, int] = ("daniel", TUE, 503)
#: The story's 5 s inference timeout, and what stands in for it by default.
STORY_TIMEOUT = 5.0
DEFAULT_INFERENCE_TIMEOUT = 0.25
#: The note on orders the simulated owners place from a delivered reorder list.
OWNER_NOTE = "ordered by the owner from the platform's reorder alert"
WORKER_CONCURRENCY = 4
#: How often the simulated owners look at their phones in the cronclaim run (the naive
#: run's owners look after every reorder fire). Any order placed from a 09:30 list is in
#: before the next morning's 07:00 forecast.
OWNER_READS_EVERY = timedelta(hours=6)
#: Stands in for PagerDuty and a signed webhook in the cronclaim run.
ROUTING_KEY = "demo0routing0key0for0cronclaim00"
WEBHOOK_SECRET = "cronclaim-demo-webhook-secret"  # noqa: S105 - a local demo receiver


# -- preparing the platform -----------------------------------------------------------------


@dataclass(frozen=True)
class Prepared:
    seed: int
    template: Path
    fitted: Mapping[ForecastKey, tuple[float, ...]]
    restaurants: tuple[Restaurant, ...]
    seconds: float


def prepare(directory: Path, seed: int = DEFAULT_SEED) -> Prepared:
    """The generated platform and the week's fitted models, reused from ``directory`` if
    an earlier run left them there."""
    began = time.monotonic()
    template = directory / f"platform-{seed}.db"
    fits_path = directory / f"fits-{seed}.json"
    ids = [spec.id for spec in RESTAURANTS]
    fitted: dict[ForecastKey, tuple[float, ...]] | None = None
    if fits_path.exists():
        with contextlib.suppress(ValueError, KeyError, TypeError, OSError):
            fitted = fitted_from_json(json.loads(fits_path.read_text()))
    if not _template_ok(template, seed):
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="cronclaim-demo-fit") as pool:
            # Fit in other processes while this one writes the database.
            fitting = pool.submit(fit_week, seed, WEEK, ids) if fitted is None else None
            partial = template.with_suffix(".partial")
            _remove_db(partial)
            PlatformDB(partial).load(generate_platform(seed))
            _remove_db(template)
            partial.rename(template)
            if fitting is not None:
                fitted = fitting.result()
    if fitted is None:
        fitted = fit_week(seed, WEEK, ids)
    if not fits_path.exists():
        fits_path.write_text(json.dumps(fitted_to_json(fitted)))
    restaurants = tuple(PlatformDB(template).restaurants())
    return Prepared(
        seed=seed,
        template=template,
        fitted=fitted,
        restaurants=restaurants,
        seconds=time.monotonic() - began,
    )


def _template_ok(path: Path, seed: int) -> bool:
    if not path.exists():
        return False
    try:
        db = PlatformDB(path)
        return db.seed == seed and db.history_end == HISTORY_END
    except (sqlite3.Error, LookupError, ValueError):
        return False


def _remove_db(path: Path) -> None:
    for suffix in ("", "-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)


@contextlib.contextmanager
def kept_open(path: Path) -> Iterator[None]:
    """Hold a connection to a WAL database while a run uses it: ``PlatformDB`` opens one
    per call, and the last connection to close checkpoints the log (an fsync) each time."""
    conn = sqlite3.connect(path)
    try:
        yield
    finally:
        conn.close()


def copy_platform(template: Path, target: Path) -> PlatformDB:
    """A fresh copy of the generated platform (SQLite's backup API: consistent)."""
    _remove_db(target)
    source = sqlite3.connect(template)
    try:
        dest = sqlite3.connect(target)
        try:
            source.backup(dest)
        finally:
            dest.close()
    finally:
        source.close()
    return PlatformDB(target)


# -- the services of one run ----------------------------------------------------------------


@dataclass
class Services:
    inference: WarmInferenceService
    gateway: PushGateway
    alerts: AlertReceiver

    def stop(self) -> None:
        self.inference.stop()
        self.gateway.stop()
        self.alerts.stop()


@contextlib.contextmanager
def services(prepared: Prepared, platform: PlatformDB, clock: VirtualClock) -> Iterator[Services]:
    """Inference (with the week's faults), the push gateway and the alert receiver."""
    devices = [d for r in platform.restaurants() for d in r.devices]
    inference = WarmInferenceService(prepared.fitted, clock=clock.now)
    gateway = PushGateway(
        [d.token for d in devices if d.registered],
        unregistered=[d.token for d in devices if not d.registered],
        clock=clock.now,
    )
    alerts = AlertReceiver(clock=clock.now)
    running = Services(inference=inference, gateway=gateway, alerts=alerts)
    try:
        for server in (inference, gateway, alerts):
            server.start()
        for restaurant_id, days in OUTAGE.items():
            for day in days:
                inference.inject(
                    "hang",
                    restaurant_id=restaurant_id,
                    day=day,
                    seconds=HANG_SECONDS,
                    times=HANGS_PER_DAY,
                )
        restaurant_id, day, status = NON_OK
        inference.inject("error", restaurant_id=restaurant_id, day=day, status=status, times=1)
        yield running
    finally:
        running.stop()


class Owner:
    """The restaurant owners: each orders what a reorder list delivered to their devices
    says, the day it arrives (once per list)."""

    def __init__(self, platform: PlatformDB, zones: Mapping[str, ZoneInfo]) -> None:
        self.platform = platform
        self.zones = zones
        self._seen: set[str] = set()
        self._ordered: set[tuple[str, str]] = set()
        self.orders: list[Delivery] = []

    def react(self, gateway: PushGateway) -> None:
        for push in gateway.deliveries():
            if push.apns_id in self._seen:
                continue
            self._seen.add(push.apns_id)
            payload = push.payload
            if payload.get("kind") != REORDER_LIST:
                continue
            restaurant_id = str(payload["restaurant_id"])
            key = (restaurant_id, str(payload["day"]))
            if key in self._ordered:
                continue
            self._ordered.add(key)
            ordered_on = push.received_at.astimezone(self.zones[restaurant_id]).date()
            for line in payload.get("lines", []):
                delivery = Delivery(
                    restaurant_id=restaurant_id,
                    ingredient_id=str(line["ingredient"]),
                    day=date.fromisoformat(str(line["arrives"])),
                    quantity=float(line["quantity"]),
                    ordered_on=ordered_on,
                    note=OWNER_NOTE,
                )
                self.platform.schedule_delivery(delivery)
                self.orders.append(delivery)


# -- the runs --------------------------------------------------------------------------------


@dataclass
class RunRecord:
    """What one run left behind, for the figures and the timeline."""

    name: str
    platform: PlatformDB
    restaurants: tuple[Restaurant, ...]
    pushes: list[ReceivedPush]
    duplicates_dropped: int
    inference_log: list[LoggedRequest]
    pages: list[dict[str, Any]]
    webhooks: int
    orders: list[Delivery]
    seconds: float
    fires: list[Fire] = field(default_factory=list)
    #: Naive run: the claim table's rows never released, and the audit query's answer.
    unreleased: list[tuple[str, str]] | None = None
    orphans: list[tuple[str, str]] = field(default_factory=list)
    events: dict[tuple[str, str, date], list[Event]] = field(default_factory=dict)
    final_states: dict[tuple[str, str, date], ClaimState | None] = field(default_factory=dict)
    held_claims: int = 0
    #: cronclaim run: ``cronclaim.audit.run_audit`` at the end, as JSON.
    audit: dict[str, Any] | None = None


#: Loggers whose records the replay keeps off the terminal (the timeline tells the story).
QUIET = ("cronclaim", "thmenu")


@contextlib.contextmanager
def quiet_logs() -> Iterator[None]:
    """Without handlers of their own, warnings would reach stderr through logging's
    last resort and interleave with the timeline."""
    handlers = [(logging.getLogger(name), logging.NullHandler()) for name in QUIET]
    for logger, handler in handlers:
        logger.addHandler(handler)
    try:
        yield
    finally:
        for logger, handler in handlers:
            logger.removeHandler(handler)


def run_naive_quietly(prepared: Prepared, directory: Path, inference_timeout: float) -> RunRecord:
    """:func:`run_naive` for another process (whose logging nobody configured)."""
    with quiet_logs():
        return run_naive(prepared, directory, inference_timeout)


def run_naive(prepared: Prepared, directory: Path, inference_timeout: float) -> RunRecord:
    began = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    platform = copy_platform(prepared.template, directory / "platform.db")
    restaurants = prepared.restaurants
    zones = {r.id: ZoneInfo(r.time_zone) for r in restaurants}
    clock = VirtualClock(START)
    with kept_open(platform.path), services(prepared, platform, clock) as running:
        _remove_db(directory / "claims.db")
        cron = NaiveCron(
            claims_path=directory / "claims.db",
            platform=platform,
            inference_url=running.inference.url,
            push_url=running.gateway.url,
            clock=clock,
            inference_timeout=inference_timeout,
        )
        owner = Owner(platform, zones)
        try:
            for at, job, restaurant, day in naive_fires(restaurants):
                clock.set(at)
                cron.run_cron_safe(job, restaurant, day)
                if job == REORDER:
                    owner.react(running.gateway)
            clock.set(END)
            unreleased = cron.unreleased_claims()
            orphans = cron.orphaned_claims(END)
        finally:
            cron.close()
        return RunRecord(
            name="naive",
            platform=platform,
            restaurants=restaurants,
            pushes=running.gateway.deliveries(),
            duplicates_dropped=running.gateway.duplicates_dropped,
            inference_log=running.inference.requests(),
            pages=[_json_body(r.body) for r in running.alerts.pages()],
            webhooks=len(running.alerts.webhooks()),
            orders=owner.orders,
            seconds=time.monotonic() - began,
            fires=cron.fires,
            unreleased=unreleased,
            orphans=orphans,
        )


def naive_fires(
    restaurants: Sequence[Restaurant],
) -> list[tuple[datetime, str, Restaurant, date]]:
    """Every fire of the old scheduler in the week, in time order."""
    fires: list[tuple[datetime, str, Restaurant, date]] = []
    for restaurant in restaurants:
        zone = ZoneInfo(restaurant.time_zone)
        for day in WEEK:
            for job, hour, minute in ((PREDICT, 7, 0), (REORDER, 9, 30)):
                first = datetime.combine(day, wall_time(hour, minute), tzinfo=zone)
                for offset in (timedelta(0), *REFIRES):
                    fires.append((first + offset, job, restaurant, day))
    fires.sort(key=lambda f: (f[0].astimezone(UTC), f[1], f[2].id))
    return fires


def run_cronclaim(prepared: Prepared, directory: Path, inference_timeout: float) -> RunRecord:
    began = time.monotonic()
    directory.mkdir(parents=True, exist_ok=True)
    platform = copy_platform(prepared.template, directory / "platform.db")
    restaurants = prepared.restaurants
    zones = {r.id: ZoneInfo(r.time_zone) for r in restaurants}
    clock = VirtualClock(START)
    _remove_db(directory / "claims.db")
    with kept_open(platform.path), services(prepared, platform, clock) as running:
        app = build_app(
            # A replay into a scratch file: no fsync per commit (not for production).
            f"sqlite:///{directory / 'claims.db'}?synchronous=normal",
            platform_db=platform,
            inference_url=running.inference.url,
            push_url=running.gateway.url,
            clock=clock,
            inference_timeout=inference_timeout,
            worker_id="cronclaim-demo",
        )
        owner = Owner(platform, zones)
        alerting = _alerting(running.alerts, clock)
        try:
            worker = Worker(
                app,
                jobs=list(INVENTORY_JOBS),
                concurrency=WORKER_CONCURRENCY,
                catch_up="1m",
                alerts=alerting,
                alert_interval="1m",
            )

            async def week() -> None:
                # Owners read their reorder lists every few hours: an order placed from a
                # 09:30 list must be in before the next 07:00 forecast, 21 h later.
                step = START
                while step < END:
                    step = min(step + OWNER_READS_EVERY, END)
                    await worker.run_until(step)
                    owner.react(running.gateway)

            asyncio.run(week())
            record = RunRecord(
                name="cronclaim",
                platform=platform,
                restaurants=restaurants,
                pushes=running.gateway.deliveries(),
                duplicates_dropped=running.gateway.duplicates_dropped,
                inference_log=running.inference.requests(),
                pages=[_json_body(r.body) for r in running.alerts.pages()],
                webhooks=len(running.alerts.webhooks()),
                orders=owner.orders,
                seconds=0.0,
            )
            store = app.store
            for restaurant in restaurants:
                zone = zones[restaurant.id]
                for day in WEEK:
                    for job, at in ((PREDICT, wall_time(7, 0)), (REORDER, wall_time(9, 30))):
                        occurrence = Occurrence(
                            job=job,
                            tenant=restaurant.id,
                            scheduled_for=datetime.combine(day, at, tzinfo=zone),
                        )
                        claim = store.get(occurrence)
                        key = (job, restaurant.id, day)
                        record.events[key] = store.events(occurrence)
                        record.final_states[key] = claim.state if claim else None
                        if claim is not None and claim.state is ClaimState.CLAIMED:
                            record.held_claims += 1
            record.audit = run_audit(store, now=END).as_json()
        finally:
            alerting.close()
            app.close()
        record.seconds = time.monotonic() - began
        return record


def _alerting(receiver: AlertReceiver, clock: VirtualClock) -> AlertConfig:
    """Page through cronclaim's alert layer to ``receiver``: PagerDuty-shaped events and
    a signed webhook, at 5+ failures an hour (the post-mortem's threshold)."""

    def wall() -> float:
        return clock.now().timestamp()

    def no_wait(seconds: float) -> None:
        """The replay does not wait out a sink's retry backoff (the receiver is local)."""

    return AlertConfig(
        sinks=(
            PagerDutySink(
                ROUTING_KEY, receiver.pagerduty_url, timeout=5.0, sleep=no_wait, wall_clock=wall
            ),
            WebhookSink(
                receiver.webhook_url,
                WEBHOOK_SECRET,
                timeout=5.0,
                sleep=no_wait,
                wall_clock=wall,
            ),
        ),
        rules=RuleSettings(failures_per_hour=5),
        source="cronclaim demo",
    )


def _json_body(body: bytes) -> dict[str, Any]:
    try:
        value = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


# -- the figures ------------------------------------------------------------------------------

AlertKey = tuple[str, date, str]  # restaurant, day, ingredient


def alerts_due(record: RunRecord, fitted: Mapping[ForecastKey, tuple[float, ...]]) -> set[AlertKey]:
    """The at-risk alerts the week called for in this run: what the morning's first
    successful forecast flagged, and, for restaurant-days that never got one, what the
    service would have flagged that morning (asked afterwards, with the stock and the
    deliveries known then)."""
    answered: dict[tuple[str, date], tuple[str, ...]] = {}
    for entry in record.inference_log:
        if entry.answer is not None and entry.restaurant_id is not None and entry.day is not None:
            answered.setdefault((entry.restaurant_id, entry.day), entry.at_risk)
    due: set[AlertKey] = set()
    for restaurant in record.restaurants:
        for day in WEEK:
            flagged = answered.get((restaurant.id, day))
            if flagged is None:
                flagged = warm_answer(
                    morning_request(record.platform, restaurant.id, day), fitted
                ).at_risk
            due.update((restaurant.id, day, ingredient) for ingredient in flagged)
    return due


def morning_request(platform: PlatformDB, restaurant_id: str, day: date) -> ForecastRequest:
    """The request ``inventory-predict`` would have sent on ``day``'s morning: without the
    orders owners placed that day or later."""
    request = ForecastRequest.from_platform(platform, restaurant_id, day)
    known = tuple(
        IncomingDelivery(ingredient=d.ingredient_id, day=d.day, quantity=d.quantity)
        for d in platform.deliveries(restaurant_id, day, day + timedelta(days=56))
        if not (d.note == OWNER_NOTE and d.ordered_on is not None and d.ordered_on >= day)
    )
    return replace(request, deliveries=known)


def alerts_delivered(record: RunRecord) -> dict[AlertKey, datetime]:
    """Each at-risk alert the gateway delivered to at least one device, with the time of
    its first delivery."""
    first: dict[AlertKey, datetime] = {}
    for push in record.pushes:
        payload = push.payload
        if payload.get("kind") != AT_RISK:
            continue
        key = (
            str(payload["restaurant_id"]),
            date.fromisoformat(str(payload["day"])),
            str(payload["ingredient"]),
        )
        if key not in first or push.received_at < first[key]:
            first[key] = push.received_at
    return first


def device_deliveries(record: RunRecord) -> Counter[tuple[str, str, str, str]]:
    """At-risk deliveries per (device, restaurant, day, ingredient): more than one is a
    doubled alert."""
    counts: Counter[tuple[str, str, str, str]] = Counter()
    for push in record.pushes:
        payload = push.payload
        if payload.get("kind") == AT_RISK:
            counts[
                push.device,
                str(payload["restaurant_id"]),
                str(payload["day"]),
                str(payload["ingredient"]),
            ] += 1
    return counts


def shortfalls(record: RunRecord) -> dict[tuple[str, str], list[tuple[date, float]]]:
    """Ingredients that ran out during the week: (restaurant, ingredient) → (day, unmet)."""
    out: dict[tuple[str, str], list[tuple[date, float]]] = defaultdict(list)
    for restaurant in record.restaurants:
        for level in record.platform.stockouts(
            restaurant.id, WEEK[0], WEEK[-1] + timedelta(days=1)
        ):
            out[restaurant.id, level.ingredient_id].append((level.day, level.shortfall))
    return dict(out)


def figures(record: RunRecord, fitted: Mapping[ForecastKey, tuple[float, ...]]) -> dict[str, Any]:
    """The run's comparison figures, all read back from what the run left behind."""
    due = alerts_due(record, fitted)
    delivered = alerts_delivered(record)
    per_device = device_deliveries(record)
    missing = sorted(due - set(delivered))
    predicted_days = sum(
        1 for r in record.restaurants for day in WEEK if record.platform.predictions(r.id, day)
    )
    hangs = sum(1 for e in record.inference_log if e.fault is not None and e.fault.value == "hang")
    claims = _naive_claims(record) if record.unreleased is not None else _cronclaim_claims(record)
    ran_out = shortfalls(record)
    cepe_key = (STORY_RESTAURANT, STORY_INGREDIENT)
    cepe_alerts = sorted(t for (r, _, i), t in delivered.items() if (r, i) == cepe_key)
    cepe_out = ran_out.get(cepe_key, [])
    zone = next(ZoneInfo(r.time_zone) for r in record.restaurants if r.id == STORY_RESTAURANT)
    return {
        "inference_calls": len(record.inference_log),
        "inference_calls_timed_out": hangs,
        **claims,
        "restaurant_days_with_predictions": predicted_days,
        "restaurant_days": len(record.restaurants) * len(WEEK),
        "at_risk_alerts_due": len(due),
        "at_risk_alerts_delivered": len(set(delivered) & due),
        "at_risk_alerts_never_delivered": len(missing),
        "never_delivered": [f"{r} {d.isoformat()} {i}" for r, d, i in missing],
        "device_deliveries": sum(per_device.values()),
        "doubled_device_deliveries": sum(n - 1 for n in per_device.values() if n > 1),
        "duplicates_dropped_by_gateway": record.duplicates_dropped,
        "orders_placed": len(record.orders),
        "ingredients_that_ran_out": len(ran_out),
        "pages": {
            "sent": len(record.pages),
            "triggers": sum(1 for p in record.pages if p.get("event_action") == "trigger"),
            "resolves": sum(1 for p in record.pages if p.get("event_action") == "resolve"),
            "webhooks": record.webhooks,
            "first": _first_page(record.pages),
        },
        "cepe_alert": {
            "restaurant": STORY_RESTAURANT,
            "first_delivered_utc": cepe_alerts[0].isoformat() if cepe_alerts else None,
            "first_delivered_local": _local(cepe_alerts[0], zone) if cepe_alerts else None,
            "ran_out_on": [d.isoformat() for d, _ in cepe_out],
            "unmet_kg": round(sum(q for _, q in cepe_out), 2),
        },
        "seconds": round(record.seconds, 1),
    }


def _naive_claims(record: RunRecord) -> dict[str, Any]:
    """Failures, releases, retries and leaks, from the naive claim table and its fires."""
    fires = record.fires
    unreleased = record.unreleased or []
    leaked_keys = {key for key, _ in unreleased}
    released = {f.claim_key for f in fires if f.outcome == "released"}
    return {
        "predict_attempts_failed": sum(
            1 for f in fires if f.job == PREDICT and f.outcome in ("threw", "released")
        ),
        "claims_released_after_a_failure": sum(1 for f in fires if f.outcome == "released"),
        "retries": sum(1 for f in fires if f.outcome == "ran" and f.claim_key in released),
        "claims_leaked": len(unreleased),
        "fires_skipped_behind_a_leaked_claim": sum(
            1 for f in fires if f.outcome == "skipped" and f.claim_key in leaked_keys
        ),
        "audit": {
            "query": "released_at IS NULL AND claimed_at < now - 24h",
            "now": END.isoformat(),
            "orphaned_claims": len(record.orphans),
            "restaurants": sorted({key.split(":")[1] for key, _ in record.orphans}),
            "keys": [key for key, _ in record.orphans],
        },
    }


def _cronclaim_claims(record: RunRecord) -> dict[str, Any]:
    """Failures, releases, retries and leaks, from cronclaim's event log and audit."""
    failed = released = retries = 0
    for (job, _, _), events in record.events.items():
        for event in events:
            if event.kind in (EventKind.RELEASED, EventKind.FAILED) and event.error:
                if job == PREDICT:
                    failed += 1
                if event.kind is EventKind.RELEASED:
                    released += 1
            if event.kind in (EventKind.ACQUIRED, EventKind.TOOK_OVER) and (event.attempt or 0) > 1:
                retries += 1
    states = Counter(s.value if s else "none" for s in record.final_states.values())
    report = record.audit or {}
    counts = report.get("counts", {})
    return {
        "predict_attempts_failed": failed,
        "claims_released_after_a_failure": released,
        "retries": retries,
        "claims_leaked": record.held_claims,
        "final_states": dict(sorted(states.items())),
        "audit": {
            "run_audit": f"cronclaim.audit.run_audit(store, now={END.isoformat()})",
            "orphaned_claims": counts.get("orphan"),
            "clean": report.get("clean"),
            "counts": counts,
        },
    }


def _first_page(pages: Sequence[dict[str, Any]]) -> dict[str, Any] | None:
    for page in pages:
        if page.get("event_action") == "trigger":
            payload = page.get("payload") or {}
            return {
                "at": payload.get("timestamp"),
                "summary": payload.get("summary"),
                "dedup_key": page.get("dedup_key"),
            }
    return None


def _local(at: datetime, zone: ZoneInfo) -> str:
    local = at.astimezone(zone)
    return f"{local:%a} {local.day} {local:%b} {local:%H:%M} {local.tzname()}"
