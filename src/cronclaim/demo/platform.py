"""The restaurant platform's records and a seeded generator of a year of its life.

``generate_platform(seed)`` builds, reproducibly from the seed, every restaurant of
:mod:`cronclaim.demo.catalog` with its owner's devices, its ingredients, a year of daily
usage up to the eve of the incident week plus four weeks after it, the deliveries its
owner ordered, and the stock those leave day by day.

Usage is ``base * weekday * yearly * growth * (1 + footfall + noise)``: a weekly pattern
with tourist-heavy weekends, a yearly cycle (strong for coastal places, peaking in the
local summer and stronger on weekends), a slight growth, a footfall shock shared by the
whole kitchen that persists for a few days (AR(1): weather, events), and per-ingredient
noise. Closed weekdays use nothing.

Stock is counted when the day opens; a day's delivery arrives before service; demand
beyond what is on hand is lost (``shortfall``). Up to :data:`HISTORY_END` the owner
orders like a careful owner: on the last day an order can still arrive before stock
would dip under the ingredient's reorder point, enough packs to cover a few days (never
more than keeps within the shelf life). From the incident week on, only the standing
orders go on (fresh goods that keep three days or less: bread, fish); everything else
is ordered when the platform alerts the owner, which the generator leaves to the demo
(:meth:`PlatformDB.schedule_delivery <cronclaim.demo.platform_db.PlatformDB.schedule_delivery>`).
So only deliveries already on their way arrive, and stock runs down into at-risk alerts.

The story (:func:`stage_story`): Aitor orders cèpe mushrooms when the platform tells him
to. His last order before the incident week was placed on Monday 2026-05-11 for Thursday
05-14; the generator sizes that delivery (in whole packs) so that the stock opening
Monday 05-18 covers the actual usage of Monday to Thursday and about 60 % of Friday's.
The cèpe supplier needs 3 days and delivers on Mondays and Thursdays, so an order placed
on Monday arrives Thursday, in time, while one placed Tuesday or later arrives Monday
05-25: the forecast flags the cèpes at risk from Monday on, and without a reorder (the
alert never came) they run out on Friday 2026-05-22. Mert's oyster mushrooms in Ayvalik
are staged the same way (:data:`STORY_STOCKOUTS`): at risk from Wednesday, out on
Saturday 05-23. Nothing else is scripted; the other at-risk alerts of the week come from
stock simply running down.
"""

from __future__ import annotations

import hashlib
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from cronclaim.demo.catalog import RESTAURANTS, IngredientSpec, RestaurantSpec
from cronclaim.demo.forecast import next_possible_delivery, project_stock, suggest_order
from cronclaim.models import time_zone

DEFAULT_SEED = 606  # the incident's fix was PR #606
INCIDENT_WEEK_START = date(2026, 5, 18)  # Monday
INCIDENT_WEEK: tuple[date, ...] = tuple(INCIDENT_WEEK_START + timedelta(days=i) for i in range(7))
#: The last day of usage the platform had recorded when the incident week began.
HISTORY_END = INCIDENT_WEEK_START - timedelta(days=1)
HISTORY_DAYS = 365
#: Days of actual usage generated after HISTORY_END: the incident week and the 14-day
#: forecast horizon of its last day, with room to spare.
FUTURE_DAYS = 28

STORY_RESTAURANT = "aitor"
STORY_INGREDIENT = "cepe-mushrooms"
STORY_LAST_ORDER_DAY = date(2026, 5, 11)
STORY_LAST_DELIVERY_DAY = date(2026, 5, 14)
STORY_STOCKOUT_DAY = date(2026, 5, 22)
#: Ingredients that are on standing orders that go on without alerts (see the module
#: docstring): those that keep this many days or less.
STANDING_ORDER_SHELF_LIFE = 3


