"""N4: process start → cache synced, streaming-daemon example, 8 GPUs.

Shape: how long a restarted sidecar takes to serve from its cache. The fake Device API server (its
own process and CPU) serves 8 GPUs; we time, on the wall clock, from starting a fresh daemon
process (``examples/streaming-daemon``) until it logs ``cache synced`` (imports, channel, list,
store, handler registration and metrics server included).

Baseline, same run, same server: a fresh process that imports only ``grpc`` and the generated
messages, makes one raw ``ListGpus`` call and prints the result (``benchmarks/rawclient.py list``),
timed the same way. Both start from warm bytecode caches (see :mod:`benchmarks.daemon`).

Target: daemon time <= 1.5x the baseline.

Also reported (not a target): the start time of a process that only imports what the example
itself imports besides nvinformers (``grpc``, ``prometheus_client`` with its HTTP server, ``json``,
``uuid``, ``argparse``, ``signal``, ``logging``); the difference to the daemon is nvinformers' own
share (its modules, the list and the first sync).
"""

from __future__ import annotations

import sys

from benchmarks.common import (
    CLIENT_CPU,
    SERVER_CPU,
    Row,
    pin,
    ratio_row,
    script_main,
    stats,
)
from benchmarks.daemon import DAEMON_SYNCED, daemon_cmd, launch, raw_cmd, warm_up
from benchmarks.fakeserver import FakeServerProcess

REPEATS = 7

#: The example's own imports, without nvinformers (see the module docstring).
FLOOR = [
    sys.executable,
    "-c",
    "import grpc, prometheus_client, http.server, json, uuid, argparse, signal, logging; "
    "print('imported', flush=True)",
]


def seconds_to(cmd: list[str], marker: str) -> float:
    with launch(cmd, marker) as child:
        return child.seconds_to_marker * 1e3


def run(smoke: bool) -> list[Row]:
    repeats = 1 if smoke else REPEATS
    base: list[float] = []
    ours: list[float] = []
    floor: list[float] = []
    with FakeServerProcess(gpus=8, cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        if not smoke:
            warm_up(server.target)
        for i in range(repeats):
            pair = [(base, raw_cmd("list", server.target), "listed"),
                    (ours, daemon_cmd(server.target), DAEMON_SYNCED)]  # fmt: skip
            for out, cmd, marker in pair if i % 2 == 0 else reversed(pair):
                out.append(seconds_to(cmd, marker))
            floor.append(seconds_to(FLOOR, "imported"))
    return [
        ratio_row(
            "N4",
            "process start -> cache synced, streaming daemon, 8 GPUs",
            stats(ours),
            stats(base),
            unit="ms",
            op="<=",
            limit=1.5,
            baseline_label="process importing grpc, one raw ListGpus call",
            smoke=smoke,
            notes=(
                f"a process importing only the example's other dependencies starts in "
                f"{stats(floor).median:.0f} ms"
            ),
            extra={"example_imports_only_ms": floor},
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
