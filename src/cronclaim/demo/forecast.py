"""Forecasting daily ingredient usage, and what a forecast means for the stock room.

The model is additive Holt-Winters (triple exponential smoothing) with a damped trend
and a weekly season, in pure Python. Its four smoothing parameters are chosen per series
by a grid search that minimises the mean absolute one-step-ahead error over the most
recent weeks of the training data. The baseline is the seasonal-naive forecast (the same
weekday last week); accuracy is MASE, scaled by the in-sample seasonal-naive error.

Stock conventions, shared with :mod:`cronclaim.demo.platform`: ``on_hand`` is the count
when the day opens (07:00, when ``inventory-predict`` runs); a delivery for a day arrives
before service and is usable that day; ``usage[0]`` is the usage of ``today`` itself.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from itertools import product

SEASON = 7
HORIZON_DAYS = 14
#: Observations the parameters are fitted on (the most recent ones): 28 weeks, of which
#: the first two initialise the state and the next two are burn-in.
FIT_WINDOW = 196
MODEL_NAME = "holt-winters-additive-damped/7"
BASELINE_NAME = "seasonal-naive/7"
_EPSILON = 1e-9


@dataclass(frozen=True, kw_only=True, slots=True)
class SmoothingParams:
    alpha: float  # level
    beta: float  # trend
    gamma: float  # season
    phi: float  # trend damping

    def __post_init__(self) -> None:
        for name in ("alpha", "beta", "gamma"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if not 0.0 < self.phi <= 1.0:
            raise ValueError(f"phi must be in (0, 1], got {self.phi}")


DEFAULT_GRID: tuple[SmoothingParams, ...] = tuple(
    SmoothingParams(alpha=a, beta=b, gamma=g, phi=p)
    for a, b, g, p in product(
        (0.03, 0.08, 0.15, 0.3, 0.5), (0.0, 0.02, 0.08), (0.02, 0.08, 0.2), (0.85, 0.98)
    )
)


@dataclass(frozen=True, kw_only=True, slots=True)
class HoltWinters:
    """A fitted model: its parameters and the state after the last observation.

    ``season[j]`` is the seasonal component of the observation ``j + 1`` steps ahead
    (for ``j`` < the season length).
    """

    params: SmoothingParams
    level: float
    trend: float
    season: tuple[float, ...]
    fit_mae: float
    observations: int

    def forecast(self, horizon: int = HORIZON_DAYS) -> list[float]:
        """The next ``horizon`` values, never below zero (usage cannot be negative)."""
        m = len(self.season)
        out: list[float] = []
        damped = 0.0
        step = 1.0
        for h in range(horizon):
            step *= self.params.phi
            damped += step
            value = self.level + damped * self.trend + self.season[h % m]
            out.append(max(0.0, value))
        return out

    def update(self, values: Sequence[float]) -> HoltWinters:
        """The same model after observing ``values`` (parameters unchanged)."""
        level, trend, season, abs_error, count = _filter(
            values, self.params, self.level, self.trend, list(self.season), burn_in=0
        )
        fitted = (self.fit_mae * self.observations + abs_error) / max(1, self.observations + count)
        return HoltWinters(
            params=self.params,
            level=level,
            trend=trend,
            season=tuple(season),
            fit_mae=fitted,
            observations=self.observations + count,
        )


def _filter(
    values: Sequence[float],
    params: SmoothingParams,
    level: float,
    trend: float,
    season: list[float],
    *,
    burn_in: int,
) -> tuple[float, float, list[float], float, int]:
    """Run the recursions over ``values``; ``season`` rotates so index 0 is always next.

    Returns the final state, the summed absolute one-step error after ``burn_in``
    observations, and how many errors were summed.
    """
    alpha, beta, gamma, phi = params.alpha, params.beta, params.gamma, params.phi
    m = len(season)
    position = 0
    abs_error = 0.0
    count = 0
    for index, y in enumerate(values):
        s = season[position]
        damped_trend = phi * trend
        if index >= burn_in:
            abs_error += abs(y - (level + damped_trend + s))
            count += 1
        new_level = alpha * (y - s) + (1.0 - alpha) * (level + damped_trend)
        trend = beta * (new_level - level) + (1.0 - beta) * damped_trend
        season[position] = gamma * (y - new_level) + (1.0 - gamma) * s
        level = new_level
        position = (position + 1) % m
    rotated = season[position:] + season[:position]
    return level, trend, rotated, abs_error, count


def _initial_state(values: Sequence[float], m: int) -> tuple[float, float, list[float]]:
    first = values[:m]
    second = values[m : 2 * m]
    level = sum(first) / m
    trend = (sum(second) / m - level) / m
    season = [y - level for y in first]
    return level, trend, season


def fit_holt_winters(
    series: Sequence[float],
    *,
    season: int = SEASON,
    grid: Sequence[SmoothingParams] = DEFAULT_GRID,
    window: int = FIT_WINDOW,
) -> HoltWinters:
    """Fit on the last ``window`` observations: the parameters in ``grid`` with the
    smallest mean absolute one-step-ahead error. Needs at least four seasons of data."""
    values = [float(v) for v in series[-window:]]
    m = season
    if len(values) < 4 * m:
        raise ValueError(f"Holt-Winters needs at least {4 * m} observations, got {len(values)}")
    if not grid:
        raise ValueError("the parameter grid is empty")
    level0, trend0, season0 = _initial_state(values, m)
    body = values[m:]
    burn_in = m  # the first season after initialisation is not scored
    best: tuple[float, SmoothingParams, float, float, list[float], int] | None = None
    for params in grid:
        level, trend, rotated, abs_error, count = _filter(
            body, params, level0, trend0, list(season0), burn_in=burn_in
        )
        mae = abs_error / count
        if best is None or mae < best[0] - _EPSILON:
            best = (mae, params, level, trend, rotated, count)
    assert best is not None
    mae, params, level, trend, rotated, count = best
    return HoltWinters(
        params=params,
        level=level,
        trend=trend,
        season=tuple(rotated),
        fit_mae=mae,
        observations=count,
    )


def holt_winters_forecast(
    series: Sequence[float], horizon: int = HORIZON_DAYS, *, season: int = SEASON
) -> list[float]:
    """Forecast ``horizon`` days after the end of ``series``.

    Series too short for Holt-Winters (under four weeks) fall back to the seasonal-naive
    forecast, and under one week to the mean.
    """
    if len(series) >= 4 * season:
        return fit_holt_winters(series, season=season).forecast(horizon)
    return seasonal_naive_forecast(series, horizon, season=season)


def seasonal_naive_forecast(
    series: Sequence[float], horizon: int = HORIZON_DAYS, *, season: int = SEASON
) -> list[float]:
    """Each day forecast as the same weekday in the last observed week."""
    if not series:
        return [0.0] * horizon
    if len(series) < season:
        mean = sum(series) / len(series)
        return [float(mean)] * horizon
    last = [float(v) for v in series[-season:]]
    return [last[h % season] for h in range(horizon)]


def seasonal_naive_scale(training: Sequence[float], *, season: int = SEASON) -> float:
    """In-sample mean absolute error of the seasonal-naive forecast: MASE's denominator."""
    if len(training) <= season:
        raise ValueError(f"need more than {season} observations to scale MASE")
    diffs = [abs(training[t] - training[t - season]) for t in range(season, len(training))]
    return sum(diffs) / len(diffs)


