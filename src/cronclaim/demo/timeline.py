"""The demo's day-by-day timeline and its final comparison, as text.

Everything here is rendered from a run's records (the naive claim table's fires, the
cronclaim store's event log, the push gateway's deliveries, the alert receiver's
requests) and from :func:`cronclaim.demo.incident.figures`; nothing is scripted.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Mapping, Sequence
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from cronclaim.demo.incident import (
    HANGS_PER_DAY,
    NON_OK,
    OUTAGE,
    STORY_TIMEOUT,
    WEEK,
    RunRecord,
)
from cronclaim.demo.jobs import AT_RISK, PREDICT, REORDER, REORDER_LIST
from cronclaim.demo.naive import Fire
from cronclaim.demo.platform import STORY_RESTAURANT
from cronclaim.models import Event, EventKind

WIDTH = 12  # restaurant column


def short_error(text: str | None) -> str:
    """``timed out`` / ``answered 503`` / the exception's name."""
    if not text:
        return "failed"
    if "did not answer in time" in text or "ReadTimeout" in text or "TimeoutError" in text:
        return "timed out"
    answered = re.search(r"answered (\d{3})", text)
    if answered:
        return f"answered {answered.group(1)}"
    return text.split(":", 1)[0]


def _hm(at: datetime, zone: ZoneInfo) -> str:
    return at.astimezone(zone).strftime("%H:%M")


def _ingredient_names(record: RunRecord) -> dict[tuple[str, str], str]:
    return {
        (r.id, i.id): i.name for r in record.restaurants for i in record.platform.ingredients(r.id)
    }


def _pushes_by_day(record: RunRecord) -> dict[tuple[str, date], dict[str, set[str]]]:
    """(restaurant, day) → kind → devices (at-risk: ingredient → devices flattened)."""
    out: dict[tuple[str, date], dict[str, set[str]]] = defaultdict(lambda: defaultdict(set))
    for push in record.pushes:
        payload = push.payload
        kind = payload.get("kind")
        if kind not in (AT_RISK, REORDER_LIST):
            continue
        key = (str(payload["restaurant_id"]), date.fromisoformat(str(payload["day"])))
        label = str(payload.get("ingredient", "")) if kind == AT_RISK else REORDER_LIST
        out[key][label].add(push.device)
    return out


def naive_line(fires: Sequence[Fire], zone: ZoneInfo, *, always: bool = False) -> str | None:
    """One restaurant-day of the naive run, if it failed (or ``always``)."""
    if not any(f.outcome in ("threw", "released") for f in fires):
        ran = next((f for f in fires if f.outcome == "ran"), None)
        return f"{_hm(ran.at, zone)} ran" if always and ran is not None else None
    parts: list[str] = []
    skipped: list[str] = []
    released = False
    for fire in fires:
        at = _hm(fire.at, zone)
        if fire.outcome == "threw":
            parts.append(
                f"{at} inference threw {fire.detail.split(':', 1)[0]}, run_cron_safe logged it: "
                "claim NOT released"
            )
        elif fire.outcome == "released":
            parts.append(f"{at} inference {short_error(fire.detail)}: claim released")
            released = True
        elif fire.outcome == "skipped":
            skipped.append(at)
        elif fire.outcome == "ran":
            parts.append(f"{at} re-fire claimed it and ran" if released else f"{at} ran")
    if skipped and not released:
        parts.append(f"{' '.join(skipped)} skipped (already claimed)")
    return " · ".join(parts)


def cronclaim_line(events: Sequence[Event], zone: ZoneInfo, *, always: bool = False) -> str | None:
    """One occurrence of the cronclaim run, if it needed more than one plain attempt (or
    ``always``)."""
    troubled = any(
        e.kind in (EventKind.RELEASED, EventKind.FAILED, EventKind.TOOK_OVER) for e in events
    )
    if not troubled and not always:
        return None
    parts: list[str] = []
    for event in events:
        at = _hm(event.at, zone)
        if event.kind is EventKind.RELEASED:
            parts.append(f"{at} #{event.attempt} {short_error(event.error)}, released")
        elif event.kind is EventKind.FAILED:
            parts.append(f"{at} #{event.attempt} {short_error(event.error)}, FAILED")
        elif event.kind is EventKind.TOOK_OVER:
            parts.append(f"{at} #{event.attempt} took over an expired lease")
        elif event.kind is EventKind.COMPLETED:
            parts.append(f"{at} #{event.attempt} done")
    return " · ".join(parts) or None


