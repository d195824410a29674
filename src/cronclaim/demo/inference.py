"""The inference service: forecasts a restaurant's ingredient usage over HTTP.

``POST /v1/forecast`` takes a restaurant's usage history, stock on hand, deliveries on
their way and supply terms, and answers, per ingredient, a 14-day forecast
(Holt-Winters, :mod:`cronclaim.demo.forecast`), the projected stock-out date, the last
day to order and the at-risk flag. ``GET /healthz`` says it is up.

It can be told to fail, at runtime, per restaurant and per *simulated* day (the ``day``
of the request body, never the wall clock): added latency, a hang longer than any client
timeout, a 5xx, a connection reset or a close without a response. Use
``service.faults.add(Fault(...))`` or ``POST /v1/faults``. Every forecast request is
logged (who asked, for which day, what was answered) for tests and the demo to assert on.

:class:`InferenceClient` (and :class:`AsyncInferenceClient`) call it with httpx and keep
the story's distinction: a non-OK answer raises :class:`ServiceResponseError`; no answer
raises :class:`ServiceTimeout` or :class:`ServiceConnectionError`.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from types import TracebackType
from typing import TYPE_CHECKING, Any, Self

import httpx

from cronclaim.demo._http import LocalServer, Reply, Request, Response
from cronclaim.demo.errors import ServiceError, ServiceResponseError, translate_transport_error
from cronclaim.demo.faults import Fault, FaultKind
from cronclaim.demo.forecast import (
    HORIZON_DAYS,
    MODEL_NAME,
    SEASON,
    fit_holt_winters,
    seasonal_naive_forecast,
    stock_outlook,
)
from cronclaim.demo.platform import Prediction

if TYPE_CHECKING:
    from cronclaim.demo.platform_db import PlatformDB

SERVICE = "inference"
MAX_HORIZON_DAYS = 56


# -- the wire format --------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class SupplyTerms:
    lead_time_days: int
    delivery_weekdays: tuple[int, ...]


@dataclass(frozen=True, kw_only=True, slots=True)
class IncomingDelivery:
    ingredient: str
    day: date
    quantity: float


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastRequest:
    """What ``POST /v1/forecast`` takes. Each history series ends the day before ``day``."""

    restaurant_id: str
    day: date
    history: Mapping[str, Sequence[float]]
    stock: Mapping[str, float]
    ingredients: Mapping[str, SupplyTerms]
    deliveries: Sequence[IncomingDelivery] = ()
    horizon_days: int = HORIZON_DAYS

    def to_json(self) -> dict[str, Any]:
        return {
            "restaurant_id": self.restaurant_id,
            "day": self.day.isoformat(),
            "horizon_days": self.horizon_days,
            "history": {k: list(v) for k, v in self.history.items()},
            "stock": dict(self.stock),
            "deliveries": [
                {"ingredient": d.ingredient, "day": d.day.isoformat(), "quantity": d.quantity}
                for d in self.deliveries
            ],
            "ingredients": {
                k: {
                    "lead_time_days": t.lead_time_days,
                    "delivery_weekdays": list(t.delivery_weekdays),
                }
                for k, t in self.ingredients.items()
            },
        }

    @classmethod
    def from_json(cls, data: object) -> ForecastRequest:
        """Parse a request body; ``ValueError`` names the first thing wrong with it."""
        if not isinstance(data, Mapping):
            raise ValueError("the body must be a JSON object")
        restaurant_id = data.get("restaurant_id")
        if not isinstance(restaurant_id, str) or not restaurant_id:
            raise ValueError("restaurant_id must be a non-empty string")
        day = _day(data.get("day"), "day")
        horizon = data.get("horizon_days", HORIZON_DAYS)
        if not isinstance(horizon, int) or not 1 <= horizon <= MAX_HORIZON_DAYS:
            raise ValueError(f"horizon_days must be an integer in 1..{MAX_HORIZON_DAYS}")
        history = _mapping(data.get("history"), "history")
        if not history:
            raise ValueError("history names no ingredient")
        series: dict[str, list[float]] = {}
        for name, values in history.items():
            if not isinstance(values, list) or not all(
                isinstance(v, int | float) and not isinstance(v, bool) and v >= 0 for v in values
            ):
                raise ValueError(f"history[{name!r}] must be a list of non-negative numbers")
            series[name] = [float(v) for v in values]
        stock = _mapping(data.get("stock"), "stock")
        terms_in = _mapping(data.get("ingredients"), "ingredients")
        on_hand: dict[str, float] = {}
        terms: dict[str, SupplyTerms] = {}
        for name in series:
            value = stock.get(name)
            if not isinstance(value, int | float) or isinstance(value, bool):
                raise ValueError(f"stock has no number for {name!r}")
            on_hand[name] = float(value)
            raw = terms_in.get(name)
            if not isinstance(raw, Mapping):
                raise ValueError(f"ingredients has no supply terms for {name!r}")
            lead = raw.get("lead_time_days")
            weekdays = raw.get("delivery_weekdays")
            if not isinstance(lead, int) or lead < 0:
                raise ValueError(f"ingredients[{name!r}].lead_time_days must be an integer >= 0")
            if (
                not isinstance(weekdays, list)
                or not weekdays
                or not all(isinstance(d, int) and 0 <= d <= 6 for d in weekdays)
            ):
                raise ValueError(
                    f"ingredients[{name!r}].delivery_weekdays must list weekdays 0 (Monday)..6"
                )
            terms[name] = SupplyTerms(lead_time_days=lead, delivery_weekdays=tuple(weekdays))
        deliveries_in = data.get("deliveries", [])
        if not isinstance(deliveries_in, list):
            raise ValueError("deliveries must be a list")
        deliveries: list[IncomingDelivery] = []
        for index, raw in enumerate(deliveries_in):
            if not isinstance(raw, Mapping):
                raise ValueError(f"deliveries[{index}] must be an object")
            quantity = raw.get("quantity")
            ingredient = raw.get("ingredient")
            if not isinstance(ingredient, str):
                raise ValueError(f"deliveries[{index}].ingredient must be a string")
            if not isinstance(quantity, int | float) or isinstance(quantity, bool) or quantity < 0:
                raise ValueError(f"deliveries[{index}].quantity must be a number >= 0")
            deliveries.append(
                IncomingDelivery(
                    ingredient=ingredient,
                    day=_day(raw.get("day"), f"deliveries[{index}].day"),
                    quantity=float(quantity),
                )
            )
        return cls(
            restaurant_id=restaurant_id,
            day=day,
            history=series,
            stock=on_hand,
            ingredients=terms,
            deliveries=tuple(deliveries),
            horizon_days=horizon,
        )

    @classmethod
    def from_platform(cls, db: PlatformDB, restaurant_id: str, day: date) -> ForecastRequest:
        """The request ``inventory-predict`` sends for ``restaurant_id`` on the morning of
        ``day``: usage up to the day before, stock at opening, deliveries on their way."""
        ingredients = db.ingredients(restaurant_id)
        return cls(
            restaurant_id=restaurant_id,
            day=day,
            history=db.usage_history(restaurant_id, day),
            stock=db.stock(restaurant_id, day),
            ingredients={
                i.id: SupplyTerms(
                    lead_time_days=i.lead_time_days, delivery_weekdays=i.delivery_weekdays
                )
                for i in ingredients
            },
            deliveries=tuple(
                IncomingDelivery(ingredient=d.ingredient_id, day=d.day, quantity=d.quantity)
                for d in db.deliveries(restaurant_id, day, day + timedelta(days=MAX_HORIZON_DAYS))
            ),
        )


@dataclass(frozen=True, kw_only=True, slots=True)
class IngredientForecast:
    ingredient: str
    forecast: tuple[float, ...]
    stockout_date: date | None
    next_possible_delivery: date  # of an order placed on the request's day
    order_by: date | None
    at_risk: bool

    def to_json(self) -> dict[str, Any]:
        return {
            "forecast": list(self.forecast),
            "stockout_date": _iso(self.stockout_date),
            "next_possible_delivery": self.next_possible_delivery.isoformat(),
            "order_by": _iso(self.order_by),
            "at_risk": self.at_risk,
        }


@dataclass(frozen=True, kw_only=True, slots=True)
class ForecastResult:
    """What ``POST /v1/forecast`` answers."""

    restaurant_id: str
    day: date
    model: str
    horizon_days: int
    ingredients: Mapping[str, IngredientForecast] = field(default_factory=dict)

    @property
    def at_risk(self) -> tuple[str, ...]:
        """The ingredients flagged at risk, sorted by stock-out date."""
        flagged = [f for f in self.ingredients.values() if f.at_risk]
        flagged.sort(key=lambda f: (f.stockout_date or date.max, f.ingredient))
        return tuple(f.ingredient for f in flagged)

    def to_json(self) -> dict[str, Any]:
        return {
            "restaurant_id": self.restaurant_id,
            "day": self.day.isoformat(),
            "model": self.model,
            "horizon_days": self.horizon_days,
            "ingredients": {k: v.to_json() for k, v in self.ingredients.items()},
            "at_risk": list(self.at_risk),
        }

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> ForecastResult:
        return cls(
            restaurant_id=data["restaurant_id"],
            day=date.fromisoformat(data["day"]),
            model=data["model"],
            horizon_days=int(data["horizon_days"]),
            ingredients={
                name: IngredientForecast(
                    ingredient=name,
                    forecast=tuple(float(v) for v in item["forecast"]),
                    stockout_date=_optional_day(item["stockout_date"]),
                    next_possible_delivery=date.fromisoformat(item["next_possible_delivery"]),
                    order_by=_optional_day(item["order_by"]),
                    at_risk=bool(item["at_risk"]),
                )
                for name, item in data["ingredients"].items()
            },
        )

    def to_predictions(self, created_at: datetime) -> list[Prediction]:
        """Rows for :meth:`PlatformDB.save_predictions`."""
        return [
            Prediction(
                restaurant_id=self.restaurant_id,
                ingredient_id=f.ingredient,
                day=self.day,
                forecast=f.forecast,
                stockout_date=f.stockout_date,
                at_risk=f.at_risk,
                model=self.model,
                created_at=created_at,
            )
            for f in self.ingredients.values()
        ]


def _iso(value: date | None) -> str | None:
    return value.isoformat() if value is not None else None


def _optional_day(value: object) -> date | None:
    return date.fromisoformat(value) if isinstance(value, str) else None


def _day(value: object, what: str) -> date:
    if not isinstance(value, str):
        raise ValueError(f"{what} must be an ISO date such as '2026-05-19'")
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValueError(f"{what} {value!r} is not an ISO date such as '2026-05-19'") from None


def _mapping(value: object, what: str) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{what} must be a JSON object")
    return value


# -- the model ---------------------------------------------------------------------------


def forecast_usage(history: Sequence[float], horizon: int = HORIZON_DAYS) -> list[float]:
    """Holt-Winters when there are four weeks of history, seasonal-naive before that."""
    if len(history) >= 4 * SEASON:
        return fit_holt_winters(history).forecast(horizon)
    return seasonal_naive_forecast(history, horizon)


#: How an ingredient's usage is forecast: ``(history, horizon) -> daily usage``.
Forecaster = Callable[[Sequence[float], int], Sequence[float]]


def answer(request: ForecastRequest, forecaster: Forecaster = forecast_usage) -> ForecastResult:
    """The service's answer to ``request``, computed in-process (the server calls this)."""
    incoming: dict[str, dict[date, float]] = {}
    for delivery in request.deliveries:
        per_day = incoming.setdefault(delivery.ingredient, {})
        per_day[delivery.day] = per_day.get(delivery.day, 0.0) + delivery.quantity
    results: dict[str, IngredientForecast] = {}
    for name, history in request.history.items():
        usage = [round(v, 4) for v in forecaster(history, request.horizon_days)]
        terms = request.ingredients[name]
        outlook = stock_outlook(
            request.day,
            request.stock[name],
            usage,
            incoming.get(name, {}),
            lead_time_days=terms.lead_time_days,
            delivery_weekdays=terms.delivery_weekdays,
        )
        results[name] = IngredientForecast(
            ingredient=name,
            forecast=tuple(usage),
            stockout_date=outlook.stockout_date,
            next_possible_delivery=outlook.next_possible_delivery,
            order_by=outlook.order_by,
            at_risk=outlook.at_risk,
        )
    return ForecastResult(
        restaurant_id=request.restaurant_id,
        day=request.day,
        model=MODEL_NAME,
        horizon_days=request.horizon_days,
        ingredients=results,
    )


