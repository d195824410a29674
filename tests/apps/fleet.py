"""An app for worker-process tests, configured by environment variables.

FLEET_DATABASE_URL  the database (required)
FLEET_TENANTS       number of tenants (default 100), all in FLEET_ZONE (default UTC)
FLEET_CRON          the job's cron expression (default: every day at 07:00)
FLEET_EFFECTS       directory where each process appends one line per side effect
FLEET_WORK_SECONDS  how long each run takes (default 0)
FLEET_HANG_TENANT   a tenant whose run blocks for FLEET_HANG_SECONDS (default 3600)
FLEET_LEASE         the job's lease (default 2m)
FLEET_MARK          a file touched once the hanging run has started
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from cronclaim import App
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant

app = App(os.environ["FLEET_DATABASE_URL"])
TENANTS = int(os.environ.get("FLEET_TENANTS", "100"))
ZONE = os.environ.get("FLEET_ZONE", "UTC")
EFFECTS = Path(os.environ.get("FLEET_EFFECTS", "."))
WORK = float(os.environ.get("FLEET_WORK_SECONDS", "0"))
HANG_TENANT = os.environ.get("FLEET_HANG_TENANT")
HANG_SECONDS = float(os.environ.get("FLEET_HANG_SECONDS", "3600"))
MARK = os.environ.get("FLEET_MARK")


def tenants() -> list[Tenant]:
    return [Tenant(id=f"t{i:05d}", time_zone=ZONE) for i in range(TENANTS)]


@app.job(
    "fleet",
    cron=os.environ.get("FLEET_CRON", "0 7 * * *"),
    tenants=tenants,
    window="3h",
    lease=os.environ.get("FLEET_LEASE", "2m"),
    retry=Backoff(first=1, factor=1, max_attempts=5),
)
def fleet(tenant: Tenant, run: Run) -> None:
    if tenant.id == HANG_TENANT and run.attempt == 1:
        if MARK:
            Path(MARK).write_text(str(os.getpid()))
        time.sleep(HANG_SECONDS)
    if WORK:
        time.sleep(WORK)
    with open(EFFECTS / f"{os.getpid()}.txt", "a") as out:
        out.write(f"{tenant.id} {run.attempt} {run.token}\n")
