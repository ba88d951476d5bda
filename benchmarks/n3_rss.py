"""N3: resident memory of the streaming-daemon example after its cache synced (8 GPUs).

Shape: the per-node footprint of the sidecar. The fake Device API server (its own process and
CPU) serves 8 GPUs; a fresh daemon process (``examples/streaming-daemon``) starts and syncs; 0.5 s
after it logs ``cache synced`` we read its ``VmRSS``.

Baseline, same run, same server: a fresh process that imports only ``grpc`` and the generated
messages and holds one raw ``WatchGpus`` stream open after reading the initial events
(``benchmarks/rawclient.py watch``), measured the same way.

Target: daemon RSS <= 1.5x the baseline.
"""

from __future__ import annotations

import time

from benchmarks.common import (
    CLIENT_CPU,
    REPEATS,
    SERVER_CPU,
    Row,
    pin,
    ratio_row,
    script_main,
    stats,
)
from benchmarks.daemon import DAEMON_SYNCED, daemon_cmd, launch, raw_cmd, rss_bytes, warm_up
from benchmarks.fakeserver import FakeServerProcess

SETTLE = 0.5


def rss_mb(cmd: list[str], marker: str) -> float:
    with launch(cmd, marker) as child:
        time.sleep(SETTLE)
        return rss_bytes(child.pid) / 2**20


def run(smoke: bool) -> list[Row]:
    repeats = 1 if smoke else REPEATS
    base: list[float] = []
    ours: list[float] = []
    with FakeServerProcess(gpus=8, cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        if not smoke:
            warm_up(server.target)
        for _ in range(repeats):
            base.append(rss_mb(raw_cmd("watch", server.target), "watching"))
            ours.append(rss_mb(daemon_cmd(server.target), DAEMON_SYNCED))
    return [
        ratio_row(
            "N3",
            "RSS of the streaming daemon after sync, 8 GPUs",
            stats(ours),
            stats(base),
            unit="MiB",
            op="<=",
            limit=1.5,
            baseline_label="process importing grpc, holding one raw watch",
            smoke=smoke,
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
