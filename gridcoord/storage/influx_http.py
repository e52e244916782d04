"""HTTP to InfluxDB-compatible servers: a pooled client, error mapping, and InfluxQL reads.

Shared by the 1.x store (``/write`` and ``/query``) and the v2 store (``/query`` through a
DBRP mapping on InfluxDB 2.x/3.x). Error messages name the server as ``scheme://host:port``
only: credentials never appear in them (they travel in the Authorization header, never in a
URL), and server replies are shortened so a log line stays a line.
"""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import urllib3

from adapters.contract.reading import Reading
from gridcoord.storage.base import Deletion, StoreRejected, StoreUnavailable
from gridcoord.storage.points import (
    Point,
    bucket_width_ns,
    datetime_to_ns,
    ns_to_datetime,
    reading_to_point,
    telemetry_lines,
)

# Statuses after which the same request can succeed later: keep the data and retry.
# 401/403 count as transient on purpose: an operator fixes the credentials, the data waits.
TRANSIENT_STATUSES = frozenset({401, 403, 408, 425, 429, 500, 502, 503, 504})
_MESSAGE_CHARS = 300


@dataclass(frozen=True)
class Response:
    """Status and body of one HTTP exchange."""

    status: int
    body: bytes

    @property
    def ok(self) -> bool:
        """True for a 2xx status."""
        return 200 <= self.status < 300

    def message(self) -> str:
        """The server's error text (``error`` of 1.x, ``message`` of 2.x), shortened."""
        text = self.body.decode("utf-8", errors="replace").strip()
        try:
            payload = json.loads(text)
        except ValueError:
            payload = None
        if isinstance(payload, dict):
            text = str(payload.get("error") or payload.get("message") or text)
        return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…"


def split_url(url: str) -> tuple[str, str | None, str | None]:
    """Split a base URL into (URL without credentials, user, password).

    Raises
    ------
    ValueError
        not an http(s) URL with a host.
    """
    parts = urllib.parse.urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("InfluxDB url must look like http://host:8086")
    netloc = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
    if parts.port is not None:
        netloc += f":{parts.port}"
    clean = urllib.parse.urlunsplit((parts.scheme, netloc, parts.path.rstrip("/"), "", ""))
    user = urllib.parse.unquote(parts.username) if parts.username else None
    password = urllib.parse.unquote(parts.password) if parts.password else None
    return clean, user, password


