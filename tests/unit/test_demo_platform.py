"""The reference platform's generated data and its SQLite database."""

from __future__ import annotations

import itertools
import statistics
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from cronclaim.demo.platform import (
    HISTORY_END,
    INCIDENT_WEEK,
    INCIDENT_WEEK_START,
    STORY_STOCKOUT_DAY,
    STORY_STOCKOUTS,
    Delivery,
    Platform,
    Prediction,
    ReorderLine,
    ReorderList,
    Restaurant,
    generate_platform,
)
from cronclaim.demo.platform_db import NotFound, PlatformDB
from cronclaim.exceptions import InvalidInput

MONDAY, TUESDAY, WEDNESDAY, THURSDAY, FRIDAY = INCIDENT_WEEK[:5]
CREATED = datetime(2026, 5, 19, 5, 0, 3, tzinfo=UTC)


@pytest.fixture(scope="module")
def platform() -> Platform:
    return generate_platform()


@pytest.fixture(scope="module")
def db(tmp_path_factory: pytest.TempPathFactory, platform: Platform) -> PlatformDB:
    database = PlatformDB(tmp_path_factory.mktemp("platform") / "platform.db")
    database.load(platform)
    return database


@pytest.fixture(scope="module")
def story_platform() -> Platform:
    return generate_platform(restaurants=["aitor", "mert"])


@pytest.fixture
def small_db(tmp_path: Path, story_platform: Platform) -> Iterator[PlatformDB]:
    """A fresh writable database with the two story restaurants only."""
    with PlatformDB(tmp_path / "small.db") as database:
        database.load(story_platform)
        yield database


def usage_on(platform: Platform, restaurant: str, ingredient: str, day: date) -> float:
    return platform.usage[restaurant, ingredient][(day - platform.first_day).days]


# -- generation ---------------------------------------------------------------------------


def test_same_seed_generates_the_same_platform(platform: Platform) -> None:
    again = generate_platform(restaurants=["aitor", "olivia"])
    for key in (("aitor", "cepe-mushrooms"), ("olivia", "barramundi")):
        assert again.usage[key] == platform.usage[key]
        assert again.stock[key] == platform.stock[key]
    assert again.restaurant("aitor") == platform.restaurant("aitor")


def test_another_seed_generates_other_usage_and_device_tokens(platform: Platform) -> None:
    other = generate_platform(seed=7, restaurants=["aitor"])
    assert other.usage["aitor", "salt-cod"] != platform.usage["aitor", "salt-cod"]
    assert (
        other.restaurant("aitor").devices[0].token != platform.restaurant("aitor").devices[0].token
    )


def test_the_story_restaurants_are_there_as_told(platform: Platform) -> None:
    aitor = platform.restaurant("aitor")
    assert (aitor.name, aitor.covers, aitor.time_zone, aitor.owner) == (
        "Pintxos del Mercado",
        38,
        "Europe/Madrid",
        "Aitor",
    )
    assert "Bilbao" in aitor.city and "Casco Viejo" in aitor.city
    assert "cèpe mushrooms" in {i.name for i in platform.ingredients_of("aitor")}
    mert = platform.restaurant("mert")
    assert (mert.name, mert.covers, mert.time_zone, mert.owner) == (
        "Ayvalık Köfte + Deniz",  # noqa: RUF001 - Turkish dotless i
        65,
        "Europe/Istanbul",
        "Mert",
    )
    assert "Ayvalık" in mert.city  # noqa: RUF001 and "Cunda" in mert.city
    assert mert.cuisine == "Aegean seafood"


def test_restaurants_span_zones_from_the_americas_to_australia(platform: Platform) -> None:
    zones = {r.time_zone for r in platform.restaurants}
    assert len(platform.restaurants) >= 10
    assert any(z.startswith("America/") for z in zones)
    assert any(z.startswith("Australia/") for z in zones)
    assert len(zones) >= 8


def test_every_restaurant_has_an_owner_device_and_ingredients(platform: Platform) -> None:
    usable = [
        r
        for r in platform.restaurants
        if any(d.registered for d in r.devices) and platform.ingredients_of(r.id)
    ]
    assert len(usable) >= 7
    tokens = [d.token for r in platform.restaurants for d in r.devices]
    assert len(tokens) == len(set(tokens))
    assert all(len(t) == 64 for t in tokens)