def render_timeline(naive: RunRecord, cronclaim: RunRecord) -> list[str]:
    lines: list[str] = []
    zones = {r.id: ZoneInfo(r.time_zone) for r in naive.restaurants}
    names = _ingredient_names(cronclaim)
    fires: dict[tuple[str, str, date], list[Fire]] = defaultdict(list)
    for fire in naive.fires:
        fires[fire.job, fire.restaurant_id, fire.day].append(fire)
    pushes = {"naive": _pushes_by_day(naive), "cronclaim": _pushes_by_day(cronclaim)}
    orders = {
        "naive": _orders_by_day(naive),
        "cronclaim": _orders_by_day(cronclaim),
    }
    for day in WEEK:
        lines.append(f"{day:%a} {day.day} {day:%b}")
        for run in (naive, cronclaim):
            label = "naive pattern" if run is naive else "cronclaim"
            lines.append(f"  {label}")
            for restaurant in run.restaurants:
                zone = zones[restaurant.id]
                detail: str | None
                story = restaurant.id == STORY_RESTAURANT
                if run is naive:
                    detail = naive_line(fires[PREDICT, restaurant.id, day], zone, always=story)
                else:
                    predict = cronclaim.events.get((PREDICT, restaurant.id, day), [])
                    detail = cronclaim_line(predict, zone, always=story)
                    reorder = cronclaim_line(
                        cronclaim.events.get((REORDER, restaurant.id, day), []), zone
                    )
                    if reorder:
                        detail = (
                            f"{detail} · reorder list: {reorder}"
                            if detail
                            else f"reorder list: {reorder}"
                        )
                day_pushes = pushes[run.name].get((restaurant.id, day), {})
                if detail is None:
                    continue
                alerts = sorted(k for k in day_pushes if k != REORDER_LIST)
                pushed = (
                    "alert: " + ", ".join(names.get((restaurant.id, k), k) for k in alerts)
                    if alerts
                    else "no alert"
                )
                head = f"    {restaurant.id:<{WIDTH}}"
                lines.append(f"{head}{detail + ' · ' if detail else ''}{pushed}")
            day_map = {r: kinds for (r, d), kinds in pushes[run.name].items() if d == day}
            alert_count = sum(
                len([k for k in kinds if k != REORDER_LIST]) for kinds in day_map.values()
            )
            device_count = sum(
                len(devices)
                for kinds in day_map.values()
                for k, devices in kinds.items()
                if k != REORDER_LIST
            )
            lists = sum(1 for kinds in day_map.values() if REORDER_LIST in kinds)
            ordered = orders[run.name].get(day, 0)
            lines.append(
                f"    {'all':<{WIDTH}}{alert_count} at-risk alert(s) on {device_count} device(s), "
                f"{lists} reorder list(s) pushed; owners ordered {ordered} item(s)"
            )
            if run is cronclaim:
                for page in run.pages:
                    at = _page_time(page)
                    if at is not None and at.astimezone(zones[STORY_RESTAURANT]).date() == day:
                        summary = (page.get("payload") or {}).get("summary", "")
                        summary = re.sub(r" at http://\S+", "", str(summary))
                        action = page.get("event_action")
                        lines.append(f"    {'paged':<{WIDTH}}{at:%H:%M} UTC {action}: {summary}")
    return lines


def _orders_by_day(record: RunRecord) -> dict[date, int]:
    out: dict[date, int] = defaultdict(int)
    for order in record.orders:
        if order.ordered_on is not None:
            out[order.ordered_on] += 1
    return out


def _page_time(page: Mapping[str, Any]) -> datetime | None:
    payload = page.get("payload") or {}
    stamp = payload.get("timestamp")
    if not isinstance(stamp, str):
        return None
    try:
        return datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return None


# -- the comparison ---------------------------------------------------------------------------


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    return str(value)


def render_comparison(result: Mapping[str, Any]) -> list[str]:
    naive = result["runs"]["naive"]
    cron = result["runs"]["cronclaim"]
    rows: list[tuple[str, Any, Any]] = [
        (
            "inference calls (of which timed out)",
            f"{naive['inference_calls']} ({naive['inference_calls_timed_out']})",
            f"{cron['inference_calls']} ({cron['inference_calls_timed_out']})",
        ),
        (
            "inventory-predict attempts that failed",
            naive["predict_attempts_failed"],
            cron["predict_attempts_failed"],
        ),
        (
            "claims released after a failure",
            naive["claims_released_after_a_failure"],
            cron["claims_released_after_a_failure"],
        ),
        ("retries", naive["retries"], cron["retries"]),
        ("claims leaked (held, never released)", naive["claims_leaked"], cron["claims_leaked"]),
        (
            "restaurant-days with predictions",
            f"{naive['restaurant_days_with_predictions']} of {naive['restaurant_days']}",
            f"{cron['restaurant_days_with_predictions']} of {cron['restaurant_days']}",
        ),
        ("at-risk alerts due", naive["at_risk_alerts_due"], cron["at_risk_alerts_due"]),
        (
            "at-risk alerts delivered",
            naive["at_risk_alerts_delivered"],
            cron["at_risk_alerts_delivered"],
        ),
        (
            "at-risk alerts never delivered",
            naive["at_risk_alerts_never_delivered"],
            cron["at_risk_alerts_never_delivered"],
        ),
        (
            "device deliveries (doubled)",
            f"{naive['device_deliveries']} ({naive['doubled_device_deliveries']})",
            f"{cron['device_deliveries']} ({cron['doubled_device_deliveries']})",
        ),
        (
            "ingredients that ran out",
            naive["ingredients_that_ran_out"],
            cron["ingredients_that_ran_out"],
        ),
        ("pages sent (requests received)", _pages(naive), _pages(cron)),
        ("audit: orphaned claims", _audit(naive), _audit(cron)),
        (
            "cèpe alert for Pintxos del Mercado",
            naive["cepe_alert"]["first_delivered_local"] or "never",
            cron["cepe_alert"]["first_delivered_local"] or "never",
        ),
        ("cèpes ran out", _ran_out(naive), _ran_out(cron)),
    ]
    width = max(len(r[0]) for r in rows) + 2
    col = max(len(_cell(r[1])) for r in rows) + 3
    lines = [f"{'':<{width}}{'naive pattern':<{col}}cronclaim"]
    lines.extend(f"{label:<{width}}{_cell(a):<{col}}{_cell(b)}" for label, a, b in rows)
    return lines


