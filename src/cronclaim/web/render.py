"""How values look on the pages: the Jinja2 environment (autoescaping on, strict about
undefined names) and its filters for instants, durations and local times."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import jinja2
from starlette.templating import Jinja2Templates

from cronclaim.models import ClaimState, Occurrence
from cronclaim.web import views
from cronclaim.web.urls import job_url, occurrence_key, occurrence_url

TEMPLATES = Path(__file__).resolve().parent / "templates"


def duration(value: timedelta | None) -> str:
    if value is None:
        return ""
    seconds = value.total_seconds()
    sign = "-" if seconds < 0 else ""
    seconds = abs(seconds)
    if seconds < 1:
        return f"{sign}{seconds * 1000:.0f} ms"
    if seconds < 60:
        return f"{sign}{seconds:.1f} s" if seconds < 10 else f"{sign}{seconds:.0f} s"
    minutes, secs = divmod(int(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    days, hours = divmod(hours, 24)
    if days:
        return f"{sign}{days}d {hours}h" if hours else f"{sign}{days}d"
    if hours:
        return f"{sign}{hours}h {minutes:02d}m" if minutes else f"{sign}{hours}h"
    return f"{sign}{minutes}m {secs:02d}s" if secs else f"{sign}{minutes}m"


def instant(value: datetime | None) -> str:
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") + "Z"


def local_time(occurrence: Occurrence) -> str:
    local = occurrence.local_time
    if local is None:
        return ""
    zone = occurrence.time_zone or local.strftime("%z")
    return f"{local:%Y-%m-%d %H:%M} {zone}"


def make_templates() -> Jinja2Templates:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        autoescape=True,  # every template is HTML; no value is ever marked safe
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(duration=duration, instant=instant, local=local_time)
    env.globals.update(
        job_url=job_url,
        occurrence_url=occurrence_url,
        occurrence_key=occurrence_key,
        LABELS=views.LABELS,
        LEDGER_COLUMNS=views.LEDGER_COLUMNS,
        OUTCOMES=views.OUTCOMES,
        ClaimState=ClaimState,
    )
    return Jinja2Templates(env=env)
