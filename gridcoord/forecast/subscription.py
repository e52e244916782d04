"""External forecasts over MQTT: ``<prefix>/forecast/<kind>``, decoded within bounds.

A weather service (or an operator's tool) publishes one forecast per kind, retained, so a
restarted planner gets the latest at once; `gridcoord run` subscribes when it plans. The
payload is the one `gridcoord.forecast.external` parses; anything else is rejected with a
counted reason like bad telemetry, and the model forecast stays in use.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime

from adapters.contract.validation import Reason, Rejected
from gridcoord.forecast.external import (
    ExternalForecast,
    ForecastError,
    ForecastKind,
    check_plausible,
    parse_external,
)

# A week of one-minute values in JSON is about 100 kB; four times that is still a forecast.
FORECAST_MAX_BYTES = 400_000


def forecast_topic_filter(prefix: str) -> str:
    """The subscription covering every forecast kind."""
    return f"{prefix}/forecast/+"


def decode_forecast(
    topic: str,
    payload: bytes,
    *,
    prefix: str,
    now: datetime | None = None,
    capacity_kw: Mapping[ForecastKind, float] | None = None,
) -> ExternalForecast:
    """Validate one forecast message.

    Parameters
    ----------
    topic : str
        Where it arrived: ``<prefix>/forecast/<kind>``.
    payload : bytes
        The raw message.
    prefix : str
        The contract's first topic level (``mqtt.topic_prefix``).
    now : datetime, optional
        The receiving instant [UTC]: with it the forecast's times must fit now and its
        values the installed capacity (`check_plausible`).
    capacity_kw : mapping, optional
        Installed capacity per kind (largest plausible load for ``load``) [kW].

    Returns
    -------
    ExternalForecast
        The forecast, its kind equal to the topic's.

    Raises
    ------
    Rejected
        ``oversized``, ``not_utf8``, ``invalid_json``, ``not_finite`` or ``bad_forecast``
        (naming the field), never echoing the payload.
    """
    if len(payload) > FORECAST_MAX_BYTES:
        raise Rejected(Reason.OVERSIZED, f"forecast above {FORECAST_MAX_BYTES} bytes")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.NOT_UTF8, "payload is not UTF-8") from None
    try:
        document = json.loads(text, parse_constant=_refuse_constant)
    except _NonFinite:
        raise Rejected(Reason.NOT_FINITE, "NaN and Infinity are not JSON numbers") from None
    except (ValueError, RecursionError):
        raise Rejected(Reason.INVALID_JSON, "payload is not JSON") from None
    try:
        forecast = parse_external(document)
    except ForecastError as exc:
        raise Rejected(Reason.BAD_FORECAST, str(exc)) from None
    kind = topic.removeprefix(f"{prefix}/forecast/")
    if forecast.kind.value != kind:
        raise Rejected(Reason.BAD_FORECAST, f"kind: {forecast.kind.value} on the topic of {kind}")
    if now is not None:
        capacity = (capacity_kw or {}).get(forecast.kind)
        try:
            check_plausible(forecast, now, capacity)
        except ForecastError as exc:
            raise Rejected(Reason.BAD_FORECAST, str(exc)) from None
    return forecast


class _NonFinite(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFinite(name)
