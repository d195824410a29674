"""The domain records: what their constructors accept, refuse and normalise."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from cronclaim import Claim, ClaimState, CronclaimError, InvalidInput, Occurrence
from cronclaim.models import (
    FINAL_STATES,
    MAX_NAME_LENGTH,
    Tenant,
    check_name,
    format_instant,
    require_aware,
    require_positive,
    time_zone,
)

MADRID = ZoneInfo("Europe/Madrid")
SEVEN_MADRID = datetime(2026, 5, 19, 7, 0, tzinfo=MADRID)  # CEST, UTC+2
FIVE_UTC = datetime(2026, 5, 19, 5, 0, tzinfo=UTC)


def occurrence(**change: object) -> Occurrence:
    fields: dict[str, object] = {"job": "inventory-predict", "tenant": "aitor"}
    fields["scheduled_for"] = SEVEN_MADRID
    fields.update(change)
    return Occurrence(**fields)  # type: ignore[arg-type]


# -- Occurrence ---------------------------------------------------------------------------


def test_occurrence_normalises_scheduled_for_to_utc() -> None:
    o = occurrence()
    assert o.scheduled_for == FIVE_UTC
    assert o.scheduled_for.tzinfo is UTC


def test_occurrence_keeps_the_local_wall_time_it_was_given() -> None:
    o = occurrence()
    assert o.local_time == SEVEN_MADRID
    assert o.local_time is not None and o.local_time.hour == 7
    assert o.time_zone == "Europe/Madrid"


def test_occurrence_given_in_utc_has_no_named_zone() -> None:
    assert occurrence(scheduled_for=FIVE_UTC).time_zone is None


def test_occurrences_of_the_same_instant_are_equal_whatever_the_zone() -> None:
    in_madrid = occurrence()
    in_utc = occurrence(scheduled_for=FIVE_UTC)
    in_tokyo = occurrence(scheduled_for=FIVE_UTC.astimezone(ZoneInfo("Asia/Tokyo")))
    assert in_madrid == in_utc == in_tokyo
    assert len({in_madrid, in_utc, in_tokyo}) == 1


def test_occurrences_differ_by_job_tenant_or_instant() -> None:
    base = occurrence()
    assert base != occurrence(job="other-job")
    assert base != occurrence(tenant="bea")
    assert base != occurrence(scheduled_for=SEVEN_MADRID + timedelta(microseconds=1))


def test_idempotency_key_names_job_tenant_and_utc_instant() -> None:
    assert occurrence().idempotency_key == "inventory-predict:aitor:2026-05-19T05:00:00Z"


def test_idempotency_key_keeps_microseconds_when_present() -> None:
    o = occurrence(scheduled_for=FIVE_UTC + timedelta(microseconds=250))
    assert o.idempotency_key == "inventory-predict:aitor:2026-05-19T05:00:00.000250Z"


def test_idempotency_key_is_the_same_for_the_same_instant_in_any_zone() -> None:
    assert occurrence().idempotency_key == occurrence(scheduled_for=FIVE_UTC).idempotency_key


def test_local_time_must_be_the_same_instant_as_scheduled_for() -> None:
    with pytest.raises(InvalidInput, match="not the same instant"):
        occurrence(scheduled_for=FIVE_UTC, local_time=SEVEN_MADRID + timedelta(hours=1))


def test_local_time_of_the_same_instant_is_accepted() -> None:
    o = occurrence(scheduled_for=FIVE_UTC, local_time=SEVEN_MADRID)
    assert o.local_time == SEVEN_MADRID
    assert o.time_zone == "Europe/Madrid"


def test_naive_scheduled_for_is_refused_with_a_hint() -> None:
    with pytest.raises(InvalidInput, match=r"naive datetime \(2026-05-19T07:00:00\).*tzinfo"):
        occurrence(scheduled_for=datetime(2026, 5, 19, 7, 0))


def test_naive_local_time_is_refused() -> None:
    with pytest.raises(InvalidInput, match="local_time is a naive datetime"):
        occurrence(scheduled_for=FIVE_UTC, local_time=datetime(2026, 5, 19, 7, 0))


def test_scheduled_for_must_be_a_datetime() -> None:
    with pytest.raises(InvalidInput, match="scheduled_for must be a datetime, not str"):
        occurrence(scheduled_for="2026-05-19T07:00:00+02:00")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"job": ""}, "job name is empty"),
        ({"job": " \t "}, "job name is empty"),
        ({"tenant": ""}, "tenant is empty"),
        ({"job": "x" * (MAX_NAME_LENGTH + 1)}, "job name is 201 characters long"),
        ({"tenant": "x" * (MAX_NAME_LENGTH + 1)}, "tenant is 201 characters long"),
        ({"job": "a:b"}, "job name 'a:b' must not contain ':'"),
        ({"job": "a\x07b"}, "control character"),
        ({"tenant": "a\nb"}, "control character"),
        ({"tenant": "aitor "}, "leading or trailing whitespace"),
        ({"job": 42}, "job name must be a string, not int"),
        ({"tenant": None}, "tenant must be a string, not NoneType"),
    ],
)
def test_bad_names_are_refused_naming_the_problem(change: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidInput, match=message):
        occurrence(**change)


def test_names_at_the_length_limit_are_accepted() -> None:
    o = occurrence(job="j" * MAX_NAME_LENGTH, tenant="t" * MAX_NAME_LENGTH)
    assert len(o.job) == len(o.tenant) == MAX_NAME_LENGTH


def test_a_tenant_may_contain_colons_and_unicode() -> None:
    assert occurrence(tenant="eu:café-ñandú").tenant == "eu:café-ñandú"


def test_occurrence_is_frozen() -> None:
    o = occurrence()
    with pytest.raises(dataclasses.FrozenInstanceError):
        o.job = "other"  # type: ignore[misc]


def test_occurrence_is_keyword_only() -> None:
    with pytest.raises(TypeError):
        Occurrence("inventory-predict", "aitor", FIVE_UTC)  # type: ignore[misc]


def test_invalid_input_is_a_cronclaim_error() -> None:
    with pytest.raises(CronclaimError):
        occurrence(job="")


@settings(database=None)  # no example database left in the working tree
@given(
    st.datetimes(
        min_value=datetime(1971, 1, 1),
        max_value=datetime(2200, 1, 1),
        timezones=st.sampled_from(
            [UTC, MADRID, ZoneInfo("America/New_York"), ZoneInfo("Asia/Kolkata")]
        ),
    )
)
def test_any_aware_instant_round_trips_through_utc(instant: datetime) -> None:
    o = Occurrence(job="j", tenant="t", scheduled_for=instant)
    # Timestamps, not ==: Python never finds a wall time in a DST fold equal to an
    # instant of another zone (PEP 495), and hypothesis does generate folds.
    assert o.scheduled_for.timestamp() == instant.timestamp()
    assert o.scheduled_for.utcoffset() == timedelta(0)
    assert o.idempotency_key.endswith("Z")


# -- helpers ------------------------------------------------------------------------------


def test_require_aware_converts_to_utc() -> None:
    assert require_aware(SEVEN_MADRID, "x") == FIVE_UTC
    assert require_aware(SEVEN_MADRID, "x").tzinfo is UTC


def test_require_aware_accepts_fixed_offsets() -> None:
    plus_two = datetime(2026, 5, 19, 7, 0, tzinfo=timezone(timedelta(hours=2)))
    assert require_aware(plus_two, "x") == FIVE_UTC


@pytest.mark.parametrize("value", [timedelta(0), timedelta(seconds=-1)])
def test_require_positive_refuses_zero_and_negative(value: timedelta) -> None:
    with pytest.raises(InvalidInput, match="lease must be positive"):
        require_positive(value, "lease")


def test_require_positive_refuses_numbers() -> None:
    with pytest.raises(InvalidInput, match="lease must be a timedelta, not int"):
        require_positive(30, "lease")  # type: ignore[arg-type]


def test_require_positive_returns_the_value() -> None:
    assert require_positive(timedelta(microseconds=1), "lease") == timedelta(microseconds=1)


def test_check_name_with_colons_allowed_keeps_them() -> None:
    assert check_name("a:b", "tenant", allow_colon=True) == "a:b"


def test_format_instant_writes_utc_with_z() -> None:
    assert format_instant(SEVEN_MADRID) == "2026-05-19T05:00:00Z"
    assert format_instant(FIVE_UTC.replace(microsecond=7)) == "2026-05-19T05:00:00.000007Z"


# -- time zones and tenants ------------------------------------------------------------------


def test_time_zone_finds_iana_names() -> None:
    assert time_zone("Europe/Madrid") == MADRID


@pytest.mark.parametrize("name", ["Mars/Olympus_Mons", "Europe/madrid ", "../etc/passwd"])
def test_unknown_time_zone_is_refused_naming_it(name: str) -> None:
    with pytest.raises(InvalidInput, match="unknown time zone"):
        time_zone(name)


@pytest.mark.parametrize("name", ["", "  "])
def test_empty_time_zone_is_refused(name: str) -> None:
    with pytest.raises(InvalidInput, match="IANA name"):
        time_zone(name)


def test_tenant_defaults_to_utc() -> None:
    tenant = Tenant(id="aitor")
    assert tenant.time_zone == "UTC"
    assert tenant.zone == ZoneInfo("UTC")


def test_tenant_with_unknown_zone_is_refused() -> None:
    with pytest.raises(InvalidInput, match="unknown time zone 'Europe/Atlantis'"):
        Tenant(id="aitor", time_zone="Europe/Atlantis")


def test_tenant_id_follows_the_name_rules() -> None:
    with pytest.raises(InvalidInput, match="tenant is empty"):
        Tenant(id="")


# -- Claim and states ------------------------------------------------------------------------


def claim(**change: object) -> Claim:
    fields: dict[str, object] = {
        "id": 1,
        "occurrence": occurrence(),
        "state": ClaimState.CLAIMED,
        "token": 2,
        "attempt": 2,
        "worker": "worker-b",
        "claimed_at": FIVE_UTC,
        "lease_expires_at": FIVE_UTC + timedelta(minutes=2),
        "retry_at": None,
        "finished_at": None,
        "last_error": None,
    }
    fields.update(change)
    return Claim(**fields)  # type: ignore[arg-type]


def test_claim_took_over_only_when_the_prior_state_was_claimed() -> None:
    assert claim(prior_state=ClaimState.CLAIMED, prior_worker="worker-a").took_over
    assert not claim(prior_state=ClaimState.RELEASED).took_over
    assert not claim().took_over


def test_final_states_are_done_failed_and_missed() -> None:
    assert {ClaimState.DONE, ClaimState.FAILED, ClaimState.MISSED} == FINAL_STATES
    assert ClaimState.CLAIMED not in FINAL_STATES
    assert ClaimState.RELEASED not in FINAL_STATES


def test_claim_state_values_are_the_stored_words() -> None:
    assert ClaimState("released") is ClaimState.RELEASED
    assert str(ClaimState.DONE) == "done"
