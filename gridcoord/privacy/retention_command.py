"""`gridcoord privacy-retention --config FILE [--dry-run] [--json]`: one run of the retention job.

The service runs the same job every ``privacy.retention_interval_min``; this command runs it
once, e.g. from cron on an ingest-only deployment, or with ``--dry-run`` to see what the next
run would aggregate and delete. Exit 0 when done, 1 when the store cannot serve the job (the
reason on stderr, no traceback), 2 for an invalid configuration.
"""

from __future__ import annotations

import json
import sys
from datetime import UTC, datetime
from pathlib import Path

from gridcoord.config import load_config
from gridcoord.config_errors import ConfigError
from gridcoord.privacy.retention import RetentionJob
from gridcoord.storage.base import StoreRejected, StoreUnavailable


def retention_command(config_path: Path, *, dry_run: bool, json_output: bool) -> int:
    """Run the retention job once against the configured store; print what it did."""
    try:
        config = load_config(config_path)
    except ConfigError as exc:
        print(exc.report(), file=sys.stderr)
        return 2
    from gridcoord.storage.factory import open_store

    try:
        store = open_store(config)
    except (ValueError, StoreUnavailable) as exc:
        print(f"privacy-retention: {exc}", file=sys.stderr)
        return 1
    try:
        report = RetentionJob(store, config, lambda: datetime.now(UTC)).run(dry_run=dry_run)
    except (StoreUnavailable, StoreRejected) as exc:
        print(f"privacy-retention: {exc}", file=sys.stderr)
        return 1
    finally:
        store.close()
    if json_output:
        print(json.dumps(report.as_dict(), sort_keys=True))
        return 0
    verb = "would aggregate and delete" if dry_run else "aggregated and deleted"
    print(
        f"raw points before {report.cutoff.isoformat()}: {verb} {len(report.windows)} windows "
        f"of {report.assets} assets ({report.aggregates} aggregates"
        + (f", {report.late_assets} assets with late points" if report.late_assets else "")
        + ")"
    )
    return 0
