"""The reference application's jobs, all through cronclaim.

``build_app(...)`` wires the platform's database and services into a
:class:`ReferenceApp` (a :class:`cronclaim.App`) and registers four jobs:

``inventory-predict`` (07:00 local, per restaurant)
    Asks the inference service for the restaurant's 14-day outlook, stores the
    predictions (replacing an earlier attempt's), and pushes every at-risk ingredient to
    every registered device of the owner. Each push carries an ``apns-id`` derived from
    the occurrence's idempotency key, the device and the ingredient, so an attempt
    retried after a crash between "pushed" and "marked done" is dropped by the gateway
    instead of buzzing the watch twice. ``410 Unregistered`` is permanent for that
    device: it is marked unregistered and skipped from then on, and the run goes on.
    A stale attempt (later than 4 h after 07:00) still recomputes the predictions, which
    the reorder list and the dashboard read, but does not push: a "runs out Friday"
    alert for the morning is noise in the evening.

``ingredient-reorder-alert`` (09:30 local, per restaurant)
    Turns the day's predictions into a reorder list (packs per at-risk ingredient, with
    the day they would arrive), stores it (idempotently), pushes it to the owner's
    devices and queues a postback of it for the restaurant's supplier integration. If
    the day's predictions are not there yet it raises, so it is retried once
    ``inventory-predict`` has caught up, rather than sending an empty list.

``webhook-postback-dispatch`` (every 5 minutes, platform-wide)
    Delivers the queued postbacks to partners with an ``Idempotency-Key`` header, and
    marks each delivered once acknowledged.

``cache-purge`` (hourly at :15, platform-wide)
    Asks the CDN to purge cached dashboard pages (forecasts, reorder lists) older than
    the tick, with the occurrence's idempotency key.

Every external call goes through ``run.call(name, ...)`` (``inference``, ``push``,
``postback``, ``cdn``): that is what fault injection (:mod:`cronclaim.testing`) hooks.
The retry, window, lease and timeout of each job are chosen in :func:`build_app`, where
the reasons are written next to them.
"""

from __future__ import annotations

import functools
import logging
import ssl
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

import httpx

from cronclaim.app import App
from cronclaim.clock import Clock
from cronclaim.demo.errors import PushRejected, translate_transport_error
from cronclaim.demo.forecast import suggest_order
from cronclaim.demo.inference import ForecastRequest, ForecastResult, InferenceClient
from cronclaim.demo.platform import Device, ReorderLine, ReorderList, Restaurant
from cronclaim.demo.platform_db import PlatformDB
from cronclaim.demo.postbacks import PostbackQueue
from cronclaim.demo.push import PushClient, apns_id_for
from cronclaim.demo.receivers import IDEMPOTENCY_HEADER
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant

log = logging.getLogger("cronclaim.demo.jobs")

PREDICT = "inventory-predict"
REORDER = "ingredient-reorder-alert"
POSTBACKS = "webhook-postback-dispatch"
PURGE = "cache-purge"
INVENTORY_JOBS = (PREDICT, REORDER)
PLATFORM_JOBS = (POSTBACKS, PURGE)

#: What a push's custom payload says it is (the demo's owner reads it).
AT_RISK = "at-risk"
REORDER_LIST = "reorder"
#: The postback event a reorder list is sent to the supplier integration as.
REORDER_EVENT = "reorder.suggested"
#: Surrogate keys of the dashboard pages the CDN caches.
PURGED_KEYS = ("forecasts", "reorder-lists")


@dataclass(frozen=True, kw_only=True, slots=True)
class Schedules:
    """The jobs' cron expressions (local time for the per-restaurant ones, UTC for the
    platform ones); ``cronclaim demo --serve --fast`` compresses them."""

    predict: str = "0 7 * * *"
    reorder: str = "30 9 * * *"
    postbacks: str = "*/5 * * * *"
    purge: str = "15 * * * *"


FAST_SCHEDULES = Schedules(
    predict="*/5 * * * *",
    reorder="2-59/5 * * * *",
    postbacks="* * * * *",
    purge="*/10 * * * *",
)


class PredictionsNotReady(RuntimeError):
    """``ingredient-reorder-alert`` ran before the day's predictions were stored."""


class PartnerError(RuntimeError):
    """A partner (webhook receiver or CDN) answered with an error status."""

    def __init__(self, message: str, *, status: int) -> None:
        super().__init__(message)
        self.status = status