@dataclass(frozen=True, kw_only=True, slots=True)
class StoryStockout:
    """An ingredient whose last order before the incident week is sized so that, without
    a reorder, it runs out on ``stockout_day``, with ``share`` of that day's usage left
    when the day opens."""

    restaurant_id: str
    ingredient_id: str
    last_order_day: date
    last_delivery_day: date
    stockout_day: date
    share: float = 0.6


STORY_STOCKOUTS: tuple[StoryStockout, ...] = (
    # Aitor's cèpes: at risk from Monday 05-18, out on Friday 05-22.
    StoryStockout(
        restaurant_id=STORY_RESTAURANT,
        ingredient_id=STORY_INGREDIENT,
        last_order_day=STORY_LAST_ORDER_DAY,
        last_delivery_day=STORY_LAST_DELIVERY_DAY,
        stockout_day=STORY_STOCKOUT_DAY,
    ),
    # Mert's "same flow, mushroom": oyster mushrooms, at risk from Wednesday 05-20 (an
    # order placed Thursday arrives Tuesday 05-26), out on Saturday 05-23.
    StoryStockout(
        restaurant_id="mert",
        ingredient_id="oyster-mushrooms",
        last_order_day=date(2026, 5, 13),
        last_delivery_day=date(2026, 5, 15),
        stockout_day=date(2026, 5, 23),
    ),
)

_WEEKLY = (0.82, 0.84, 0.9, 0.98, 1.18, 1.3, 1.02)  # Monday .. Sunday
_GROWTH_PER_YEAR = 0.04
_FOOTFALL_PERSISTENCE = 0.55
_FOOTFALL_NOISE = 0.06
_TOKEN = re.compile(r"[0-9a-f]{64}")


# -- records ------------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class Device:
    """One of an owner's devices. ``token`` is its APNs device token (64 hex digits)."""

    token: str
    restaurant_id: str
    owner: str
    name: str
    kind: str
    registered: bool = True

    def __post_init__(self) -> None:
        if not _TOKEN.fullmatch(self.token):
            raise ValueError(f"device token must be 64 lower-case hex digits, got {self.token!r}")


@dataclass(frozen=True, kw_only=True, slots=True)
class Restaurant:
    id: str
    name: str
    city: str
    time_zone: str
    covers: int
    cuisine: str
    owner: str
    coastal: bool
    closed_weekdays: tuple[int, ...] = ()
    devices: tuple[Device, ...] = ()

    def __post_init__(self) -> None:
        time_zone(self.time_zone)  # InvalidInput naming the zone if it is unknown
        if self.covers <= 0:
            raise ValueError(f"{self.id}: covers must be positive, got {self.covers}")

    @property
    def zone(self) -> ZoneInfo:
        return time_zone(self.time_zone)


