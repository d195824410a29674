"""The dashboard's URLs, built in one place: job names and tenant ids are arbitrary
text (a tenant may be ``a/b:c&d``), so every one of them is percent-encoded here."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from urllib.parse import quote, urlencode

from cronclaim.models import format_instant


def job_url(job: str, params: Mapping[str, str] | None = None) -> str:
    query = {k: v for k, v in (params or {}).items() if v}
    return "/jobs/" + quote(job, safe="") + ("?" + urlencode(query) if query else "")


def occurrence_base(job: str, tenant: str) -> str:
    """The URL of one of the tenant's occurrences, up to its instant (a job page
    builds hundreds of them per tenant row)."""
    return f"/occurrence?job={quote(job, safe='')}&tenant={quote(tenant, safe='')}&at="


def instant_param(value: datetime) -> str:
    """``2026-05-19T05:00:00Z``, as :func:`format_instant` writes it, but by the C
    ``isoformat`` when the instant is already in UTC: a job page writes thousands. It
    needs no percent-encoding in a query string."""
    text = value.isoformat()
    if text.endswith("+00:00"):
        return text[:-6] + "Z"
    return format_instant(value)


def occurrence_url(job: str, tenant: str, scheduled_for: datetime) -> str:
    return occurrence_base(job, tenant) + instant_param(scheduled_for)


def occurrence_key(job: str, tenant: str, scheduled_for: datetime) -> str:
    """One occurrence as a form value: job, instant and tenant (which may hold ':' and
    '|', hence last)."""
    return f"{job}|{format_instant(scheduled_for)}|{tenant}"
