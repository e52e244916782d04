"""Untrusted JSON payload bytes → a Python document, or `Rejected` with the reason why not.

The fast path is orjson (a C parser that reads the bytes directly and checks UTF-8 itself;
measured against msgspec and the standard library in docs/performance.md). It accepts a subset
of what the standard library accepts, so any payload orjson refuses is parsed again by the
standard library, which then either accepts it (e.g. an escaped lone surrogate, an integer
beyond 64 bits) or tells us the precise reason: NaN/Infinity, nesting too deep, thousands of
digits, not UTF-8, or simply not JSON. Refusals are the rare path, so their cost does not matter;
every accepted payload decodes to the same document either way.
"""

from __future__ import annotations

import json

import orjson

from adapters.contract.validation import Reason, Rejected

# Bound on objects and arrays inside each other (the caller checks a decoded document).
MAX_DEPTH = 16


class _NonFiniteConstant(ValueError):
    pass


def _refuse_constant(name: str) -> float:
    raise _NonFiniteConstant(name)


# Built once: json.loads with a keyword argument builds a new decoder for every message.
_JSON = json.JSONDecoder(parse_constant=_refuse_constant)


def decode_json(payload: bytes) -> object:
    """Parse a payload; the reason code says why one is refused.

    Raises
    ------
    Rejected
        ``not_utf8``, ``not_finite``, ``oversized`` (too deep), ``out_of_range``
        (an integer of thousands of digits) or ``invalid_json``.
    """
    try:
        return orjson.loads(payload)
    except orjson.JSONDecodeError:
        pass
    return _decode_slowly(payload)


def _decode_slowly(payload: bytes) -> object:
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise Rejected(Reason.NOT_UTF8, "payload is not UTF-8") from None
    try:
        return _JSON.decode(text)
    except _NonFiniteConstant:
        raise Rejected(Reason.NOT_FINITE, "NaN and Infinity are not JSON numbers") from None
    except RecursionError:
        raise Rejected(Reason.OVERSIZED, f"nested deeper than {MAX_DEPTH} levels") from None
    except ValueError as exc:
        if "integer string conversion" in str(exc):
            # Python's own bound (4,300 digits); shorter huge integers fail the range checks.
            raise Rejected(Reason.OUT_OF_RANGE, "an integer with thousands of digits") from None
        raise Rejected(Reason.INVALID_JSON, "payload is not valid JSON") from None
