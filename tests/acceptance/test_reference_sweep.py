"""The seed's last checklist item, "sweep every sibling cron", automated: every job of
the reference application under a timeout, an exception and a killed worker process at
each external call it makes, before and after the call."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from tests.apps.reference import START, ReferencePlatform, reference_app

from cronclaim.demo.jobs import POSTBACKS, PREDICT, PURGE, REORDER
from cronclaim.models import ClaimState
from cronclaim.testing import SweepReport, sweep


@pytest.fixture(scope="module")
def platform(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ReferencePlatform]:
    with ReferencePlatform(tmp_path_factory.mktemp("reference")) as running:
        yield running


@pytest.fixture(scope="module")
def report(platform: ReferencePlatform, tmp_path_factory: pytest.TempPathFactory) -> SweepReport:
    return sweep(
        reference_app,
        start=START,
        fixture=platform.case,
        workdir=tmp_path_factory.mktemp("sweep"),
    )


def test_every_job_of_the_reference_app_survives_every_injected_fault(
    report: SweepReport,
) -> None:
    report.assert_clean()
    assert [job.job for job in report.jobs] == [PREDICT, REORDER, POSTBACKS, PURGE]


def test_the_sweep_found_each_jobs_external_calls(
    report: SweepReport, platform: ReferencePlatform
) -> None:
    calls = {job.job: job.calls for job in report.jobs}
    pushes = len(platform.at_risk) * len(platform.devices)
    assert calls[PREDICT] == ["inference"] + ["push"] * pushes
    assert calls[REORDER] == ["push"] * len(platform.devices)
    assert calls[POSTBACKS] == ["postback", "postback"]
    assert calls[PURGE] == ["cdn"]
    for job in report.jobs:
        kinds = {(c.injection.kind, c.injection.position) for c in job.cases if c.injection}
        assert kinds == {
            (kind, position)
            for kind in ("timeout", "exception", "kill")
            for position in ("before", "after")
        }


def test_a_worker_killed_after_its_last_push_is_taken_over_and_nothing_is_pushed_twice(
    report: SweepReport, platform: ReferencePlatform
) -> None:
    """The case the idempotency key exists for: the pushes were delivered, the worker died
    before marking the occurrence done; the takeover pushes again, with the same apns-ids,
    and the gateway drops every repeat."""
    predict = next(job for job in report.jobs if job.job == PREDICT)
    last_push = max(c.injection.point.nth for c in predict.cases if c.injection)
    [case] = [
        c
        for c in predict.cases
        if c.injection
        and c.injection.kind == "kill"
        and c.injection.position == "after"
        and c.injection.point.name == "push"
        and c.injection.point.nth == last_push
    ]
    assert case.state is ClaimState.DONE
    assert case.history[:3] == ["acquired", "lease_expired", "took_over"]
    assert case.effects == predict.clean.effects  # every alert on every device, once
    assert all(n == 1 for n in case.effects.values())
    assert case.workdir is not None
    assert platform.duplicates_dropped[case.workdir] == sum(case.effects.values())
