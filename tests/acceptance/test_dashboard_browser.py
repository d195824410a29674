"""End to end, in a real browser: headless Chromium (Debian's ``chromium``) driven by
Playwright, against the dashboard served by uvicorn on 127.0.0.1, over a week of the
demo's restaurants made by the Worker in virtual time.

An on-call engineer opens the overview, follows Aitor's failed inventory prediction to
its occurrence, signs in with the dashboard token, replays it after the dry run, lets a
worker run, reloads, and sees it done, with the replay in its history under their name.

Needs ``/usr/bin/chromium`` (apt: ``chromium``) and the ``playwright`` package (never
``playwright install``: the system's Chromium is used). Without the browser the test is
skipped, except under ``CI=true``, where a missing browser is a failure.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest
from tests.apps.dashboard_data import (
    FRIDAY_NOON,
    JOB,
    Faults,
    define_jobs,
    populate,
    simulate,
    tenants,
)
from tests.conftest import AppFactory

from cronclaim import ClaimState, EventKind, VirtualClock
from cronclaim.models import Occurrence
from cronclaim.web import create_app
from cronclaim.web.serve import serving

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
TOKEN = "on-call token for the browser test"
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    if not os.path.exists(CHROMIUM):
        message = f"{CHROMIUM} is missing: apt-get install -y chromium"
        if os.environ.get("CI") == "true":
            pytest.fail(f"the browser test must run under CI: {message}", pytrace=False)
        pytest.skip(message)
    # Playwright is a dev dependency: its absence is a broken environment, not a skip.
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield chromium
        finally:
            chromium.close()


def off_the_browsers_thread(fn: Any, *args: Any) -> None:
    """Run ``fn`` (the Worker, on asyncio) on a thread of its own: Playwright's sync API
    owns this thread's event loop."""
    errors: list[BaseException] = []

    def work() -> None:
        try:
            fn(*args)
        except BaseException as exc:
            errors.append(exc)

    thread = threading.Thread(target=work, name="test-worker")
    thread.start()
    thread.join(300)
    assert not thread.is_alive(), f"{fn.__name__} did not finish"
    assert not errors, errors


def test_on_call_replays_a_failed_occurrence_from_the_browser_and_sees_it_done(
    browser: Any, make_app: AppFactory, clock: VirtualClock
) -> None:
    app = make_app("worker-1")
    faults = Faults()
    define_jobs(app, faults)
    off_the_browsers_thread(populate, app, clock, faults, make_app("dead-worker"))
    madrid = next(t.zone for t in tenants() if t.id == "aitor")
    friday = Occurrence(
        job=JOB, tenant="aitor", scheduled_for=datetime(2026, 5, 22, 7, tzinfo=madrid)
    )

    with serving(create_app(app.store, jobs=app.jobs, token=TOKEN)) as base:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.set_default_timeout(TIMEOUT_MS)
        problems: list[str] = []
        page.on(
            "console",
            lambda m: problems.append(m.text) if m.type in {"error", "warning"} else None,
        )
        page.on("pageerror", lambda e: problems.append(str(e)))
        try:
            # The overview: the ledger of Friday's tick names Aitor as failed.
            page.goto(base + "/")
            assert page.locator("h2 a", has_text=JOB).count() == 1
            friday_row = page.locator("table.ledger tr", has_text="2026-05-22 07:00")
            friday_row.locator("a", has_text="aitor").click()

            # The occurrence: failed after three attempts.
            page.wait_for_url("**/occurrence?*")
            occurrence_url = page.url
            assert page.locator(".summary .state").inner_text() == "failed"
            assert page.locator("ol.timeline li").count() == 6

            # Sign in with the token; back on the occurrence, replay it after the dry run.
            page.get_by_role("link", name="Sign in", exact=True).click()
            page.get_by_label("Dashboard token").fill(TOKEN)
            page.get_by_label("Your name").fill("oncall")
            page.get_by_role("button", name="Sign in").click()
            page.wait_for_url("**/occurrence?*")
            page.locator("#replay").click()
            page.wait_for_url("**/replay/preview")
            assert page.locator("h1").inner_text() == "Replay preview"
            assert page.locator("#selected tbody tr").count() == 1
            claim = app.store.get(friday)
            assert claim is not None and claim.state is ClaimState.FAILED
            page.locator("#confirm").click()
            page.wait_for_url("**/replay/apply")
            assert page.locator("h1").inner_text() == "Replayed 1 occurrence"

            # Inference is back; a worker runs what is due.
            faults.inference_down.clear()
            off_the_browsers_thread(simulate, app, FRIDAY_NOON + timedelta(minutes=5))

            page.goto(occurrence_url)
            page.reload()
            assert page.locator(".summary .state").inner_text() == "done"
            timeline = page.locator("ol.timeline").inner_text()
            assert "replayed, requested by dashboard:oncall@127.0.0.1" in timeline
            assert "done, by worker-1" in timeline
            page.goto(base + "/")
            friday_row = page.locator("table.ledger tr", has_text="2026-05-22 07:00")
            assert friday_row.locator("td.n").nth(1).inner_text() == "13"  # done: all of them
            assert problems == []
        finally:
            context.close()

    events = app.store.events(friday)
    assert [e.kind for e in events[-3:]] == [
        EventKind.REPLAYED,
        EventKind.ACQUIRED,
        EventKind.COMPLETED,
    ]
    assert events[-3].worker == "dashboard:oncall@127.0.0.1"