@dataclass(frozen=True, kw_only=True, slots=True)
class Ingredient:
    """What one restaurant stocks, and on what terms its supplier delivers it."""

    restaurant_id: str
    id: str
    name: str
    unit: str
    shelf_life_days: int
    lead_time_days: int
    delivery_weekdays: tuple[int, ...]  # 0 = Monday
    reorder_point: float
    pack_size: float

    def __post_init__(self) -> None:
        weekdays = tuple(sorted(set(self.delivery_weekdays)))
        if not weekdays or weekdays[0] < 0 or weekdays[-1] > 6:
            raise ValueError(f"{self.id}: delivery weekdays must be within 0..6, got {weekdays}")
        object.__setattr__(self, "delivery_weekdays", weekdays)
        if self.lead_time_days < 0 or self.shelf_life_days <= 0:
            raise ValueError(f"{self.id}: lead time >= 0 and shelf life > 0 days required")
        if self.pack_size <= 0 or self.reorder_point < 0:
            raise ValueError(f"{self.id}: pack size > 0 and reorder point >= 0 required")

    @property
    def cover_days(self) -> int:
        """Days an order is sized to cover: until the delivery after next, within shelf life."""
        return max(1, min(self.shelf_life_days, 7 // len(self.delivery_weekdays) + 2))

    @property
    def standing_order(self) -> bool:
        """Fresh goods re-ordered routinely, alert or not."""
        return self.shelf_life_days <= STANDING_ORDER_SHELF_LIFE

    def next_possible_delivery(self, ordered_on: date) -> date:
        return next_possible_delivery(
            ordered_on,
            lead_time_days=self.lead_time_days,
            delivery_weekdays=self.delivery_weekdays,
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class Delivery:
    restaurant_id: str
    ingredient_id: str
    day: date
    quantity: float
    ordered_on: date | None = None
    note: str = ""

    def __post_init__(self) -> None:
        if self.quantity <= 0:
            raise ValueError(f"delivery quantity must be positive, got {self.quantity}")


@dataclass(frozen=True, kw_only=True, slots=True)
class StockLevel:
    """One ingredient on one day: on hand at opening, delivered, used, and unmet demand."""

    restaurant_id: str
    ingredient_id: str
    day: date
    on_hand: float
    delivered: float
    used: float
    shortfall: float


@dataclass(frozen=True, kw_only=True, slots=True)
class Prediction:
    """What ``inventory-predict`` stored for one ingredient on one day."""

    restaurant_id: str
    ingredient_id: str
    day: date
    forecast: tuple[float, ...]
    stockout_date: date | None
    at_risk: bool
    model: str
    created_at: datetime

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        object.__setattr__(self, "forecast", tuple(float(v) for v in self.forecast))


@dataclass(frozen=True, kw_only=True, slots=True)
class ReorderLine:
    ingredient_id: str
    packs: int
    quantity: float
    arrives: date
    order_by: date | None = None
    reason: str = ""


@dataclass(frozen=True, kw_only=True, slots=True)
class ReorderList:
    """What ``ingredient-reorder-alert`` stored for one restaurant on one day."""

    restaurant_id: str
    day: date
    lines: tuple[ReorderLine, ...]
    created_at: datetime

    def __post_init__(self) -> None:
        if self.created_at.tzinfo is None or self.created_at.utcoffset() is None:
            raise ValueError("created_at must be timezone-aware")
        object.__setattr__(self, "created_at", self.created_at.astimezone(UTC))
        object.__setattr__(self, "lines", tuple(self.lines))


@dataclass(frozen=True, kw_only=True, slots=True)
class Platform:
    """Everything generated: the input of :meth:`PlatformDB.load`."""

    seed: int
    first_day: date
    history_end: date
    last_day: date
    restaurants: tuple[Restaurant, ...]
    ingredients: tuple[Ingredient, ...]
    #: (restaurant id, ingredient id) → daily usage from first_day to last_day.
    usage: Mapping[tuple[str, str], tuple[float, ...]] = field(repr=False)
    deliveries: tuple[Delivery, ...] = field(repr=False)
    #: (restaurant id, ingredient id) → one level per day from first_day to last_day.
    stock: Mapping[tuple[str, str], tuple[StockLevel, ...]] = field(repr=False)

    def restaurant(self, restaurant_id: str) -> Restaurant:
        for restaurant in self.restaurants:
            if restaurant.id == restaurant_id:
                return restaurant
        raise KeyError(f"no restaurant {restaurant_id!r}")

    def ingredients_of(self, restaurant_id: str) -> tuple[Ingredient, ...]:
        return tuple(i for i in self.ingredients if i.restaurant_id == restaurant_id)

    def level(self, restaurant_id: str, ingredient_id: str, day: date) -> StockLevel:
        return self.stock[restaurant_id, ingredient_id][(day - self.first_day).days]


# -- stock -------------------------------------------------------------------------------


def simulate_stock(
    restaurant_id: str,
    ingredient_id: str,
    start: date,
    on_hand: float,
    usage: Sequence[float],
    deliveries: Mapping[date, float],
) -> list[StockLevel]:
    """Evolve stock from ``on_hand`` at the opening of ``start`` through ``usage``."""
    levels: list[StockLevel] = []
    left = on_hand
    for offset, demand in enumerate(usage):
        day = start + timedelta(days=offset)
        delivered = deliveries.get(day, 0.0)
        available = left + delivered
        used = min(demand, available)
        levels.append(
            StockLevel(
                restaurant_id=restaurant_id,
                ingredient_id=ingredient_id,
                day=day,
                on_hand=_round(left),
                delivered=_round(delivered),
                used=_round(used),
                shortfall=_round(demand - used),
            )
        )
        left = available - used
    return levels


def _round(value: float) -> float:
    return round(value + 0.0, 4)


# -- generator ---------------------------------------------------------------------------


def device_token(seed: int, restaurant_id: str, device_name: str) -> str:
    """A stable 64-hex-digit APNs-style token for one device of one generated platform."""
    text = f"cronclaim-demo:{seed}:{restaurant_id}:{device_name}"
    return hashlib.sha256(text.encode()).hexdigest()


def _rng(seed: int, *parts: str) -> random.Random:
    digest = hashlib.sha256(":".join((str(seed), *parts)).encode()).digest()
    return random.Random(int.from_bytes(digest[:8], "big"))


def _base_daily(spec: RestaurantSpec, ingredient: IngredientSpec) -> float:
    return ingredient.per_guest * spec.covers * spec.turns


def _reorder_point(spec: RestaurantSpec, ingredient: IngredientSpec) -> float:
    safety = 0.6 * _base_daily(spec, ingredient) * min(max(1, ingredient.lead_time_days), 3)
    return float(math.ceil(safety)) if ingredient.unit == "pcs" else round(safety, 2)


def _day_factors(spec: RestaurantSpec, first: date, days: int) -> list[float]:
    """Usage per unit of base on each day, without noise: weekday, season and growth."""
    factors: list[float] = []
    for offset in range(days):
        day = first + timedelta(days=offset)
        weekday = day.weekday()
        if weekday in spec.closed:
            factors.append(0.0)
            continue
        weekly = _WEEKLY[weekday]
        weekend = weekday >= 5
        if weekend:
            weekly *= spec.tourist_weekend
        elif weekday == 4:
            weekly *= 1.0 + (spec.tourist_weekend - 1.0) / 2
        phase = 2.0 * math.pi * (day.timetuple().tm_yday - spec.peak_day) / 365.25
        yearly = 1.0 + spec.summer * (1.4 if weekend and spec.coastal else 1.0) * math.cos(phase)
        growth = 1.0 + _GROWTH_PER_YEAR * offset / 365.0
        factors.append(weekly * yearly * growth)
    return factors


def _quantize(value: float, unit: str) -> float:
    value = max(0.0, value)
    return float(round(value)) if unit == "pcs" else round(value, 2)


def _footfall(seed: int, restaurant_id: str, days: int) -> list[float]:
    rng = _rng(seed, restaurant_id, "footfall")
    shock = 0.0
    out: list[float] = []
    for _ in range(days):
        shock = _FOOTFALL_PERSISTENCE * shock + rng.gauss(0.0, _FOOTFALL_NOISE)
        out.append(shock)
    return out


def _usage(
    seed: int,
    spec: RestaurantSpec,
    ingredient: IngredientSpec,
    expected: Sequence[float],
    footfall: Sequence[float],
) -> list[float]:
    rng = _rng(seed, spec.id, ingredient.id, "usage")
    out: list[float] = []
    for mean, shock in zip(expected, footfall, strict=False):
        factor = max(0.0, 1.0 + shock + rng.gauss(0.0, ingredient.noise))
        out.append(_quantize(mean * factor, ingredient.unit))
    return out


def _owner_orders(
    ingredient: Ingredient,
    first: date,
    usage: Sequence[float],
    expected: Sequence[float],
    on_hand: float,
    order_until: date,
) -> list[Delivery]:
    """Simulate the owner ordering through ``order_until``; return the deliveries."""
    scheduled: dict[date, float] = {}
    deliveries: list[Delivery] = []
    left = on_hand
    for offset, demand in enumerate(usage):
        day = first + timedelta(days=offset)
        if day <= order_until:
            order = _order_if_needed(
                ingredient, day, left, expected[offset : offset + 42], scheduled
            )
            if order is not None:
                deliveries.append(order)
                scheduled[order.day] = scheduled.get(order.day, 0.0) + order.quantity
        left = max(0.0, left + scheduled.get(day, 0.0) - demand)
    return deliveries


def _order_if_needed(
    ingredient: Ingredient,
    day: date,
    on_hand: float,
    expected: Sequence[float],
    scheduled: Mapping[date, float],
) -> Delivery | None:
    """Order today if waiting a day would let stock dip under the reorder point."""
    next_chance = ingredient.next_possible_delivery(day + timedelta(days=1))
    horizon = (next_chance - day).days
    if on_hand - sum(expected[:horizon]) >= ingredient.reorder_point:
        return None  # enough even if nothing on its way arrives
    closing = project_stock(day, on_hand, expected[:horizon], scheduled)
    if min(closing) >= ingredient.reorder_point:
        return None
    order = suggest_order(
        day,
        on_hand,
        expected,
        scheduled,
        lead_time_days=ingredient.lead_time_days,
        delivery_weekdays=ingredient.delivery_weekdays,
        reorder_point=ingredient.reorder_point,
        pack_size=ingredient.pack_size,
        cover_days=ingredient.cover_days,
    )
    if order is None:
        return None
    return Delivery(
        restaurant_id=ingredient.restaurant_id,
        ingredient_id=ingredient.id,
        day=order.arrives,
        quantity=order.quantity,
        ordered_on=day,
    )


def _totals(deliveries: Sequence[Delivery]) -> dict[date, float]:
    totals: dict[date, float] = {}
    for delivery in deliveries:
        totals[delivery.day] = totals.get(delivery.day, 0.0) + delivery.quantity
    return totals


def stage_story(
    story: StoryStockout,
    ingredient: Ingredient,
    first: date,
    usage: Sequence[float],
    deliveries: list[Delivery],
    on_hand: float,
) -> list[Delivery]:
    """Drop every delivery from the story's last delivery day on, and add the last order,
    sized in whole packs (exactly if packs cannot fit) so that without a reorder the
    ingredient runs out on ``story.stockout_day`` and not before."""
    kept = [d for d in deliveries if d.day < story.last_delivery_day]
    before = simulate_stock(
        ingredient.restaurant_id, ingredient.id, first, on_hand, usage, _totals(kept)
    )
    start = (story.last_delivery_day - first).days
    end = (story.stockout_day - first).days
    opening = before[start].on_hand
    covered = sum(usage[start:end])  # from the delivery to the eve of the stock-out
    last_day = usage[end]
    exact = covered + story.share * last_day - opening
    packs = round(exact / ingredient.pack_size)
    left_on_the_day = opening + packs * ingredient.pack_size - covered
    fits = 0.2 * last_day < left_on_the_day < 0.8 * last_day
    quantity = packs * ingredient.pack_size if packs > 0 and fits else round(exact, 2)
    if quantity <= 0 or last_day <= 0:
        raise RuntimeError(
            f"cannot stage {story.ingredient_id} at {story.restaurant_id} with this seed: "
            f"{opening} on hand on {story.last_delivery_day} already lasts past "
            f"{story.stockout_day}"
        )
    kept.append(
        Delivery(
            restaurant_id=ingredient.restaurant_id,
            ingredient_id=ingredient.id,
            day=story.last_delivery_day,
            quantity=round(quantity, 4),
            ordered_on=story.last_order_day,
            note="last order before the incident week; the next was to follow an alert",
        )
    )
    return kept


def generate_platform(
    seed: int = DEFAULT_SEED,
    *,
    restaurants: Sequence[str] | None = None,
    history_end: date = HISTORY_END,
    history_days: int = HISTORY_DAYS,
    future_days: int = FUTURE_DAYS,
) -> Platform:
    """Generate the platform; the same arguments always give the same platform.

    ``restaurants`` limits generation to those ids (each restaurant's data depends only
    on the seed and its own id). The story's stock-outs (:data:`STORY_STOCKOUTS`) are
    staged when ``history_end`` is the eve of the incident week.
    """
    specs = RESTAURANTS
    if restaurants is not None:
        known = {spec.id for spec in RESTAURANTS}
        unknown = set(restaurants) - known
        if unknown:
            raise KeyError(f"unknown restaurant(s): {', '.join(sorted(unknown))}")
        specs = tuple(spec for spec in RESTAURANTS if spec.id in set(restaurants))
    first = history_end - timedelta(days=history_days - 1)
    days = history_days + future_days
    last = first + timedelta(days=days - 1)
    staged = history_end == HISTORY_END and future_days >= 7
    stories = {(st.restaurant_id, st.ingredient_id): st for st in STORY_STOCKOUTS}

    all_restaurants: list[Restaurant] = []
    all_ingredients: list[Ingredient] = []
    usage: dict[tuple[str, str], tuple[float, ...]] = {}
    stock: dict[tuple[str, str], tuple[StockLevel, ...]] = {}
    deliveries: list[Delivery] = []
    for spec in specs:
        all_restaurants.append(_restaurant(seed, spec))
        footfall = _footfall(seed, spec.id, days)
        factors = _day_factors(spec, first, days + 60)
        for item in spec.ingredients:
            ingredient = Ingredient(
                restaurant_id=spec.id,
                id=item.id,
                name=item.name,
                unit=item.unit,
                shelf_life_days=item.shelf_life_days,
                lead_time_days=item.lead_time_days,
                delivery_weekdays=item.delivery_weekdays,
                reorder_point=_reorder_point(spec, item),
                pack_size=item.pack_size,
            )
            all_ingredients.append(ingredient)
            base = _base_daily(spec, item)
            expected = [base * factor for factor in factors]
            series = _usage(seed, spec, item, expected, footfall)
            on_hand = float(
                math.ceil(
                    (sum(expected[: ingredient.cover_days]) + ingredient.reorder_point)
                    / item.pack_size
                )
                * item.pack_size
            )
            story = stories.get((spec.id, item.id)) if staged else None
            if story is not None:
                order_until = story.last_order_day - timedelta(days=1)
            elif ingredient.standing_order:
                order_until = last
            else:
                order_until = history_end
            ordered = _owner_orders(ingredient, first, series, expected, on_hand, order_until)
            if story is not None:
                ordered = stage_story(story, ingredient, first, series, ordered, on_hand)
            deliveries.extend(ordered)
            usage[spec.id, item.id] = tuple(series)
            stock[spec.id, item.id] = tuple(
                simulate_stock(spec.id, item.id, first, on_hand, series, _totals(ordered))
            )
    return Platform(
        seed=seed,
        first_day=first,
        history_end=history_end,
        last_day=last,
        restaurants=tuple(all_restaurants),
        ingredients=tuple(all_ingredients),
        usage=usage,
        deliveries=tuple(
            sorted(deliveries, key=lambda d: (d.restaurant_id, d.ingredient_id, d.day))
        ),
        stock=stock,
    )


def _restaurant(seed: int, spec: RestaurantSpec) -> Restaurant:
    devices = tuple(
        Device(
            token=device_token(seed, spec.id, device.name),
            restaurant_id=spec.id,
            owner=spec.owner,
            name=device.name,
            kind=device.kind,
            registered=device.registered,
        )
        for device in spec.devices
    )
    return Restaurant(
        id=spec.id,
        name=spec.name,
        city=spec.city,
        time_zone=spec.time_zone,
        covers=spec.covers,
        cuisine=spec.cuisine,
        owner=spec.owner,
        coastal=spec.coastal,
        closed_weekdays=spec.closed,
        devices=devices,
    )