class ReferenceApp(App):
    """A cronclaim App holding the platform it serves: its database and the clients of
    its services, closed with the app."""

    def __init__(
        self,
        database_url: str,
        *,
        platform: PlatformDB,
        inference: InferenceClient,
        push: PushClient,
        partner: httpx.Client | None,
        postbacks: PostbackQueue | None,
        clock: Clock | None,
        worker_id: str | None,
    ) -> None:
        super().__init__(database_url, clock=clock, worker_id=worker_id)
        self.platform = platform
        self.inference = inference
        self.push = push
        self.partner = partner
        self.postbacks = postbacks

    def close(self) -> None:
        self.inference.close()
        self.push.close()
        if self.partner is not None:
            self.partner.close()
        super().close()


def build_app(
    database_url: str,
    *,
    platform_db: PlatformDB | str | Path,
    inference_url: str,
    push_url: str,
    partner_url: str | None = None,
    postbacks: PostbackQueue | str | Path | None = None,
    clock: Clock | None = None,
    inference_timeout: float = 5.0,
    push_timeout: float = 5.0,
    partner_timeout: float = 5.0,
    worker_id: str | None = None,
    restaurants: Sequence[str] | None = None,
    schedules: Schedules = Schedules(),
) -> ReferenceApp:
    """The reference application on ``database_url`` (cronclaim's claims), serving the
    platform in ``platform_db`` through the given services.

    ``inference_timeout`` is the inference client's timeout (the story's 5 s).
    ``partner_url`` serves postbacks and CDN purges; without it the two platform jobs
    are not registered. ``postbacks`` is the postback queue (default: ``postbacks.db``
    next to the platform database). ``restaurants`` limits the tenants (default: every
    restaurant of the platform).

    The jobs' limits (the reasons are written next to each definition below)::

        job                        when           window  retry: first, max, tries  timeout  lease
        inventory-predict          07:00 local    12 h    1 min, 1 h, 10           60 s     2 min
        ingredient-reorder-alert   09:30 local    6 h     5 min, 1 h, 6            60 s     2 min
        webhook-postback-dispatch  every 5 min    5 min   30 s, 2 min, 3           2 min    1 min
        cache-purge                hourly at :15  30 min  1 min, 10 min, 4         1 min    1 min

    Retry delays double from ``first`` up to ``max``; ``inventory-predict`` is stale
    (recomputes, does not push) after 4 h.
    """
    platform = platform_db if isinstance(platform_db, PlatformDB) else PlatformDB(platform_db)
    queue: PostbackQueue | None = None
    if partner_url is not None:
        if postbacks is None:
            queue = PostbackQueue(platform.path.with_name("postbacks.db"))
        elif isinstance(postbacks, PostbackQueue):
            queue = postbacks
        else:
            queue = PostbackQueue(postbacks)
    app = ReferenceApp(
        database_url,
        platform=platform,
        inference=InferenceClient(
            inference_url, timeout=inference_timeout, caller="cronclaim", transport=transport()
        ),
        push=PushClient(
            push_url, timeout=push_timeout, topic="com.thmenu.alerts", transport=transport()
        ),
        partner=None
        if partner_url is None
        else httpx.Client(
            base_url=partner_url.rstrip("/"), timeout=partner_timeout, transport=transport()
        ),
        postbacks=queue,
        clock=clock,
        worker_id=worker_id,
    )
    only = None if restaurants is None else set(restaurants)

    def tenants() -> Iterator[Tenant]:
        for restaurant in platform.restaurants():
            if only is None or restaurant.id in only:
                yield Tenant(id=restaurant.id, time_zone=restaurant.time_zone)

    # inventory-predict. Retries start fast (1 min, doubling, at most 1 h apart, 10
    # attempts: 07:00, :01, :03, :07, :15, :31, 08:03, 09:03, 10:03, 11:03) because an
    # inference blip at the 07:00 peak usually clears in minutes, and the alert is worth
    # most early. The 12 h window (until 19:00) outlasts the retries, so an occurrence
    # whose worker died on a late attempt is still taken over and its predictions still
    # stored for the dashboard; stale_after 4 h keeps any attempt after 11:00 from
    # pushing. timeout 60 s bounds one attempt: the 5 s inference call plus a push per
    # at-risk ingredient and device. The 2 min lease is heart-beaten while the attempt
    # runs, so it only matters when a worker dies: the occurrence is taken over 2 min
    # later, far inside its window.
    @app.job(
        PREDICT,
        cron=schedules.predict,
        tenants=tenants,
        timeout="60s",
        retry=Backoff(first="1m", factor=2, max_attempts=10, max_delay="1h"),
        window="12h",
        lease="2m",
        stale_after="4h",
    )
    def inventory_predict(tenant: Tenant, run: Run) -> None:
        day = local_day(run)
        request = ForecastRequest.from_platform(platform, tenant.id, day)
        result = run.call(
            "inference", app.inference.forecast, request, idempotency_key=run.idempotency_key
        )
        platform.save_predictions(tenant.id, day, result.to_predictions(app.clock.now()))
        if run.stale:
            log.info(
                "%s: stale attempt %d: predictions recomputed, %d at-risk alert(s) not pushed",
                run.idempotency_key,
                run.attempt,
                len(result.at_risk),
            )
            return
        if result.at_risk:
            push_at_risk(app, run, platform.restaurant(tenant.id), day, result)

    # ingredient-reorder-alert. It needs the day's predictions: when inventory-predict is
    # still retrying, this raises and retries every 5 min, doubling to at most 1 h, 6
    # attempts (09:30 .. about 11:45), inside a 6 h window (a list sent after the
    # suppliers' afternoon cut-off is of no use that day). Same 60 s timeout and 2 min
    # lease as inventory-predict for the same reasons.
    @app.job(
        REORDER,
        cron=schedules.reorder,
        tenants=tenants,
        timeout="60s",
        retry=Backoff(first="5m", factor=2, max_attempts=6, max_delay="1h"),
        window="6h",
        lease="2m",
    )
    def ingredient_reorder_alert(tenant: Tenant, run: Run) -> None:
        day = local_day(run)
        reorder = reorder_list(platform, tenant.id, day, app.clock.now())
        platform.save_reorder_list(reorder)
        if not reorder.lines:
            return
        if app.postbacks is not None:
            app.postbacks.enqueue(
                f"{run.idempotency_key}:reorder-list",
                restaurant_id=tenant.id,
                event=REORDER_EVENT,
                payload=reorder_json(reorder),
                created_at=app.clock.now(),
            )
        push_reorder_list(app, run, platform.restaurant(tenant.id), reorder)

    if app.partner is not None:
        register_platform_jobs(app, schedules)
    return app


