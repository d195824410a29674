"""``cronclaim demo``: the incident week replayed both ways, asserted from the run's own
figures. The replay runs once, through the CLI in a subprocess (``--json``); its text
report, written to the same directory by the same run, must agree with the JSON."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

DEMO_TIMEOUT = 300


def cronclaim(*args: str, **kwargs: Any) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONCLAIM_DEMO_")}
    return subprocess.run(
        [sys.executable, "-m", "cronclaim", *args],
        capture_output=True,
        text=True,
        env=env,
        check=False,
        **kwargs,
    )


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Any], str]:
    directory = tmp_path_factory.mktemp("demo")
    done = cronclaim("demo", "--json", "--dir", str(directory), timeout=DEMO_TIMEOUT)
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    return result, (directory / "report.txt").read_text()


def outage_keys(result: dict[str, Any]) -> set[str]:
    return {
        f"inventory-predict:{restaurant}:{day}"
        for restaurant, days in result["outage"]["restaurants"].items()
        for day in days
    }


def test_the_naive_pattern_leaks_the_claim_of_every_day_inference_timed_out(
    demo: tuple[dict[str, Any], str],
) -> None:
    result, _ = demo
    naive = result["runs"]["naive"]
    assert naive["claims_leaked"] >= result["outage"]["restaurant_days"] == 23
    # The post-mortem's own query finds them on the claim table ...
    assert naive["audit"]["orphaned_claims"] == naive["claims_leaked"]
    assert outage_keys(result) <= set(naive["audit"]["keys"])
    # ... every later fire of those days skipped, and nothing was retried after a throw.
    assert naive["fires_skipped_behind_a_leaked_claim"] == 3 * naive["claims_leaked"]
    assert naive["retries"] == naive["claims_released_after_a_failure"]  # only the 503
    assert naive["restaurant_days_with_predictions"] == (
        naive["restaurant_days"] - naive["claims_leaked"]
    )
    assert naive["at_risk_alerts_never_delivered"] > 0
    assert naive["pages"]["sent"] == 0


def test_cronclaim_delivers_every_at_risk_alert_once_and_leaks_nothing(
    demo: tuple[dict[str, Any], str],
) -> None:
    result, _ = demo
    run = result["runs"]["cronclaim"]
    assert run["claims_leaked"] == 0
    assert run["audit"]["orphaned_claims"] == 0
    assert run["restaurant_days_with_predictions"] == run["restaurant_days"]
    assert run["at_risk_alerts_never_delivered"] == 0
    assert run["at_risk_alerts_delivered"] == run["at_risk_alerts_due"] > 0
    assert run["doubled_device_deliveries"] == 0
    # Every failed attempt was released and retried; the timeouts are the hung requests.
    assert run["predict_attempts_failed"] >= run["inference_calls_timed_out"] > 0
    assert run["claims_released_after_a_failure"] == run["predict_attempts_failed"]
    assert run["retries"] == run["claims_released_after_a_failure"]
    assert run["final_states"] == {"done": 2 * run["restaurant_days"]}


def test_aitors_cepe_alert_arrives_monday_morning_only_with_cronclaim(
    demo: tuple[dict[str, Any], str],
) -> None:
    result, _ = demo
    naive = result["runs"]["naive"]["cepe_alert"]
    cron = result["runs"]["cronclaim"]["cepe_alert"]
    assert re.fullmatch(r"Mon 18 May 07:0\d CEST", cron["first_delivered_local"])
    assert cron["ran_out_on"] == []
    assert "2026-05-22" in naive["ran_out_on"]  # Friday, as in the story
    assert naive["first_delivered_utc"] is None or naive["first_delivered_utc"] > "2026-05-22"


def test_cronclaim_pages_on_repeated_inference_failures(
    demo: tuple[dict[str, Any], str],
) -> None:
    result, _ = demo
    pages = result["runs"]["cronclaim"]["pages"]
    assert pages["triggers"] >= 1
    # One incident per job and failing dependency, never per restaurant.
    assert pages["first"]["dedup_key"].startswith("cronclaim/inventory-predict/")
    assert "aitor" not in pages["first"]["dedup_key"]
    assert pages["webhooks"] == pages["sent"]


def test_the_text_report_agrees_with_the_json(demo: tuple[dict[str, Any], str]) -> None:
    result, text = demo
    naive, cron = result["runs"]["naive"], result["runs"]["cronclaim"]
    comparison = text.split("\nComparison", 1)[1].split("\n\n", 1)[0].splitlines()[2:]
    rows = {cells[0]: cells[1:] for cells in (re.split(r"\s{2,}", r.strip()) for r in comparison)}
    assert rows["claims leaked (held, never released)"] == [
        str(naive["claims_leaked"]),
        str(cron["claims_leaked"]),
    ]
    assert rows["at-risk alerts never delivered"] == [
        str(naive["at_risk_alerts_never_delivered"]),
        str(cron["at_risk_alerts_never_delivered"]),
    ]
    assert cron["cepe_alert"]["first_delivered_local"] in text
    assert "Mon 18 May" in text and "Sun 24 May" in text
    assert "run_cron_safe logged it" in text  # the swallowed timeout, day by day


def test_demo_rejects_contradictory_flags_in_one_line() -> None:
    done = cronclaim("demo", "--serve", "--json", timeout=60)
    assert done.returncode == 2
    assert done.stderr.strip().count("\n") == 0
    assert "cannot be combined" in done.stderr


@pytest.fixture
def serving(tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CRONCLAIM_DEMO_")}
    process = subprocess.Popen(
        [sys.executable, "-m", "cronclaim", "demo", "--serve", "--dir", str(tmp_path)],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=env,
    )
    lines: list[str] = []
    try:
        assert process.stdout is not None
        for line in process.stdout:
            lines.append(line)
            if line.startswith("Ctrl-C to stop"):
                break
        yield process, lines
    finally:
        if process.poll() is None:
            process.kill()
            process.wait(timeout=30)


def test_demo_serve_runs_the_platform_until_interrupted(
    serving: tuple[subprocess.Popen[str], list[str]],
) -> None:
    process, lines = serving
    found = re.findall(r"^\s+(inference service|push gateway)\s+(http://\S+)", "".join(lines), re.M)
    urls = dict(found)
    assert set(urls) == {"inference service", "push gateway"}, lines
    assert httpx.get(urls["inference service"] + "/healthz", timeout=10).status_code == 200
    assert httpx.get(urls["push gateway"] + "/v1/deliveries", timeout=10).status_code == 200
    process.send_signal(signal.SIGINT)
    out, _ = process.communicate(timeout=60)
    assert process.returncode == 0
    assert "stopped:" in out
