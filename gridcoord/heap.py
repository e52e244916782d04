"""The garbage collector's settings for a `gridcoord run` process (issue 16).

Measured at full ingest rate (bench/ingest.py, a collector callback timing each collection),
a quarter to two fifths of the process's CPU time went to the cyclic collector: a full
collection walks every object the process holds — the imported libraries, the configuration,
the API's routes — hundreds of thousands that live as long as the process. After start-up
they are moved out of the collector's view (`gc.freeze`), and the young generation is
collected less often: a reading's objects live from its message's arrival until its batch is
written, and the fewer collections see them alive, the less the collector walks.
"""

from __future__ import annotations

import gc

# Net allocations of tracked objects between young collections (CPython's default: 700).
# 20,000 and 100,000 measured alike; a young collection walks about this many objects.
YOUNG_THRESHOLD = 100_000


def settle() -> None:
    """Collect once, freeze what survives (it lives as long as the process), collect less.

    For a process that runs one service only (`run_service`, and the `gridcoord demo`
    command once its service is up): frozen objects are never freed, so a process that
    starts many services one after another (tests) must not call it.
    """
    gc.collect()
    gc.freeze()
    _, middle, old = gc.get_threshold()
    gc.set_threshold(YOUNG_THRESHOLD, middle, old)
