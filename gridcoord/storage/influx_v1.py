"""InfluxDB 1.x store: writes through ``/write``, reads through InfluxQL ``/query`` (DESIGN 3.4).

The database is created on first use (``CREATE DATABASE`` is idempotent in 1.x); a user without
admin rights cannot create it, and then it must exist already. Credentials go in a Basic
Authorization header, never in a URL or a message.

Refusals: InfluxDB 1.x stores the good points of a batch and answers ``400 partial write``
(measured on 1.6.7); the reply names unparsable lines and only counts the others it dropped
(``dropped=N``: field type conflicts, points beyond the retention policy). We take that answer
as it is when it says exactly which points were refused (named lines, or all of the request);
otherwise, and for any other refusal of a batch, the batch is narrowed down by writing halves
(`isolate_refused`; InfluxDB overwrites the good points it already has). One bad point never
costs the good ones, and `StoreRejected.rejected` holds exactly the refused ones.
"""

from __future__ import annotations

import logging
import re
import urllib.parse
from collections.abc import Sequence

import urllib3

from adapters.contract.reading import Reading
from gridcoord.storage.base import Deletion, StoreRejected
from gridcoord.storage.influx_http import (
    InfluxHttp,
    InfluxQLReads,
    delete_statement,
    error_for,
    quote_identifier,
    split_url,
    write_all_or_isolate,
    write_readings_as_lines,
)
from gridcoord.storage.points import Point

log = logging.getLogger(__name__)

_UNPARSABLE = re.compile(r"unable to parse '((?:[^'\\]|\\.)*)'")
_DROPPED = re.compile(r"dropped=(\d+)")
_DELETES_PER_REQUEST = 100  # statements per /query request: a bounded request body


class _PartialWrite(StoreRejected):
    """1.x stored the good points of the request and dropped the rest."""

    def __init__(self, message: str, reply: str) -> None:
        super().__init__(message)
        self.reply = reply  # the whole reply: it names every unparsable line


class InfluxV1Store(InfluxQLReads):
    """A store on InfluxDB 1.x (also any server of the 1.x ``/write`` API).

    Parameters
    ----------
    url
        base URL, e.g. ``http://127.0.0.1:8086``.
    database
        database to write to and read from; created on first use.
    username
        user, or None when authentication is off.
    password
        the user's password.
    timeout_s
        per-request timeout [s]; a dead server costs at most this long.
    """

    def __init__(
        self,
        url: str,
        database: str,
        username: str | None = None,
        password: str | None = None,
        timeout_s: float = 10.0,
    ) -> None:
        base, url_user, url_password = split_url(url)
        username = username or url_user
        password = password if password is not None else url_password
        headers = {"Content-Type": "text/plain; charset=utf-8"}
        if username:
            headers.update(urllib3.util.make_headers(basic_auth=f"{username}:{password or ''}"))
        self._http = InfluxHttp(base, headers, timeout_s)
        self.database = database
        self._database_ready = False

    def write(self, points: Sequence[Point]) -> None:
        """Write the points; see `gridcoord.storage.base.Store.write`."""
        self._ensure_database()
        write_all_or_isolate(points, self._send_lines, self._send_points)

    def write_readings(self, readings: Sequence[Reading]) -> None:
        """Write readings as line protocol; see `gridcoord.storage.base.Store.write_readings`."""
        self._ensure_database()
        write_readings_as_lines(readings, self._send, self.write)

    def replace(self, points: Sequence[Point], deletions: Sequence[Deletion]) -> None:
        """Write the points, then run one InfluxQL ``DELETE`` per deletion.

        1.x has no transactions: the points are stored first, so a failure in between leaves
        the raw data beside its aggregates (the retention job finishes the deletion next run).
        """
        if points:
            self.write(points)
        statements = [delete_statement(d) for d in deletions]
        for first in range(0, len(statements), _DELETES_PER_REQUEST):
            self._http.execute(statements[first : first + _DELETES_PER_REQUEST], self.database)

    def close(self) -> None:
        """Release pooled connections."""
        self._http.close()

    def _send_points(self, points: Sequence[Point]) -> None:
        self._send_lines(points, [p.to_line() for p in points])

    def _send_lines(self, points: Sequence[Point], lines: list[str]) -> None:
        try:
            self._send(lines)
        except _PartialWrite as exc:
            raise StoreRejected(str(exc), _known_refused(points, lines, exc.reply)) from None

    def _send(self, lines: list[str]) -> None:
        body = "\n".join(lines).encode()
        params = {"db": self.database, "precision": "ns"}
        response = self._http.request("POST", "/write", params, body)
        if response.status == 404 and "database not found" in response.message():
            # Dropped behind our back (or never created): create it and try once more.
            self._database_ready = False
            self._ensure_database()
            response = self._http.request("POST", "/write", params, body)
        if response.ok:
            return
        message = response.message()
        if response.status == 400 and message.startswith("partial write"):
            full = response.body.decode("utf-8", errors="replace")
            raise _PartialWrite(message, full)
        raise error_for(response, self._http.server, "a write")

    def _ensure_database(self) -> None:
        if self._database_ready:
            return
        statement = f"CREATE DATABASE {quote_identifier(self.database)}"
        response = self._http.request(
            "POST",
            "/query",
            {},
            body=urllib.parse.urlencode({"q": statement}).encode(),
            headers={"Content-Type": "application/x-www-form-urlencoded"},
        )
        if response.status == 403:
            log.warning("InfluxDB user may not create databases; %r must exist", self.database)
        elif not response.ok:
            raise error_for(response, self._http.server, "CREATE DATABASE")
        self._database_ready = True


def _known_refused(points: Sequence[Point], lines: list[str], reply: str) -> list[Point]:
    """The points a 1.x partial-write reply shows as refused; [] when it does not tell which.

    1.x names every unparsable line and counts the other drops (``dropped=N``: field type
    conflicts, points beyond the retention policy) without naming them.
    """
    named = set(_UNPARSABLE.findall(reply))
    count = _DROPPED.search(reply)
    dropped = int(count.group(1)) if count else -1
    if dropped + len(named) == len(points):
        return list(points)  # all refused: nothing left to narrow down
    if dropped == 0 and named:
        return [p for p, line in zip(points, lines, strict=True) if line in named]
    return []