def mase(
    actual: Sequence[float],
    forecast: Sequence[float],
    training: Sequence[float],
    *,
    season: int = SEASON,
) -> float:
    """Mean absolute scaled error of ``forecast`` against ``actual``."""
    if len(actual) != len(forecast) or not actual:
        raise ValueError("actual and forecast must be non-empty and of equal length")
    scale = seasonal_naive_scale(training, season=season)
    if scale <= _EPSILON:
        raise ValueError("the training series has no seasonal-naive error; MASE is undefined")
    mae = sum(abs(a - f) for a, f in zip(actual, forecast, strict=True)) / len(actual)
    return mae / scale


@dataclass(frozen=True, kw_only=True, slots=True)
class Backtest:
    """MASE of the model and of the baseline over the held-out weeks of one series."""

    model_mase: float
    naive_mase: float
    origins: int
    horizon: int
    params: SmoothingParams


def backtest(
    series: Sequence[float],
    *,
    holdout_weeks: int,
    horizon: int = SEASON,
    season: int = SEASON,
) -> Backtest:
    """Hold out the last ``holdout_weeks`` weeks and forecast them from weekly origins.

    Parameters are fitted once, on the training part only; at each later origin the
    model's state is updated with the actuals that are by then known (a rolling origin
    with fixed parameters). Origins whose ``horizon`` would run past the data are skipped.
    MASE is scaled by the seasonal-naive error on the training part.
    """
    held_out = holdout_weeks * season
    if held_out <= 0 or held_out >= len(series):
        raise ValueError(f"cannot hold out {holdout_weeks} weeks of a {len(series)}-day series")
    split = len(series) - held_out
    training = list(series[:split])
    scale = seasonal_naive_scale(training, season=season)
    model = fit_holt_winters(training, season=season)
    model_errors: list[float] = []
    naive_errors: list[float] = []
    origins = 0
    origin = split
    while origin + horizon <= len(series):
        actual = series[origin : origin + horizon]
        predicted = model.forecast(horizon)
        naive = seasonal_naive_forecast(series[:origin], horizon, season=season)
        model_errors.extend(abs(a - p) for a, p in zip(actual, predicted, strict=True))
        naive_errors.extend(abs(a - p) for a, p in zip(actual, naive, strict=True))
        origins += 1
        model = model.update(series[origin : origin + season])
        origin += season
    if not origins or scale <= _EPSILON:
        raise ValueError("no origin fits the held-out weeks, or the series is flat")
    return Backtest(
        model_mase=statistics.fmean(model_errors) / scale,
        naive_mase=statistics.fmean(naive_errors) / scale,
        origins=origins,
        horizon=horizon,
        params=model.params,
    )


