"""The contract's reading shape as typed structs: a payload validated while it is parsed.

The fast path for the common message: a device's contract payload (one reading object or an
array of them) with only contract fields. Per asset rating there is one msgspec struct whose
fields carry the contract's types and the asset's ranges, so parsing, type checks and range
checks happen in one C pass; Python then only turns `ts` into integer nanoseconds and keeps
each reading as a row (`ReadingRows`: no `Reading` object or `datetime` per reading unless
someone asks for one). A payload it cannot take as it is — an unknown field (kept by the contract if
numeric, so judged by the general path), a wrong type, a value out of range, invalid JSON, a
bad timestamp, an element without values — is not judged here: the caller decodes it again
on the general path (orjson and `build_reading`), which gives the exact reason for each
element with its index. So the two paths cannot differ in what they accept or why they
reject; the typed path only decides faster when everything is fine (tested against the
general path on generated payloads).
"""

from __future__ import annotations

import functools
from datetime import datetime
from typing import Annotated, Any

import msgspec

from adapters.contract.asset import AssetInfo
from adapters.contract.reading import (
    AssetKind,
    ReadingRows,
    Row,
    Series,
    datetime_to_ns,
    ns_to_datetime,
    row_of,
)
from adapters.contract.validation import (
    BOOLEAN_FIELDS,
    DROPPED_FIELDS,
    KNOWN_NUMERIC,
    TIMESTAMP_FIELDS,
    Rejected,
    build_reading,
    field_ranges,
    parse_timestamp,
)


class Untyped(Exception):
    """The typed path does not decide this payload: the general path judges it."""


# Everything that sends a payload to the general path.
NOT_TYPED = (msgspec.ValidationError, msgspec.DecodeError, Untyped, Rejected)

_Unset = msgspec.UnsetType
# A dropped field (personal identifiers) may hold any scalar; neither path ever stores it.
_Scalar = str | int | float | bool | None | _Unset
# Keys that need more than the struct's check: `build_reading` judges elements with them.
_SPECIAL = DROPPED_FIELDS | BOOLEAN_FIELDS | TIMESTAMP_FIELDS


class TypedDecoder:
    """Decodes the contract payloads of one asset, or raises one of `NOT_TYPED`.

    Parameters
    ----------
    asset
        a contract-topic asset (no mapping); its kind and rating set the ranges.
    """

    def __init__(self, asset: AssetInfo) -> None:
        self._asset = asset
        self._series: Series = (asset.id, asset.kind, asset.zone)
        struct = _struct_for(asset.kind, float(asset.rated_kw))
        self._one = msgspec.json.Decoder(struct)
        self._many = msgspec.json.Decoder(list[struct])  # type: ignore[valid-type]

    def decode_one(
        self, payload: bytes, now: datetime, window: tuple[datetime, datetime]
    ) -> ReadingRows:
        """The reading of a single-object payload (one row).

        Raises
        ------
        msgspec.ValidationError, msgspec.DecodeError, Untyped, Rejected
            the general path must judge it.
        """
        values = msgspec.to_builtins(self._one.decode(payload))
        values.pop("asset", None)  # not a number: the general path leaves it out as well
        return ReadingRows(self._rows([values], now, window))

    def decode_many(
        self, payload: bytes, now: datetime, window: tuple[datetime, datetime], limit: int
    ) -> ReadingRows:
        """The readings of an array payload of at most `limit` elements, in order.

        Raises
        ------
        msgspec.ValidationError, msgspec.DecodeError, Untyped, Rejected
            the general path must judge it (also an empty array or one above `limit`).
        """
        elements = msgspec.to_builtins(self._many.decode(payload))
        if not 0 < len(elements) <= limit:
            raise Untyped("batch size")
        asset_id = self._asset.id
        for values in elements:
            if "asset" in values and values.pop("asset") not in (None, asset_id):
                raise Untyped("names another asset")
        return ReadingRows(self._rows(elements, now, window))

    def _rows(
        self, elements: list[dict[str, Any]], now: datetime, window: tuple[datetime, datetime]
    ) -> list[Row]:
        """Each element's row: the struct checked types and ranges; here the instant.

        Epoch milliseconds inside the window (the common `ts`) become nanoseconds by integer
        arithmetic: the same instant `parse_timestamp` gives (whole milliseconds are exact
        microseconds), without a `datetime`. Anything else about `ts` is `parse_timestamp`'s.
        """
        oldest, newest = window
        low_ms = -(-datetime_to_ns(oldest) // 1_000_000)  # the first whole millisecond inside
        high_ms = datetime_to_ns(newest) // 1_000_000
        now_ns = datetime_to_ns(now)
        series = self._series
        rows: list[Row] = []
        append = rows.append
        for values in elements:
            raw_ts = values.pop("ts", None)
            if type(raw_ts) is int and low_ms <= raw_ts <= high_ms:
                ts_ns = raw_ts * 1_000_000
            elif raw_ts is None:
                ts_ns = now_ns
            else:
                ts_ns = datetime_to_ns(parse_timestamp(raw_ts, now=now, window=window))
            if not values:
                raise Untyped("no values")
            if _SPECIAL.isdisjoint(values):
                # Every value is a float the struct has range-checked: the row as it is.
                append((series, ts_ns, values))
            else:
                # Identifiers to drop, `connected`, `departure`: the general rules.
                reading = build_reading(self._asset, values, ts=ns_to_datetime(ts_ns), now=now)
                append(row_of(reading))
        return rows


@functools.lru_cache(maxsize=1024)
def _struct_for(kind: AssetKind, rated_kw: float) -> Any:
    fields: list[tuple[str, Any, Any]] = []
    ranges = field_ranges(kind, rated_kw)
    for name in sorted(KNOWN_NUMERIC):
        low, high = ranges[name]
        number = Annotated[float, msgspec.Meta(ge=low, le=high)]
        fields.append((name, number | _Unset, msgspec.UNSET))
    fields += [(name, bool | _Unset, msgspec.UNSET) for name in sorted(BOOLEAN_FIELDS)]
    fields += [(name, str | _Unset, msgspec.UNSET) for name in sorted(TIMESTAMP_FIELDS)]
    fields.append(("ts", int | float | str | _Unset, msgspec.UNSET))
    fields.append(("asset", str | None | _Unset, msgspec.UNSET))
    fields += [(name, _Scalar, msgspec.UNSET) for name in sorted(DROPPED_FIELDS - {"ts"})]
    # gc=False: only scalars inside, so no cycles; untracked, they do not wake the collector.
    return msgspec.defstruct("ContractReading", fields, forbid_unknown_fields=True, gc=False)