def _pages(run: Mapping[str, Any]) -> str:
    pages = run["pages"]
    if not pages["sent"]:
        return "0"
    return f"{pages['sent']} ({pages['triggers']} triggers, {pages['resolves']} resolves)"


def _audit(run: Mapping[str, Any]) -> str:
    audit = run["audit"]
    orphans = audit.get("orphaned_claims")
    counts = audit.get("counts")
    if not isinstance(counts, dict):
        where = audit.get("restaurants") or []
        return f"{orphans} in {len(where)} restaurants" if where else str(orphans)
    others = ", ".join(
        f"{n} {k.replace('_', ' ')}" for k, n in counts.items() if n and k != "orphan"
    )
    return f"{orphans}" + (f" ({others})" if others else " (clean)" if audit.get("clean") else "")


def _ran_out(run: Mapping[str, Any]) -> str:
    cepe = run["cepe_alert"]
    if not cepe["ran_out_on"]:
        return "no"
    first = date.fromisoformat(cepe["ran_out_on"][0])
    days = len(cepe["ran_out_on"])
    return f"{first:%a} {first.day} {first:%b} ({cepe['unmet_kg']} kg short over {days} day(s))"


def render(result: Mapping[str, Any], naive: RunRecord, cronclaim: RunRecord) -> str:
    outage_days = sum(len(days) for days in OUTAGE.values())
    restaurant, day, status = NON_OK
    timeout = result["inference_timeout_seconds"]
    head = [
        "cronclaim demo: the incident week (Mon 18 May - Sun 24 May 2026), replayed twice in "
        "virtual time",
        f"  {len(naive.restaurants)} restaurants. Inference hangs on the first {HANGS_PER_DAY} "
        f"requests of the morning on {outage_days} restaurant-days ({len(OUTAGE)} restaurants; "
        f"{STORY_RESTAURANT} Mon-Fri), and answers {status} once for {restaurant} on {day:%a}.",
        f"  The inference client's timeout is {timeout:g} s of real time, standing in for the "
        f"story's {STORY_TIMEOUT:g} s: a hung request costs {timeout:g} s, not {STORY_TIMEOUT:g}.",
        "  naive pattern: the story's code (INSERT OR IGNORE claim, release only on a non-OK "
        "answer, outer catch-and-log);",
        "    its scheduler re-fires each job 15, 30 and 45 min after its time (at-least-once).",
        "  cronclaim: the reference app's jobs under cronclaim's worker. Owners order what a "
        "delivered reorder list says.",
        f"  Prepared in {result['prepare_seconds']:.1f} s (platform and the week's fitted models"
        f"{', reused from ' + result['directory'] if result.get('reused') else ''}).",
        "",
        "Timeline, in each restaurant's local time: the restaurant-days where something went "
        f"wrong, and {STORY_RESTAURANT}'s",
        f"  ({STORY_RESTAURANT} is Pintxos del Mercado, Bilbao; #n is cronclaim's attempt "
        "number; alert: the at-risk pushes delivered for that morning)",
    ]
    body = render_timeline(naive, cronclaim)
    tail = ["", "Comparison (every figure read back from the run's databases and receivers)"]
    tail.extend(render_comparison(result))
    tail.append("")
    tail.append(
        f"The runs took {result['runs']['naive']['seconds']} s (naive) and "
        f"{result['runs']['cronclaim']['seconds']} s (cronclaim), side by side in two "
        "processes. "
        + (
            f"Files in {result['directory']}: report.txt, comparison.json, and each run's "
            "databases under naive/ and cronclaim/."
            if result["directory"]
            else "(Temporary files removed; --dir keeps them.)"
        )
    )
    return "\n".join([*head, *body, *tail])
