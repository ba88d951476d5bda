"""S2: list → ``has_synced()`` for 10,000 and 100,000 GPUs.

Shape: client-go's ``BenchmarkReflectorList`` / initial ``ListAndWatch``, over the real wire. A
raw-bytes server (:mod:`benchmarks.rawserver`, its own process and CPU) answers ``ListGpus`` with
a pre-serialized list of N GPUs (about 500 bytes each: 5 MB at 10k, 52 MB at 100k). We time, on
the wall clock, from ``factory.start()`` until the informer reports ``has_synced()`` (the list
applied to the store and its namespace index; no handler registered).

Baseline, same run, same server, same bytes: a fresh channel and ``GpuServiceStub.ListGpus``, the
response parsed into a typed ``ListGpusResponse`` (what any client must do with the list).

Target: informer sync time <= 2.0x the baseline at 100,000 GPUs (10,000 is reported too).
"""

from __future__ import annotations

import threading
import time

import grpc

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
from benchmarks.rawserver import RawServerProcess
from benchmarks.s1_event_cpu import raw_channel_options
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import gpu_pb2_grpc
from nvinformers.clientset import Config, new_for_config
from nvinformers.informers import SharedInformerFactory

WAIT = 300.0


def baseline_seconds(server: RawServerProcess, count: int) -> float:
    """Fresh channel, typed ListGpus call, parse: wall seconds."""
    start = time.perf_counter()
    channel = grpc.insecure_channel(server.target, options=raw_channel_options())
    try:
        stub = gpu_pb2_grpc.GpuServiceStub(channel)
        response = stub.ListGpus(pb.ListGpusRequest(), timeout=WAIT)
        elapsed = time.perf_counter() - start
        if len(response.gpu_list.items) != count:
            raise RuntimeError(f"baseline listed {len(response.gpu_list.items)} of {count} GPUs")
        return elapsed
    finally:
        channel.close()


def informer_seconds(server: RawServerProcess, count: int) -> float:
    """factory.start() → has_synced(): wall seconds."""
    with new_for_config(Config(target=server.target)) as clientset:
        factory = SharedInformerFactory(clientset)
        gpus = factory.device().v1alpha1().gpus()
        informer = gpus.informer()
        stop = threading.Event()
        start = time.perf_counter()
        factory.start(stop)
        try:
            if not informer.wait_for_sync(WAIT):
                raise TimeoutError("informer did not sync")
            elapsed = time.perf_counter() - start
            if len(informer.get_store()) != count:
                raise RuntimeError(f"informer cached {len(informer.get_store())} of {count}")
        finally:
            factory.shutdown()
    return elapsed


def run(smoke: bool) -> list[Row]:
    # Row ids stay "S2/10k" and "S2" at smoke size (100 and 1,000 GPUs): the ids name figures.
    sizes = [100, 1_000] if smoke else [10_000, 100_000]
    repeats = 1 if smoke else REPEATS
    rows: list[Row] = []
    with RawServerProcess(cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        for count in sizes:
            server.configure(gpus=count)
            if not smoke:  # warm-up: imports, first-call caches
                baseline_seconds(server, count)
                informer_seconds(server, count)
            base: list[float] = []
            ours: list[float] = []
            for i in range(repeats):
                if i % 2:
                    ours.append(informer_seconds(server, count) * 1e3)
                    base.append(baseline_seconds(server, count) * 1e3)
                else:
                    base.append(baseline_seconds(server, count) * 1e3)
                    ours.append(informer_seconds(server, count) * 1e3)
            final = count == sizes[-1]
            row = ratio_row(
                "S2" if final else "S2/10k",
                f"list -> has_synced(), {count:,} GPUs",
                stats(ours),
                stats(base),
                unit="ms",
                op="<=",
                limit=2.0,
                baseline_label="raw ListGpus call + typed parse",
                smoke=smoke,
                extra={"gpus": count},
            )
            if not final:
                row.ok = None
                row.target = "(info)"
            rows.append(row)
    return rows


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