def register_platform_jobs(app: ReferenceApp, schedules: Schedules) -> None:
    """The two sibling jobs of the story's sweep list that talk to partners."""
    partner = app.partner
    queue = app.postbacks
    assert partner is not None and queue is not None

    # webhook-postback-dispatch. Every 5 min; its window is the 5 min until the next
    # pass, which picks up whatever this one left queued (the queue is the durable
    # state, an occurrence is just one delivery pass). Retries 30 s then 60 s, so three
    # attempts fit in the window; a pass that still fails is marked failed (visible,
    # alerted) and loses nothing. timeout 2 min: up to 100 postbacks at 5 s each would
    # not fit, but one slow partner must not hold the pass for the whole window either;
    # what is left goes next pass. Lease 1 min: a dead dispatcher delays the pass by 1 min.
    @app.job(
        POSTBACKS,
        cron=schedules.postbacks,
        timeout="2m",
        retry=Backoff(first="30s", factor=2, max_attempts=3, max_delay="2m"),
        window="5m",
        lease="1m",
    )
    def webhook_postback_dispatch(tenant: Tenant, run: Run) -> None:
        for postback in queue.pending(limit=100):
            run.call(
                "postback",
                post_to_partner,
                partner,
                f"/postbacks/{postback.restaurant_id}",
                {"key": postback.key, "event": postback.event, **postback.payload},
                postback.key,
            )
            queue.mark_delivered(postback.key, app.clock.now())

    # cache-purge. Hourly; a purge that comes 30 min late is still useful, later the next
    # hour's does the job (window 30 min). Retries 1, 2, 4 min (4 attempts); timeout
    # 1 min; lease 1 min. The CDN deduplicates by the occurrence's idempotency key.
    @app.job(
        PURGE,
        cron=schedules.purge,
        timeout="1m",
        retry=Backoff(first="1m", factor=2, max_attempts=4, max_delay="10m"),
        window="30m",
        lease="1m",
    )
    def cache_purge(tenant: Tenant, run: Run) -> None:
        body = {
            "surrogate_keys": list(PURGED_KEYS),
            "older_than": run.occurrence.scheduled_for.isoformat(),
        }
        run.call("cdn", post_to_partner, partner, "/purge", body, run.idempotency_key)


