"""The audit trail: every write through the API — who, when, what, and the clamped result.

Entries go to an append-only JSON-lines file (``<api.state_dir>/audit.jsonl``, reloaded on
start so the API lists them after a restart) and to the store as the ``audit`` measurement
(tag ``action``; fields ``who``, ``target`` and ``detail`` as text), next to the setpoints they
explain. Only token names (roles or pseudonyms) are recorded, never a token.
"""

from __future__ import annotations

import json
import logging
import threading
from collections import deque
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from gridcoord.storage.points import Point, datetime_to_ns

log = logging.getLogger(__name__)

KEPT = 1000  # entries the API lists (the file keeps them all)


class AuditEntry(BaseModel):
    """One write."""

    model_config = ConfigDict(frozen=True)

    at: datetime = Field(description="When [UTC].")
    who: str = Field(description="Token name, or `system` (expiry).")
    action: str = Field(description="e.g. override.create, override.delete, plan.run_now.")
    target: str = Field(description="What it acted on, e.g. charger:charger-001.")
    request: dict[str, Any] = Field(description="What was asked.")
    result: dict[str, Any] = Field(description="What the service did (after clamping).")


class AuditLog:
    """Appends entries to ``path`` and the store; lists the newest.

    Parameters
    ----------
    path
        the JSON-lines file.
    store
        hands points to the ingest pipeline (None: file only).
    """

    def __init__(self, path: Path, store: Callable[[Sequence[Point]], None] | None) -> None:
        self._path = path
        self._store = store
        self._lock = threading.Lock()
        self._entries: deque[AuditEntry] = deque(maxlen=KEPT)
        if path.exists():
            with path.open(encoding="utf-8") as handle:
                for number, line in enumerate(handle, 1):
                    try:
                        self._entries.append(AuditEntry.model_validate_json(line))
                    except ValueError:
                        log.error("%s:%d: unreadable audit entry kept in the file", path, number)

    def record(self, entry: AuditEntry) -> AuditEntry:
        """Append one entry (file first: it must exist before the effect is reported)."""
        line = entry.model_dump_json()
        with self._lock:
            self._path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            with self._path.open("a", encoding="utf-8") as handle:
                handle.write(line + "\n")
            self._entries.append(entry)
        if self._store is not None:
            fields: dict[str, float | int | bool | str] = {
                "who": entry.who,
                "target": entry.target,
                "detail": json.dumps(entry.model_dump(mode="json", include={"request", "result"})),
            }
            self._store(
                [Point("audit", {"action": entry.action}, fields, datetime_to_ns(entry.at))]
            )
        return entry

    def entries(self, limit: int) -> list[AuditEntry]:
        """The newest ``limit`` entries, newest first."""
        with self._lock:
            return list(reversed(self._entries))[:limit]