def test_one_device_is_unregistered_to_exercise_410(platform: Platform) -> None:
    unregistered = [d for r in platform.restaurants for d in r.devices if not d.registered]
    assert [d.restaurant_id for d in unregistered] == ["lars"]


def test_unknown_time_zone_is_rejected() -> None:
    with pytest.raises(InvalidInput, match="Mars/Olympus"):
        Restaurant(
            id="x",
            name="x",
            city="x",
            time_zone="Mars/Olympus",
            covers=10,
            cuisine="x",
            owner="x",
            coastal=False,
        )


def test_a_year_of_history_ends_on_the_eve_of_the_incident_week(platform: Platform) -> None:
    assert platform.history_end == HISTORY_END == INCIDENT_WEEK_START - timedelta(days=1)
    assert (platform.history_end - platform.first_day).days + 1 == 365
    assert platform.last_day >= INCIDENT_WEEK[-1] + timedelta(days=14)
    for series in platform.usage.values():
        assert len(series) == (platform.last_day - platform.first_day).days + 1
        assert min(series) >= 0


def test_weekends_are_busier_than_weekdays(platform: Platform) -> None:
    series = platform.usage["aitor", "salt-cod"]
    by_weekday: dict[int, list[float]] = {}
    for offset, value in enumerate(series):
        weekday = (platform.first_day + timedelta(days=offset)).weekday()
        by_weekday.setdefault(weekday, []).append(value)
    saturday = statistics.fmean(by_weekday[5])
    tuesday = statistics.fmean(by_weekday[1])
    assert saturday > 1.3 * tuesday


def test_coastal_summer_peaks_in_the_local_summer(platform: Platform) -> None:
    def month_mean(restaurant: str, ingredient: str, year: int, month: int) -> float:
        return statistics.fmean(
            v
            for offset, v in enumerate(platform.usage[restaurant, ingredient])
            if (d := platform.first_day + timedelta(days=offset)).year == year and d.month == month
        )

    # Aegean summer: August is far busier than February.
    assert month_mean("mert", "sea-bass", 2025, 8) > 1.5 * month_mean("mert", "sea-bass", 2026, 2)
    # Sydney: the southern summer peaks in January.
    assert month_mean("olivia", "barramundi", 2026, 1) > 1.3 * month_mean(
        "olivia", "barramundi", 2025, 7
    )


def test_closed_days_use_nothing(platform: Platform) -> None:
    sophie = platform.restaurant("sophie")
    assert sophie.closed_weekdays == (6, 0)
    for offset, value in enumerate(platform.usage["sophie", "butter"]):
        if (platform.first_day + timedelta(days=offset)).weekday() in (6, 0):
            assert value == 0


def test_stock_evolves_from_opening_deliveries_and_usage(platform: Platform) -> None:
    for key, levels in platform.stock.items():
        demand = platform.usage[key]
        for today, tomorrow in itertools.pairwise(levels):
            assert abs(tomorrow.on_hand - (today.on_hand + today.delivered - today.used)) < 1e-3
        for level, wanted in zip(levels, demand, strict=True):
            assert abs(level.used + level.shortfall - wanted) < 1e-3
            assert level.on_hand >= 0


def test_deliveries_add_up_to_what_stock_received(platform: Platform) -> None:
    totals: dict[tuple[str, str, date], float] = {}
    for d in platform.deliveries:
        if d.day > platform.last_day:
            continue  # ordered near the end of the simulation, arriving after it
        key = (d.restaurant_id, d.ingredient_id, d.day)
        totals[key] = totals.get(key, 0.0) + d.quantity
    received = {
        (lv.restaurant_id, lv.ingredient_id, lv.day): lv.delivered
        for levels in platform.stock.values()
        for lv in levels
        if lv.delivered
    }
    assert received == pytest.approx(totals)


def test_the_careful_owner_rarely_runs_out_before_the_incident(platform: Platform) -> None:
    history = [lv for levels in platform.stock.values() for lv in levels if lv.day <= HISTORY_END]
    short = [lv for lv in history if lv.shortfall > 0]
    assert len(short) < 0.01 * len(history)


