"""Forecasting, MASE, and the stock arithmetic behind the at-risk flag."""

from __future__ import annotations

import math
import statistics
from datetime import date, timedelta

import pytest

from cronclaim.demo.forecast import (
    DEFAULT_GRID,
    backtest,
    fit_holt_winters,
    holt_winters_forecast,
    is_at_risk,
    mase,
    next_possible_delivery,
    order_by,
    project_stock,
    seasonal_naive_forecast,
    seasonal_naive_scale,
    stock_outlook,
    stockout_date,
    suggest_order,
)
from cronclaim.demo.inference import ForecastRequest, answer
from cronclaim.demo.platform import INCIDENT_WEEK, STORY_STOCKOUT_DAY, generate_platform
from cronclaim.demo.platform_db import PlatformDB

MON, THU = 0, 3
MONDAY = date(2026, 5, 18)
SUNDAY_BEFORE = MONDAY - timedelta(days=1)
FRIDAY = MONDAY + timedelta(days=4)
PATTERN = (8.0, 8.5, 9.0, 10.0, 13.0, 15.0, 11.0)


def weekly(weeks: int, *, level: float = 0.0, slope: float = 0.0) -> list[float]:
    return [PATTERN[t % 7] + level + slope * t for t in range(weeks * 7)]


# -- forecasting --------------------------------------------------------------------------


def test_seasonal_naive_repeats_the_last_week() -> None:
    series = list(range(1, 15))
    assert seasonal_naive_forecast(series, 10) == [8, 9, 10, 11, 12, 13, 14, 8, 9, 10]


def test_seasonal_naive_of_less_than_a_week_is_the_mean() -> None:
    assert seasonal_naive_forecast([2.0, 4.0], 3) == [3.0, 3.0, 3.0]
    assert seasonal_naive_forecast([], 2) == [0.0, 0.0]


def test_holt_winters_learns_a_clean_weekly_pattern() -> None:
    forecast = holt_winters_forecast(weekly(20), 14)
    expected = [PATTERN[(140 + h) % 7] for h in range(14)]
    assert forecast == pytest.approx(expected, abs=0.05)


def test_holt_winters_follows_a_trend() -> None:
    series = weekly(20, slope=0.1)
    forecast = holt_winters_forecast(series, 7)
    naive = seasonal_naive_forecast(series, 7)
    actual = [PATTERN[(140 + h) % 7] + 0.1 * (140 + h) for h in range(7)]
    model_error = sum(abs(a - f) for a, f in zip(actual, forecast, strict=True))
    naive_error = sum(abs(a - f) for a, f in zip(actual, naive, strict=True))
    assert model_error < naive_error


def test_forecasts_are_never_negative() -> None:
    falling = [max(0.0, 20.0 - 0.5 * t) + PATTERN[t % 7] / 10 for t in range(56)]
    assert min(holt_winters_forecast(falling, 14)) >= 0.0


def test_the_grid_search_picks_parameters_from_the_grid() -> None:
    model = fit_holt_winters(weekly(12, level=3.0))
    assert model.params in DEFAULT_GRID
    assert model.fit_mae < 0.05


def test_holt_winters_needs_four_weeks_and_falls_back_before() -> None:
    with pytest.raises(ValueError, match="at least 28"):
        fit_holt_winters(weekly(3))
    assert holt_winters_forecast(weekly(3), 7) == seasonal_naive_forecast(weekly(3), 7)


def test_update_moves_the_state_without_refitting() -> None:
    series = weekly(16)
    model = fit_holt_winters(series[:-7])
    updated = model.update(series[-7:])
    assert updated.params == model.params
    assert updated.forecast(7) == pytest.approx(list(PATTERN), abs=0.05)


# -- MASE ---------------------------------------------------------------------------------