# -- the steps --------------------------------------------------------------------------


@functools.cache
def tls_context() -> ssl.SSLContext:
    """One TLS context per process, shared by every client: building one reads the CA
    bundle (tens of milliseconds), and an app builds three clients."""
    return httpx.create_ssl_context()


def transport() -> httpx.HTTPTransport:
    return httpx.HTTPTransport(verify=tls_context())


def local_day(run: Run) -> date:
    """The restaurant's local date of the occurrence (the tick's nominal wall time)."""
    nominal = run.occurrence.nominal
    assert nominal is not None
    return nominal.date()


def push_at_risk(
    app: ReferenceApp, run: Run, restaurant: Restaurant, day: date, result: ForecastResult
) -> int:
    """Push each at-risk ingredient to each registered device; returns pushes accepted."""
    names = {i.id: i for i in app.platform.ingredients(restaurant.id)}
    devices = [d for d in restaurant.devices if d.registered]
    sent = 0
    for ingredient_id in result.at_risk:
        outlook = result.ingredients[ingredient_id]
        ingredient = names.get(ingredient_id)
        label = ingredient.name if ingredient is not None else ingredient_id
        title = f"{restaurant.name}: {label} at risk"
        body = at_risk_text(
            day, outlook.stockout_date, outlook.order_by, outlook.next_possible_delivery
        )
        custom = {
            "kind": AT_RISK,
            "restaurant_id": restaurant.id,
            "ingredient": ingredient_id,
            "day": day.isoformat(),
            "stockout_date": outlook.stockout_date.isoformat() if outlook.stockout_date else None,
        }
        for device in list(devices):
            collapse_id = f"at-risk:{ingredient_id}"
            if push_one(app, run, device, ingredient_id, title, body, custom, collapse_id):
                sent += 1
            else:
                devices.remove(device)  # unregistered or a bad token: no more pushes
    return sent


def push_reorder_list(
    app: ReferenceApp, run: Run, restaurant: Restaurant, reorder: ReorderList
) -> int:
    names = {i.id: i for i in app.platform.ingredients(restaurant.id)}
    count = len(reorder.lines)
    title = f"{restaurant.name}: reorder today ({count} item{'s' if count != 1 else ''})"
    parts = []
    for line in reorder.lines:
        ingredient = names.get(line.ingredient_id)
        label = ingredient.name if ingredient is not None else line.ingredient_id
        unit = ingredient.unit if ingredient is not None else ""
        parts.append(f"{label} {line.quantity:g} {unit} (arrives {short_day(line.arrives)})")
    body = "; ".join(parts)
    custom = {"kind": REORDER_LIST, **reorder_json(reorder)}
    sent = 0
    for device in restaurant.devices:
        if device.registered and push_one(
            app,
            run,
            device,
            "reorder-list",
            title,
            body,
            custom,
            f"reorder:{reorder.day.isoformat()}",
        ):
            sent += 1
    return sent


def push_one(
    app: ReferenceApp,
    run: Run,
    device: Device,
    item: str,
    title: str,
    body: str,
    custom: dict[str, Any],
    collapse_id: str,
) -> bool:
    """One push; False when the device refused it for good (it is skipped from then on).

    Transient failures (5xx, 429, no answer) raise: the attempt is released and retried,
    and the ``apns-id`` makes the gateway drop what this attempt already delivered.
    """
    try:
        run.call(
            "push",
            app.push.send_alert,
            device.token,
            title=title,
            body=body,
            apns_id=apns_id_for(run.idempotency_key, device.token, item),
            collapse_id=collapse_id,
            custom=custom,
        )
    except PushRejected as exc:
        if exc.retryable:
            raise
        if exc.reason == "Unregistered":
            app.platform.mark_device_registered(device.token, False)
            log.warning(
                "%s: %s (%s) is unregistered; it gets no more pushes",
                run.idempotency_key,
                device.name,
                device.token[:12],
            )
            return False
        if exc.reason == "BadDeviceToken":
            log.warning("%s: %s has a bad token; skipped", run.idempotency_key, device.name)
            return False
        raise
    return True


