"""What ``cronclaim demo`` runs: the incident replay (text or JSON) or the live platform."""

from __future__ import annotations

import contextlib
import json
import multiprocessing
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, TextIO

from cronclaim.demo.incident import (
    DEFAULT_INFERENCE_TIMEOUT,
    END,
    HANGS_PER_DAY,
    NON_OK,
    OUTAGE,
    STORY_TIMEOUT,
    WEEK,
    figures,
    prepare,
    quiet_logs,
    run_cronclaim,
    run_naive_quietly,
)
from cronclaim.demo.platform import DEFAULT_SEED
from cronclaim.demo.timeline import render
from cronclaim.exceptions import InvalidInput


def replay(
    directory: Path | None = None,
    *,
    seed: int = DEFAULT_SEED,
    inference_timeout: float = DEFAULT_INFERENCE_TIMEOUT,
) -> tuple[dict[str, Any], str]:
    """Run the week both ways; returns the comparison (JSON-ready) and the text report."""
    if not 0 < inference_timeout <= STORY_TIMEOUT:
        raise InvalidInput(
            f"--inference-timeout must be in (0, {STORY_TIMEOUT:g}] seconds, "
            f"got {inference_timeout}"
        )
    began = time.monotonic()
    with contextlib.ExitStack() as stack:
        temporary = directory is None
        if directory is None:
            directory = Path(
                stack.enter_context(tempfile.TemporaryDirectory(prefix="cronclaim-demo-"))
            )
            reused = False
        else:
            directory.mkdir(parents=True, exist_ok=True)
            reused = (directory / f"fits-{seed}.json").exists()
        stack.enter_context(quiet_logs())
        try:
            prepared = prepare(directory, seed)
        except RuntimeError as exc:  # the story's stock-outs cannot be staged with this seed
            raise InvalidInput(f"--seed {seed}: {exc}") from None
        # The two runs are independent (their own services, databases and clocks): the
        # naive one runs in a second process meanwhile, so their waits overlap.
        spawn = multiprocessing.get_context("spawn")
        with ProcessPoolExecutor(max_workers=1, mp_context=spawn) as pool:
            naive_run = pool.submit(
                run_naive_quietly, prepared, directory / "naive", inference_timeout
            )
            cronclaim = run_cronclaim(prepared, directory / "cronclaim", inference_timeout)
            naive = naive_run.result()
        result: dict[str, Any] = {
            "week": {"first_day": WEEK[0].isoformat(), "last_day": WEEK[-1].isoformat()},
            "seed": seed,
            "restaurants": len(prepared.restaurants),
            "inference_timeout_seconds": inference_timeout,
            "stands_in_for_seconds": STORY_TIMEOUT,
            "outage": {
                "restaurant_days": sum(len(days) for days in OUTAGE.values()),
                "restaurants": {r: [d.isoformat() for d in days] for r, days in OUTAGE.items()},
                "hung_requests_per_day": HANGS_PER_DAY,
                "non_ok": {
                    "restaurant": NON_OK[0],
                    "day": NON_OK[1].isoformat(),
                    "status": NON_OK[2],
                },
            },
            "audited_at": END.isoformat(),
            "directory": None if temporary else str(directory),
            "reused": reused,
            "prepare_seconds": round(prepared.seconds, 1),
            "runs": {
                "naive": figures(naive, prepared.fitted),
                "cronclaim": figures(cronclaim, prepared.fitted),
            },
        }
        text = render(result, naive, cronclaim)
        result["seconds"] = round(time.monotonic() - began, 1)
        text += f"\nTotal {result['seconds']} s."
        if not temporary:
            (directory / "comparison.json").write_text(json.dumps(result, indent=2) + "\n")
            (directory / "report.txt").write_text(text + "\n")
    return result, text


def run_demo(
    out: TextIO,
    *,
    directory: Path | None = None,
    as_json: bool = False,
    seed: int = DEFAULT_SEED,
    inference_timeout: float = DEFAULT_INFERENCE_TIMEOUT,
) -> int:
    result, text = replay(directory, seed=seed, inference_timeout=inference_timeout)
    if as_json:
        out.write(json.dumps(result, indent=2, ensure_ascii=False) + "\n")
    else:
        out.write(text + "\n")
    return 0
