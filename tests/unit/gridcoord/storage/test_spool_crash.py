"""A process killed (SIGKILL) while appending: every append that returned is there, in order."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

from gridcoord.storage.spool import Spool

_WRITER = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    from gridcoord.storage.points import Point
    from gridcoord.storage.spool import Spool

    spool = Spool(Path(sys.argv[1]), max_bytes=1 << 30)
    for number in range(100_000):
        spool.append(
            [Point("telemetry", {"asset_id": "m-1"}, {"n": float(number)}, k) for k in range(200)]
        )
        print(number, flush=True)  # this append returned: it must survive
    """
)


def test_appends_that_returned_survive_a_kill(tmp_path: Path) -> None:
    root = Path(__file__).resolve().parents[4]
    writer = subprocess.Popen(
        [sys.executable, "-c", _WRITER, str(tmp_path)],
        stdout=subprocess.PIPE,
        cwd=root,
        text=True,
    )
    assert writer.stdout is not None
    returned = [int(writer.stdout.readline()) for _ in range(25)]
    writer.kill()  # SIGKILL mid-stream: no cleanup runs
    writer.wait()
    spool = Spool(tmp_path, max_bytes=1 << 30)
    assert not list(tmp_path.glob("*.tmp"))
    seen: list[int] = []
    while (batch := spool.peek_oldest()) is not None:
        numbers = {p.fields["n"] for p in batch}
        assert len(batch) == 200 and len(numbers) == 1  # whole batches only
        seen.append(int(numbers.pop()))
        spool.ack_oldest()
    assert seen == list(range(len(seen)))  # FIFO, no gaps
    assert seen[: len(returned)] == returned
    assert not (tmp_path / "quarantine").exists()