# -- stock ------------------------------------------------------------------------------


def _check_weekdays(delivery_weekdays: Collection[int]) -> None:
    if not delivery_weekdays or any(not 0 <= d <= 6 for d in delivery_weekdays):
        raise ValueError(
            "delivery weekdays must be a non-empty set of 0 (Monday) .. 6, "
            f"got {delivery_weekdays!r}"
        )


def next_possible_delivery(
    ordered_on: date, *, lead_time_days: int, delivery_weekdays: Collection[int]
) -> date:
    """When an order placed on ``ordered_on`` arrives: the first delivery weekday on or
    after ``ordered_on + lead_time_days``."""
    _check_weekdays(delivery_weekdays)
    if lead_time_days < 0:
        raise ValueError(f"lead time must be >= 0 days, got {lead_time_days}")
    day = ordered_on + timedelta(days=lead_time_days)
    for _ in range(7):
        if day.weekday() in delivery_weekdays:
            return day
        day += timedelta(days=1)
    raise AssertionError("unreachable: a non-empty weekday set matches within a week")


def project_stock(
    today: date, on_hand: float, usage: Sequence[float], deliveries: Mapping[date, float]
) -> list[float]:
    """Stock left at the end of each day of ``usage``; negative once demand is unmet."""
    left = on_hand
    closing: list[float] = []
    for offset, used in enumerate(usage):
        left += deliveries.get(today + timedelta(days=offset), 0.0)
        left -= used
        closing.append(left)
    return closing