def reorder_list(platform: PlatformDB, restaurant_id: str, day: date, now: datetime) -> ReorderList:
    """The day's reorder list from the day's predictions; raises PredictionsNotReady."""
    predictions = platform.predictions(restaurant_id, day)
    if not predictions:
        raise PredictionsNotReady(
            f"no predictions for {restaurant_id} on {day.isoformat()} yet; "
            "inventory-predict has not completed"
        )
    ingredients = {i.id: i for i in platform.ingredients(restaurant_id)}
    stock = platform.stock(restaurant_id, day)
    incoming: dict[str, dict[date, float]] = {}
    for delivery in platform.deliveries(restaurant_id, day):
        per_day = incoming.setdefault(delivery.ingredient_id, {})
        per_day[delivery.day] = per_day.get(delivery.day, 0.0) + delivery.quantity
    lines: list[ReorderLine] = []
    for prediction in predictions:
        ingredient = ingredients.get(prediction.ingredient_id)
        if not prediction.at_risk or ingredient is None:
            continue
        lead = (ingredient.next_possible_delivery(day) - day).days
        if lead >= len(prediction.forecast):
            continue  # arrives beyond the forecast: nothing to size the order on
        order = suggest_order(
            day,
            stock.get(ingredient.id, 0.0),
            prediction.forecast,
            incoming.get(ingredient.id, {}),
            lead_time_days=ingredient.lead_time_days,
            delivery_weekdays=ingredient.delivery_weekdays,
            reorder_point=ingredient.reorder_point,
            pack_size=ingredient.pack_size,
            # Cover what the forecast reaches: an order arriving late in the horizon
            # is sized for the days after it that are forecast, and topped up later.
            cover_days=min(ingredient.cover_days, len(prediction.forecast) - lead),
        )
        if order is None:
            continue
        stockout = prediction.stockout_date
        lines.append(
            ReorderLine(
                ingredient_id=ingredient.id,
                packs=order.packs,
                quantity=order.quantity,
                arrives=order.arrives,
                order_by=day,
                reason=f"runs out {stockout.isoformat()}" if stockout else "at risk",
            )
        )
    return ReorderList(restaurant_id=restaurant_id, day=day, lines=tuple(lines), created_at=now)


def reorder_json(reorder: ReorderList) -> dict[str, Any]:
    return {
        "restaurant_id": reorder.restaurant_id,
        "day": reorder.day.isoformat(),
        "lines": [
            {
                "ingredient": line.ingredient_id,
                "packs": line.packs,
                "quantity": line.quantity,
                "arrives": line.arrives.isoformat(),
            }
            for line in reorder.lines
        ],
    }


def post_to_partner(client: httpx.Client, path: str, body: dict[str, Any], key: str) -> int:
    """POST ``body`` with ``Idempotency-Key: key``; returns the status, raises on errors
    (:class:`PartnerError` for an error status, the demo's timeout/connection errors when
    no answer came)."""
    url = str(client.base_url).rstrip("/") + path
    try:
        response = client.post(path, json=body, headers={IDEMPOTENCY_HEADER: key})
    except httpx.TransportError as exc:
        raise translate_transport_error(exc, service="partner", url=url) from exc
    if not 200 <= response.status_code < 300:
        raise PartnerError(
            f"partner answered {response.status_code} at {url}: {response.text[:200]}",
            status=response.status_code,
        )
    return response.status_code


def at_risk_text(day: date, stockout: date | None, order_by: date | None, arrives: date) -> str:
    runs_out = "today" if stockout == day else (short_day(stockout) if stockout else "soon")
    if order_by is not None:
        return f"Runs out {runs_out}. Order today: it arrives {short_day(arrives)}."
    return (
        f"Runs out {runs_out}; even an order placed today arrives {short_day(arrives)}, too late."
    )


def short_day(day: date) -> str:
    return f"{day:%a} {day.day} {day:%b}"


__all__ = [
    "AT_RISK",
    "FAST_SCHEDULES",
    "INVENTORY_JOBS",
    "PLATFORM_JOBS",
    "POSTBACKS",
    "PREDICT",
    "PURGE",
    "REORDER",
    "REORDER_LIST",
    "PartnerError",
    "PredictionsNotReady",
    "ReferenceApp",
    "Schedules",
    "build_app",
]
