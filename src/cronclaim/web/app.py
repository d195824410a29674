"""The dashboard as a Starlette application: server-rendered pages over the store.

Reading needs nothing; every mutation (a replay) needs a session opened with the
dashboard token, the session's CSRF token in the form, and a same-origin POST. Without a
token the dashboard is read-only.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import FormData
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.requests import Request
from starlette.responses import RedirectResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.templating import Jinja2Templates

from cronclaim.exceptions import CronclaimError, DatabaseUnavailable, InvalidInput, StoreError
from cronclaim.jobs import Job
from cronclaim.models import Occurrence
from cronclaim.store import Store
from cronclaim.web import actions, views
from cronclaim.web.render import make_templates
from cronclaim.web.security import (
    SESSION_COOKIE,
    SESSION_SECONDS,
    LoginThrottle,
    SecurityHeaders,
    Session,
    Sessions,
    clean_name,
    same_origin,
)

HERE = Path(__file__).resolve().parent
TOKEN_ENV = "CRONCLAIM_DASHBOARD_TOKEN"  # noqa: S105 - the name of the variable
#: Hosts a browser may name in its requests: a page of another site resolving to
#: 127.0.0.1 (DNS rebinding) is refused.
LOOPBACK_HOSTS = ("127.0.0.1", "localhost", "[::1]")  # as the Host header names them


@dataclass
class Dashboard:
    """What the request handlers share."""

    store: Callable[[], Store]
    jobs: Mapping[str, Job]
    sessions: Sessions
    templates: Jinja2Templates
    throttle: LoginThrottle = field(default_factory=LoginThrottle)


def _dashboard(request: Request) -> Dashboard:
    dashboard: Dashboard = request.app.state.dashboard
    return dashboard


def current_session(request: Request) -> Session | None:
    return _dashboard(request).sessions.verify(request.cookies.get(SESSION_COOKIE))


def render(
    request: Request, template: str, context: dict[str, Any], status_code: int = 200
) -> Response:
    dashboard = _dashboard(request)
    session = current_session(request)
    return dashboard.templates.TemplateResponse(
        request,
        template,
        {
            "session": session,
            "csrf": dashboard.sessions.csrf_token(session) if session else None,
            "writable": dashboard.sessions.writable,
            "path": request.url.path,
            **context,
        },
        status_code=status_code,
    )


async def in_thread(fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """Store calls block; they run on the thread pool, never on the event loop."""
    return await run_in_threadpool(fn, *args, **kwargs)


# -- pages -------------------------------------------------------------------------------


async def overview_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    data = await in_thread(views.overview, dashboard.store(), dashboard.jobs)
    return render(request, "overview.html", {"overview": data, "now": data.now})


async def job_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    job = request.path_params["job"]
    query = views.GridQuery.parse(request.query_params)
    store = dashboard.store()
    known = await in_thread(views.job_names, store, dashboard.jobs)
    if job not in known:
        raise HTTPException(404, f"no job called {job!r}; known jobs: {', '.join(known)}")
    grid = await in_thread(views.job_grid, store, dashboard.jobs, job, query)
    return render(request, "job.html", {"grid": grid, "now": grid.now})


def parse_occurrence(job: str, tenant: str, at: str) -> Occurrence:
    if not job or not tenant or not at:
        raise InvalidInput("an occurrence needs job, tenant and at (its UTC instant)")
    try:
        instant = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"at must be an ISO 8601 instant, got {at!r}") from None
    return Occurrence(job=job, tenant=tenant, scheduled_for=instant)


async def occurrence_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    params = request.query_params
    occurrence = parse_occurrence(
        params.get("job", ""), params.get("tenant", ""), params.get("at", "")
    )
    page = await in_thread(views.occurrence_page, dashboard.store(), occurrence)
    status = 200 if page.claim is not None else 404
    return render(request, "occurrence.html", {"page": page, "now": page.now}, status)


async def audit_page(request: Request) -> Response:
    dashboard = _dashboard(request)
    query = actions.AuditQuery.parse(request.query_params)
    page = await in_thread(actions.audit_page, dashboard.store(), dashboard.jobs, query)
    return render(request, "audit.html", {"page": page, "now": page.now})


# -- sessions ----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only a path of this dashboard: never another site (an open redirect)."""
    if not target or not target.startswith("/") or target.startswith("//") or "\\" in target:
        return "/"
    return target


async def login_page(request: Request) -> Response:
    next_url = _safe_next(request.query_params.get("next"))
    return render(request, "login.html", {"next": next_url, "error": None, "now": None})


