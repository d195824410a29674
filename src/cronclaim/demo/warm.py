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

from cronclaim.demo.forecast import HORIZON_DAYS
from cronclaim.demo.inference import (
    Forecaster,
    ForecastRequest,
    ForecastResult,
    InferenceService,
    answer,
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


def fitted_forecaster(fitted: Mapping[ForecastKey, Sequence[float]]) -> Forecaster:
    """Forecasts from the fitted models, fitting afresh only a history never fitted."""

    def forecast(history: Sequence[float], horizon: int) -> Sequence[float]:
        usage = fitted.get(history_key(history, horizon))
        return usage if usage is not None else forecast_usage(history, horizon)

    return forecast


def warm_answer(
    request: ForecastRequest, fitted: Mapping[ForecastKey, tuple[float, ...]]
) -> ForecastResult:
    """What :func:`cronclaim.demo.inference.answer` answers, from fitted forecasts."""
    return answer(request, fitted_forecaster(fitted))


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
        super().__init__(
            host=host, port=port, clock=clock, forecaster=fitted_forecaster(dict(fitted))
        )
