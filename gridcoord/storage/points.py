r"""A storage-neutral time-series point and its InfluxDB line-protocol form, both ways.

Escaping follows what the servers we support actually do (measured against InfluxDB 1.6.7 and
VictoriaMetrics 1.79): commas and spaces (and ``=`` outside the measurement) are escaped with a
backslash. Neither server unescapes ``\\`` in a name, so a backslash in a name cannot be
carried faithfully before an escaped character; names that line protocol cannot carry (empty,
containing a line break or a backslash) are refused with a ValueError naming them. Our own
names (pseudonymous ids, snake_case fields) never contain them. String field values escape
``"`` and ``\``, which both servers unescape.

`parse_line` reads back exactly what `Point.to_line` writes (the disk spool stores batches as
line protocol); it is not a general parser for hand-written line protocol.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta

from adapters.contract.reading import FieldValue, Reading, ReadingRows, Series

# The one conversion of instants lives with the reading contract; the stores import it here.
from adapters.contract.reading import datetime_to_ns as datetime_to_ns
from adapters.contract.reading import ns_to_datetime as ns_to_datetime


@dataclass(frozen=True, slots=True)
class Point:
    """One row of a measurement (DESIGN 3.4): tags are low-cardinality identities only.

    Attributes
    ----------
    measurement
        ``telemetry``, ``setpoint`` or ``plan``.
    tags
        identity of the series (asset_id, kind, zone, schedule_id). Empty values are
        left out on write, as InfluxDB has no empty tag values.
    fields
        the values. Integers are written as floats so that a field never changes type
        between writes (InfluxDB refuses that); they read back as floats.
    ts_ns
        UTC instant [ns since the Unix epoch].
    """

    measurement: str
    tags: Mapping[str, str]
    fields: Mapping[str, FieldValue]
    ts_ns: int

    def to_line(self) -> str:
        """Return the point in InfluxDB line protocol (nanosecond precision).

        Raises
        ------
        ValueError
            a name line protocol cannot carry, a non-finite number, or no fields.
        """
        head = _series_head(self.measurement, tuple(self.tags.items()))
        if not self.fields:
            raise ValueError(f"point of {self.measurement!r} has no fields")
        fields = ",".join(
            f"{_field_key(key)}={_format_field(key, value)}" for key, value in self.fields.items()
        )
        return f"{head} {fields} {int(self.ts_ns)}"


@functools.lru_cache(maxsize=65536)
def _series_head(measurement: str, tags: tuple[tuple[str, str], ...]) -> str:
    # One per series (asset), built once: every reading of an asset has the same head.
    head = _escape_name(measurement, "measurement", _MEASUREMENT_ESCAPES)
    for key, value in sorted(tags):
        if value:
            head += f",{_escape_name(key, 'tag key', _KEY_ESCAPES)}="
            head += _escape_name(value, f"tag {key!r}", _KEY_ESCAPES)
    return head


@functools.lru_cache(maxsize=4096)
def _field_key(key: str) -> str:
    return _escape_name(key, "field key", _KEY_ESCAPES)


def reading_to_point(reading: Reading) -> Point:
    """Map a reading onto the `telemetry` measurement of DESIGN 3.4."""
    tags = telemetry_tags((reading.asset_id, reading.kind, reading.zone))
    return Point("telemetry", tags, reading.fields, datetime_to_ns(reading.ts))


def telemetry_line(reading: Reading) -> str:
    """The line `reading_to_point(reading).to_line()` gives, built without the `Point`.

    The ingest hot path: the series head (measurement and escaped tags) is built once per
    (asset, kind, zone), each field key's ``key=`` once per name, and a float (what validation
    makes of every number) is formatted directly.

    Raises
    ------
    ValueError
        as `Point.to_line`: a name line protocol cannot carry, a non-finite number, or no
        fields.
    """
    return telemetry_lines(ReadingRows.of((reading,)))[0]


def telemetry_lines(readings: Sequence[Reading]) -> list[str]:
    """`telemetry_line` of each reading, in order (one store write's body).

    `ReadingRows` (the typed decoder's readings) are formatted from their rows as they are:
    no `Reading` or `datetime` per reading.

    Raises
    ------
    ValueError
        as `telemetry_line`, for any of them.
    """
    heads, prefixes = _TELEMETRY_HEADS, _FIELD_PREFIXES
    lines: list[str] = []
    append = lines.append
    for series, ts_ns, fields in ReadingRows.of(readings).rows:
        head = heads.get(series)
        if head is None:
            head = _telemetry_head(series)
        if not fields:
            raise ValueError("point of 'telemetry' has no fields")
        parts = []
        for key, value in fields.items():
            prefix = prefixes.get(key)
            if prefix is None:
                prefix = _field_prefix(key)
            # `type(...) is float` (not isinstance): a bool or int goes the general way.
            if type(value) is float and value - value == 0.0:  # finite: inf - inf, nan: nan
                parts.append(prefix + repr(value))
            else:
                parts.append(prefix + _format_field(key, value))
        append(f"{head} {','.join(parts)} {ts_ns}")
    return lines


def telemetry_tags(series: Series) -> dict[str, str]:
    """The tags of a reading's `telemetry` point: asset id, kind, and the zone if any."""
    asset_id, kind, zone = series
    tags = {"asset_id": asset_id, "kind": str(kind)}
    if zone:
        tags["zone"] = zone
    return tags


# Plain dicts in front of the escaping (a lookup, no call): ids and names come from the
# configuration and the contract, so they are few; cleared if a bug ever made them many.
_CACHE_LIMIT = 65_536
_TELEMETRY_HEADS: dict[Series, str] = {}
_FIELD_PREFIXES: dict[str, str] = {}


def _telemetry_head(series: Series) -> str:
    head = _series_head("telemetry", tuple(telemetry_tags(series).items()))
    if len(_TELEMETRY_HEADS) >= _CACHE_LIMIT:
        _TELEMETRY_HEADS.clear()
    _TELEMETRY_HEADS[series] = head
    return head


def _field_prefix(key: str) -> str:
    prefix = _field_key(key) + "="
    if len(_FIELD_PREFIXES) >= _CACHE_LIMIT:
        _FIELD_PREFIXES.clear()
    _FIELD_PREFIXES[key] = prefix
    return prefix


def bucket_width_ns(width: timedelta) -> int:
    """A time bucket's width in whole nanoseconds.

    Raises
    ------
    ValueError
        a width under one second (no history needs it; it would only cost rows).
    """
    if width < timedelta(seconds=1):
        raise ValueError(f"bucket width must be at least 1 s, got {width}")
    return (width.days * 86_400 + width.seconds) * 1_000_000_000 + width.microseconds * 1000


def parse_line(line: str) -> Point:
    """Parse one line written by `Point.to_line` back into a point.

    Raises
    ------
    ValueError
        the line is not in the form `Point.to_line` writes.
    """
    if "\\" not in line and '"' not in line:
        # Fast path: nothing escaped, no string fields (the common telemetry line).
        parts = line.split(" ")
        if len(parts) != 3:
            raise ValueError(f"not a line-protocol point: {line[:80]!r}")
        head, field_text, ts_text = parts
        name, *tag_items = head.split(",")
        tags = dict(item.split("=", 1) for item in tag_items)
        fields: dict[str, FieldValue] = {}
        for item in field_text.split(","):
            key, _, raw = item.partition("=")
            fields[key] = _parse_value(raw)
        return Point(name, tags, fields, int(ts_text))
    return _parse_escaped(line)


def parse_lines(lines: Iterable[str]) -> list[Point]:
    """Parse lines written by `Point.to_line`, skipping empty ones."""
    return [parse_line(line) for line in lines if line]


class _Escapes(dict[int, str]):
    """A translation table usable as a cache key (one instance per kind of name)."""

    __hash__ = object.__hash__  # type: ignore[assignment]


_MEASUREMENT_ESCAPES = _Escapes(str.maketrans({",": "\\,", " ": "\\ "}))
_KEY_ESCAPES = _Escapes(str.maketrans({",": "\\,", " ": "\\ ", "=": "\\="}))
_STRING_ESCAPES = str.maketrans({"\\": "\\\\", '"': '\\"'})


@functools.lru_cache(maxsize=65_536)
def _escape_name(text: str, what: str, table: _Escapes) -> str:
    # Cached: names and tag values are few (ids, kinds, zones) and repeat on every point.
    if not text or "\n" in text or "\r" in text or "\\" in text:
        raise ValueError(f"{what} {text[:64]!r} cannot be stored: empty, a line break or '\\'")
    return text.translate(table)


_NUMBERS = (int, float)  # a tuple: `int | float` builds a union object on every call


def _format_field(key: str, value: FieldValue) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, _NUMBERS):
        number = float(value)
        if not math.isfinite(number):
            raise ValueError(f"field {key!r} is not a finite number")
        return repr(number)
    return f'"{value.translate(_STRING_ESCAPES)}"'


def _parse_value(raw: str) -> FieldValue:
    if raw == "true":
        return True
    if raw == "false":
        return False
    if raw.startswith('"'):
        if len(raw) < 2 or not raw.endswith('"'):
            raise ValueError(f"unterminated string field {raw[:40]!r}")
        return _unescape_string(raw[1:-1])
    return float(raw)


def _unescape_string(text: str) -> str:
    if "\\" not in text:
        return text
    out: list[str] = []
    chars = iter(text)
    for char in chars:
        out.append(next(chars, "\\") if char == "\\" else char)
    return "".join(out)


def _parse_escaped(line: str) -> Point:
    """Character scanner for lines with escapes or string fields (rare: kept simple)."""
    position = 0
    length = len(line)

    def read_name(stops: str) -> str:
        # Names hold no backslash of their own (refused on write): every one escapes.
        nonlocal position
        out: list[str] = []
        while position < length:
            char = line[position]
            if char == "\\" and position + 1 < length:
                out.append(line[position + 1])
                position += 2
                continue
            if char in stops:
                break
            out.append(char)
            position += 1
        return "".join(out)

    def expect(char: str) -> None:
        nonlocal position
        if position >= length or line[position] != char:
            raise ValueError(f"not a line-protocol point: {line[:80]!r}")
        position += 1

    measurement = read_name(", ")
    tags: dict[str, str] = {}
    while position < length and line[position] == ",":
        position += 1
        key = read_name("=")
        expect("=")
        tags[key] = read_name(", ")
    expect(" ")
    fields: dict[str, FieldValue] = {}
    while True:
        key = read_name("=")
        expect("=")
        if position < length and line[position] == '"':
            end = position + 1
            while end < length and line[end] != '"':
                end += 2 if line[end] == "\\" else 1
            if end >= length:
                raise ValueError(f"unterminated string field in {line[:80]!r}")
            fields[key] = _unescape_string(line[position + 1 : end])
            position = end + 1
        else:
            end = position
            while end < length and line[end] not in ", ":
                end += 1
            fields[key] = _parse_value(line[position:end])
            position = end
        if position < length and line[position] == ",":
            position += 1
            continue
        break
    expect(" ")
    return Point(measurement, tags, fields, int(line[position:]))