async def login(request: Request) -> Response:
    dashboard = _dashboard(request)
    if not dashboard.sessions.writable:
        raise HTTPException(403, f"the dashboard is read-only: {TOKEN_ENV} is not set")
    if not same_origin(request):
        raise HTTPException(403, "sign-in refused: the form was not posted from this dashboard")
    address = request.client.host if request.client else "unknown"
    if dashboard.throttle.blocked(address):
        raise HTTPException(429, "too many failed sign-ins; wait a minute")
    form = await request.form()
    next_url = _safe_next(_field(form, "next"))
    if not dashboard.sessions.check_token(_field(form, "token")):
        dashboard.throttle.failed(address)
        return render(
            request,
            "login.html",
            {"next": next_url, "error": "That is not the dashboard token.", "now": None},
            status_code=403,
        )
    dashboard.throttle.succeeded(address)
    _, cookie = dashboard.sessions.issue(clean_name(_field(form, "name")))
    response = RedirectResponse(next_url, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        cookie,
        max_age=SESSION_SECONDS,
        path="/",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    await require_mutation(request)
    response = RedirectResponse("/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/", httponly=True, samesite="strict")
    return response


def _field(form: FormData, name: str) -> str:
    value = form.get(name)
    return value if isinstance(value, str) else ""


async def require_mutation(request: Request) -> tuple[Session, FormData]:
    """The checks every mutation passes, in order: writable, same origin, signed in,
    CSRF token. Each refusal is a 403 naming what was missing."""
    dashboard = _dashboard(request)
    if not dashboard.sessions.writable:
        raise HTTPException(403, f"the dashboard is read-only: {TOKEN_ENV} is not set")
    if not same_origin(request):
        raise HTTPException(403, "refused: the form was not posted from this dashboard")
    session = current_session(request)
    if session is None:
        raise HTTPException(403, "refused: sign in with the dashboard token first")
    form = await request.form()
    if not dashboard.sessions.check_csrf(session, _field(form, "csrf")):
        raise HTTPException(403, "refused: the form's CSRF token is missing or wrong")
    return session, form


def requested_by(request: Request, session: Session) -> str:
    """Who asked, as the event log records it: ``dashboard:[name@]address``."""
    address = request.client.host if request.client else "unknown"
    return f"dashboard:{session.name}@{address}" if session.name else f"dashboard:{address}"


# -- replay ------------------------------------------------------------------------------


async def replay_preview(request: Request) -> Response:
    session, form = await require_mutation(request)
    dashboard = _dashboard(request)
    request_ = actions.ReplayRequest.parse(form)
    preview = await in_thread(
        actions.plan_replay,
        dashboard.store(),
        request_,
        dry_run=True,
        requested_by=requested_by(request, session),
    )
    return render(request, "replay.html", {"replay": preview, "now": preview.now})


async def replay_apply(request: Request) -> Response:
    session, form = await require_mutation(request)
    dashboard = _dashboard(request)
    request_ = actions.ReplayRequest.parse(form)
    result = await in_thread(
        actions.plan_replay,
        dashboard.store(),
        request_,
        dry_run=False,
        requested_by=requested_by(request, session),
    )
    return render(request, "replay.html", {"replay": result, "now": result.now})


# -- errors ------------------------------------------------------------------------------


async def http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    return render(
        request,
        "error.html",
        {"status": exc.status_code, "message": exc.detail, "now": None},
        status_code=exc.status_code,
    )


async def cronclaim_error(request: Request, exc: Exception) -> Response:
    if isinstance(exc, DatabaseUnavailable):
        status = 503
    elif isinstance(exc, StoreError):
        status = 500
    else:
        status = 400
    return render(
        request, "error.html", {"status": status, "message": str(exc), "now": None}, status
    )


def create_app(
    store: Store | Callable[[], Store],
    *,
    jobs: Mapping[str, Job] | None = None,
    token: str | None = None,
    allowed_hosts: tuple[str, ...] | list[str] = LOOPBACK_HOSTS,
) -> Starlette:
    """The dashboard over ``store`` (or a callable returning it, e.g. ``lambda:
    app.store``). ``jobs`` are the app's job definitions (shown with their schedule);
    ``token`` enables replays (``None``: read-only). ``allowed_hosts`` are the host names
    requests may carry; ``["*"]`` accepts any."""
    provider: Callable[[], Store] = store if callable(store) else (lambda: store)
    routes = [
        Route("/", overview_page),
        Route("/jobs/{job:path}", job_page),
        Route("/occurrence", occurrence_page),
        Route("/audit", audit_page),
        Route("/replay/preview", replay_preview, methods=["POST"]),
        Route("/replay/apply", replay_apply, methods=["POST"]),
        Route("/login", login_page, methods=["GET"]),
        Route("/login", login, methods=["POST"]),
        Route("/logout", logout, methods=["POST"]),
        Mount("/static", StaticFiles(directory=HERE / "static"), name="static"),
    ]
    handlers: dict[Any, Callable[[Request, Exception], Awaitable[Response]]] = {
        HTTPException: http_error,
        CronclaimError: cronclaim_error,
    }
    app = Starlette(
        routes=routes,
        middleware=[
            Middleware(SecurityHeaders),
            Middleware(TrustedHostMiddleware, allowed_hosts=list(allowed_hosts)),
        ],
        exception_handlers=handlers,
    )
    app.state.dashboard = Dashboard(
        store=provider,
        jobs=jobs or {},
        sessions=Sessions(token),
        templates=make_templates(),
    )
    return app


def token_from_environment() -> str | None:
    token = os.environ.get(TOKEN_ENV, "").strip()
    return token or None
