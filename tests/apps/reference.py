"""The reference application wired for ``cronclaim.testing.sweep``: the app factory (run
in the sweep's process and in killed worker processes) and a per-case fixture that
starts the push gateway and the partner endpoint and reports what they received.

The platform (Aitor's bar only) and its fitted models are built once per test session
by :class:`ReferencePlatform`; each case works on a copy.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime, timedelta
from pathlib import Path

from cronclaim import App
from cronclaim.clock import VirtualClock
from cronclaim.demo.inference import ForecastRequest
from cronclaim.demo.jobs import build_app
from cronclaim.demo.platform import INCIDENT_WEEK, STORY_RESTAURANT, generate_platform
from cronclaim.demo.platform_db import PlatformDB
from cronclaim.demo.postbacks import PostbackQueue
from cronclaim.demo.push import PushGateway
from cronclaim.demo.receivers import PartnerReceiver
from cronclaim.demo.warm import WarmInferenceService, fit_week, warm_answer
from cronclaim.testing import Harness, SweepEnv

MONDAY = INCIDENT_WEEK[0]
#: 06:00 in Bilbao on the Monday of the incident week: before every job's first tick.
START = datetime(2026, 5, 18, 4, 0, tzinfo=UTC)


def reference_app(env: SweepEnv, clock: VirtualClock) -> App:
    params = env.params
    return build_app(
        env.database_url,
        platform_db=params["platform"],
        inference_url=params["inference_url"],
        push_url=params["push_url"],
        partner_url=params["partner_url"],
        postbacks=params["postbacks"],
        clock=clock,
        worker_id="reference-sweep",
        restaurants=[STORY_RESTAURANT],
    )


class ReferencePlatform:
    """Aitor's bar, generated once, with Monday's predictions stored (so the reorder list
    has something to work from) and the inference service serving its fitted models."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.template = directory / "platform.db"
        db = PlatformDB(self.template)
        db.load(generate_platform(restaurants=[STORY_RESTAURANT]))
        fitted = fit_week(db.seed, [MONDAY], [STORY_RESTAURANT], processes=1)
        request = ForecastRequest.from_platform(db, STORY_RESTAURANT, MONDAY)
        result = warm_answer(request, fitted)
        db.save_predictions(STORY_RESTAURANT, MONDAY, result.to_predictions(START))
        self.at_risk = result.at_risk
        self.devices = [d.token for d in db.restaurant(STORY_RESTAURANT).devices if d.registered]
        self.inference = WarmInferenceService(fitted)
        #: Per case directory: the repeated pushes the gateway recognised and dropped.
        self.duplicates_dropped: dict[str, int] = {}

    def __enter__(self) -> ReferencePlatform:
        self.inference.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.inference.stop()

    @contextlib.contextmanager
    def case(self, directory: Path, *, unregistered: Sequence[str] = ()) -> Iterator[Harness]:
        """One sweep case: a copy of the platform, two queued postbacks, a fresh gateway
        (answering 410 for the ``unregistered`` tokens) and partner endpoint; effects as
        they recorded them."""
        platform = directory / "platform.db"
        source = sqlite3.connect(self.template)
        target = sqlite3.connect(platform)
        try:
            source.backup(target)
        finally:
            target.close()
            source.close()
        queue = PostbackQueue(directory / "postbacks.db")
        for n in (1, 2):
            queue.enqueue(
                f"order-confirmation:{STORY_RESTAURANT}:{n}",
                restaurant_id=STORY_RESTAURANT,
                event="order.confirmed",
                payload={"restaurant_id": STORY_RESTAURANT, "order": n},
                created_at=START - timedelta(minutes=10),
            )
        with (
            PushGateway(
                [t for t in self.devices if t not in unregistered], unregistered=unregistered
            ) as gateway,
            PartnerReceiver() as partner,
        ):
            yield Harness(
                params={
                    "platform": str(platform),
                    "postbacks": str(directory / "postbacks.db"),
                    "inference_url": self.inference.url,
                    "push_url": gateway.url,
                    "partner_url": partner.url,
                },
                effects=lambda: effects(gateway, partner),
            )
            self.duplicates_dropped[str(directory)] = gateway.duplicates_dropped


def effects(gateway: PushGateway, partner: PartnerReceiver) -> list[str]:
    """Each side effect as the outside world recorded it, named by what it is (not by the
    ids the job chose): a repeat with a new id shows up as the same effect twice."""
    done: list[str] = []
    for push in gateway.deliveries():
        payload = push.payload
        what = payload.get("ingredient") or payload.get("kind")
        done.append(f"push {push.device[:8]} {payload.get('kind')} {what} {payload.get('day')}")
    for received in partner.postbacks():
        body = json.loads(received.body)
        done.append(f"postback {body['key']}")
    for received in partner.purges():
        body = json.loads(received.body)
        done.append(f"purge {body['older_than']}")
    return done
