"""The dashboard over real databases (both backends), through Starlette's in-process
HTTP client: what each page shows, search, filters and keyset pagination, escaping, and
the replay action with its security checks (token, CSRF, origin, read-only mode).

The data are made by the Worker in virtual time (``tests/apps/dashboard_data.py``): the
demo's restaurants through a week with an inference outage, a flaky push gateway, a
takeover and a day the worker was down.
"""

from __future__ import annotations

import contextlib
import html
import os
import re
import socket
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cronclaim import App, ClaimState, EventKind, VirtualClock
from cronclaim.models import Occurrence, format_instant
from cronclaim.web import create_app
from cronclaim.web.urls import occurrence_url
from tests.apps.dashboard_data import (
    FRIDAY_NOON,
    INFERENCE_ERROR,
    JOB,
    PURGE,
    PUSH_ERROR,
    SCRIPT_TENANT,
    Faults,
    define_jobs,
    lucia_tuesday,
    populate,
    simulate,
    tenants,
)
from tests.conftest import T0, AppFactory
from tests.dbtools import empty_postgres_database

with warnings.catch_warnings():
    # Starlette asks for httpx2 but still works with httpx, a declared dependency.
    warnings.simplefilter("ignore", UserWarning)
    from starlette.testclient import TestClient

TOKEN = "correct horse battery staple"
BASE = "http://127.0.0.1"
SAME_ORIGIN = {"Origin": BASE}
ALL_TENANTS = sorted(t.id for t in tenants())
#: Tokyo and Sydney ran their Thursday before the worker went down (Wednesday, UTC).
THURSDAY_DONE = {"hana", "olivia"}


@dataclass
class World:
    app: App
    clock: VirtualClock
    faults: Faults
    url: str


@contextlib.contextmanager
def module_database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('dashboard') / 'claims.db'}"
        return
    request.getfixturevalue("pg_url")  # skips, or fails under CI, like every PostgreSQL test
    with empty_postgres_database("dashboard") as url:
        yield url