class InfluxHttp:
    """A pooled HTTP client for one server; maps connection failures to `StoreUnavailable`.

    Parameters
    ----------
    url
        base URL without credentials (see `split_url`).
    headers
        sent with every request (e.g. Authorization).
    timeout_s
        connect and read timeout of each request [s].
    pool_size
        connections kept open for reuse.
    """

    def __init__(
        self, url: str, headers: Mapping[str, str], timeout_s: float, pool_size: int = 4
    ) -> None:
        self.url = url
        parts = urllib.parse.urlsplit(url)
        self.server = f"{parts.scheme}://{parts.netloc}"  # for messages
        self._timeout_s = timeout_s
        self._headers = dict(headers)
        self._pool = urllib3.PoolManager(
            num_pools=2,
            maxsize=pool_size,
            retries=False,  # the pipeline retries with back-off and the spool
            timeout=urllib3.Timeout(connect=timeout_s, read=timeout_s),
        )

    def request(
        self,
        method: str,
        path: str,
        params: Mapping[str, str],
        body: bytes | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Response:
        """Send one request and return the response, whatever its status.

        Raises
        ------
        StoreUnavailable
            no connection, a timeout, or a broken reply.
        """
        target = f"{self.url}{path}?{urllib.parse.urlencode(params)}"
        try:
            reply = self._pool.request(
                method, target, body=body, headers={**self._headers, **(headers or {})}
            )
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            reason = describe_failure(exc, self._timeout_s)
            raise StoreUnavailable(f"InfluxDB at {self.server} unreachable: {reason}") from None
        return Response(reply.status, reply.data)

    def query(self, influxql: str, database: str) -> list[dict[str, Any]]:
        """Run InfluxQL through ``/query`` and return the series of the first statement.

        Raises
        ------
        StoreUnavailable
            unreachable, credentials refused, or a server error.
        StoreRejected
            the server cannot run the query (or serves no InfluxQL).
        """
        params = {"db": database, "q": influxql, "epoch": "ns"}
        response = self.request(
            "POST",
            "/query",
            {},
            body=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if not response.ok:
            raise error_for(response, self.server, "query")
        try:
            payload = json.loads(response.body)
            result = payload["results"][0]
        except (ValueError, KeyError, IndexError, TypeError):
            raise StoreRejected(
                f"{self.server} did not answer /query with InfluxQL results; reads need "
                "InfluxDB 1.x, 2.x or 3.x (VictoriaMetrics serves no InfluxQL)"
            ) from None
        if "error" in result:
            raise StoreRejected(f"InfluxQL refused by {self.server}: {result['error']}")
        series: list[dict[str, Any]] = result.get("series", [])
        return series

    def execute(self, statements: Sequence[str], database: str) -> None:
        """Run InfluxQL statements (``DELETE``, say) in one ``/query`` request; all must pass.

        Raises
        ------
        StoreUnavailable
            unreachable, credentials refused, or a server error.
        StoreRejected
            a statement was refused (its error is named).
        """
        if not statements:
            return
        params = {"db": database, "q": ";".join(statements)}
        response = self.request(
            "POST",
            "/query",
            {},
            body=urllib.parse.urlencode(params).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if not response.ok:
            raise error_for(response, self.server, "a statement")
        try:
            results = json.loads(response.body)["results"]
        except (ValueError, KeyError, TypeError):
            raise StoreRejected(f"{self.server} did not answer /query with results") from None
        for result in results:
            if isinstance(result, dict) and "error" in result:
                raise StoreRejected(f"InfluxQL refused by {self.server}: {result['error']}")

    def close(self) -> None:
        """Close the pooled connections."""
        self._pool.clear()


def error_for(response: Response, server: str, action: str) -> StoreUnavailable | StoreRejected:
    """The exception for a non-2xx answer: transient (retry later) or a refusal."""
    text = f"InfluxDB at {server} answered {action} with HTTP {response.status}: "
    text += response.message()
    if response.status in TRANSIENT_STATUSES or response.status >= 500:
        return StoreUnavailable(text)
    return StoreRejected(text)


def quote_identifier(name: str) -> str:
    """An InfluxQL identifier in double quotes."""
    return '"' + name.replace("\\", "\\\\").replace('"', '\\"') + '"'


def quote_string(value: str) -> str:
    """An InfluxQL string literal in single quotes."""
    return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"


def select_field(
    measurement: str, field: str, tags: Mapping[str, str], start: datetime, end: datetime
) -> str:
    """InfluxQL selecting one field of the points carrying all tags, start ≤ time < end."""
    conditions = [f"{quote_identifier(k)} = {quote_string(v)}" for k, v in sorted(tags.items())]
    conditions.append(f"time >= {datetime_to_ns(start)}")
    conditions.append(f"time < {datetime_to_ns(end)}")
    return (
        f"SELECT {quote_identifier(field)} FROM {quote_identifier(measurement)} "
        f"WHERE {' AND '.join(conditions)}"
    )


def select_bucket_totals(
    measurement: str,
    field: str,
    tags: Mapping[str, str],
    start: datetime,
    end: datetime,
    width: timedelta,
    exclude_assets: Collection[str] = (),
) -> str:
    """InfluxQL for `Store.bucket_totals`: per bucket, the sum of each asset's mean.

    A subquery (InfluxDB 1.2 and later, 2.x and 3.x InfluxQL) takes the mean per asset and
    bucket; the outer query sums them per bucket, so the answer has one row per bucket.
    ``GROUP BY time()`` buckets start at multiples of the width since the epoch.
    """
    conditions = [f"{quote_identifier(k)} = {quote_string(v)}" for k, v in sorted(tags.items())]
    conditions += [f'"asset_id" != {quote_string(a)}' for a in sorted(set(exclude_assets))]
    span = f"time >= {datetime_to_ns(start)} AND time < {datetime_to_ns(end)}"
    conditions.append(span)
    every = f"{bucket_width_ns(width) // 1_000_000_000}s"
    inner = (
        f"SELECT mean({quote_identifier(field)}) AS {quote_identifier('value')} "
        f"FROM {quote_identifier(measurement)} WHERE {' AND '.join(conditions)} "
        f'GROUP BY time({every}), "asset_id"'
    )
    return f'SELECT sum("value") FROM ({inner}) WHERE {span} GROUP BY time({every})'


def select_oldest(
    measurement: str, field: str, tags: Mapping[str, str], end: datetime, group_by: Sequence[str]
) -> str:
    """InfluxQL for `Store.oldest`: the first point of one field per series group."""
    conditions = [f"{quote_identifier(k)} = {quote_string(v)}" for k, v in sorted(tags.items())]
    conditions.append(f"time < {datetime_to_ns(end)}")
    query = (
        f"SELECT first({quote_identifier(field)}) FROM {quote_identifier(measurement)} "
        f"WHERE {' AND '.join(conditions)}"
    )
    if group_by:
        query += " GROUP BY " + ", ".join(quote_identifier(k) for k in group_by)
    return query


def oldest_values(
    series: list[dict[str, Any]], group_by: Sequence[str], server: str
) -> list[tuple[dict[str, str], datetime]]:
    """(group tags, time of the first point) from the answer of `select_oldest`.

    Raises
    ------
    StoreRejected
        the answer is not that of a SELECT.
    """
    found = []
    for one in series:
        columns, values = one.get("columns"), one.get("values")
        if not isinstance(columns, list) or not columns or columns[0] != "time" or not values:
            raise StoreRejected(
                f"{server} does not run InfluxQL SELECTs; reads need InfluxDB 1.x, 2.x or 3.x"
            )
        tags = one.get("tags") or {}
        group = {key: str(tags.get(key) or "") for key in group_by}
        found.append((group, ns_to_datetime(int(values[0][0]))))
    return found


def delete_statement(deletion: Deletion) -> str:
    """InfluxQL ``DELETE`` of the points a `Deletion` selects (InfluxDB 1.x)."""
    conditions = [
        f"{quote_identifier(k)} = {quote_string(v)}" for k, v in sorted(deletion.tags.items())
    ]
    conditions.append(f"time >= {datetime_to_ns(deletion.start)}")
    conditions.append(f"time < {datetime_to_ns(deletion.end)}")
    return f"DELETE FROM {quote_identifier(deletion.measurement)} WHERE {' AND '.join(conditions)}"


def series_values(series: list[dict[str, Any]], server: str) -> list[tuple[datetime, float]]:
    """(time, value) pairs from the `/query` series of `select_field`, numbers only, in order.

    Raises
    ------
    StoreRejected
        the answer is not that of a SELECT (VictoriaMetrics answers any
        query with its database list).
    """
    pairs: list[tuple[int, float]] = []
    for one in series:
        columns = one.get("columns")
        if not isinstance(columns, list) or len(columns) != 2 or columns[0] != "time":
            raise StoreRejected(
                f"{server} does not run InfluxQL SELECTs; reads need InfluxDB 1.x, 2.x or 3.x"
            )
        for ts_ns, value in one.get("values", []):
            if isinstance(value, bool | int | float):
                pairs.append((int(ts_ns), float(value)))
    pairs.sort(key=lambda pair: pair[0])
    return [(ns_to_datetime(ts_ns), value) for ts_ns, value in pairs]


def describe_failure(exc: BaseException, timeout_s: float) -> str:
    """Why a request got no answer, in words (no URL: it could carry query parameters)."""
    # NewConnectionError subclasses ConnectTimeoutError in urllib3 2.x: test it first.
    if isinstance(exc, urllib3.exceptions.NewConnectionError):
        return "connection refused or no route"
    if isinstance(exc, urllib3.exceptions.TimeoutError):
        return f"no answer within {timeout_s:g} s"
    if isinstance(exc, urllib3.exceptions.ProtocolError | ConnectionError):
        return "connection dropped"
    return type(exc).__name__


def isolate_refused(
    points: Sequence[Point], attempt: Callable[[Sequence[Point]], None]
) -> tuple[list[Point], str]:
    """Write a refused batch again by halves until each refused point stands alone.

    Used after the whole batch was refused: every good point gets stored, and only the points
    the server refuses on their own are returned. Servers overwrite a point with the same series
    and time, so sending a good point twice is harmless. Costs about 2·k·log2(n) requests for k
    refused points among n; refusals are rare (our points are validated before they get here).

    Parameters
    ----------
    points
        the batch.
    attempt
        writes a chunk or raises StoreRejected, whose ``rejected`` names the refused
        points when the server tells (the chunk is then not split further), or is empty
        when it does not; StoreUnavailable propagates.

    Returns
    -------
    tuple[list[Point], str]
        the refused points and the server's reason for the first of them.
    """
    refused: list[Point] = []
    reasons: list[str] = []

    def write(chunk: Sequence[Point]) -> None:
        if not chunk:
            return
        try:
            attempt(chunk)
        except StoreRejected as exc:
            if exc.rejected or len(chunk) == 1:  # the server said which, or it stands alone
                refused.extend(exc.rejected or chunk)
                reasons.append(str(exc))
                return
            middle = len(chunk) // 2
            write(chunk[:middle])
            write(chunk[middle:])

    middle = len(points) // 2
    write(points[:middle])
    write(points[middle:])
    return refused, reasons[0] if reasons else ""


class InfluxQLReads:
    """`Store.series`, `Store.bucket_totals` and `Store.oldest` through InfluxQL ``/query``.

    InfluxDB 1.x serves InfluxQL on its database, 2.x and 3.x on the DBRP mapping of the
    bucket: the reads are the same, only the writes differ. A subclass sets ``_http`` and
    ``database``.
    """

    _http: InfluxHttp
    database: str

    def series(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
    ) -> list[tuple[datetime, float]]:
        """Read one field through InfluxQL; see `gridcoord.storage.base.Store.series`."""
        query = select_field(measurement, field, tags, start, end)
        return series_values(self._http.query(query, self.database), self._http.server)

    def bucket_totals(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        start: datetime,
        end: datetime,
        width: timedelta,
        exclude_assets: Collection[str] = (),
    ) -> list[tuple[datetime, float]]:
        """Per-bucket totals through one InfluxQL query; see `Store.bucket_totals`."""
        query = select_bucket_totals(measurement, field, tags, start, end, width, exclude_assets)
        return series_values(self._http.query(query, self.database), self._http.server)

    def oldest(
        self,
        measurement: str,
        field: str,
        tags: dict[str, str],
        end: datetime,
        group_by: Sequence[str],
    ) -> list[tuple[dict[str, str], datetime]]:
        """The first point per series group through InfluxQL; see `Store.oldest`."""
        query = select_oldest(measurement, field, tags, end, group_by)
        series = self._http.query(query, self.database)
        return oldest_values(series, group_by, self._http.server)


def format_lines(points: Sequence[Point]) -> tuple[list[Point], list[str], list[Point]]:
    """Line protocol of each point, once: (points that have a line, their lines, the rest)."""
    good: list[Point] = []
    lines: list[str] = []
    refused: list[Point] = []
    for point in points:
        try:
            lines.append(point.to_line())
            good.append(point)
        except ValueError:
            refused.append(point)
    return good, lines, refused


def write_readings_as_lines(
    readings: Sequence[Reading],
    send_lines: Callable[[list[str]], None],
    write_points: Callable[[Sequence[Point]], None],
) -> None:
    """Send readings as line protocol built straight from them; any refusal goes the point way.

    The common case is one request with no `Point` per reading. If the server refuses any of
    it, the whole batch is written again through `write_points` (`write_all_or_isolate`),
    which names exactly the refused points and stores the rest: rewriting the points a
    partial write already stored is harmless (same series and time, same values).

    Raises
    ------
    StoreRejected
        from `write_points`, with exactly the refused points.
    StoreUnavailable
        from the senders, untouched.
    """
    try:
        lines = telemetry_lines(readings)
    except ValueError:  # a name or value line protocol cannot carry: sorted out point by point
        write_points([reading_to_point(reading) for reading in readings])
        return
    try:
        send_lines(lines)
    except StoreRejected:
        write_points([reading_to_point(reading) for reading in readings])


def write_all_or_isolate(
    points: Sequence[Point],
    send_lines: Callable[[Sequence[Point], list[str]], None],
    send_points: Callable[[Sequence[Point]], None],
) -> None:
    """Write a batch; when the server refuses some of it, store the rest and name the refused.

    `send_lines` takes the batch with its lines already formatted (the hot path, formatted
    once); `send_points` re-sends a part of it while the refused points are isolated.

    Raises
    ------
    StoreRejected
        with exactly the refused points; everything else is stored.
    StoreUnavailable
        from the senders, untouched (the caller keeps the whole batch).
    """
    good, lines, refused = format_lines(points)
    reason = "a point line protocol cannot carry" if refused else ""
    if good:
        try:
            send_lines(good, lines)
        except StoreRejected as exc:
            if exc.rejected:  # the server said which (InfluxDB 1.x partial writes)
                refused += exc.rejected
                reason = str(exc)
            else:
                lost, reason = isolate_refused(good, send_points)
                refused += lost
    if refused:
        raise StoreRejected(
            f"InfluxDB refused {len(refused)} of {len(points)} points (the rest are stored): "
            f"{reason}",
            refused,
        )
