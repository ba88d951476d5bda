"""N1: GPU status change on the server → handler called: p50 / p99 latency at 100 events/s.

Shape: the informer's end-to-end notification latency (client-go has no benchmark for it; its
e2e tests watch the same path). The fake Device API server (:class:`nvinformers.testing.FakeServer`,
in its own process and CPU) toggles a GPU's Ready condition 100 times a second, round-robin over
8 GPUs, and records the monotonic clock just before each write; the client records the same clock
(system-wide ``CLOCK_MONOTONIC``) when the event reaches it. Latency = receive - write, per event.
Six alternating rounds of 3 s per side; the figure is the median of the rounds' p99.

* informer: a GPU informer from ``SharedInformerFactory`` with one handler; the time is taken
  when the handler's ``on_update`` is called (after the store was updated).
* baseline, same run, same server: a raw typed stub stream (``GpuServiceStub.WatchGpus``) read
  by a thread; the time is taken when the message comes out of the iterator.

Target: informer p99 <= 1.5x baseline p99 (p50 reported too).
"""

from __future__ import annotations

import statistics
import threading
import time
from typing import Any

import grpc

from benchmarks.common import (
    CLIENT_CPU,
    SERVER_CPU,
    Row,
    pin,
    ratio_row,
    script_main,
    stats,
)
from benchmarks.fakeserver import FakeServerProcess
from benchmarks.s1_event_cpu import raw_channel_options
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import gpu_pb2_grpc
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.clientset import Config, new_for_config
from nvinformers.informers import SharedInformerFactory

RATE = 100.0
WAIT = 60.0


def _latencies(writes: list[tuple[str, float]], received: dict[str, float]) -> list[float]:
    missing = [rv for rv, _ in writes if rv not in received]
    if missing:
        raise RuntimeError(f"{len(missing)} of {len(writes)} events never arrived")
    return [(received[rv] - t) * 1e3 for rv, t in writes]


def _wait_for(received: dict[str, float], writes: list[tuple[str, float]]) -> None:
    deadline = time.monotonic() + WAIT
    while any(rv not in received for rv, _ in writes[-3:]) and time.monotonic() < deadline:
        time.sleep(0.01)


def baseline_phase(server: FakeServerProcess, duration: float) -> list[float]:
    channel = grpc.insecure_channel(server.target, options=raw_channel_options())
    received: dict[str, float] = {}
    initial = threading.Event()
    seen = 0
    stub = gpu_pb2_grpc.GpuServiceStub(channel)
    call = stub.WatchGpus(pb.WatchGpusRequest(opts=pb.ListOptions(watch=True)))

    def read() -> None:
        nonlocal seen
        perf = time.perf_counter
        try:
            for response in call:
                now = perf()
                seen += 1
                if response.type == "MODIFIED":
                    received[response.object.object_meta.resource_version] = now
                elif seen >= 8:
                    initial.set()
        except grpc.RpcError:
            pass  # cancelled

    reader = threading.Thread(target=read, name="n1-raw-reader")
    reader.start()
    try:
        if not initial.wait(WAIT):
            raise TimeoutError("baseline watch did not deliver the initial GPUs")
        writes = server.call("flips", RATE, duration)
        _wait_for(received, writes)
        return _latencies(writes, received)
    finally:
        call.cancel()
        reader.join()
        channel.close()


def informer_phase(server: FakeServerProcess, duration: float) -> list[float]:
    received: dict[str, float] = {}
    perf = time.perf_counter

    def on_update(old: Any, new: Any) -> None:
        now = perf()
        received[new.metadata.resource_version] = now

    with new_for_config(Config(target=server.target)) as clientset:
        factory = SharedInformerFactory(clientset)
        informer = factory.device().v1alpha1().gpus().informer()
        informer.add_event_handler(ResourceEventHandlerFuncs(on_update=on_update), name="n1")
        stop = threading.Event()
        factory.start(stop)
        try:
            if not all(factory.wait_for_cache_sync(stop, timeout=WAIT).values()):
                raise TimeoutError("informer did not sync")
            if not server.call("wait_watches", 1, WAIT):
                raise TimeoutError("informer watch did not open")
            time.sleep(0.2)
            writes = server.call("flips", RATE, duration)
            _wait_for(received, writes)
            return _latencies(writes, received)
        finally:
            factory.shutdown()


def _p(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


def run(smoke: bool) -> list[Row]:
    # Short rounds, alternated: a burst of background load then hits both sides alike.
    duration = 0.3 if smoke else 3.0
    repeats = 1 if smoke else 6
    base_p99: list[float] = []
    ours_p99: list[float] = []
    base_p50: list[float] = []
    ours_p50: list[float] = []
    with FakeServerProcess(gpus=8, cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        if not smoke:  # warm-up
            baseline_phase(server, 0.5)
            informer_phase(server, 0.5)
        for i in range(repeats):
            order = [True, False] if i % 2 == 0 else [False, True]
            for is_base in order:
                if is_base:
                    lat = baseline_phase(server, duration)
                    base_p99.append(_p(lat, 0.99))
                    base_p50.append(statistics.median(lat))
                else:
                    lat = informer_phase(server, duration)
                    ours_p99.append(_p(lat, 0.99))
                    ours_p50.append(statistics.median(lat))
    return [
        ratio_row(
            "N1",
            f"server status change -> handler, p99 at {RATE:g} events/s",
            stats(ours_p99),
            stats(base_p99),
            unit="ms",
            op="<=",
            limit=1.5,
            baseline_label="raw typed stub stream, same server",
            smoke=smoke,
            notes=(
                f"p50: informer {statistics.median(ours_p50):.3f} ms, "
                f"baseline {statistics.median(base_p50):.3f} ms"
            ),
            extra={
                "p50_ms": ours_p50,
                "baseline_p50_ms": base_p50,
                "events_per_run": int(RATE * duration),
            },
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
