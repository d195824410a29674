"""The audit page and the replay action, on top of :mod:`cronclaim.audit` and
:mod:`cronclaim.replay`.

A replay always goes through a dry run first. The preview shows what would be replayed
and carries a digest of that selection (each row's id and fencing token); the apply
step runs the dry run again and refuses, showing the new selection, if the digest
changed in between, so what an operator confirmed is what is replayed.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from starlette.datastructures import FormData

from cronclaim.audit import KINDS, AuditReport, Finding, run_audit
from cronclaim.exceptions import InvalidInput
from cronclaim.jobs import Job
from cronclaim.models import Claim, ClaimState, Occurrence
from cronclaim.replay import REPLAYABLE, ReplayPlan, replay
from cronclaim.store import Store
from cronclaim.web import views

#: Most occurrences one form may name (the form parser's field limit is 1,000).
MAX_SELECTED = 900
DEFAULT_AUDIT_DAYS = 7
MAX_AUDIT_DAYS = 90
#: Findings shown per kind; the counts are always complete.
SHOWN_PER_KIND = 500
KIND_LABELS = {
    "orphan": "orphans",
    "failed": "failed",
    "retrying": "retrying",
    "missed": "missed",
    "stale_rejected": "stale holders refused",
    "repeated_error": "repeated errors",
}


# -- the audit page ----------------------------------------------------------------------


@dataclass(frozen=True)
class AuditQuery:
    job: str | None = None
    days: int = DEFAULT_AUDIT_DAYS

    @classmethod
    def parse(cls, params: Mapping[str, str]) -> AuditQuery:
        raw = params.get("days", "").strip()
        days = DEFAULT_AUDIT_DAYS
        if raw:
            try:
                days = int(raw)
            except ValueError:
                raise InvalidInput(f"days must be a whole number, got {raw!r}") from None
            if not 1 <= days <= MAX_AUDIT_DAYS:
                raise InvalidInput(f"days must be between 1 and {MAX_AUDIT_DAYS}, got {days}")
        return cls(job=params.get("job", "").strip() or None, days=days)


@dataclass(frozen=True)
class AuditPage:
    query: AuditQuery
    report: AuditReport
    jobs: list[str]
    now: datetime

    @property
    def sections(self) -> list[tuple[str, str, list[Finding], int]]:
        """(kind, label, findings shown, findings in all) for each kind found."""
        return [
            (kind, KIND_LABELS[kind], found[:SHOWN_PER_KIND], len(found))
            for kind in KINDS
            if (found := self.report.findings.get(kind, []))
        ]


def replayable(finding: Finding) -> bool:
    return finding.claim.state in REPLAYABLE


def audit_page(store: Store, jobs: Mapping[str, Job], query: AuditQuery) -> AuditPage:
    now = store.now()
    report = run_audit(store, job=query.job, since=now - timedelta(days=query.days), now=now)
    return AuditPage(query=query, report=report, jobs=views.job_names(store, jobs), now=now)


# -- replay ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    """One replay call: one occurrence (``tenant`` and ``start == end``), or a job's
    tenant-local days ``local_dates`` (all tenants, or one)."""

    job: str
    start: datetime
    end: datetime
    tenant: str | None
    local_dates: tuple[date, date] | None = None


@dataclass(frozen=True)
class ReplayRequest:
    """A replay as the forms submit it: occurrences named one by one, or a range."""

    occurrences: tuple[Occurrence, ...]
    job: str | None
    first_day: date | None
    last_day: date | None
    tenant: str | None
    force: bool
    digest: str | None

    @classmethod
    def parse(cls, form: FormData) -> ReplayRequest:
        keys = [v for v in form.getlist("occurrence") if isinstance(v, str) and v]
        if len(keys) > MAX_SELECTED:
            raise InvalidInput(
                f"{len(keys)} occurrences selected; one replay takes at most {MAX_SELECTED} "
                "(replay a range of days instead)"
            )
        occurrences = tuple(dict.fromkeys(parse_key(k) for k in keys))

        def text(name: str) -> str:
            value = form.get(name)
            return value.strip() if isinstance(value, str) else ""

        def day(name: str) -> date | None:
            raw = text(name)
            if not raw:
                return None
            try:
                return date.fromisoformat(raw)
            except ValueError:
                raise InvalidInput(
                    f"{name} must be a date such as 2026-05-19, got {raw!r}"
                ) from None

        job = text("job") or None
        first_day, last_day = day("from"), day("to")
        if not occurrences:
            if job is None:
                raise InvalidInput("nothing to replay: select occurrences or give a job")
            if first_day is None or last_day is None:
                raise InvalidInput("a replay of a range needs its first and last day")
            if last_day < first_day:
                raise InvalidInput(f"the range ends ({last_day}) before it starts ({first_day})")
            if (last_day - first_day).days > MAX_AUDIT_DAYS:
                raise InvalidInput(f"a replay covers at most {MAX_AUDIT_DAYS} days at once")
        return cls(
            occurrences=occurrences,
            job=job,
            first_day=first_day,
            last_day=last_day,
            tenant=text("tenant") or None,
            force=text("force") in {"1", "on", "true", "yes"},
            digest=text("digest") or None,
        )

    @property
    def targets(self) -> list[Target]:
        if self.occurrences:
            return [
                Target(job=o.job, start=o.scheduled_for, end=o.scheduled_for, tenant=o.tenant)
                for o in self.occurrences
            ]
        assert self.job and self.first_day and self.last_day
        window = Store.dashboard_window(self.first_day, self.last_day)
        start, end = window["lo"], window["hi"]
        assert isinstance(start, datetime) and isinstance(end, datetime)
        return [
            Target(
                job=self.job,
                start=start,
                end=end,
                tenant=self.tenant,
                local_dates=(self.first_day, self.last_day),
            )
        ]


def parse_key(key: str) -> Occurrence:
    """``job|instant|tenant`` (see ``occurrence_key``) as an occurrence."""
    job, sep, rest = key.partition("|")
    at, sep2, tenant = rest.partition("|")
    if not (sep and sep2):
        raise InvalidInput(f"not an occurrence: {key[:80]!r}")
    try:
        instant = datetime.fromisoformat(at.replace("Z", "+00:00"))
    except ValueError:
        raise InvalidInput(f"not an occurrence instant: {at[:40]!r}") from None
    return Occurrence(job=job, tenant=tenant, scheduled_for=instant)


def digest(plans: Sequence[ReplayPlan]) -> str:
    """A fingerprint of a selection: each row's id and fencing token, in order."""
    ids = sorted((c.id, c.token) for plan in plans for c in plan.selected)
    return hashlib.sha256(repr(ids).encode()).hexdigest()[:32]