@pytest.fixture(
    scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]
)
def shared(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[World]:
    """The week, made once per backend, for the tests that only read it (or must fail to
    change it)."""
    with module_database(request, tmp_path_factory) as url:
        clock = VirtualClock(T0)
        app = App(url, clock=clock, worker_id="worker-1", migrate=True)
        dead = App(url, clock=clock, worker_id="dead-worker")
        try:
            faults = Faults()
            define_jobs(app, faults)
            populate(app, clock, faults, dead)
            yield World(app, clock, faults, url)
        finally:
            dead.close()
            app.close()


@pytest.fixture
def world(make_app: AppFactory, clock: VirtualClock, database_url: str) -> World:
    """The week, made afresh, for a test that changes it."""
    app = make_app("worker-1")
    faults = Faults()
    define_jobs(app, faults)
    populate(app, clock, faults, make_app("dead-worker"))
    return World(app, clock, faults, database_url)


def dashboard(world: World, token: str | None = TOKEN, store: Any = None) -> TestClient:
    app = create_app(store or world.app.store, jobs=world.app.jobs, token=token)
    return TestClient(app, base_url=BASE)


@pytest.fixture
def client(shared: World) -> Iterator[TestClient]:
    with dashboard(shared) as c:
        yield c


@pytest.fixture
def fresh_client(world: World) -> Iterator[TestClient]:
    with dashboard(world) as c:
        yield c


def occurrence(tenant: str, day: int) -> Occurrence:
    """``tenant``'s 07:00 (local) of May ``day``."""
    zone = next(t.zone for t in tenants() if t.id == tenant)
    return Occurrence(job=JOB, tenant=tenant, scheduled_for=datetime(2026, 5, day, 7, tzinfo=zone))


def occurrence_path(o: Occurrence) -> str:
    return occurrence_url(o.job, o.tenant, o.scheduled_for)


def key(o: Occurrence) -> str:
    return f"{o.job}|{format_instant(o.scheduled_for)}|{o.tenant}"


def sign_in(c: TestClient, name: str = "alice", token: str = TOKEN) -> httpx.Response:
    return c.post(
        "/login",
        data={"token": token, "name": name, "next": "/audit"},
        headers=SAME_ORIGIN,
        follow_redirects=False,
    )


def csrf_of(page: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', page)
    assert match, "no CSRF field on the page"
    return html.unescape(match.group(1))


def hidden_fields(page: str, form_action: str) -> dict[str, list[str]]:
    """The hidden fields of the page's form that posts to ``form_action``."""
    form = re.search(rf'<form method="post" action="{form_action}".*?</form>', page, re.S)
    assert form, f"no form posting to {form_action}"
    fields: dict[str, list[str]] = {}
    for name, value in re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', form[0]):
        fields.setdefault(html.unescape(name), []).append(html.unescape(value))
    return fields


def grid_cells(page: str) -> dict[tuple[str, str], str]:
    """(tenant, day) -> state of every cell of a job page."""
    found = {}
    for state, title in re.findall(r'<a class="cell s-(\w+)" href="[^"]*" title="([^"]*)"', page):
        tenant, rest = html.unescape(title).split(" · ", 1)
        found[tenant, rest[:10]] = state
    return found


def grid_tenants(page: str) -> list[str]:
    return [
        html.unescape(t)
        for t in re.findall(r'<th class="tenant" scope="row">(.*?)(?: <span|</th>)', page)
    ]


def events_of(world: World, o: Occurrence) -> list[tuple[EventKind, str | None]]:
    return [(e.kind, e.worker) for e in world.app.store.events(o)]


# -- the overview ------------------------------------------------------------------------


def test_overview_shows_each_job_with_its_latest_ledgers_and_a_14_day_strip(
    client: TestClient,
) -> None:
    page = client.get("/").text

    assert f'href="/jobs/{JOB}"' in page and f'href="/jobs/{PURGE}"' in page
    # Friday's ledger row: 13 due, 12 done, Aitor failed.
    friday = re.search(r"2026-05-22 07:00</a>.*?</tr>", page, re.S)
    assert friday is not None
    numbers = re.findall(r'<td class="n[^"]*">([^<]+)</td>', friday[0])
    assert numbers[:4] == ["13", "12", "·", "1"]  # due, done, retrying, failed
    assert 'title="TimeoutError: ' + INFERENCE_ERROR in page
    # Thursday: the worker was down through every 07:00 window.
    assert "2026-05-21 (Thu): 2 done, 11 missed of 13 due" in page
    assert page.count('<a class="day ') == 28  # 14 days x 2 jobs
    assert "No open alerts." in page


def test_overview_lists_open_alerts(world: World, fresh_client: TestClient) -> None:
    world.app.store.open_alert(
        key="failures:inventory-predict:inference",
        rule="failures",
        job=JOB,
        severity="critical",
        summary="inventory-predict: 6 inference failures in the last hour",
        details="{}",
        deliveries=[],
    )
    page = fresh_client.get("/").text
    assert "inventory-predict: 6 inference failures in the last hour" in page
    assert "failures:inventory-predict:inference" in page
    assert "No open alerts." not in page


class StoreWithoutAlerts:
    """A store that keeps no alert state (an older backend, alerting not set up)."""

    def __init__(self, store: Any) -> None:
        self._store = store

    def __getattr__(self, name: str) -> Any:
        if name in {"alerts", "open_alerts"}:
            raise AttributeError(name)
        return getattr(self._store, name)


def test_overview_says_alerting_is_not_configured_when_the_store_keeps_no_alerts(
    shared: World,
) -> None:
    with dashboard(shared, store=StoreWithoutAlerts(shared.app.store)) as c:
        page = c.get("/").text
    assert "alerting not configured" in page


# -- the job page ------------------------------------------------------------------------


def test_job_page_colours_each_tenant_and_local_day_by_outcome(client: TestClient) -> None:
    page = client.get(f"/jobs/{JOB}").text

    assert grid_tenants(page) == ALL_TENANTS
    cells = grid_cells(page)
    for day in ("2026-05-18", "2026-05-19", "2026-05-20", "2026-05-22"):
        assert cells["aitor", day] == "failed"
        assert cells["mert", day] == "done"  # retried after the push gateway refused
    assert cells["lucia", "2026-05-19"] == "done"  # taken over from the dead worker
    thursday = {t: cells[t, "2026-05-21"] for t in ALL_TENANTS}
    assert {t for t, s in thursday.items() if s == "done"} == THURSDAY_DONE
    assert {s for t, s in thursday.items() if t not in THURSDAY_DONE} == {"missed"}
    assert ("daniel", "2026-05-08") not in cells  # before the first tick: no occurrence
    # Each cell links to its occurrence.
    assert occurrence_path(occurrence("aitor", 19)).replace("&", "&amp;") in page


def test_job_page_searches_tenants_by_id_prefix(client: TestClient) -> None:
    assert grid_tenants(client.get(f"/jobs/{JOB}", params={"q": "l"}).text) == ["lars", "lucia"]
    assert grid_tenants(client.get(f"/jobs/{JOB}", params={"q": "dan"}).text) == ["daniel"]
    none = client.get(f"/jobs/{JOB}", params={"q": "zz"}).text
    assert grid_tenants(none) == [] and "No tenant matches" in none


@pytest.mark.parametrize(
    ("outcome", "expected"),
    [
        ("failed", ["aitor"]),
        ("missed", sorted(set(ALL_TENANTS) - THURSDAY_DONE)),
        ("problems", sorted(set(ALL_TENANTS) - THURSDAY_DONE)),
        ("done", sorted(set(ALL_TENANTS) - {"aitor"})),
        ("pending", []),
        ("claimed", []),
        ("released", []),
    ],
)
def test_job_page_filters_tenants_by_outcome(
    client: TestClient, outcome: str, expected: list[str]
) -> None:
    page = client.get(f"/jobs/{JOB}", params={"outcome": outcome}).text
    assert grid_tenants(page) == expected


def test_job_page_filters_one_day_and_combines_search_with_outcome(client: TestClient) -> None:
    friday = client.get(
        f"/jobs/{JOB}", params={"end": "2026-05-22", "days": "1", "outcome": "problems"}
    ).text
    assert grid_tenants(friday) == ["aitor"]
    both = client.get(f"/jobs/{JOB}", params={"q": "m", "outcome": "missed"}).text
    assert grid_tenants(both) == ["mert"]


def test_job_page_pages_through_every_tenant_once_in_both_directions(
    client: TestClient,
) -> None:
    seen: list[list[str]] = []
    url: str | None = f"/jobs/{JOB}?limit=4"
    while url is not None:
        page = client.get(html.unescape(url)).text
        seen.append(grid_tenants(page))
        following = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = following.group(1) if following else None
    assert [len(p) for p in seen] == [4, 4, 4, 1]
    assert [t for p in seen for t in p] == ALL_TENANTS

    back: list[list[str]] = [seen[-1]]
    while True:
        previous = re.search(r'<a rel="prev" href="([^"]+)"', page)
        if previous is None:
            break
        page = client.get(html.unescape(previous.group(1))).text
        back.append(grid_tenants(page))
    assert back[::-1] == seen


@pytest.mark.parametrize("outcome", ["problems", "missed", "done"])
def test_job_page_pages_through_filtered_tenants_once_each(
    client: TestClient, outcome: str
) -> None:
    """A tenant with several matching occurrences (Aitor failed on four days) is one row."""
    expected = grid_tenants(client.get(f"/jobs/{JOB}", params={"outcome": outcome}).text)
    seen: list[str] = []
    url: str | None = f"/jobs/{JOB}?outcome={outcome}&limit=3"
    while url is not None:
        page = client.get(html.unescape(url)).text
        rows = grid_tenants(page)
        assert 0 < len(rows) <= 3
        seen += rows
        following = re.search(r'<a rel="next" href="([^"]+)"', page)
        url = following.group(1) if following else None
    assert seen == expected and len(expected) > 3


def test_job_page_of_an_unknown_job_is_404_and_bad_parameters_are_400(
    client: TestClient,
) -> None:
    assert client.get("/jobs/no-such-job").status_code == 404
    bad = client.get(f"/jobs/{JOB}", params={"days": "many"})
    assert bad.status_code == 400 and "days must be a whole number" in bad.text
    assert client.get(f"/jobs/{JOB}", params={"outcome": "exploded"}).status_code == 400


def test_a_job_claimed_without_the_worker_is_counted_row_by_row(
    make_app: AppFactory, clock: VirtualClock
) -> None:
    """No fan-out records: the day counts come from the rows themselves."""
    clock.set(FRIDAY_NOON)
    app = make_app()

    @app.job("nightly-export", cron="0 2 * * *")
    def export(tenant: Any, run: Any) -> None:
        return None

    def broken(run: Any) -> None:
        raise RuntimeError("export bucket is read-only")

    for tenant, day, fn in [
        ("acme", 20, lambda run: None),
        ("acme", 21, broken),
        ("globex", 21, lambda run: None),
    ]:
        at = datetime(2026, 5, day, 2, tzinfo=UTC)
        app.run_once("nightly-export", tenant, at, fn, max_attempts=1)

    with TestClient(create_app(app.store, jobs=app.jobs), base_url=BASE) as c:
        overview = c.get("/").text
        grid = c.get("/jobs/nightly-export").text
    assert "2026-05-21 (Thu): 1 done, 1 failed of 2 due" in overview
    assert "2026-05-20 (Wed): 1 done of 1 due" in overview
    cells = grid_cells(grid)
    assert cells["acme", "2026-05-21"] == "failed" and cells["globex", "2026-05-21"] == "done"


# -- escaping ----------------------------------------------------------------------------


def test_a_tenant_id_made_of_markup_is_escaped_on_every_page(client: TestClient) -> None:
    script = occurrence(SCRIPT_TENANT, 19)
    pages = {
        "/": client.get("/").text,
        "job": client.get(f"/jobs/{JOB}").text,
        "search": client.get(f"/jobs/{JOB}", params={"q": "<script"}).text,
        "occurrence": client.get(occurrence_path(script)).text,
        "audit": client.get("/audit").text,
    }
    escaped = html.escape(SCRIPT_TENANT, quote=True).replace("&quot;", "&#34;")
    for name, page in pages.items():
        assert SCRIPT_TENANT not in page, name
        assert "<script>alert" not in page, name
        # The only scripts are the dashboard's own file, never inline.
        assert re.findall(r"<script[^>]*>", page) == [
            '<script src="/static/dashboard.js" defer>'
        ], name
    assert escaped in pages["job"] and escaped in pages["occurrence"]
    assert grid_tenants(pages["search"]) == [SCRIPT_TENANT]


# -- the occurrence page -----------------------------------------------------------------


def test_occurrence_page_shows_every_attempt_error_worker_token_and_duration(
    client: TestClient,
) -> None:
    page = client.get(occurrence_path(occurrence("aitor", 19))).text

    kinds = re.findall(r'<span class="kind">([^<]+)</span>', page)
    assert kinds == ["acquired", "released", "acquired", "released", "acquired", "failed"]
    assert page.count("TimeoutError: " + INFERENCE_ERROR) >= 3
    assert "token 3" in page and "worker worker-1" in page
    assert "waited 30 s" in page and "waited 1m<" in page  # the retry backoff: 30 s, 60 s
    assert "held " in page
    assert "2026-05-19 07:00 Europe/Madrid" in page  # local time, in the tenant's zone
    assert 'class="state s-failed"' in page


def test_occurrence_page_shows_a_takeover_after_an_expired_lease(client: TestClient) -> None:
    page = client.get(occurrence_path(lucia_tuesday())).text
    kinds = re.findall(r'<span class="kind">([^<]+)</span>', page)
    assert kinds == ["acquired", "lease expired", "took over", "completed"]
    assert "the lease of dead-worker expired" in page
    assert "held 2m" in page  # the dead worker's lease ran out after two minutes
    assert "taken over by worker-1" in page


def test_occurrence_page_shows_a_retry_that_succeeded(client: TestClient) -> None:
    page = client.get(occurrence_path(occurrence("mert", 20))).text
    kinds = re.findall(r'<span class="kind">([^<]+)</span>', page)
    assert kinds == ["acquired", "released", "acquired", "completed"]
    assert PUSH_ERROR in page


def test_occurrence_page_of_an_unknown_or_malformed_occurrence(client: TestClient) -> None:
    assert client.get(occurrence_path(occurrence("aitor", 1))).status_code == 404
    bad = client.get("/occurrence", params={"job": JOB, "tenant": "aitor", "at": "tuesday"})
    assert bad.status_code == 400 and "ISO 8601" in bad.text


# -- the audit page ----------------------------------------------------------------------


def test_audit_page_lists_failed_and_missed_occurrences(client: TestClient) -> None:
    page = client.get("/audit").text
    assert "<b>4</b> failed" in page  # Aitor, every day but Thursday
    assert "<b>15</b> missed" in page  # 11 restaurants and 4 cache purges on Thursday
    assert 'name="occurrence"' not in page  # nothing to tick before signing in
    assert 'href="/login?next=/audit"' in page

    sign_in(client)
    signed_in = client.get("/audit", params={"job": JOB}).text
    boxes = re.findall(r'<input type="checkbox" name="occurrence"[^>]*value="([^"]+)"', signed_in)
    assert len(boxes) == 4 + 11 + 4  # failed, missed, and the repeated errors (Aitor again)
    assert html.unescape(boxes[0]).startswith(f"{JOB}|")


# -- replay: allowed -----------------------------------------------------------------------


def test_replay_of_a_failed_occurrence_needs_a_dry_run_and_is_logged_with_who_asked(
    world: World, fresh_client: TestClient
) -> None:
    target = occurrence("aitor", 22)
    assert sign_in(fresh_client, name="alice").status_code == 303
    page = fresh_client.get(occurrence_path(target)).text
    preview = fresh_client.post(
        "/replay/preview", data=hidden_fields(page, "/replay/preview"), headers=SAME_ORIGIN
    )
    assert preview.status_code == 200
    assert "Replay preview" in preview.text and ">aitor</a>" in preview.text
    assert preview.headers["cache-control"] == "no-store"
    claim = world.app.store.get(target)
    assert claim is not None and claim.state is ClaimState.FAILED  # a dry run changes nothing

    applied = fresh_client.post(
        "/replay/apply", data=hidden_fields(preview.text, "/replay/apply"), headers=SAME_ORIGIN
    )

    assert applied.status_code == 200 and "Replayed 1 occurrence" in applied.text
    assert applied.headers["cache-control"] == "no-store"
    claim = world.app.store.get(target)
    assert claim is not None and claim.state is ClaimState.PENDING and claim.replays == 1
    assert events_of(world, target)[-1] == (EventKind.REPLAYED, "dashboard:alice@testclient")
    history = fresh_client.get(occurrence_path(target)).text
    assert "replayed, requested by dashboard:alice@testclient" in history

    world.faults.inference_down.clear()  # inference is back
    simulate(world.app, FRIDAY_NOON + timedelta(minutes=5))
    claim = world.app.store.get(target)
    assert claim is not None and claim.state is ClaimState.DONE


def test_bulk_replay_lists_the_selection_first_then_replays_exactly_it(
    world: World, fresh_client: TestClient
) -> None:
    sign_in(fresh_client)
    csrf = csrf_of(fresh_client.get("/audit").text)
    chosen = [occurrence("aitor", d) for d in (18, 19, 20)] + [occurrence("mert", 21)]
    form = {"csrf": csrf, "occurrence": [key(o) for o in chosen]}

    preview = fresh_client.post("/replay/preview", data=form, headers=SAME_ORIGIN)
    assert preview.status_code == 200
    listed = re.search(r'<table class="list" id="selected">.*?</table>', preview.text, re.S)
    assert listed is not None and listed[0].count("<tr>") == 1 + 4  # head + 4 rows
    assert all(events_of(world, o)[-1][0] is not EventKind.REPLAYED for o in chosen)

    applied = fresh_client.post(
        "/replay/apply", data=hidden_fields(preview.text, "/replay/apply"), headers=SAME_ORIGIN
    )
    assert "Replayed 4 occurrences" in applied.text
    for o in chosen:
        assert events_of(world, o)[-1] == (EventKind.REPLAYED, "dashboard:alice@testclient")
    untouched = world.app.store.get(occurrence("aitor", 22))
    assert untouched is not None and untouched.state is ClaimState.FAILED


def test_range_replay_of_missed_days_and_a_refusal_when_the_selection_changed(
    world: World, fresh_client: TestClient
) -> None:
    sign_in(fresh_client)
    csrf = csrf_of(fresh_client.get("/audit").text)
    form = {"csrf": csrf, "job": JOB, "from": "2026-05-21", "to": "2026-05-21"}
    preview = fresh_client.post("/replay/preview", data=form, headers=SAME_ORIGIN)
    assert 'Would replay <span class="muted">11</span>' in preview.text
    assert "Left alone" in preview.text  # Tokyo's and Sydney's done Thursdays
    confirm = hidden_fields(preview.text, "/replay/apply")

    # Meanwhile someone replays one of them from the command line.
    daniel = world.app.store.get(occurrence("daniel", 21))
    assert daniel is not None
    world.app.store.replay([daniel], requested_by="cli:bob")

    refused = fresh_client.post("/replay/apply", data=confirm, headers=SAME_ORIGIN)
    assert "The selection changed since the preview" in refused.text
    assert 'Would replay <span class="muted">10</span>' in refused.text
    assert events_of(world, occurrence("lars", 21))[-1][0] is EventKind.MISSED

    again = fresh_client.post(
        "/replay/apply", data=hidden_fields(refused.text, "/replay/apply"), headers=SAME_ORIGIN
    )
    assert "Replayed 10 occurrences" in again.text
    assert events_of(world, occurrence("lars", 21))[-1] == (
        EventKind.REPLAYED,
        "dashboard:alice@testclient",
    )


# -- replay: refused -----------------------------------------------------------------------


def replay_form(world: World, csrf: str) -> dict[str, str]:
    return {"csrf": csrf, "occurrence": key(occurrence("aitor", 22)), "digest": "x"}


def assert_not_replayed(world: World) -> None:
    target = occurrence("aitor", 22)
    claim = world.app.store.get(target)
    assert claim is not None and claim.state is ClaimState.FAILED
    assert all(kind is not EventKind.REPLAYED for kind, _ in events_of(world, target))


@pytest.mark.parametrize("action", ["/replay/preview", "/replay/apply"])
def test_replay_without_signing_in_is_refused(
    shared: World, client: TestClient, action: str
) -> None:
    response = client.post(action, data=replay_form(shared, "guess"), headers=SAME_ORIGIN)
    assert response.status_code == 403 and "sign in" in response.text
    assert_not_replayed(shared)


def test_a_wrong_token_does_not_sign_in(shared: World, client: TestClient) -> None:
    response = sign_in(client, token="wrong")
    assert response.status_code == 403 and "not the dashboard token" in response.text
    assert "cronclaim_session" not in response.headers.get("set-cookie", "")
    refused = client.post("/replay/apply", data=replay_form(shared, "guess"), headers=SAME_ORIGIN)
    assert refused.status_code == 403
    assert_not_replayed(shared)


@pytest.mark.parametrize("csrf", ["missing", "empty", "wrong", "another session's"])
def test_replay_without_the_sessions_csrf_token_is_refused(
    shared: World, client: TestClient, csrf: str
) -> None:
    sign_in(client)
    form = replay_form(shared, "")
    if csrf == "missing":
        del form["csrf"]
    elif csrf == "wrong":
        form["csrf"] = csrf_of(client.get("/audit").text)[::-1]
    elif csrf == "another session's":
        with dashboard(shared) as other:
            sign_in(other, name="mallory")
            form["csrf"] = csrf_of(other.get("/audit").text)
    for action in ("/replay/preview", "/replay/apply"):
        response = client.post(action, data=form, headers=SAME_ORIGIN)
        assert response.status_code == 403 and "CSRF" in response.text
    assert_not_replayed(shared)


@pytest.mark.parametrize(
    "headers",
    [
        {"Origin": "http://evil.example"},
        {"Origin": "null"},
        {"Referer": "http://evil.example/page"},
        {},
    ],
    ids=["foreign-origin", "null-origin", "foreign-referer", "neither"],
)
def test_replay_posted_from_another_site_is_refused(
    shared: World, client: TestClient, headers: dict[str, str]
) -> None:
    sign_in(client)
    form = replay_form(shared, csrf_of(client.get("/audit").text))
    response = client.post("/replay/apply", data=form, headers=headers)
    assert response.status_code == 403 and "not posted from this dashboard" in response.text
    assert_not_replayed(shared)
    # The same form from the dashboard's own page (a same-origin Referer) gets through
    # the origin check and on to the next one: the stale digest.
    ok = client.post("/replay/apply", data=form, headers={"Referer": f"{BASE}/audit"})
    assert ok.status_code == 200


def test_a_read_only_dashboard_offers_no_replay_and_refuses_every_mutation(
    shared: World,
) -> None:
    with dashboard(shared, token=None) as c:
        assert "read-only" in c.get("/").text
        page = c.get(occurrence_path(occurrence("aitor", 22))).text
        assert "/replay/preview" not in page and "the dashboard is read-only" in page
        login = sign_in(c, token="")
        assert login.status_code == 403 and "read-only" in login.text
        for action in ("/replay/preview", "/replay/apply", "/logout"):
            response = c.post(action, data=replay_form(shared, "x"), headers=SAME_ORIGIN)
            assert response.status_code == 403 and "read-only" in response.text
    assert_not_replayed(shared)


# -- sessions, headers, hosts --------------------------------------------------------------


def test_sign_in_sets_a_strict_http_only_cookie_and_sign_out_clears_it(
    client: TestClient,
) -> None:
    response = sign_in(client)
    assert response.status_code == 303 and response.headers["location"] == "/audit"
    cookie = response.headers["set-cookie"].lower()
    assert "cronclaim_session=" in cookie
    assert "httponly" in cookie and "samesite=strict" in cookie and "path=/" in cookie
    page = client.get("/").text
    assert "signed in as <b>alice</b>" in page

    out = client.post(
        "/logout", data={"csrf": csrf_of(page)}, headers=SAME_ORIGIN, follow_redirects=False
    )
    assert out.status_code == 303
    assert "Sign in to repair" in client.get("/").text


def test_sign_in_never_redirects_to_another_site(client: TestClient) -> None:
    for target in ("https://evil.example/", "//evil.example/x", "/\\evil.example"):
        response = client.post(
            "/login",
            data={"token": TOKEN, "next": target},
            headers=SAME_ORIGIN,
            follow_redirects=False,
        )
        assert response.headers["location"] == "/"


def test_repeated_wrong_tokens_are_throttled(client: TestClient) -> None:
    statuses = [sign_in(client, token=f"guess-{i}").status_code for i in range(7)]
    assert statuses[:5] == [403] * 5 and statuses[5:] == [429, 429]
    assert sign_in(client).status_code == 429  # even the right token, for a while


def test_every_response_carries_the_security_headers(client: TestClient) -> None:
    for response in (
        client.get("/"),
        client.get(f"/jobs/{JOB}"),
        client.get("/jobs/none"),
        client.get("/static/style.css"),
        client.post("/replay/apply", data={}, headers=SAME_ORIGIN),
    ):
        csp = response.headers["content-security-policy"]
        assert "script-src 'self'" in csp and "unsafe-inline" not in csp
        assert "frame-ancestors 'none'" in csp
        assert response.headers["x-frame-options"] == "DENY"
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["server-timing"].startswith("app;dur=")
        if not response.url.path.startswith("/static/"):
            assert response.headers["cache-control"] == "no-store"


def test_requests_naming_another_host_are_refused(shared: World) -> None:
    """A page of another site whose name resolves to 127.0.0.1 (DNS rebinding) must not
    read the dashboard."""
    app = create_app(shared.app.store, token=TOKEN)
    for base, status in [
        ("http://evil.example:8787", 400),
        ("http://127.0.0.1:8787", 200),
        ("http://localhost:8787", 200),
        ("http://[::1]:8787", 200),
    ]:
        with TestClient(app, base_url=base) as c:
            assert c.get("/").status_code == status, base


# -- the command -------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_the_dashboard_command_serves_read_only_on_loopback(shared: World) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if k != "CRONCLAIM_DASHBOARD_TOKEN"}
    server = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "cronclaim",
            "dashboard",
            "--database",
            shared.url,
            "--port",
            str(port),
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                page = httpx.get(f"http://127.0.0.1:{port}/", timeout=10)
                break
            except httpx.TransportError:
                assert server.poll() is None, server.communicate()[1]
                assert time.monotonic() < deadline, "the dashboard did not start"
                time.sleep(0.2)
        assert page.status_code == 200
        assert f'href="/jobs/{JOB}"' in page.text and "read-only" in page.text
        refused = httpx.post(
            f"http://127.0.0.1:{port}/replay/apply",
            data={"occurrence": key(occurrence("aitor", 22))},
            headers={"Origin": f"http://127.0.0.1:{port}"},
            timeout=10,
        )
        assert refused.status_code == 403
    finally:
        server.terminate()
        _, stderr = server.communicate(timeout=30)
    assert "read-only" in stderr
    assert_not_replayed(shared)


def test_the_dashboard_command_reports_a_busy_port_in_one_line(shared: World) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen(1)
        port = busy.getsockname()[1]
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "cronclaim",
                "dashboard",
                "--database",
                shared.url,
                "--port",
                str(port),
            ],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
    assert result.returncode == 2
    assert (
        result.stderr.strip()
        .splitlines()[-1]
        .startswith(f"cronclaim: error: cannot listen on 127.0.0.1:{port}")
    )
