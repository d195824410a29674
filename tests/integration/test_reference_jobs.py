"""The reference application's jobs under the worker, against its real services over
HTTP, on both backends: a device that is gone, a run that comes too late to push, and a
reorder list that comes due before the day's predictions."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Iterator, Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from cronclaim import App, ClaimState
from cronclaim.demo.jobs import PREDICT, REORDER
from cronclaim.demo.platform import INCIDENT_WEEK, STORY_RESTAURANT
from cronclaim.demo.platform_db import PlatformDB
from cronclaim.models import EventKind, Occurrence
from cronclaim.testing import Harness, SweepEnv, VirtualClock, inject
from cronclaim.worker import Worker
from tests.apps.reference import START, ReferencePlatform, reference_app

MONDAY, TUESDAY = INCIDENT_WEEK[:2]
PREDICT_MONDAY = Occurrence(
    job=PREDICT, tenant=STORY_RESTAURANT, scheduled_for=START + timedelta(hours=1)
)


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferencePlatform]:
    with ReferencePlatform(tmp_path_factory.mktemp("reference-jobs")) as running:
        yield running


@contextlib.contextmanager
def reference(
    platform: ReferencePlatform,
    directory: Path,
    database_url: str,
    start: datetime,
    *,
    unregistered: Sequence[str] = (),
) -> Iterator[tuple[App, Harness, PlatformDB]]:
    with platform.case(directory, unregistered=unregistered) as harness:
        env = SweepEnv(
            database_url=database_url,
            workdir=str(directory),
            params=dict(harness.params),
            start=start,
        )
        app = reference_app(env, VirtualClock(start))
        try:
            yield app, harness, PlatformDB(harness.params["platform"])
        finally:
            app.close()


def simulate(app: App, jobs: list[str], until: datetime) -> None:
    asyncio.run(Worker(app, jobs=jobs, catch_up="1s").run_until(until))


def test_a_device_answering_410_is_marked_unregistered_and_the_run_completes(
    platform: ReferencePlatform, database_url: str, tmp_path: Path
) -> None:
    watch, phone = platform.devices
    with reference(platform, tmp_path, database_url, START, unregistered=[phone]) as (
        app,
        harness,
        db,
    ):
        simulate(app, [PREDICT], START + timedelta(hours=2))
        claim = app.store.get(PREDICT_MONDAY)
        assert claim is not None and (claim.state, claim.attempt) == (ClaimState.DONE, 1)
        registered = {d.token: d.registered for d in db.devices(STORY_RESTAURANT)}
        assert registered == {watch: True, phone: False}
        pushed = sorted(harness.effects())
        assert pushed == sorted(
            f"push {watch[:8]} at-risk {ingredient} {MONDAY}" for ingredient in platform.at_risk
        )


def test_an_attempt_later_than_stale_after_recomputes_the_predictions_but_pushes_nothing(
    platform: ReferencePlatform, database_url: str, tmp_path: Path
) -> None:
    with reference(platform, tmp_path, database_url, START) as (app, harness, db):
        # Attempts 1-9 time out (07:00 .. 10:03); the 10th, at 11:03, is 4 h 03 late.
        with inject("inference", "timeout", attempts=range(1, 10)) as injected:
            simulate(app, [PREDICT], START + timedelta(hours=12))
        assert injected.fired == 9
        claim = app.store.get(PREDICT_MONDAY)
        assert claim is not None and (claim.state, claim.attempt) == (ClaimState.DONE, 10)
        last = [e.at for e in app.store.events(PREDICT_MONDAY) if e.kind is EventKind.ACQUIRED][-1]
        assert last - PREDICT_MONDAY.scheduled_for > timedelta(hours=4)
        predictions = db.predictions(STORY_RESTAURANT, MONDAY)
        assert predictions and all(p.created_at == last for p in predictions)
        assert harness.effects() == []


def test_the_reorder_list_waits_for_the_days_predictions(
    platform: ReferencePlatform, database_url: str, tmp_path: Path
) -> None:
    start = START + timedelta(days=1)
    reorder = Occurrence(
        job=REORDER, tenant=STORY_RESTAURANT, scheduled_for=start + timedelta(hours=3, minutes=30)
    )
    with reference(platform, tmp_path, database_url, start) as (app, _, db):
        # inventory-predict succeeds only at its 9th attempt, 10:03, after 09:30.
        with inject("inference", "timeout", attempts=range(1, 9)):
            simulate(app, [PREDICT, REORDER], start + timedelta(hours=8))
        claim = app.store.get(reorder)
        assert claim is not None and claim.state is ClaimState.DONE
        events = app.store.events(reorder)
        released = [e for e in events if e.kind is EventKind.RELEASED]
        assert released and all("PredictionsNotReady" in (e.error or "") for e in released)
        assert claim.attempt == len(released) + 1
        assert db.reorder_list(STORY_RESTAURANT, TUESDAY) is not None
