"""S1: client CPU per watch event, through informer + store + one handler.

Shape: client-go's ``BenchmarkSharedIndexInformer`` write side, driven over the real wire. A
raw-bytes server (:mod:`benchmarks.rawserver`, its own process and CPU) serves a list of 8 GPUs and
then, on release, a burst of MODIFIED events (about 500-byte GPUs, increasing revisions) as fast as
the client reads. We time the client process's CPU (all its threads, gRPC's included) from the
release until the handler has seen the last event, and divide by the number of events.

Baseline, same run, same server, same burst: a typed stub (``GpuServiceStub.WatchGpus``, every
message parsed into ``WatchGpusResponse``) iterated over the burst, on a channel with the same
options as the clientset's (single-threaded stream receive, large receive limit).

Target: informer CPU per event <= 2.0x the baseline.
"""

from __future__ import annotations

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
from benchmarks.rawserver import RawServerProcess
from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.api.device.v1alpha1 import gpu_pb2_grpc
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.clientset import Config, new_for_config
from nvinformers.clientset._clientset import single_threaded_stream_option
from nvinformers.informers import SharedInformerFactory

WAIT = 120.0


def raw_channel_options() -> list[tuple[str, Any]]:
    """The baseline channel: what a bare gRPC user would tune (receive path and size limit)."""
    options: list[tuple[str, Any]] = [("grpc.max_receive_message_length", 256 * 1024 * 1024)]
    key = single_threaded_stream_option()
    if key is not None:
        options.append((key, 1))
    return options


def baseline_cpu_per_event(server: RawServerProcess, events: int) -> float:
    """Typed stub iteration of the burst: client CPU seconds per event."""
    channel = grpc.insecure_channel(server.target, options=raw_channel_options())
    try:
        stub = gpu_pb2_grpc.GpuServiceStub(channel)
        opened = server.call("counts")["watches"]
        server.call("arm")
        call = stub.WatchGpus(pb.WatchGpusRequest(opts=pb.ListOptions(watch=True)))
        # The stream is opened by the first next(); do that in a thread and wait for the server.
        first: list[Any] = []
        reader = threading.Thread(target=lambda: first.append(next(call)), name="s1-first")
        reader.start()
        if not server.call("wait_watches", opened + 1, WAIT):
            raise TimeoutError("baseline watch did not open")
        time.sleep(0.1)
        start = time.process_time()
        server.call("go")
        reader.join()
        seen = 1
        for _response in call:
            seen += 1
            if seen == events:
                break
        cpu = time.process_time() - start
        call.cancel()
        if seen != events:
            raise RuntimeError(f"baseline saw {seen} of {events} events")
        return cpu / events
    finally:
        channel.close()


def informer_cpu_per_event(server: RawServerProcess, events: int) -> float:
    """Informer + store + one handler over the burst: client CPU seconds per event."""
    done = threading.Event()
    count = 0

    def on_update(old: Any, new: Any) -> None:
        nonlocal count
        count += 1
        if count == events:
            done.set()

    with new_for_config(Config(target=server.target)) as clientset:
        factory = SharedInformerFactory(clientset)
        informer = factory.device().v1alpha1().gpus().informer()
        informer.add_event_handler(ResourceEventHandlerFuncs(on_update=on_update), name="count")
        opened = server.call("counts")["watches"]
        server.call("arm")
        stop = threading.Event()
        factory.start(stop)
        try:
            if not all(factory.wait_for_cache_sync(stop, timeout=WAIT).values()):
                raise TimeoutError("informer did not sync")
            if not server.call("wait_watches", opened + 1, WAIT):
                raise TimeoutError("informer watch did not open")
            time.sleep(0.1)
            start = time.process_time()
            server.call("go")
            if not done.wait(WAIT):
                raise TimeoutError(f"handler saw {count} of {events} events")
            cpu = time.process_time() - start
        finally:
            factory.shutdown()
    return cpu / events


def run(smoke: bool) -> list[Row]:
    events = 2_000 if smoke else 60_000
    repeats = 1 if smoke else 5
    base: list[float] = []
    ours: list[float] = []
    with RawServerProcess(cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        server.configure(gpus=8, events=events)
        # Warm up both paths (imports, channel setup, first-call caches) at a small size.
        if not smoke:
            baseline_cpu_per_event(server, 1000)
            informer_cpu_per_event(server, 1000)
        for i in range(repeats):
            # Alternate the order so that drifting background load hits both sides alike.
            if i % 2:
                ours.append(informer_cpu_per_event(server, events) * 1e6)
                base.append(baseline_cpu_per_event(server, events) * 1e6)
            else:
                base.append(baseline_cpu_per_event(server, events) * 1e6)
                ours.append(informer_cpu_per_event(server, events) * 1e6)
    return [
        ratio_row(
            "S1",
            "client CPU per watch event: informer + store + 1 handler",
            stats(ours),
            stats(base),
            unit="us/event",
            op="<=",
            limit=2.0,
            baseline_label="typed stub iteration of the same stream",
            smoke=smoke,
            extra={"events": events},
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
