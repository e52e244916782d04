"""InfluxDB 2.x/3.x store: writes through influxdb-client's v2 write API, reads through InfluxQL.

The write API runs in *synchronous* mode: the ingest pipeline batches and retries itself, and
the client's background batching would swallow failures we must see (a failed write has to go
to the spool). Client retries are off for the same reason. Reads use InfluxQL over ``/query``,
which InfluxDB 2.x and 3.x serve for a database/retention-policy (DBRP) mapping of the bucket;
servers of the v2 write API without InfluxQL (VictoriaMetrics) can be written to, and `series`
then raises `StoreRejected` saying so.

A refused batch is narrowed down by halves (`isolate_refused`): InfluxDB 2.x refuses a whole
request for one unparsable line, and one bad point must not cost the good ones.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import UTC, datetime

import urllib3
from influxdb_client.client.influxdb_client import InfluxDBClient
from influxdb_client.client.write_api import SYNCHRONOUS
from influxdb_client.domain.write_precision import WritePrecision
from influxdb_client.rest import ApiException

from adapters.contract.reading import Reading
from gridcoord.storage.base import Deletion, StoreRejected, StoreUnavailable
from gridcoord.storage.influx_http import (
    TRANSIENT_STATUSES,
    InfluxHttp,
    InfluxQLReads,
    describe_failure,
    split_url,
    write_all_or_isolate,
    write_readings_as_lines,
)
from gridcoord.storage.points import Point, datetime_to_ns

_MESSAGE_CHARS = 300


class InfluxV2Store(InfluxQLReads):
    """A store on InfluxDB 2.x/3.x, or any server of the v2 write API.

    Parameters
    ----------
    url
        base URL, e.g. ``http://127.0.0.1:8086``.
    token
        API token with write access to the bucket (None for servers without auth).
    org
        organisation.
    bucket
        bucket written to.
    database
        InfluxQL database name mapped to the bucket (DBRP) for reads.
    timeout_s
        per-request timeout [s]; a dead server costs at most this long.
    """

    def __init__(
        self,
        url: str,
        token: str | None,
        org: str,
        bucket: str,
        database: str,
        timeout_s: float = 10.0,
    ) -> None:
        base, _, _ = split_url(url)
        self.org = org
        self.bucket = bucket
        self.database = database
        self._client = InfluxDBClient(
            url=base,
            token=token or "",
            org=org,
            timeout=int(timeout_s * 1000),
            retries=False,
            enable_gzip=False,
        )
        self._write_api = self._client.write_api(write_options=SYNCHRONOUS)
        headers = {"Authorization": f"Token {token}"} if token else {}
        self._http = InfluxHttp(base, headers, timeout_s)
        self._server = self._http.server
        self._timeout_s = timeout_s

    def write(self, points: Sequence[Point]) -> None:
        """Write the points; see `gridcoord.storage.base.Store.write`."""
        write_all_or_isolate(points, self._send_lines, self._send)

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write readings as line protocol; see `gridcoord.storage.base.Store.write_readings`."""
        write_readings_as_lines(readings, lambda lines: self._send_lines((), lines), self.write)

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        """Write the points, then delete through ``/api/v2/delete`` (influxdb-client).

        InfluxDB 2.x deletes by predicate and an inclusive time range, so ``stop`` is one
        nanosecond before the deletion's end. Servers of the v2 write API without a delete
        API (VictoriaMetrics deletes whole series only) refuse with `StoreRejected`.
        """
        if points:
            self.write(points)
        delete_api = self._client.delete_api()
        for deletion in deletions:
            predicate = " AND ".join(
                [f'_measurement="{_predicate_value(deletion.measurement)}"']
                + [f'{k}="{_predicate_value(v)}"' for k, v in sorted(deletion.tags.items())]
            )
            try:
                delete_api.delete(
                    _rfc3339_ns(datetime_to_ns(deletion.start)),
                    _rfc3339_ns(datetime_to_ns(deletion.end) - 1),
                    predicate,
                    bucket=self.bucket,
                    org=self.org,
                )
            except ApiException as exc:
                status = int(exc.status or 0)
                text = f"InfluxDB at {self._server} answered a delete with HTTP {status}: "
                text += _server_message(exc.body)
                if status in TRANSIENT_STATUSES or status >= 500 or status == 0:
                    raise StoreUnavailable(text) from None
                raise StoreRejected(text) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                why = describe_failure(exc, self._timeout_s)
                raise StoreUnavailable(f"InfluxDB at {self._server} unreachable: {why}") from None

    def close(self) -> None:
        """Release the client and pooled connections."""
        self._write_api.close()  # type: ignore[no-untyped-call]
        self._client.close()  # type: ignore[no-untyped-call]
        self._http.close()

    def _send(self, points: Sequence[Point]) -> None:
        self._send_lines(points, [p.to_line() for p in points])

    def _send_lines(self, points: Sequence[Point], lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        try:
            self._write_api.write(
                bucket=self.bucket,
                org=self.org,
                record=body,
                write_precision=WritePrecision.NS,  # type: ignore[arg-type]  # a str constant
            )
        except ApiException as exc:
            status = int(exc.status or 0)
            text = f"InfluxDB at {self._server} answered a write with HTTP {status}: "
            text += _server_message(exc.body)
            if status in TRANSIENT_STATUSES or status >= 500 or status == 0:
                raise StoreUnavailable(text) from None
            raise StoreRejected(text) from None
        except (urllib3.exceptions.HTTPError, OSError) as exc:
            why = describe_failure(exc, self._timeout_s)
            raise StoreUnavailable(f"InfluxDB at {self._server} unreachable: {why}") from None


def _predicate_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def _rfc3339_ns(ts_ns: int) -> str:
    """An instant as RFC 3339 UTC with nanoseconds (the delete API's time format)."""
    seconds, nanos = divmod(ts_ns, 1_000_000_000)

    whole = datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S")
    return f"{whole}.{nanos:09d}Z"


def _server_message(body: object) -> str:
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = str(body or "").strip()
    try:
        payload = json.loads(text)
    except ValueError:
        payload = None
    if isinstance(payload, dict) and payload.get("message"):
        text = str(payload["message"])
    return text if len(text) <= _MESSAGE_CHARS else text[:_MESSAGE_CHARS] + "…"