# -- the server --------------------------------------------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class LoggedRequest:
    """One ``POST /v1/forecast`` as the service saw it.

    ``status`` is ``None`` when no response was sent (hang, reset, close); ``answer`` is
    the body sent with a 200.
    """

    at: datetime
    restaurant_id: str | None
    day: date | None
    caller: str | None
    idempotency_key: str | None
    fault: FaultKind | None
    status: int | None
    answer: ForecastResult | None
    error: str | None = None

    @property
    def at_risk(self) -> tuple[str, ...]:
        return self.answer.at_risk if self.answer is not None else ()


class InferenceService(LocalServer):
    """The inference service on 127.0.0.1 (port 0 by default: read ``port`` after start).

    ``clock`` stamps the request log (default: the wall clock, UTC); pass a virtual
    clock's ``now`` to log simulated time.
    """

    service = SERVICE

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        clock: Callable[[], datetime] | None = None,
        forecaster: Forecaster = forecast_usage,
    ) -> None:
        super().__init__(host=host, port=port)
        self._clock = clock or (lambda: datetime.now(UTC))
        self._forecaster = forecaster
        self._log: list[LoggedRequest] = []
        self._log_lock = threading.Lock()

    def inject(
        self,
        kind: FaultKind | str,
        *,
        restaurant_id: str | None = None,
        day: date | None = None,
        seconds: float | None = None,
        status: int = 503,
        times: int | None = None,
    ) -> int:
        """Shorthand for ``faults.add(Fault(...))``; returns the fault's id."""
        return self.faults.add(
            Fault(
                kind=FaultKind(kind),
                restaurant_id=restaurant_id,
                day=day,
                seconds=seconds,
                status=status,
                times=times,
            )
        )

    def requests(
        self, *, restaurant_id: str | None = None, day: date | None = None
    ) -> list[LoggedRequest]:
        """The request log, oldest first, optionally filtered."""
        with self._log_lock:
            return [
                r
                for r in self._log
                if (restaurant_id is None or r.restaurant_id == restaurant_id)
                and (day is None or r.day == day)
            ]

    def clear_log(self) -> None:
        with self._log_lock:
            self._log.clear()

    def _record(self, entry: LoggedRequest) -> None:
        with self._log_lock:
            self._log.append(entry)

    def handle(self, request: Request) -> Reply:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            if request.method != "GET":
                return Response.json(405, {"error": "use GET /healthz"})
            return Response.json(200, {"status": "ok", "service": SERVICE, "model": MODEL_NAME})
        if path == "/v1/faults":
            return self.handle_fault_admin(request)
        if path == "/v1/requests" and request.method == "GET":
            return Response.json(200, {"requests": [_log_json(r) for r in self.requests()]})
        if path == "/v1/forecast":
            if request.method != "POST":
                return Response.json(405, {"error": "use POST /v1/forecast"})
            return self._forecast(request)
        return Response.json(404, {"error": f"no route {request.method} {path}"})

    def _forecast(self, request: Request) -> Reply:
        caller = request.headers.get("x-caller") or request.headers.get("user-agent")
        key = request.headers.get("idempotency-key")
        try:
            parsed = ForecastRequest.from_json(request.json())
        except ValueError as exc:
            self._record(
                LoggedRequest(
                    at=self._clock(),
                    restaurant_id=None,
                    day=None,
                    caller=caller,
                    idempotency_key=key,
                    fault=None,
                    status=400,
                    answer=None,
                    error=str(exc),
                )
            )
            return Response.json(400, {"error": str(exc)})

        def log(fault: Fault | None, status: int | None, result: ForecastResult | None) -> None:
            self._record(
                LoggedRequest(
                    at=self._clock(),
                    restaurant_id=parsed.restaurant_id,
                    day=parsed.day,
                    caller=caller,
                    idempotency_key=key,
                    fault=fault.kind if fault else None,
                    status=status,
                    answer=result,
                )
            )

        fault = self.faults.take(restaurant_id=parsed.restaurant_id, day=parsed.day)
        if fault is not None and fault.kind is not FaultKind.LATENCY:
            status = fault.status if fault.kind is FaultKind.ERROR else None
            log(fault, status, None)  # before a hang, so the log shows it while it hangs
            return self.apply_fault(fault)
        result = answer(parsed, self._forecaster)
        response = Response.json(200, result.to_json())
        if fault is not None:
            reply = self.apply_fault(fault, response)
            log(fault, 200 if reply is response else None, result if reply is response else None)
            return reply
        log(None, 200, result)
        return response


