"""N2: idle CPU of the streaming-daemon example: 8 GPUs, no events, 60 s.

Shape: what a DaemonSet sidecar costs on every node when nothing happens. The fake Device API
server (its own process and CPU, no simulated changes, no bookmarks) serves 8 GPUs; the example
(``examples/streaming-daemon``: informer, one handler, metrics and health endpoints) starts,
syncs, and then sits idle. We read its CPU time (``/proc/<pid>/stat``, all threads) across a
60-second window that starts 2 s after the sync, and report the share of one core. Three daemons
are measured side by side over the same window (idle processes do not disturb each other).

There is no baseline: the target is an absolute <= 0.2 % of one core.
"""

from __future__ import annotations

import time

from benchmarks.common import (
    CLIENT_CPU,
    REPEATS,
    SERVER_CPU,
    Row,
    pin,
    script_main,
    stats,
    value_row,
)
from benchmarks.daemon import DAEMON_SYNCED, cpu_seconds, daemon_cmd, launch, warm_up
from benchmarks.fakeserver import FakeServerProcess


def run(smoke: bool) -> list[Row]:
    window = 0.5 if smoke else 60.0
    daemons = 1 if smoke else REPEATS
    with FakeServerProcess(gpus=8, cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        if not smoke:
            warm_up(server.target)
        children = [launch(daemon_cmd(server.target), DAEMON_SYNCED) for _ in range(daemons)]
        try:
            time.sleep(0.1 if smoke else 2.0)
            before = [cpu_seconds(c.pid) for c in children]
            start = time.monotonic()
            time.sleep(window)
            elapsed = time.monotonic() - start
            after = [cpu_seconds(c.pid) for c in children]
        finally:
            for child in children:
                child.stop()
    shares = [(a - b) / elapsed * 100 for a, b in zip(after, before, strict=True)]
    return [
        value_row(
            "N2",
            f"idle CPU of the streaming daemon, 8 GPUs, no events, {window:g} s",
            stats(shares),
            unit="%",
            op="<=",
            limit=0.2,
            smoke=smoke,
            notes="share of one core; CPU time has 10 ms resolution",
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
