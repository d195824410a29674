"""An inference service whose models are fitted before the replayed week starts.

The demo replays a week in seconds, with the story's 5 s inference timeout scaled down
to a fraction of a second; a Holt-Winters fit of one restaurant takes about 0.2 s of
CPU, which would trip that timeout on healthy calls. So the demo fits every
restaurant's models for every day of the week up front, on all cores
(:func:`fit_week`), and serves them from a :class:`WarmInferenceService`. The answers
are the same: the fit depends only on the usage history, which reorders do not change;
stock and deliveries, which they do change, are read from each request as usual. A
request whose history was not fitted up front is fitted on the spot.
"""

from __future__ import annotations

import hashlib
import multiprocessing
import struct
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import date, datetime

from cronclaim.demo._http import Reply, Request, Response
from cronclaim.demo.faults import Fault, FaultKind
from cronclaim.demo.forecast import HORIZON_DAYS, MODEL_NAME, stock_outlook
from cronclaim.demo.inference import (
    ForecastRequest,
    ForecastResult,
    InferenceService,
    IngredientForecast,
    LoggedRequest,
    forecast_usage,
)
from cronclaim.demo.platform import generate_platform

#: A fitted forecast, keyed by the digest of the history it was fitted on and the horizon.
ForecastKey = tuple[bytes, int]


def history_key(history: Sequence[float], horizon: int) -> ForecastKey:
    digest = hashlib.blake2b(struct.pack(f"<{len(history)}d", *history), digest_size=16)
    return digest.digest(), horizon


def _fit_restaurant(
    args: tuple[int, str, tuple[date, ...], int],
) -> dict[ForecastKey, tuple[float, ...]]:
    seed, restaurant_id, days, horizon = args
    platform = generate_platform(seed, restaurants=[restaurant_id])
    fitted: dict[ForecastKey, tuple[float, ...]] = {}
    for (_, _), series in sorted(platform.usage.items()):
        for day in days:
            history = series[: (day - platform.first_day).days]
            key = history_key(history, horizon)
            if key not in fitted:
                fitted[key] = tuple(round(v, 4) for v in forecast_usage(history, horizon))
    return fitted


def fit_week(
    seed: int,
    days: Sequence[date],
    restaurants: Iterable[str],
    *,
    horizon: int = HORIZON_DAYS,
    processes: int | None = None,
) -> dict[ForecastKey, tuple[float, ...]]:
    """Fit every restaurant's models for each of ``days`` (the histories known on those
    mornings), one process per core. Each process generates its restaurant's data from
    the seed (it depends on nothing else), so this can run while the platform database
    is being written."""
    tasks = [(seed, rid, tuple(days), horizon) for rid in restaurants]
    count = max(1, min(len(tasks), processes or multiprocessing.cpu_count()))
    fitted: dict[ForecastKey, tuple[float, ...]] = {}
    if count == 1:
        for task in tasks:
            fitted.update(_fit_restaurant(task))
        return fitted
    with multiprocessing.get_context("spawn").Pool(count) as pool:
        for part in pool.imap_unordered(_fit_restaurant, tasks):
            fitted.update(part)
    return fitted


def fitted_to_json(fitted: Mapping[ForecastKey, Sequence[float]]) -> dict[str, list[float]]:
    return {f"{digest.hex()}:{horizon}": list(v) for (digest, horizon), v in fitted.items()}


def fitted_from_json(data: Mapping[str, Sequence[float]]) -> dict[ForecastKey, tuple[float, ...]]:
    fitted: dict[ForecastKey, tuple[float, ...]] = {}
    for text, values in data.items():
        digest, _, horizon = text.partition(":")
        fitted[bytes.fromhex(digest), int(horizon)] = tuple(float(v) for v in values)
    return fitted


def warm_answer(
    request: ForecastRequest, fitted: Mapping[ForecastKey, tuple[float, ...]]
) -> ForecastResult:
    """What :func:`cronclaim.demo.inference.answer` answers, from fitted forecasts."""
    incoming: dict[str, dict[date, float]] = {}
    for delivery in request.deliveries:
        per_day = incoming.setdefault(delivery.ingredient, {})
        per_day[delivery.day] = per_day.get(delivery.day, 0.0) + delivery.quantity
    results: dict[str, IngredientForecast] = {}
    for name, history in request.history.items():
        usage = fitted.get(history_key(history, request.horizon_days))
        if usage is None:
            usage = tuple(round(v, 4) for v in forecast_usage(history, request.horizon_days))
        terms = request.ingredients[name]
        outlook = stock_outlook(
            request.day,
            request.stock[name],
            usage,
            incoming.get(name, {}),
            lead_time_days=terms.lead_time_days,
            delivery_weekdays=terms.delivery_weekdays,
        )
        results[name] = IngredientForecast(
            ingredient=name,
            forecast=usage,
            stockout_date=outlook.stockout_date,
            next_possible_delivery=outlook.next_possible_delivery,
            order_by=outlook.order_by,
            at_risk=outlook.at_risk,
        )
    return ForecastResult(
        restaurant_id=request.restaurant_id,
        day=request.day,
        model=MODEL_NAME,
        horizon_days=request.horizon_days,
        ingredients=results,
    )


class WarmInferenceService(InferenceService):
    """:class:`~cronclaim.demo.inference.InferenceService` answering from models fitted
    up front. Faults, the request log and the wire format are the parent's."""

    def __init__(
        self,
        fitted: Mapping[ForecastKey, tuple[float, ...]],
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        super().__init__(host=host, port=port, clock=clock)
        self._fitted = dict(fitted)

    def _forecast(self, request: Request) -> Reply:
        # The parent's request handling, with warm_answer in place of answer.
        caller = request.headers.get("x-caller") or request.headers.get("user-agent")
        key = request.headers.get("idempotency-key")
        try:
            parsed = ForecastRequest.from_json(request.json())
        except ValueError as exc:
            self._log_request(None, None, caller, key, None, 400, None, str(exc))
            return Response.json(400, {"error": str(exc)})
        fault = self.faults.take(restaurant_id=parsed.restaurant_id, day=parsed.day)
        if fault is not None and fault.kind is not FaultKind.LATENCY:
            status = fault.status if fault.kind is FaultKind.ERROR else None
            self._log_request(parsed.restaurant_id, parsed.day, caller, key, fault, status, None)
            return self.apply_fault(fault)
        result = warm_answer(parsed, self._fitted)
        response = Response.json(200, result.to_json())
        if fault is not None:
            reply = self.apply_fault(fault, response)
            answered = reply is response
            self._log_request(
                parsed.restaurant_id,
                parsed.day,
                caller,
                key,
                fault,
                200 if answered else None,
                result if answered else None,
            )
            return reply
        self._log_request(parsed.restaurant_id, parsed.day, caller, key, None, 200, result)
        return response

    def _log_request(
        self,
        restaurant_id: str | None,
        day: date | None,
        caller: str | None,
        key: str | None,
        fault: Fault | None,
        status: int | None,
        result: ForecastResult | None,
        error: str | None = None,
    ) -> None:
        self._record(
            LoggedRequest(
                at=self._clock(),
                restaurant_id=restaurant_id,
                day=day,
                caller=caller,
                idempotency_key=key,
                fault=fault.kind if fault else None,
                status=status,
                answer=result,
                error=error,
            )
        )