def _log_json(entry: LoggedRequest) -> dict[str, Any]:
    return {
        "at": entry.at.isoformat(),
        "restaurant_id": entry.restaurant_id,
        "day": _iso(entry.day),
        "caller": entry.caller,
        "idempotency_key": entry.idempotency_key,
        "fault": entry.fault.value if entry.fault else None,
        "status": entry.status,
        "at_risk": list(entry.at_risk),
        "error": entry.error,
    }


# -- the clients -------------------------------------------------------------------------


def _headers(caller: str | None, idempotency_key: str | None) -> dict[str, str]:
    headers = {"user-agent": "cronclaim-demo-inference-client"}
    if caller:
        headers["x-caller"] = caller
    if idempotency_key:
        headers["idempotency-key"] = idempotency_key
    return headers


def _body(request: ForecastRequest | Mapping[str, Any]) -> Mapping[str, Any]:
    return request.to_json() if isinstance(request, ForecastRequest) else request


def _result(response: httpx.Response, url: str) -> ForecastResult:
    if response.status_code != 200:
        text = response.text
        raise ServiceResponseError(
            f"{SERVICE} answered {response.status_code} at {url}: {text[:200]}",
            service=SERVICE,
            url=url,
            status=response.status_code,
            body=text,
        )
    try:
        return ForecastResult.from_json(response.json())
    except (ValueError, KeyError, TypeError) as exc:
        raise ServiceResponseError(
            f"{SERVICE} answered 200 with an unreadable body at {url}: {exc}",
            service=SERVICE,
            url=url,
            status=response.status_code,
            body=response.text,
        ) from exc


