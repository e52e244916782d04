"""`gridcoord export-open-data --config FILE --from DATE --to DATE --out DIR`.

The dates are local days of ``site.timezone`` (Europe/Berlin), both included: the export
covers ``--from`` 00:00 local time up to the end of ``--to``; inside the files every time is
UTC with its offset. Writes ``zones.csv``, ``charge_points.csv``, ``charge_point_status.csv``
and ``metadata.jsonld`` (DCAT-AP.de) into DIR. Exit 0 when written, 1 when the store cannot
be read, 2 for invalid arguments or configuration; messages on stderr, no traceback.
"""

from __future__ import annotations

import os
import sys
from datetime import date, datetime, time, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

from gridcoord.config import Config, load_config
from gridcoord.config_errors import ConfigError
from gridcoord.open_data.collect import collect
from gridcoord.open_data.dcat import Distribution, dumps, metadata
from gridcoord.open_data.tables import build
from gridcoord.privacy.aggregate import SLOT_NS
from gridcoord.storage.base import Store, StoreRejected, StoreUnavailable
from gridcoord.storage.points import datetime_to_ns

MAX_DAYS = 366
METADATA = "metadata.jsonld"


def export_command(config_path: Path, first: str, last: str, out: Path) -> int:
    """Run the export; see the module docstring for the exit codes."""
    try:
        start_day, end_day = date.fromisoformat(first), date.fromisoformat(last)
    except ValueError:
        print("export-open-data: --from and --to must be dates like 2026-11-01", file=sys.stderr)
        return 2
    if end_day < start_day or (end_day - start_day).days >= MAX_DAYS:
        print(
            f"export-open-data: --to must be on or after --from, at most {MAX_DAYS} days",
            file=sys.stderr,
        )
        return 2
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    from gridcoord.storage.factory import open_store

    try:
        store = open_store(config)
    except (ValueError, StoreUnavailable) as exc:
        print(f"export-open-data: {exc}", file=sys.stderr)
        return 1
    try:
        suppressed = export(store, config, start_day, end_day, out)
    except (StoreUnavailable, StoreRejected) as exc:
        print(f"export-open-data: {exc}", file=sys.stderr)
        return 1
    except OSError as exc:
        print(f"export-open-data: cannot write {out}: {exc.strerror}", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"wrote {out} ({suppressed} zone-slots suppressed: too few households)")
    return 0


def export(store: Store, config: Config, first: date, last: date, out: Path) -> int:
    """Write the export of local days ``first``..``last`` into ``out``; return suppressions.

    Raises
    ------
    StoreUnavailable, StoreRejected
        the store cannot be read.
    OSError
        the directory cannot be written.
    """
    zone = ZoneInfo(config.site.timezone)
    start = datetime.combine(first, time(), zone)
    end = datetime.combine(last + timedelta(days=1), time(), zone)
    start_ns, end_ns = datetime_to_ns(start), datetime_to_ns(end)
    first_slot = start_ns - start_ns % SLOT_NS  # local midnight is a quarter hour in Berlin
    slots = list(range(first_slot, end_ns, SLOT_NS))
    tables = build(collect(store, config, start, end), config, slots)
    files = [
        Distribution(name, title, description, text.encode())
        for name, title, description, text in (
            ("zones.csv", "Netzzonen je Viertelstunde",
             "Per-zone aggregates per 15-minute slot.", tables.zones),
            ("charge_points.csv", "Öffentliche Ladepunkte (statisch)",
             "Public charge points: static data (AFIR Art. 20).", tables.charge_points),
            ("charge_point_status.csv", "Öffentliche Ladepunkte (dynamisch)",
             "Public charge points: status per 15-minute slot (AFIR Art. 20).",
             tables.charge_point_status),
        )
    ]  # fmt: skip
    out.mkdir(parents=True, exist_ok=True)
    for file in files:
        _write(out / file.name, file.content)
    _write(out / METADATA, dumps(metadata(config, first, last, files)))
    return tables.suppressed_rows


def _write(path: Path, content: bytes) -> None:
    """Write whole or not at all (a reader never sees half a file)."""
    partial = path.with_name(f".{path.name}.partial")
    partial.write_bytes(content)
    os.replace(partial, path)
