"""A minimal cronclaim app: three restaurants in three time zones, a job every minute.

    cronclaim worker --app examples.quickstart:app --burst     # run what is due, then exit
    cronclaim status digest --ticks 3 --database sqlite:///quickstart.db  # who ran
"""

from cronclaim import App
from cronclaim.guard import Run
from cronclaim.jobs import Backoff
from cronclaim.models import Tenant

app = App("sqlite:///quickstart.db")

RESTAURANTS = [
    Tenant(id="pintxos-del-mercado", time_zone="Europe/Madrid"),
    Tenant(id="ayvalik-kofte-deniz", time_zone="Europe/Istanbul"),
    Tenant(id="joes-diner", time_zone="America/New_York"),
]


@app.job(
    "digest",
    cron="* * * * *",
    tenants=lambda: RESTAURANTS,
    window="5m",
    retry=Backoff(first=1, factor=2, max_attempts=3),
)
async def digest(tenant: Tenant, run: Run) -> None:
    local = run.occurrence.local_time
    assert local is not None
    print(f"{tenant.id}: digest for {local:%H:%M %Z}, key {run.idempotency_key}")