class InferenceClient:
    """Calls the inference service. ``timeout`` bounds, in seconds, each wait on the
    network (connecting, sending, and the wait for the answer).

    Raises :class:`~cronclaim.demo.errors.ServiceTimeout` (also a ``TimeoutError``) when
    no answer comes in time, :class:`~cronclaim.demo.errors.ServiceConnectionError` when
    the connection fails or closes unanswered, and
    :class:`~cronclaim.demo.errors.ServiceResponseError` for an answer other than 200.
    """

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        *,
        caller: str | None = None,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.caller = caller
        self._http = httpx.Client(base_url=self.base_url, timeout=timeout, transport=transport)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        self._http.close()

    def _post(self, path: str, **kwargs: Any) -> httpx.Response:
        url = self.base_url + path
        try:
            return self._http.post(path, **kwargs)
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, service=SERVICE, url=url) from exc

    def forecast(
        self,
        request: ForecastRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> ForecastResult:
        response = self._post(
            "/v1/forecast", json=_body(request), headers=_headers(self.caller, idempotency_key)
        )
        return _result(response, self.base_url + "/v1/forecast")

    def health(self) -> bool:
        """True if ``GET /healthz`` answers 200 within the timeout."""
        try:
            return self._http.get("/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def add_fault(self, fault: Fault) -> int:
        """Inject ``fault`` through the admin endpoint; returns its id."""
        response = self._post("/v1/faults", json=fault.to_json())
        if response.status_code != 201:
            raise ServiceResponseError(
                f"{SERVICE} refused the fault: {response.text[:200]}",
                service=SERVICE,
                url=self.base_url + "/v1/faults",
                status=response.status_code,
                body=response.text,
            )
        return int(response.json()["id"])

    def clear_faults(self) -> None:
        try:
            self._http.delete("/v1/faults")
        except httpx.TransportError as exc:
            raise translate_transport_error(
                exc, service=SERVICE, url=self.base_url + "/v1/faults"
            ) from exc


class AsyncInferenceClient:
    """The async twin of :class:`InferenceClient` (same errors, same timeout)."""

    def __init__(
        self,
        base_url: str,
        timeout: float = 5.0,
        *,
        caller: str | None = None,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self.caller = caller
        self._http = httpx.AsyncClient(base_url=self.base_url, timeout=timeout, transport=transport)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    async def aclose(self) -> None:
        await self._http.aclose()

    async def forecast(
        self,
        request: ForecastRequest | Mapping[str, Any],
        *,
        idempotency_key: str | None = None,
    ) -> ForecastResult:
        url = self.base_url + "/v1/forecast"
        try:
            response = await self._http.post(
                "/v1/forecast", json=_body(request), headers=_headers(self.caller, idempotency_key)
            )
        except httpx.TransportError as exc:
            raise translate_transport_error(exc, service=SERVICE, url=url) from exc
        return _result(response, url)


__all__ = [
    "AsyncInferenceClient",
    "ForecastRequest",
    "ForecastResult",
    "IncomingDelivery",
    "InferenceClient",
    "InferenceService",
    "IngredientForecast",
    "LoggedRequest",
    "ServiceError",
    "SupplyTerms",
    "answer",
    "forecast_usage",
]
