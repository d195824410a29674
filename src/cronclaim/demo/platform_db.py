"""The restaurant platform's own database: a SQLite file of its own (stdlib ``sqlite3``),
separate from cronclaim's claims database.

Every method opens a short-lived connection, so one ``PlatformDB`` can be shared by
threads and by processes (WAL mode, busy timeout). Writes are single transactions; the
two the jobs make are idempotent per restaurant and day: a retried run replaces what a
failed or duplicated run wrote, it never adds to it.

Days are stored as ISO dates (they sort as text), instants as ISO UTC timestamps. The
SQL is kept in the named constants below, one statement each; nothing is formatted in.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from pathlib import Path
from types import TracebackType
from typing import Self

from cronclaim.demo.platform import (
    DEFAULT_SEED,
    Delivery,
    Device,
    Ingredient,
    Platform,
    Prediction,
    ReorderLine,
    ReorderList,
    Restaurant,
    StockLevel,
    generate_platform,
    simulate_stock,
)

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS restaurants (
    id TEXT PRIMARY KEY,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    city TEXT NOT NULL,
    time_zone TEXT NOT NULL,
    covers INTEGER NOT NULL,
    cuisine TEXT NOT NULL,
    owner TEXT NOT NULL,
    coastal INTEGER NOT NULL,
    closed_weekdays TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS devices (
    token TEXT PRIMARY KEY,
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    position INTEGER NOT NULL,
    owner TEXT NOT NULL,
    name TEXT NOT NULL,
    kind TEXT NOT NULL,
    registered INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS ingredients (
    restaurant_id TEXT NOT NULL REFERENCES restaurants (id),
    id TEXT NOT NULL,
    position INTEGER NOT NULL,
    name TEXT NOT NULL,
    unit TEXT NOT NULL,
    shelf_life_days INTEGER NOT NULL,
    lead_time_days INTEGER NOT NULL,
    delivery_weekdays TEXT NOT NULL,
    reorder_point REAL NOT NULL,
    pack_size REAL NOT NULL,
    PRIMARY KEY (restaurant_id, id)
);
CREATE TABLE IF NOT EXISTS usage (
    restaurant_id TEXT NOT NULL,
    ingredient_id TEXT NOT NULL,
    day TEXT NOT NULL,
    quantity REAL NOT NULL,
    PRIMARY KEY (restaurant_id, ingredient_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS stock (
    restaurant_id TEXT NOT NULL,
    ingredient_id TEXT NOT NULL,
    day TEXT NOT NULL,
    on_hand REAL NOT NULL,
    delivered REAL NOT NULL,
    used REAL NOT NULL,
    shortfall REAL NOT NULL,
    PRIMARY KEY (restaurant_id, day, ingredient_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS deliveries (
    id INTEGER PRIMARY KEY,
    restaurant_id TEXT NOT NULL,
    ingredient_id TEXT NOT NULL,
    day TEXT NOT NULL,
    quantity REAL NOT NULL,
    ordered_on TEXT,
    note TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS deliveries_by_day ON deliveries (restaurant_id, day);
CREATE TABLE IF NOT EXISTS predictions (
    restaurant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    ingredient_id TEXT NOT NULL,
    forecast TEXT NOT NULL,
    stockout_date TEXT,
    at_risk INTEGER NOT NULL,
    model TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (restaurant_id, day, ingredient_id)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reorder_lists (
    restaurant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    created_at TEXT NOT NULL,
    PRIMARY KEY (restaurant_id, day)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS reorder_lines (
    restaurant_id TEXT NOT NULL,
    day TEXT NOT NULL,
    ingredient_id TEXT NOT NULL,
    packs INTEGER NOT NULL,
    quantity REAL NOT NULL,
    arrives TEXT NOT NULL,
    order_by TEXT,
    reason TEXT NOT NULL,
    PRIMARY KEY (restaurant_id, day, ingredient_id),
    FOREIGN KEY (restaurant_id, day) REFERENCES reorder_lists (restaurant_id, day)
) WITHOUT ROWID;
"""
# -- name: clear_all: empty every table before a load, children first
CLEAR_ALL = (
    "DELETE FROM reorder_lines",
    "DELETE FROM reorder_lists",
    "DELETE FROM predictions",
    "DELETE FROM deliveries",
    "DELETE FROM stock",
    "DELETE FROM usage",
    "DELETE FROM ingredients",
    "DELETE FROM devices",
    "DELETE FROM restaurants",
    "DELETE FROM meta",
)
# -- name: put_meta: remember the seed and the generated days
PUT_META = "INSERT OR REPLACE INTO meta (key, value) VALUES (?, ?)"
# -- name: get_meta
GET_META = "SELECT key, value FROM meta"
# -- name: insert_restaurant
INSERT_RESTAURANT = (
    "INSERT INTO restaurants (id, position, name, city, time_zone, covers, cuisine, owner, "
    "coastal, closed_weekdays) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# -- name: insert_device
INSERT_DEVICE = (
    "INSERT INTO devices (token, restaurant_id, position, owner, name, kind, registered) "
    "VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# -- name: insert_ingredient
INSERT_INGREDIENT = (
    "INSERT INTO ingredients (restaurant_id, id, position, name, unit, shelf_life_days, "
    "lead_time_days, delivery_weekdays, reorder_point, pack_size) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# -- name: insert_usage
INSERT_USAGE = "INSERT INTO usage (restaurant_id, ingredient_id, day, quantity) VALUES (?, ?, ?, ?)"
# -- name: put_stock: one day's level of one ingredient, replacing a recomputed one
PUT_STOCK = (
    "INSERT OR REPLACE INTO stock (restaurant_id, ingredient_id, day, on_hand, delivered, "
    "used, shortfall) VALUES (?, ?, ?, ?, ?, ?, ?)"
)
# -- name: insert_delivery
INSERT_DELIVERY = (
    "INSERT INTO deliveries (restaurant_id, ingredient_id, day, quantity, ordered_on, note) "
    "VALUES (?, ?, ?, ?, ?, ?)"
)
# -- name: list_restaurants: in catalogue order
LIST_RESTAURANTS = (
    "SELECT id, name, city, time_zone, covers, cuisine, owner, coastal, closed_weekdays "
    "FROM restaurants ORDER BY position"
)
# -- name: get_restaurant
GET_RESTAURANT = (
    "SELECT id, name, city, time_zone, covers, cuisine, owner, coastal, closed_weekdays "
    "FROM restaurants WHERE id = ?"
)
# -- name: list_devices: one restaurant's owner's devices
LIST_DEVICES = (
    "SELECT token, restaurant_id, owner, name, kind, registered FROM devices "
    "WHERE restaurant_id = ? ORDER BY position"
)
# -- name: set_device_registered
SET_DEVICE_REGISTERED = "UPDATE devices SET registered = ? WHERE token = ?"
# -- name: list_ingredients
LIST_INGREDIENTS = (
    "SELECT restaurant_id, id, name, unit, shelf_life_days, lead_time_days, "
    "delivery_weekdays, reorder_point, pack_size FROM ingredients "
    "WHERE restaurant_id = ? ORDER BY position"
)
# -- name: usage_until: daily usage before a day, oldest first
USAGE_UNTIL = (
    "SELECT ingredient_id, quantity FROM usage "
    "WHERE restaurant_id = ? AND day >= ? AND day < ? ORDER BY ingredient_id, day"
)
# -- name: usage_of: one ingredient's usage from a day on
USAGE_OF = (
    "SELECT quantity FROM usage WHERE restaurant_id = ? AND ingredient_id = ? AND day >= ? "
    "ORDER BY day"
)
# -- name: stock_on: every ingredient's level on one day
STOCK_ON = (
    "SELECT restaurant_id, ingredient_id, day, on_hand, delivered, used, shortfall "
    "FROM stock WHERE restaurant_id = ? AND day = ?"
)
# -- name: stock_between: levels of one restaurant in [since, until)
STOCK_BETWEEN = (
    "SELECT restaurant_id, ingredient_id, day, on_hand, delivered, used, shortfall "
    "FROM stock WHERE restaurant_id = ? AND day >= ? AND day < ? ORDER BY day, ingredient_id"
)
# -- name: shortfalls_between: days some demand went unmet, in [since, until)
SHORTFALLS_BETWEEN = (
    "SELECT restaurant_id, ingredient_id, day, on_hand, delivered, used, shortfall "
    "FROM stock WHERE restaurant_id = ? AND day >= ? AND day < ? AND shortfall > 0 "
    "ORDER BY day, ingredient_id"
)
# -- name: deliveries_between: deliveries arriving in [since, until)
DELIVERIES_BETWEEN = (
    "SELECT restaurant_id, ingredient_id, day, quantity, ordered_on, note FROM deliveries "
    "WHERE restaurant_id = ? AND day >= ? AND day < ? ORDER BY day, ingredient_id, id"
)
# -- name: delivered_totals: one ingredient's deliveries per day from a day on
DELIVERED_TOTALS = (
    "SELECT day, SUM(quantity) FROM deliveries "
    "WHERE restaurant_id = ? AND ingredient_id = ? AND day >= ? GROUP BY day"
)
# -- name: clear_predictions_of_day: what a retry of the same day replaces
CLEAR_PREDICTIONS_OF_DAY = "DELETE FROM predictions WHERE restaurant_id = ? AND day = ?"
# -- name: insert_prediction
INSERT_PREDICTION = (
    "INSERT INTO predictions (restaurant_id, day, ingredient_id, forecast, stockout_date, "
    "at_risk, model, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# -- name: latest_prediction_day: the newest day with predictions, on or before a day
LATEST_PREDICTION_DAY = "SELECT MAX(day) FROM predictions WHERE restaurant_id = ? AND day <= ?"
# -- name: predictions_of_day
PREDICTIONS_OF_DAY = (
    "SELECT restaurant_id, ingredient_id, day, forecast, stockout_date, at_risk, model, "
    "created_at FROM predictions WHERE restaurant_id = ? AND day = ? ORDER BY ingredient_id"
)
# -- name: count_predictions: rows for one restaurant and day (tests check no duplicates)
COUNT_PREDICTIONS = "SELECT COUNT(*) FROM predictions WHERE restaurant_id = ? AND day = ?"
# -- name: clear_reorder_lines_of_day
CLEAR_REORDER_LINES_OF_DAY = "DELETE FROM reorder_lines WHERE restaurant_id = ? AND day = ?"
# -- name: put_reorder_list: the list's header, replacing a retried one
PUT_REORDER_LIST = (
    "INSERT OR REPLACE INTO reorder_lists (restaurant_id, day, created_at) VALUES (?, ?, ?)"
)
# -- name: insert_reorder_line
INSERT_REORDER_LINE = (
    "INSERT INTO reorder_lines (restaurant_id, day, ingredient_id, packs, quantity, arrives, "
    "order_by, reason) VALUES (?, ?, ?, ?, ?, ?, ?, ?)"
)
# -- name: get_reorder_list
GET_REORDER_LIST = "SELECT created_at FROM reorder_lists WHERE restaurant_id = ? AND day = ?"
# -- name: reorder_lines_of_day
REORDER_LINES_OF_DAY = (
    "SELECT ingredient_id, packs, quantity, arrives, order_by, reason FROM reorder_lines "
    "WHERE restaurant_id = ? AND day = ? ORDER BY ingredient_id"
)

_FAR_FUTURE = "9999-12-31"


class NotFound(LookupError):
    """The platform has no such restaurant, ingredient, or data for that day."""


class PlatformDB:
    """The platform's state in its own SQLite file: see the module docstring."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        with self._connect() as conn:
            conn.executescript(SCHEMA)

    @classmethod
    def generate(
        cls,
        path: str | Path,
        *,
        seed: int = DEFAULT_SEED,
        restaurants: Sequence[str] | None = None,
    ) -> PlatformDB:
        """A database at ``path`` holding ``generate_platform(seed, restaurants=...)``,
        replacing whatever it held."""
        db = cls(path)
        db.load(generate_platform(seed, restaurants=restaurants))
        return db

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        """Nothing stays open between calls; kept so the database reads like a resource."""

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.execute("PRAGMA foreign_keys=ON")
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    # -- loading -----------------------------------------------------------------------

    def load(self, platform: Platform) -> None:
        """Replace everything with ``platform`` (predictions and reorder lists included)."""
        with self._transaction() as conn:
            for statement in CLEAR_ALL:
                conn.execute(statement)
            conn.executemany(
                PUT_META,
                [
                    ("seed", str(platform.seed)),
                    ("first_day", platform.first_day.isoformat()),
                    ("history_end", platform.history_end.isoformat()),
                    ("last_day", platform.last_day.isoformat()),
                ],
            )
            for position, r in enumerate(platform.restaurants):
                conn.execute(
                    INSERT_RESTAURANT,
                    (
                        r.id,
                        position,
                        r.name,
                        r.city,
                        r.time_zone,
                        r.covers,
                        r.cuisine,
                        r.owner,
                        int(r.coastal),
                        _weekdays_text(r.closed_weekdays),
                    ),
                )
                conn.executemany(
                    INSERT_DEVICE,
                    [
                        (d.token, r.id, i, d.owner, d.name, d.kind, int(d.registered))
                        for i, d in enumerate(r.devices)
                    ],
                )
            conn.executemany(
                INSERT_INGREDIENT,
                [
                    (
                        i.restaurant_id,
                        i.id,
                        position,
                        i.name,
                        i.unit,
                        i.shelf_life_days,
                        i.lead_time_days,
                        _weekdays_text(i.delivery_weekdays),
                        i.reorder_point,
                        i.pack_size,
                    )
                    for position, i in enumerate(platform.ingredients)
                ],
            )
            for (restaurant_id, ingredient_id), series in platform.usage.items():
                conn.executemany(
                    INSERT_USAGE,
                    [
                        (
                            restaurant_id,
                            ingredient_id,
                            (platform.first_day + timedelta(days=offset)).isoformat(),
                            quantity,
                        )
                        for offset, quantity in enumerate(series)
                    ],
                )
            for levels in platform.stock.values():
                conn.executemany(PUT_STOCK, [_stock_row(level) for level in levels])
            conn.executemany(INSERT_DELIVERY, [_delivery_row(d) for d in platform.deliveries])

    # -- reading -----------------------------------------------------------------------

    def _meta(self) -> dict[str, str]:
        with self._connect() as conn:
            return dict(conn.execute(GET_META).fetchall())

    def _meta_day(self, key: str) -> date:
        value = self._meta().get(key)
        if value is None:
            raise NotFound(f"{self.path} holds no generated platform; call load() first")
        return date.fromisoformat(value)

    @property
    def seed(self) -> int:
        value = self._meta().get("seed")
        if value is None:
            raise NotFound(f"{self.path} holds no generated platform; call load() first")
        return int(value)

    @property
    def first_day(self) -> date:
        """The first day of recorded usage."""
        return self._meta_day("first_day")

    @property
    def history_end(self) -> date:
        """The last day of usage recorded before the incident week."""
        return self._meta_day("history_end")

    @property
    def last_day(self) -> date:
        """The last day the generator simulated (usage and stock exist up to here)."""
        return self._meta_day("last_day")

    def restaurants(self) -> Iterator[Restaurant]:
        """Every restaurant with its devices, streamed in batches (fan-out over 50,000
        tenants must not load them all at once)."""
        with self._connect() as conn:
            cursor = conn.execute(LIST_RESTAURANTS)
            while True:
                rows = cursor.fetchmany(100)
                if not rows:
                    return
                for row in rows:
                    yield _restaurant(row, self._devices(conn, row[0]))

    def restaurant(self, restaurant_id: str) -> Restaurant:
        with self._connect() as conn:
            row = conn.execute(GET_RESTAURANT, (restaurant_id,)).fetchone()
            if row is None:
                raise NotFound(f"no restaurant {restaurant_id!r}")
            return _restaurant(row, self._devices(conn, restaurant_id))

    def devices(self, restaurant_id: str) -> list[Device]:
        """The owner's devices, registered or not (the push gateway answers 410 for the
        unregistered ones)."""
        with self._connect() as conn:
            return self._devices(conn, restaurant_id)

    @staticmethod
    def _devices(conn: sqlite3.Connection, restaurant_id: str) -> list[Device]:
        return [
            Device(
                token=row[0],
                restaurant_id=row[1],
                owner=row[2],
                name=row[3],
                kind=row[4],
                registered=bool(row[5]),
            )
            for row in conn.execute(LIST_DEVICES, (restaurant_id,))
        ]

    def mark_device_registered(self, token: str, registered: bool) -> None:
        """Record what the push gateway said (e.g. ``Unregistered``) about a device."""
        with self._transaction() as conn:
            if conn.execute(SET_DEVICE_REGISTERED, (int(registered), token)).rowcount != 1:
                raise NotFound(f"no device with token {token[:12]}...")

    def ingredients(self, restaurant_id: str) -> list[Ingredient]:
        with self._connect() as conn:
            rows = conn.execute(LIST_INGREDIENTS, (restaurant_id,)).fetchall()
        if not rows:
            self.restaurant(restaurant_id)  # NotFound for an unknown restaurant
        return [
            Ingredient(
                restaurant_id=row[0],
                id=row[1],
                name=row[2],
                unit=row[3],
                shelf_life_days=row[4],
                lead_time_days=row[5],
                delivery_weekdays=_weekdays(row[6]),
                reorder_point=row[7],
                pack_size=row[8],
            )
            for row in rows
        ]

    def usage_history(
        self, restaurant_id: str, until_day: date, *, since: date | None = None
    ) -> dict[str, list[float]]:
        """Daily usage per ingredient, oldest first, from ``since`` (default: the first
        recorded day) up to and excluding ``until_day``: what is known on its morning."""
        start = since or self.first_day
        history: dict[str, list[float]] = {i.id: [] for i in self.ingredients(restaurant_id)}
        with self._connect() as conn:
            for ingredient_id, quantity in conn.execute(
                USAGE_UNTIL, (restaurant_id, start.isoformat(), until_day.isoformat())
            ):
                history.setdefault(ingredient_id, []).append(quantity)
        return history

    def stock(self, restaurant_id: str, day: date) -> dict[str, float]:
        """On hand per ingredient when ``day`` opens (before that day's deliveries)."""
        return {
            level.ingredient_id: level.on_hand for level in self.stock_levels(restaurant_id, day)
        }

    def stock_levels(
        self, restaurant_id: str, day: date, until: date | None = None
    ) -> list[StockLevel]:
        """Full levels (on hand, delivered, used, shortfall) for ``day``, or for every day
        in ``[day, until)``."""
        with self._connect() as conn:
            if until is None:
                rows = conn.execute(STOCK_ON, (restaurant_id, day.isoformat())).fetchall()
            else:
                rows = conn.execute(
                    STOCK_BETWEEN, (restaurant_id, day.isoformat(), until.isoformat())
                ).fetchall()
        if not rows and until is None:
            raise NotFound(f"no stock recorded for {restaurant_id!r} on {day.isoformat()}")
        return [_level(row) for row in rows]

    def stockouts(self, restaurant_id: str, since: date, until: date) -> list[StockLevel]:
        """Levels in ``[since, until)`` on which some demand went unmet."""
        with self._connect() as conn:
            rows = conn.execute(
                SHORTFALLS_BETWEEN, (restaurant_id, since.isoformat(), until.isoformat())
            ).fetchall()
        return [_level(row) for row in rows]

    def deliveries(
        self, restaurant_id: str, since: date, until: date | None = None
    ) -> list[Delivery]:
        """Deliveries arriving in ``[since, until)`` (until: open-ended if ``None``)."""
        end = until.isoformat() if until is not None else _FAR_FUTURE
        with self._connect() as conn:
            rows = conn.execute(
                DELIVERIES_BETWEEN, (restaurant_id, since.isoformat(), end)
            ).fetchall()
        return [
            Delivery(
                restaurant_id=row[0],
                ingredient_id=row[1],
                day=date.fromisoformat(row[2]),
                quantity=row[3],
                ordered_on=date.fromisoformat(row[4]) if row[4] else None,
                note=row[5],
            )
            for row in rows
        ]

    # -- writing -----------------------------------------------------------------------

    def schedule_delivery(self, delivery: Delivery) -> None:
        """Add a delivery (a reorder) and re-evolve that ingredient's stock from its day."""
        start = delivery.day
        with self._transaction() as conn:
            conn.execute(INSERT_DELIVERY, _delivery_row(delivery))
            opening = conn.execute(STOCK_ON, (delivery.restaurant_id, start.isoformat())).fetchall()
            level = next((r for r in opening if r[1] == delivery.ingredient_id), None)
            if level is None:
                raise NotFound(
                    f"no stock of {delivery.ingredient_id!r} at {delivery.restaurant_id!r} "
                    f"on {start.isoformat()} (outside the simulated days?)"
                )
            usage = [
                row[0]
                for row in conn.execute(
                    USAGE_OF, (delivery.restaurant_id, delivery.ingredient_id, start.isoformat())
                )
            ]
            totals = {
                date.fromisoformat(day): quantity
                for day, quantity in conn.execute(
                    DELIVERED_TOTALS,
                    (delivery.restaurant_id, delivery.ingredient_id, start.isoformat()),
                )
            }
            levels = simulate_stock(
                delivery.restaurant_id, delivery.ingredient_id, start, level[3], usage, totals
            )
            conn.executemany(PUT_STOCK, [_stock_row(lv) for lv in levels])

    def save_predictions(
        self, restaurant_id: str, day: date, predictions: Iterable[Prediction]
    ) -> int:
        """Store one run's predictions for ``restaurant_id`` on ``day``, replacing any an
        earlier attempt stored for that day. Returns how many rows the day now has."""
        rows = []
        for p in predictions:
            if p.restaurant_id != restaurant_id or p.day != day:
                raise ValueError(
                    f"prediction for {p.restaurant_id}/{p.day} saved under {restaurant_id}/{day}"
                )
            rows.append(
                (
                    restaurant_id,
                    day.isoformat(),
                    p.ingredient_id,
                    json.dumps(list(p.forecast)),
                    p.stockout_date.isoformat() if p.stockout_date else None,
                    int(p.at_risk),
                    p.model,
                    p.created_at.isoformat(),
                )
            )
        with self._transaction() as conn:
            conn.execute(CLEAR_PREDICTIONS_OF_DAY, (restaurant_id, day.isoformat()))
            conn.executemany(INSERT_PREDICTION, rows)
            count: int = conn.execute(
                COUNT_PREDICTIONS, (restaurant_id, day.isoformat())
            ).fetchone()[0]
        return count

    def predictions(self, restaurant_id: str, day: date) -> list[Prediction]:
        """The predictions stored for exactly ``day`` (empty if none)."""
        with self._connect() as conn:
            rows = conn.execute(PREDICTIONS_OF_DAY, (restaurant_id, day.isoformat())).fetchall()
        return [_prediction(row) for row in rows]

    def latest_predictions(
        self, restaurant_id: str, *, as_of: date | None = None
    ) -> list[Prediction]:
        """The predictions of the newest day that has any (on or before ``as_of``)."""
        with self._connect() as conn:
            latest = conn.execute(
                LATEST_PREDICTION_DAY,
                (restaurant_id, as_of.isoformat() if as_of else _FAR_FUTURE),
            ).fetchone()[0]
            if latest is None:
                return []
            rows = conn.execute(PREDICTIONS_OF_DAY, (restaurant_id, latest)).fetchall()
        return [_prediction(row) for row in rows]

    def save_reorder_list(self, reorder_list: ReorderList) -> int:
        """Store the reorder list of one restaurant and day, replacing a retried one.
        Returns the number of lines stored."""
        key = (reorder_list.restaurant_id, reorder_list.day.isoformat())
        with self._transaction() as conn:
            conn.execute(CLEAR_REORDER_LINES_OF_DAY, key)
            conn.execute(PUT_REORDER_LIST, (*key, reorder_list.created_at.isoformat()))
            conn.executemany(
                INSERT_REORDER_LINE,
                [
                    (
                        *key,
                        line.ingredient_id,
                        line.packs,
                        line.quantity,
                        line.arrives.isoformat(),
                        line.order_by.isoformat() if line.order_by else None,
                        line.reason,
                    )
                    for line in reorder_list.lines
                ],
            )
        return len(reorder_list.lines)

    def reorder_list(self, restaurant_id: str, day: date) -> ReorderList | None:
        key = (restaurant_id, day.isoformat())
        with self._connect() as conn:
            header = conn.execute(GET_REORDER_LIST, key).fetchone()
            if header is None:
                return None
            rows = conn.execute(REORDER_LINES_OF_DAY, key).fetchall()
        return ReorderList(
            restaurant_id=restaurant_id,
            day=day,
            created_at=datetime.fromisoformat(header[0]),
            lines=tuple(
                ReorderLine(
                    ingredient_id=row[0],
                    packs=row[1],
                    quantity=row[2],
                    arrives=date.fromisoformat(row[3]),
                    order_by=date.fromisoformat(row[4]) if row[4] else None,
                    reason=row[5],
                )
                for row in rows
            ),
        )


def _weekdays_text(weekdays: Sequence[int]) -> str:
    return ",".join(str(d) for d in weekdays)


def _weekdays(text: str) -> tuple[int, ...]:
    return tuple(int(d) for d in text.split(",")) if text else ()


def _restaurant(row: Sequence[object], devices: list[Device]) -> Restaurant:
    return Restaurant(
        id=str(row[0]),
        name=str(row[1]),
        city=str(row[2]),
        time_zone=str(row[3]),
        covers=int(str(row[4])),
        cuisine=str(row[5]),
        owner=str(row[6]),
        coastal=bool(row[7]),
        closed_weekdays=_weekdays(str(row[8])),
        devices=tuple(devices),
    )


def _level(row: Sequence[object]) -> StockLevel:
    return StockLevel(
        restaurant_id=str(row[0]),
        ingredient_id=str(row[1]),
        day=date.fromisoformat(str(row[2])),
        on_hand=float(str(row[3])),
        delivered=float(str(row[4])),
        used=float(str(row[5])),
        shortfall=float(str(row[6])),
    )


def _stock_row(level: StockLevel) -> tuple[str, str, str, float, float, float, float]:
    return (
        level.restaurant_id,
        level.ingredient_id,
        level.day.isoformat(),
        level.on_hand,
        level.delivered,
        level.used,
        level.shortfall,
    )


def _delivery_row(delivery: Delivery) -> tuple[str, str, str, float, str | None, str]:
    return (
        delivery.restaurant_id,
        delivery.ingredient_id,
        delivery.day.isoformat(),
        delivery.quantity,
        delivery.ordered_on.isoformat() if delivery.ordered_on else None,
        delivery.note,
    )


def _prediction(row: Sequence[object]) -> Prediction:
    return Prediction(
        restaurant_id=str(row[0]),
        ingredient_id=str(row[1]),
        day=date.fromisoformat(str(row[2])),
        forecast=tuple(json.loads(str(row[3]))),
        stockout_date=date.fromisoformat(str(row[4])) if row[4] is not None else None,
        at_risk=bool(row[5]),
        model=str(row[6]),
        created_at=datetime.fromisoformat(str(row[7])),
    )