@dataclass(frozen=True)
class ReplayOutcome:
    request: ReplayRequest
    plans: list[ReplayPlan]
    digest: str
    #: True once applied; False for a preview (or a refused apply).
    applied: bool
    #: Set when an apply was refused because the selection changed since the preview.
    changed: bool
    requested_by: str
    now: datetime

    @property
    def selected(self) -> list[Claim]:
        return [c for plan in self.plans for c in plan.selected]

    @property
    def skipped(self) -> list[tuple[Claim, str]]:
        return [s for plan in self.plans for s in plan.skipped]

    @property
    def replayed(self) -> set[int]:
        return {i for plan in self.plans for i in plan.replayed_ids}

    @property
    def left_alone(self) -> list[Claim]:
        """Selected, but changed by someone else between the selection and the write."""
        done = self.replayed
        return [c for c in self.selected if c.id not in done] if self.applied else []

    @property
    def needs_force(self) -> bool:
        return any(c.state is ClaimState.DONE for c, _ in self.skipped)


def plan_replay(
    store: Store, request: ReplayRequest, *, dry_run: bool, requested_by: str
) -> ReplayOutcome:
    """The dry run of ``request`` (``dry_run``), or, when its digest still matches, the
    replay itself, recorded in the event log as asked by ``requested_by``."""

    def run(targets: list[Target], *, dry: bool) -> list[ReplayPlan]:
        return [
            replay(
                store,
                job=t.job,
                start=t.start,
                end=t.end,
                tenant=t.tenant,
                force=request.force,
                dry_run=dry,
                requested_by=requested_by,
                local_dates=t.local_dates,
            )
            for t in targets
        ]

    targets = request.targets
    preview = run(targets, dry=True)
    fingerprint = digest(preview)
    now = store.now()
    if dry_run:
        return ReplayOutcome(request, preview, fingerprint, False, False, requested_by, now)
    if request.digest != fingerprint:
        return ReplayOutcome(request, preview, fingerprint, False, True, requested_by, now)
    plans = run(targets, dry=False)
    return ReplayOutcome(request, plans, digest(plans), True, False, requested_by, store.now())