def test_cepes_run_out_on_friday_of_the_incident_week_and_not_before(platform: Platform) -> None:
    levels = platform.stock["aitor", "cepe-mushrooms"]
    first_short = next(lv for lv in levels if lv.day >= INCIDENT_WEEK_START and lv.shortfall > 0)
    assert first_short.day == STORY_STOCKOUT_DAY == FRIDAY
    monday = platform.level("aitor", "cepe-mushrooms", MONDAY)
    monday_to_thursday = sum(
        usage_on(platform, "aitor", "cepe-mushrooms", MONDAY + timedelta(days=i)) for i in range(4)
    )
    assert monday_to_thursday < monday.on_hand
    assert monday.on_hand < monday_to_thursday + usage_on(
        platform, "aitor", "cepe-mushrooms", FRIDAY
    )
    arriving = [
        d
        for d in platform.deliveries
        if (d.restaurant_id, d.ingredient_id) == ("aitor", "cepe-mushrooms")
        and d.day >= INCIDENT_WEEK_START
    ]
    assert arriving == []


@pytest.mark.parametrize("seed", [1, 2, 3, 2026])
def test_every_story_stockout_is_staged_for_other_seeds_too(seed: int) -> None:
    staged = generate_platform(seed=seed, restaurants=["aitor", "mert"])
    for story in STORY_STOCKOUTS:
        levels = staged.stock[story.restaurant_id, story.ingredient_id]
        first_short = next(
            lv for lv in levels if lv.day >= story.last_delivery_day and lv.shortfall > 0
        )
        assert first_short.day == story.stockout_day


# -- the database -------------------------------------------------------------------------


def test_restaurants_are_streamed_with_their_devices(db: PlatformDB, platform: Platform) -> None:
    stream = db.restaurants()
    assert iter(stream) is stream
    first = next(stream)
    assert first == platform.restaurants[0]
    assert [r.id for r in stream] == [r.id for r in platform.restaurants[1:]]


def test_restaurant_and_devices_round_trip(db: PlatformDB, platform: Platform) -> None:
    assert db.restaurant("mert") == platform.restaurant("mert")
    assert db.devices("lars") == list(platform.restaurant("lars").devices)
    with pytest.raises(NotFound, match="nowhere"):
        db.restaurant("nowhere")


def test_ingredients_round_trip(db: PlatformDB, platform: Platform) -> None:
    assert db.ingredients("aitor") == list(platform.ingredients_of("aitor"))


def test_usage_history_stops_before_the_day_asked(db: PlatformDB, platform: Platform) -> None:
    history = db.usage_history("aitor", TUESDAY)
    assert set(history) == {i.id for i in platform.ingredients_of("aitor")}
    series = history["cepe-mushrooms"]
    assert len(series) == (TUESDAY - platform.first_day).days
    assert series[-1] == usage_on(platform, "aitor", "cepe-mushrooms", MONDAY)
    recent = db.usage_history("aitor", TUESDAY, since=MONDAY - timedelta(days=6))
    assert recent["cepe-mushrooms"] == series[-7:]


def test_stock_is_the_opening_count_of_the_day(db: PlatformDB, platform: Platform) -> None:
    stock = db.stock("aitor", MONDAY)
    assert stock["cepe-mushrooms"] == platform.level("aitor", "cepe-mushrooms", MONDAY).on_hand
    with pytest.raises(NotFound):
        db.stock("aitor", date(2030, 1, 1))


def test_deliveries_on_their_way_are_listed(db: PlatformDB, platform: Platform) -> None:
    listed = db.deliveries("aitor", MONDAY, MONDAY + timedelta(days=14))
    expected = [
        d
        for d in platform.deliveries
        if d.restaurant_id == "aitor" and MONDAY <= d.day < MONDAY + timedelta(days=14)
    ]
    assert sorted(listed, key=repr) == sorted(expected, key=repr)


def test_stockouts_of_the_week_include_fridays_cepes(db: PlatformDB) -> None:
    found = db.stockouts("aitor", MONDAY, FRIDAY + timedelta(days=1))
    assert ("cepe-mushrooms", FRIDAY) in {(lv.ingredient_id, lv.day) for lv in found}


def prediction(
    ingredient: str, day: date, *, at_risk: bool, created: datetime = CREATED
) -> Prediction:
    return Prediction(
        restaurant_id="aitor",
        ingredient_id=ingredient,
        day=day,
        forecast=(1.0,) * 14,
        stockout_date=FRIDAY if at_risk else None,
        at_risk=at_risk,
        model="test",
        created_at=created,
    )


