"""The story's original code, before its fix (PR #606), for ``cronclaim demo`` to replay.

A hand-rolled claim table: each fire of a job claims ``inventory-predict:<restaurant>:
<date>`` with ``INSERT OR IGNORE`` and runs the side effect only if it inserted the row.
It releases the claim (deletes the row, so a later fire may claim it) when the
inference service answers non-OK, and marks it finished (``released_at``) on success.
When the call *throws* (a timeout), nothing releases it: the exception propagates to
``run_cron_safe``, the outer catch-and-log, which logs it and returns. The claim stays
held, and every later fire of that day sees "already claimed" and skips.

Written plainly, the way the original TypeScript read, translated line for line (``fetch``
is ``httpx``); nothing here uses cronclaim's claims. The scheduler fires each job at its
local time and, as the platform's at-least-once safety net the claim table exists for,
re-fires it every 15 minutes for the following 45 minutes.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx

from cronclaim.clock import VirtualClock
from cronclaim.demo.inference import ForecastRequest, ForecastResult
from cronclaim.demo.jobs import (
    AT_RISK,
    PREDICT,
    REORDER,
    REORDER_LIST,
    at_risk_text,
    reorder_json,
    reorder_list,
    short_day,
)
from cronclaim.demo.platform import Restaurant
from cronclaim.demo.platform_db import PlatformDB

log = logging.getLogger("thmenu.cron")

SCHEMA = """
CREATE TABLE IF NOT EXISTS cron_idempotency_claims (
    claim_key TEXT PRIMARY KEY,
    claimed_at TEXT NOT NULL,
    released_at TEXT
);
"""
# -- name: acquire_claim: the winner inserts the row; everyone else changes nothing
ACQUIRE_CLAIM = (
    "INSERT OR IGNORE INTO cron_idempotency_claims (claim_key, claimed_at) VALUES (?, ?)"
)
# -- name: release_claim: give the occurrence back so a later fire may claim it
RELEASE_CLAIM = "DELETE FROM cron_idempotency_claims WHERE claim_key = ?"
# -- name: finish_claim: the side effect happened; the row stays so later fires skip
FINISH_CLAIM = "UPDATE cron_idempotency_claims SET released_at = ? WHERE claim_key = ?"
# -- name: orphaned_claims: the post-mortem's audit query
ORPHANED_CLAIMS = (
    "SELECT claim_key, claimed_at FROM cron_idempotency_claims "
    "WHERE released_at IS NULL AND claimed_at < ? ORDER BY claim_key"
)
# -- name: unreleased_claims: every claim never released nor finished, whatever its age
UNRELEASED_CLAIMS = (
    "SELECT claim_key, claimed_at FROM cron_idempotency_claims "
    "WHERE released_at IS NULL ORDER BY claim_key"
)

#: The safety-net re-fires after each scheduled fire.
REFIRES = (timedelta(minutes=15), timedelta(minutes=30), timedelta(minutes=45))


@dataclass(frozen=True, kw_only=True, slots=True)
class Fire:
    """One fire of one job for one restaurant, as the naive code logged it."""

    at: datetime
    job: str
    restaurant_id: str
    day: date
    claim_key: str
    outcome: str  # ran | skipped | released | threw
    detail: str = ""
    pushed: int = 0


@dataclass
class NaiveCron:
    """The old platform's two inventory jobs over its claim table at ``claims_path``."""

    claims_path: Path
    platform: PlatformDB
    inference_url: str
    push_url: str
    clock: VirtualClock
    inference_timeout: float = 5.0
    fires: list[Fire] = field(default_factory=list)

    def __post_init__(self) -> None:
        # One connection for the run, like the worker's database binding.
        self._conn = sqlite3.connect(
            self.claims_path, timeout=30.0, isolation_level=None, check_same_thread=False
        )
        self._conn.execute("PRAGMA journal_mode=WAL")
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.executescript(SCHEMA)
        self._http = httpx.Client(timeout=self.inference_timeout)
        self._names: dict[str, dict[str, str]] = {}

    def close(self) -> None:
        self._http.close()
        self._conn.close()

    @contextmanager
    def _db(self) -> Iterator[sqlite3.Connection]:
        yield self._conn

    # -- the claim table ---------------------------------------------------------------

    def acquire_claim(self, claim_key: str) -> bool:
        with self._db() as db:
            return db.execute(ACQUIRE_CLAIM, (claim_key, self._now())).rowcount == 1

    def release_claim(self, claim_key: str) -> None:
        with self._db() as db:
            db.execute(RELEASE_CLAIM, (claim_key,))

    def finish_claim(self, claim_key: str) -> None:
        with self._db() as db:
            db.execute(FINISH_CLAIM, (self._now(), claim_key))

    def orphaned_claims(self, now: datetime) -> list[tuple[str, str]]:
        """``released_at IS NULL AND claimed_at < now - 24h``: the post-mortem's audit."""
        cutoff = (now - timedelta(hours=24)).isoformat()
        with self._db() as db:
            return [(str(k), str(c)) for k, c in db.execute(ORPHANED_CLAIMS, (cutoff,))]

    def unreleased_claims(self) -> list[tuple[str, str]]:
        with self._db() as db:
            return [(str(k), str(c)) for k, c in db.execute(UNRELEASED_CLAIMS)]

    def _now(self) -> str:
        return self.clock.now().isoformat()

    # -- the jobs, as the story wrote them --------------------------------------------------

    def run_cron_safe(self, job: str, restaurant: Restaurant, day: date) -> None:
        """The outer wrapper: log whatever the job throws, and return."""
        body: Callable[[Restaurant, date], None] = (
            self.inventory_predict if job == PREDICT else self.ingredient_reorder_alert
        )
        try:
            body(restaurant, day)
        except Exception as err:
            log.error("[BEACON:cron_fired] %s %s failed: %s", job, restaurant.id, err)
            self._fired(job, restaurant.id, day, "threw", f"{type(err).__name__}: {err}")

    def inventory_predict(self, restaurant: Restaurant, day: date) -> None:
        claim_key = f"{PREDICT}:{restaurant.id}:{day.isoformat()}"
        if not self.acquire_claim(claim_key):
            self._fired(PREDICT, restaurant.id, day, "skipped", "already claimed")
            return
        request = ForecastRequest.from_platform(self.platform, restaurant.id, day)
        res = self._http.post(
            self.inference_url + "/v1/forecast",
            json=request.to_json(),
            headers={"idempotency-key": claim_key, "x-caller": "thmenu-cron"},
        )
        if res.status_code != 200:
            self.release_claim(claim_key)
            self._fired(
                PREDICT, restaurant.id, day, "released", f"inference answered {res.status_code}"
            )
            return
        result = ForecastResult.from_json(res.json())
        self.platform.save_predictions(restaurant.id, day, result.to_predictions(self.clock.now()))
        pushed = 0
        for ingredient_id in result.at_risk:
            outlook = result.ingredients[ingredient_id]
            for device in restaurant.devices:
                if device.registered:
                    pushed += self._push(
                        device.token,
                        f"{restaurant.name}: {self._name(restaurant.id, ingredient_id)} at risk",
                        at_risk_text(
                            day,
                            outlook.stockout_date,
                            outlook.order_by,
                            outlook.next_possible_delivery,
                        ),
                        {
                            "kind": AT_RISK,
                            "restaurant_id": restaurant.id,
                            "ingredient": ingredient_id,
                            "day": day.isoformat(),
                        },
                    )
        self.finish_claim(claim_key)
        self._fired(PREDICT, restaurant.id, day, "ran", "", pushed)

    def ingredient_reorder_alert(self, restaurant: Restaurant, day: date) -> None:
        claim_key = f"{REORDER}:{restaurant.id}:{day.isoformat()}"
        if not self.acquire_claim(claim_key):
            self._fired(REORDER, restaurant.id, day, "skipped", "already claimed")
            return
        if not self.platform.predictions(restaurant.id, day):
            # No predictions today: nothing to reorder from. Done for the day.
            self.finish_claim(claim_key)
            self._fired(REORDER, restaurant.id, day, "ran", "no predictions today")
            return
        reorder = reorder_list(self.platform, restaurant.id, day, self.clock.now())
        self.platform.save_reorder_list(reorder)
        pushed = 0
        if reorder.lines:
            body = "; ".join(
                f"{self._name(restaurant.id, line.ingredient_id)} {line.quantity:g} "
                f"(arrives {short_day(line.arrives)})"
                for line in reorder.lines
            )
            for device in restaurant.devices:
                if device.registered:
                    pushed += self._push(
                        device.token,
                        f"{restaurant.name}: reorder today ({len(reorder.lines)})",
                        body,
                        {"kind": REORDER_LIST, **reorder_json(reorder)},
                    )
        self.finish_claim(claim_key)
        self._fired(REORDER, restaurant.id, day, "ran", "", pushed)

    def _push(self, token: str, title: str, body: str, custom: dict[str, Any]) -> int:
        payload = {"aps": {"alert": {"title": title, "body": body}, "sound": "default"}, **custom}
        res = self._http.post(
            self.push_url + f"/3/device/{token}",
            json=payload,
            headers={"apns-push-type": "alert", "apns-priority": "10"},
        )
        return 1 if res.status_code == 200 else 0

    def _name(self, restaurant_id: str, ingredient_id: str) -> str:
        names = self._names.get(restaurant_id)
        if names is None:
            names = {i.id: i.name for i in self.platform.ingredients(restaurant_id)}
            self._names[restaurant_id] = names
        return names.get(ingredient_id, ingredient_id)

    def _fired(
        self, job: str, restaurant_id: str, day: date, outcome: str, detail: str, pushed: int = 0
    ) -> None:
        self.fires.append(
            Fire(
                at=self.clock.now(),
                job=job,
                restaurant_id=restaurant_id,
                day=day,
                claim_key=f"{job}:{restaurant_id}:{day.isoformat()}",
                outcome=outcome,
                detail=detail,
                pushed=pushed,
            )
        )