def stockout_date(
    today: date, on_hand: float, usage: Sequence[float], deliveries: Mapping[date, float]
) -> date | None:
    """The first day whose usage exceeds what is on hand (deliveries of that day
    included), or ``None`` if stock lasts through ``usage``."""
    left = on_hand
    for offset, used in enumerate(usage):
        day = today + timedelta(days=offset)
        left += deliveries.get(day, 0.0)
        if used > left + _EPSILON:
            return day
        left -= used
    return None


def order_by(
    today: date, stockout: date | None, *, lead_time_days: int, delivery_weekdays: Collection[int]
) -> date | None:
    """The last day an order can be placed and still arrive by ``stockout``.

    ``None`` when there is no stock-out to prevent, or when even an order placed today
    arrives too late.
    """
    if stockout is None:
        return None
    latest: date | None = None
    day = today
    while day <= stockout:
        arrives = next_possible_delivery(
            day, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
        )
        if arrives > stockout:
            break
        latest = day
        day += timedelta(days=1)
    return latest


def is_at_risk(
    today: date, stockout: date | None, *, lead_time_days: int, delivery_weekdays: Collection[int]
) -> bool:
    """True if stock runs out before the next possible delivery that is not ordered yet
    arrives: an order placed tomorrow would come too late. That covers both "order today
    or run out" and "too late already, even ordering today"."""
    if stockout is None:
        return False
    tomorrow = today + timedelta(days=1)
    arrives = next_possible_delivery(
        tomorrow, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
    )
    return stockout < arrives


@dataclass(frozen=True, kw_only=True, slots=True)
class StockOutlook:
    stockout_date: date | None
    next_possible_delivery: date  # of an order placed today
    order_by: date | None
    at_risk: bool


def stock_outlook(
    today: date,
    on_hand: float,
    usage: Sequence[float],
    deliveries: Mapping[date, float],
    *,
    lead_time_days: int,
    delivery_weekdays: Collection[int],
) -> StockOutlook:
    """Stock-out date, next possible delivery, order-by day and at-risk flag at once."""
    stockout = stockout_date(today, on_hand, usage, deliveries)
    return StockOutlook(
        stockout_date=stockout,
        next_possible_delivery=next_possible_delivery(
            today, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
        ),
        order_by=order_by(
            today, stockout, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
        ),
        at_risk=is_at_risk(
            today, stockout, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
        ),
    )


@dataclass(frozen=True, kw_only=True, slots=True)
class SuggestedOrder:
    arrives: date
    packs: int
    quantity: float


def suggest_order(
    today: date,
    on_hand: float,
    usage: Sequence[float],
    deliveries: Mapping[date, float],
    *,
    lead_time_days: int,
    delivery_weekdays: Collection[int],
    reorder_point: float,
    pack_size: float,
    cover_days: int,
) -> SuggestedOrder | None:
    """Packs to order today so that, from its arrival, stock covers ``cover_days`` of
    forecast usage and stays at or above ``reorder_point``. ``None`` if nothing is needed.

    ``usage`` must reach ``cover_days`` past the arrival; demand that cannot be met before
    the arrival is lost, not carried over.
    """
    if pack_size <= 0:
        raise ValueError(f"pack size must be positive, got {pack_size}")
    arrives = next_possible_delivery(
        today, lead_time_days=lead_time_days, delivery_weekdays=delivery_weekdays
    )
    lead = (arrives - today).days
    if len(usage) < lead + cover_days:
        raise ValueError(f"usage covers {len(usage)} days; {lead + cover_days} are needed")
    left = on_hand
    for offset in range(lead):
        left += deliveries.get(today + timedelta(days=offset), 0.0)
        left = max(0.0, left - usage[offset])
    incoming = sum(
        deliveries.get(arrives + timedelta(days=offset), 0.0) for offset in range(cover_days)
    )
    need = sum(usage[lead : lead + cover_days]) + reorder_point - left - incoming
    packs = math.ceil(need / pack_size - _EPSILON)
    if packs <= 0:
        return None
    return SuggestedOrder(arrives=arrives, packs=packs, quantity=round(packs * pack_size, 6))
