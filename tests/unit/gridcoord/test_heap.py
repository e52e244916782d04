"""`gridcoord.heap.settle`: the service process's collector settings (in a child process)."""

from __future__ import annotations

import json
import subprocess
import sys

from gridcoord.heap import YOUNG_THRESHOLD


def test_settle_freezes_what_lives_and_collects_the_young_less_often() -> None:
    # In a child: a frozen heap is never freed, which the test process must not get.
    code = (
        "import gc, json\n"
        "before = gc.get_threshold()\n"
        "from gridcoord import heap\n"
        "heap.settle()\n"
        "print(json.dumps([gc.get_freeze_count(), gc.get_threshold(), before]))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120, check=True
    )
    frozen, after, before = json.loads(result.stdout)
    assert frozen > 1000  # the interpreter's and our modules' objects at least
    assert after == [YOUNG_THRESHOLD, before[1], before[2]]
    assert before[0] < YOUNG_THRESHOLD
