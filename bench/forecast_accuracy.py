"""Forecast accuracy: the inference service's model against the seasonal-naive forecast.

    .venv/bin/python bench/forecast_accuracy.py [--seed N] [--weeks N] [--no-write]

Generates the reference platform (:func:`cronclaim.demo.platform.generate_platform`),
and for every restaurant and ingredient holds out the last ``--weeks`` weeks of its
year of history (the days before the incident week). The model (additive Holt-Winters,
damped trend, weekly season, parameters grid-searched on the training part only) and the
seasonal-naive baseline (same weekday last week) forecast the held-out weeks from weekly
origins: at each origin both know every actual before it; the model's parameters stay
those fitted on the training part. Errors are scaled by the in-sample seasonal-naive
error of the training part (MASE, season 7) and summarised per series, then over all
series (mean, median, share of series where the model wins), for the 7-day horizon and
the service's 14-day horizon. The table goes to stdout and, between the ``forecast``
markers, to ``bench/RESULTS.md``.
"""

from __future__ import annotations

import argparse
import platform as host
import statistics
import sys
import time
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from _shared import RESULTS, write_section

from cronclaim.demo.forecast import BASELINE_NAME, MODEL_NAME, Backtest, backtest
from cronclaim.demo.platform import DEFAULT_SEED, generate_platform

BENCH_DIR = Path(__file__).resolve().parent
HORIZONS = (7, 14)


@dataclass(frozen=True, kw_only=True, slots=True)
class Summary:
    horizon: int
    series: int
    model_mean: float
    model_median: float
    naive_mean: float
    naive_median: float
    wins: int


def summarise(horizon: int, results: list[Backtest]) -> Summary:
    model = [r.model_mase for r in results]
    naive = [r.naive_mase for r in results]
    return Summary(
        horizon=horizon,
        series=len(results),
        model_mean=statistics.fmean(model),
        model_median=statistics.median(model),
        naive_mean=statistics.fmean(naive),
        naive_median=statistics.median(naive),
        wins=sum(m < n for m, n in zip(model, naive, strict=True)),
    )


def run(seed: int, weeks: int) -> tuple[list[Summary], dict[str, tuple[int, float, float]], float]:
    started = time.perf_counter()
    generated = generate_platform(seed)
    history_days = (generated.history_end - generated.first_day).days + 1
    by_horizon: dict[int, list[Backtest]] = defaultdict(list)
    by_restaurant: dict[str, list[Backtest]] = defaultdict(list)
    for (restaurant_id, _ingredient_id), series in generated.usage.items():
        history = series[:history_days]
        for horizon in HORIZONS:
            result = backtest(history, holdout_weeks=weeks, horizon=horizon)
            by_horizon[horizon].append(result)
            if horizon == HORIZONS[0]:
                by_restaurant[restaurant_id].append(result)
    summaries = [summarise(h, by_horizon[h]) for h in HORIZONS]
    per_restaurant = {
        rid: (
            len(results),
            statistics.fmean(r.model_mase for r in results),
            statistics.fmean(r.naive_mase for r in results),
        )
        for rid, results in by_restaurant.items()
    }
    return summaries, per_restaurant, time.perf_counter() - started


def render(
    seed: int,
    weeks: int,
    summaries: list[Summary],
    per_restaurant: dict[str, tuple[int, float, float]],
    elapsed: float,
) -> str:
    when = datetime.now(UTC).strftime("%Y-%m-%d")
    out = [
        "## Forecast accuracy",
        "",
        f"`bench/forecast_accuracy.py --seed {seed} --weeks {weeks}`, {when}, "
        f"Python {host.python_version()}, {elapsed:.1f} s. Model `{MODEL_NAME}` against "
        f"`{BASELINE_NAME}`; MASE scaled by the in-sample seasonal-naive error (season 7); "
        f"last {weeks} weeks of each series' history held out, forecast from weekly origins; "
        "lower is better, 1.0 is as good as last week's same weekday in-sample.",
        "",
        "| horizon | series | model MASE mean | model MASE median "
        "| seasonal-naive mean | seasonal-naive median | model better on |",
        "|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for s in summaries:
        out.append(
            f"| {s.horizon} days | {s.series} | {s.model_mean:.3f} | {s.model_median:.3f} "
            f"| {s.naive_mean:.3f} | {s.naive_median:.3f} | {s.wins}/{s.series} |"
        )
    out += [
        "",
        f"Per restaurant ({HORIZONS[0]}-day horizon, mean MASE over its ingredients):",
        "",
        "| restaurant | ingredients | model | seasonal-naive |",
        "|---|---:|---:|---:|",
    ]
    for rid, (count, model, naive) in per_restaurant.items():
        out.append(f"| {rid} | {count} | {model:.3f} | {naive:.3f} |")
    return "\n".join(out) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED, help="platform seed")
    parser.add_argument("--weeks", type=int, default=8, help="held-out weeks per series")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md")
    args = parser.parse_args(argv)
    if args.weeks < 2 or args.weeks > 26:
        parser.error("--weeks must be between 2 and 26")
    summaries, per_restaurant, elapsed = run(args.seed, args.weeks)
    section = render(args.seed, args.weeks, summaries, per_restaurant, elapsed)
    sys.stdout.write(section)
    if not args.no_write:
        write_section("forecast", section)
        print(f"written to {RESULTS}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
