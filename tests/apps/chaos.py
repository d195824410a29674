"""An app for the chaos test: every minute, each tenant's run takes a little while and
appends one line per side effect (idempotency key, token, pid) to a per-process file.

CHAOS_DATABASE_URL  the database (required)
CHAOS_EFFECTS       directory for the effect files (required)
CHAOS_TENANTS       number of tenants (default 60)
"""

from __future__ import annotations

import os
import random
import time
from pathlib import Path

from cronclaim import App
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant

app = App(os.environ["CHAOS_DATABASE_URL"])
EFFECTS = Path(os.environ["CHAOS_EFFECTS"])
TENANTS = int(os.environ.get("CHAOS_TENANTS", "60"))


@app.job(
    "chaos",
    cron="* * * * *",
    tenants=lambda: [Tenant(id=f"t{i:03d}") for i in range(TENANTS)],
    window="10m",
    lease="3s",
    retry=Backoff(first=1, factor=1, max_attempts=20),
)
def chaos(tenant: Tenant, run: Run) -> None:
    time.sleep(random.uniform(0.05, 0.4))
    with open(EFFECTS / f"{os.getpid()}.txt", "a") as out:
        out.write(f"{run.idempotency_key} {run.token} {os.getpid()}\n")
        out.flush()
