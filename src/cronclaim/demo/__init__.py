"""The reference application: a restaurant platform with inventory alerts.

Rooms, bottom up (each imports only those above it in this list, plus cronclaim's
records and errors, stdlib and httpx; never cronclaim's store or worker):

- ``forecast``: Holt-Winters and seasonal-naive forecasts, MASE, stock-out and at-risk
  arithmetic (pure functions).
- ``catalog``: the restaurants and what their kitchens stock (plain data).
- ``platform``: the platform's records and the seeded generator of a year of its life.
- ``platform_db``: the platform's own SQLite database (``PlatformDB``).
- ``errors``, ``faults``, ``_http``: what the service clients raise, injectable faults,
  the small background HTTP server both services are built on.
- ``inference``: the forecasting service and its clients.
- ``push``: the APNs-shaped push gateway and its clients.
- ``receivers``, ``postbacks``: local endpoints that record what is sent to them (pages,
  partner postbacks, CDN purges), and the platform's outbox of postbacks.

Above them, on cronclaim's app and worker (import them by module; this package does not
load them):

- ``jobs``: the reference application's four jobs, ``build_app(...)``.
- ``naive``: the story's original code, a hand-rolled claim table, for the replay.
- ``warm``: the inference service answering from models fitted up front.
- ``incident``, ``timeline``: ``cronclaim demo``'s replay of the incident week and its
  report; ``serve``: the live platform (``--serve``); ``command``: what the CLI calls.
"""

from cronclaim.demo.errors import (
    PushRejected,
    ServiceConnectionError,
    ServiceError,
    ServiceResponseError,
    ServiceTimeout,
)
from cronclaim.demo.faults import Fault, FaultKind
from cronclaim.demo.inference import (
    AsyncInferenceClient,
    ForecastRequest,
    ForecastResult,
    InferenceClient,
    InferenceService,
)
from cronclaim.demo.platform import (
    DEFAULT_SEED,
    INCIDENT_WEEK,
    Delivery,
    Device,
    Ingredient,
    Platform,
    Prediction,
    ReorderLine,
    ReorderList,
    Restaurant,
    StockLevel,
    generate_platform,
)
from cronclaim.demo.platform_db import NotFound, PlatformDB
from cronclaim.demo.push import (
    AsyncPushClient,
    PushClient,
    PushGateway,
    ReceivedPush,
    alert_payload,
    apns_id_for,
)

__all__ = [
    "DEFAULT_SEED",
    "INCIDENT_WEEK",
    "AsyncInferenceClient",
    "AsyncPushClient",
    "Delivery",
    "Device",
    "Fault",
    "FaultKind",
    "ForecastRequest",
    "ForecastResult",
    "InferenceClient",
    "InferenceService",
    "Ingredient",
    "NotFound",
    "Platform",
    "PlatformDB",
    "Prediction",
    "PushClient",
    "PushGateway",
    "PushRejected",
    "ReceivedPush",
    "ReorderLine",
    "ReorderList",
    "Restaurant",
    "ServiceConnectionError",
    "ServiceError",
    "ServiceResponseError",
    "ServiceTimeout",
    "StockLevel",
    "alert_payload",
    "apns_id_for",
    "generate_platform",
]