def test_saving_predictions_twice_replaces_them(small_db: PlatformDB) -> None:
    first = [
        prediction("cepe-mushrooms", TUESDAY, at_risk=False),
        prediction("eggs", TUESDAY, at_risk=False),
    ]
    assert small_db.save_predictions("aitor", TUESDAY, first) == 2
    retry = [
        prediction("cepe-mushrooms", TUESDAY, at_risk=True, created=CREATED + timedelta(minutes=1))
    ]
    assert small_db.save_predictions("aitor", TUESDAY, retry) == 1
    stored = small_db.predictions("aitor", TUESDAY)
    assert [(p.ingredient_id, p.at_risk, p.created_at) for p in stored] == [
        ("cepe-mushrooms", True, CREATED + timedelta(minutes=1))
    ]


def test_predictions_for_another_restaurant_or_day_are_refused(small_db: PlatformDB) -> None:
    with pytest.raises(ValueError, match="saved under"):
        small_db.save_predictions("aitor", MONDAY, [prediction("eggs", TUESDAY, at_risk=False)])


def test_latest_predictions_are_those_of_the_newest_day(small_db: PlatformDB) -> None:
    assert small_db.latest_predictions("aitor") == []
    small_db.save_predictions("aitor", MONDAY, [prediction("eggs", MONDAY, at_risk=False)])
    small_db.save_predictions(
        "aitor", TUESDAY, [prediction("cepe-mushrooms", TUESDAY, at_risk=True)]
    )
    latest = small_db.latest_predictions("aitor")
    assert [(p.day, p.ingredient_id, p.stockout_date) for p in latest] == [
        (TUESDAY, "cepe-mushrooms", FRIDAY)
    ]
    assert [p.day for p in small_db.latest_predictions("aitor", as_of=MONDAY)] == [MONDAY]
    assert small_db.latest_predictions("mert") == []


def test_saving_a_reorder_list_twice_replaces_it(small_db: PlatformDB) -> None:
    line = ReorderLine(
        ingredient_id="cepe-mushrooms", packs=6, quantity=6.0, arrives=THURSDAY, order_by=MONDAY
    )
    small_db.save_reorder_list(
        ReorderList(restaurant_id="aitor", day=MONDAY, lines=(line,), created_at=CREATED)
    )
    other = ReorderLine(ingredient_id="eggs", packs=2, quantity=60.0, arrives=WEDNESDAY)
    assert (
        small_db.save_reorder_list(
            ReorderList(restaurant_id="aitor", day=MONDAY, lines=(line, other), created_at=CREATED)
        )
        == 2
    )
    stored = small_db.reorder_list("aitor", MONDAY)
    assert stored is not None
    assert stored.lines == (line, other)
    assert small_db.reorder_list("aitor", TUESDAY) is None


def test_a_reorder_on_monday_saves_fridays_cepes(small_db: PlatformDB) -> None:
    small_db.schedule_delivery(
        Delivery(
            restaurant_id="aitor",
            ingredient_id="cepe-mushrooms",
            day=THURSDAY,
            quantity=8.0,
            ordered_on=MONDAY,
            note="after the at-risk alert",
        )
    )
    week = small_db.stockouts("aitor", MONDAY, FRIDAY + timedelta(days=1))
    assert "cepe-mushrooms" not in {lv.ingredient_id for lv in week}
    thursday = [
        lv
        for lv in small_db.stock_levels("aitor", THURSDAY)
        if lv.ingredient_id == "cepe-mushrooms"
    ]
    assert thursday[0].delivered == 8.0


def test_a_device_can_be_marked_unregistered(small_db: PlatformDB) -> None:
    token = small_db.devices("mert")[0].token
    small_db.mark_device_registered(token, False)
    assert not small_db.devices("mert")[0].registered
    with pytest.raises(NotFound):
        small_db.mark_device_registered("0" * 64, False)


def test_the_database_holds_its_own_days(small_db: PlatformDB) -> None:
    assert small_db.history_end == HISTORY_END
    assert small_db.first_day == HISTORY_END - timedelta(days=364)
    assert small_db.last_day > INCIDENT_WEEK[-1]
