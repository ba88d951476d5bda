"""Figures against the fake server that are reported, not targeted (not part of ``make bench``).

Usage::

    python -m benchmarks.fakeserver_figures

Prints, for the clientset and informer against the bundled :class:`~nvinformers.testing.FakeServer`:

* conversion: ``GPU.from_bytes``, header and condition reads, ``from_proto`` / ``to_proto`` of a
  GPU with 3 conditions (timeit, best of 5);
* unary ``get`` latency (median of 5 x 1000 calls) and a list of 10,000 GPUs, each next to a raw
  stub on the same channel options, against an in-process fake server;
* watch events per second through ``clientset.watch()`` and through an informer with one
  handler, with the fake server in its own process writing as fast as it can (this measures the
  Python fake server's ceiling as much as the client; the client's own cost per event is S1).
"""

from __future__ import annotations

import statistics
import threading
import time
import timeit
from collections.abc import Callable
from typing import Any

import grpc

from benchmarks.common import CLIENT_CPU, SERVER_CPU, pin
from benchmarks.fakeserver import FakeServerProcess
from benchmarks.fixtures import gpu_bytes
from nvinformers.api.device.v1alpha1 import GPU, gpu_pb2_grpc
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.clientset import Clientset, Config, new_for_config
from nvinformers.informers import SharedInformerFactory
from nvinformers.options import ListOptions
from nvinformers.testing import FakeServer

EVENTS = 20_000
WAIT = 120.0


def per_call_us(stmt: Callable[[], object], number: int) -> float:
    return min(timeit.repeat(stmt, number=number, repeat=5)) / number * 1e6


def conversion() -> None:
    raw = gpu_bytes(3, 1234)
    msg = pb.Gpu.FromString(raw)
    gpu = GPU.from_bytes(raw)
    print(f"conversion ({len(raw)}-byte GPU, {len(msg.status.conditions)} conditions):")
    rows: list[tuple[str, Callable[[], object], int]] = [
        ("pb.Gpu.FromString (bare parse)", lambda: pb.Gpu.FromString(raw), 200_000),
        ("GPU.from_bytes", lambda: GPU.from_bytes(raw), 200_000),
        ("gpu.metadata.name", lambda: gpu.metadata.name, 200_000),
        ("gpu.status.conditions[0].status", lambda: gpu.status.conditions[0].status, 50_000),
        ("GPU.from_proto", lambda: GPU.from_proto(msg), 100_000),
        ("gpu.to_proto()", gpu.to_proto, 100_000),
    ]
    for label, stmt, number in rows:
        print(f"  {label:34s} {per_call_us(stmt, number):6.2f} us")


def median_us(call: Callable[[], object], calls: int) -> float:
    times = []
    for _ in range(calls):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1e6


def unary() -> None:
    with FakeServer(gpus=10_000, flip_interval=None, bookmark_interval=None) as server:
        options = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
        with (
            new_for_config(Config(target=server.target)) as clientset,
            grpc.insecure_channel(server.target, options=options) as channel,
        ):
            gpus = clientset.device_v1alpha1().gpus()
            stub = gpu_pb2_grpc.GpuServiceStub(channel)
            request = pb.GetGpuRequest(name="gpu-1")
            for _ in range(200):  # warm both paths
                gpus.get("gpu-1")
                stub.GetGpu(request)
            ours = [median_us(lambda: gpus.get("gpu-1"), 1000) for _ in range(5)]
            raw = [median_us(lambda: stub.GetGpu(request), 1000) for _ in range(5)]
            print(
                f"get, in-process fake server: clientset {statistics.median(ours):.0f} us, "
                f"raw stub {statistics.median(raw):.0f} us (median of 5 x 1000 calls)"
            )
            ours = [median_us(gpus.list, 1) for _ in range(5)]
            raw = [median_us(lambda: stub.ListGpus(pb.ListGpusRequest()), 1) for _ in range(5)]
            print(
                f"list of 10,000 GPUs: clientset {statistics.median(ours) / 1e3:.1f} ms, "
                f"raw typed stub {statistics.median(raw) / 1e3:.1f} ms (median of 5)"
            )


def write_burst(server: FakeServerProcess) -> threading.Thread:
    """Ask the server process for EVENTS Ready flips, as fast as it can write them."""
    thread = threading.Thread(target=server.call, args=("flips", 1e6, EVENTS / 1e6))
    thread.start()
    return thread


def watch_rate(server: FakeServerProcess, clientset: Clientset) -> float:
    gpus = clientset.device_v1alpha1().gpus()
    revision = gpus.list().metadata.resource_version
    with gpus.watch(ListOptions(resource_version=revision)) as watch:
        start = time.perf_counter()
        writer = write_burst(server)
        seen = 0
        for seen, _event in enumerate(watch, start=1):
            if seen == EVENTS:
                break
        elapsed = time.perf_counter() - start
    writer.join()
    if seen != EVENTS:
        raise RuntimeError(f"the watch ended after {seen} of {EVENTS} events")
    return EVENTS / elapsed


def informer_rates(server: FakeServerProcess, clientset: Clientset, repeats: int) -> list[float]:
    factory = SharedInformerFactory(clientset)
    informer = factory.device().v1alpha1().gpus().informer()
    lock = threading.Lock()
    state: dict[str, Any] = {"count": 0, "target": 0, "done": threading.Event()}

    def on_update(old: GPU, new: GPU) -> None:
        with lock:
            state["count"] += 1
            if state["count"] >= state["target"]:
                state["done"].set()

    informer.add_event_handler(ResourceEventHandlerFuncs(on_update=on_update), name="count")
    stop = threading.Event()
    factory.start(stop)
    rates = []
    try:
        if not all(factory.wait_for_cache_sync(stop, timeout=WAIT).values()):
            raise TimeoutError("the informer did not sync")
        if not server.call("wait_watches", 1, WAIT):
            raise TimeoutError("the informer's watch did not open")
        for _ in range(repeats):
            with lock:
                state["done"] = threading.Event()
                state["target"] = state["count"] + EVENTS
            start = time.perf_counter()
            write_burst(server).join()
            if not state["done"].wait(WAIT):
                raise TimeoutError("the handler did not see every event")
            rates.append(EVENTS / (time.perf_counter() - start))
    finally:
        factory.shutdown()
    return rates


def streaming() -> None:
    with FakeServerProcess(gpus=8, cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        with new_for_config(Config(target=server.target)) as clientset:
            watch = [watch_rate(server, clientset) for _ in range(3)]
            informer = informer_rates(server, clientset, 3)
    print(f"watch events/s from the fake server (own process), {EVENTS:,} writes each:")
    print(f"  clientset.watch():       {', '.join(f'{r:,.0f}' for r in watch)}")
    print(f"  informer + 1 handler:    {', '.join(f'{r:,.0f}' for r in informer)}")


def main() -> None:
    conversion()
    unary()
    streaming()


if __name__ == "__main__":
    main()