def test_mase_scales_by_the_in_sample_seasonal_naive_error() -> None:
    training = [float(t % 7) + (2.0 if (t // 7) % 2 else 0.0) for t in range(28)]
    assert seasonal_naive_scale(training) == 2.0
    assert mase([5.0, 5.0], [4.0, 6.0], training) == 0.5


def test_mase_rejects_a_flat_training_series() -> None:
    with pytest.raises(ValueError, match="undefined"):
        mase([1.0], [1.0], [3.0] * 21)


def test_backtest_holds_out_whole_weeks() -> None:
    result = backtest(weekly(30, slope=0.02), holdout_weeks=4, horizon=7)
    assert result.origins == 4
    result14 = backtest(weekly(30, slope=0.02), holdout_weeks=4, horizon=14)
    assert result14.origins == 3


def test_holt_winters_beats_seasonal_naive_on_the_generated_platform() -> None:
    platform = generate_platform(restaurants=["aitor", "mert", "olivia", "hana"])
    days = (platform.history_end - platform.first_day).days + 1
    results = [
        backtest(series[:days], holdout_weeks=4, horizon=7) for series in platform.usage.values()
    ]
    model = [r.model_mase for r in results]
    naive = [r.naive_mase for r in results]
    assert statistics.fmean(model) < statistics.fmean(naive)
    assert statistics.median(model) < statistics.median(naive)
    assert sum(m < n for m, n in zip(model, naive, strict=True)) > 0.8 * len(results)


# -- stock --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ordered_on", "arrives"),
    [
        (date(2026, 5, 18), date(2026, 5, 21)),  # Monday + 3 = Thursday, a delivery day
        (date(2026, 5, 19), date(2026, 5, 25)),  # Tuesday + 3 = Friday: wait for Monday
        (date(2026, 5, 15), date(2026, 5, 18)),  # Friday + 3 = Monday
    ],
)
def test_next_possible_delivery(ordered_on: date, arrives: date) -> None:
    assert (
        next_possible_delivery(ordered_on, lead_time_days=3, delivery_weekdays=(MON, THU))
        == arrives
    )


def test_same_day_delivery_with_no_lead_time() -> None:
    assert next_possible_delivery(MONDAY, lead_time_days=0, delivery_weekdays=(MON,)) == MONDAY


def test_delivery_weekdays_must_not_be_empty() -> None:
    with pytest.raises(ValueError, match="weekdays"):
        next_possible_delivery(MONDAY, lead_time_days=1, delivery_weekdays=())


def test_stock_runs_out_on_the_first_day_usage_exceeds_it() -> None:
    assert stockout_date(MONDAY, 10.0, [3.0, 3.0, 3.0, 3.0], {}) == MONDAY + timedelta(days=3)
    assert project_stock(MONDAY, 10.0, [3.0, 3.0, 3.0, 3.0], {}) == [7.0, 4.0, 1.0, -2.0]


def test_using_exactly_what_is_left_is_not_running_out() -> None:
    assert stockout_date(MONDAY, 6.0, [3.0, 3.0, 0.0], {}) is None
    assert stockout_date(MONDAY, 6.0, [3.0, 3.0, 0.0, 1.0], {}) == MONDAY + timedelta(days=3)


def test_a_delivery_on_the_stockout_day_arrives_in_time() -> None:
    deliveries = {MONDAY + timedelta(days=3): 5.0}
    assert stockout_date(MONDAY, 10.0, [3.0, 3.0, 3.0, 3.0], deliveries) is None


def test_the_cepe_case_is_at_risk_on_monday_and_orderable_only_that_day() -> None:
    # 9 kg opening Monday, 2 kg a day: out on Friday. Supplier: 3 days, Mon/Thu.
    usage = [2.0, 2.0, 2.0, 2.0, 2.0, 2.5, 2.5]
    outlook = stock_outlook(MONDAY, 9.0, usage, {}, lead_time_days=3, delivery_weekdays=(MON, THU))
    assert outlook.stockout_date == FRIDAY
    assert outlook.next_possible_delivery == MONDAY + timedelta(days=3)  # Thursday
    assert outlook.order_by == MONDAY
    assert outlook.at_risk


def test_not_at_risk_while_an_order_tomorrow_still_arrives_in_time() -> None:
    # Sunday: an order placed on Monday still arrives Thursday, before Friday's stock-out.
    assert not is_at_risk(SUNDAY_BEFORE, FRIDAY, lead_time_days=3, delivery_weekdays=(MON, THU))
    assert order_by(SUNDAY_BEFORE, FRIDAY, lead_time_days=3, delivery_weekdays=(MON, THU)) == MONDAY


def test_too_late_to_order_is_still_at_risk() -> None:
    tuesday = MONDAY + timedelta(days=1)
    assert order_by(tuesday, FRIDAY, lead_time_days=3, delivery_weekdays=(MON, THU)) is None
    assert is_at_risk(tuesday, FRIDAY, lead_time_days=3, delivery_weekdays=(MON, THU))


def test_no_stockout_is_never_at_risk() -> None:
    outlook = stock_outlook(
        MONDAY, 100.0, [1.0] * 14, {}, lead_time_days=1, delivery_weekdays=(MON,)
    )
    assert outlook.stockout_date is None
    assert outlook.order_by is None
    assert not outlook.at_risk


def test_suggested_order_covers_the_days_after_arrival_in_whole_packs() -> None:
    order = suggest_order(
        MONDAY,
        9.0,
        [2.0] * 14,
        {},
        lead_time_days=3,
        delivery_weekdays=(MON, THU),
        reorder_point=2.0,
        pack_size=1.5,
        cover_days=4,
    )
    # Thursday opening: 9 - 3*2 = 3; need 4*2 + 2 - 3 = 7 -> 5 packs of 1.5.
    assert order is not None
    assert (order.arrives, order.packs, order.quantity) == (MONDAY + timedelta(days=3), 5, 7.5)


def test_no_order_is_suggested_when_stock_already_covers() -> None:
    order = suggest_order(
        MONDAY,
        50.0,
        [2.0] * 14,
        {},
        lead_time_days=3,
        delivery_weekdays=(MON, THU),
        reorder_point=2.0,
        pack_size=1.0,
        cover_days=4,
    )
    assert order is None


# -- the story, through the model ---------------------------------------------------------


@pytest.fixture(scope="module")
def story_db(tmp_path_factory: pytest.TempPathFactory) -> PlatformDB:
    path = tmp_path_factory.mktemp("story") / "platform.db"
    return PlatformDB.generate(path, restaurants=["aitor", "mert"])


def cepes(db: PlatformDB, day: date) -> tuple[bool, date | None]:
    result = answer(ForecastRequest.from_platform(db, "aitor", day)).ingredients["cepe-mushrooms"]
    return result.at_risk, result.stockout_date


def test_cepes_are_not_at_risk_the_sunday_before(story_db: PlatformDB) -> None:
    at_risk, stockout = cepes(story_db, SUNDAY_BEFORE)
    assert not at_risk
    assert stockout is not None and stockout >= FRIDAY - timedelta(days=1)


@pytest.mark.parametrize("day", INCIDENT_WEEK[:2], ids=["monday", "tuesday"])
def test_cepes_are_at_risk_on_monday_and_tuesday(story_db: PlatformDB, day: date) -> None:
    at_risk, stockout = cepes(story_db, day)
    assert at_risk
    assert stockout is not None
    assert FRIDAY - timedelta(days=1) <= stockout <= FRIDAY + timedelta(days=1)
    assert STORY_STOCKOUT_DAY == FRIDAY


def test_merts_oyster_mushrooms_turn_at_risk_on_wednesday(story_db: PlatformDB) -> None:
    def flagged(day: date) -> bool:
        result = answer(ForecastRequest.from_platform(story_db, "mert", day))
        return "oyster-mushrooms" in result.at_risk

    tuesday, wednesday = INCIDENT_WEEK[1], INCIDENT_WEEK[2]
    assert not flagged(tuesday)
    assert flagged(wednesday)


def test_forecast_is_plausible_for_the_cepes(story_db: PlatformDB) -> None:
    result = answer(ForecastRequest.from_platform(story_db, "aitor", MONDAY))
    forecast = result.ingredients["cepe-mushrooms"].forecast
    assert len(forecast) == 14
    assert all(math.isfinite(v) and 0.5 < v < 6.0 for v in forecast)
    # Tourist-heavy weekend: Saturday above Tuesday.
    assert forecast[5] > forecast[1]
