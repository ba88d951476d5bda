"""S6: memory per cached GPU (three status conditions).

Shape: client-go's informer memory question ("what does a cached object cost?"), measured like
the official Python client's figures in the reference notes: ``tracemalloc`` growth, in a fresh
process, from before the GPUs are decoded until a GPU informer has synced them (the decoded
objects, the store, its namespace index and the informer's bookkeeping), after a full
collection, divided by the number of GPUs. The process's RSS growth is reported beside it.

Baseline: the serialized size of the same GPU (what it costs on the wire).

Target: cached bytes per GPU <= 2.0x its serialized size.
"""

from __future__ import annotations

import argparse
import gc
import json
import sys
import threading
import tracemalloc
from typing import Any

from benchmarks import fixtures
from benchmarks.common import REPEATS, Row, child_result, ratio_row, script_main, stats
from nvinformers.api.device.v1alpha1 import GPUList, ListMeta, wire_pb2
from nvinformers.api.device.v1alpha1._types import gpus_from_wire
from nvinformers.cache import (
    NAMESPACE_INDEX,
    ListWatch,
    SharedIndexInformer,
    cluster_scoped_key_func,
    meta_namespace_index_func,
)
from nvinformers.watch import Interface

WAIT = 300.0


def _rss() -> int:
    with open("/proc/self/statm") as fh:
        import os

        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class _IdleWatch:
    """A watch that delivers nothing until stopped."""

    def __init__(self) -> None:
        self._stopped = threading.Event()

    def __iter__(self) -> _IdleWatch:
        return self

    def __next__(self) -> Any:
        self._stopped.wait()
        raise StopIteration

    def stop(self) -> None:
        self._stopped.set()

    def __enter__(self) -> _IdleWatch:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def measure_child(count: int) -> dict[str, float]:
    """In a fresh process: bytes retained per GPU once an informer has synced ``count`` GPUs."""
    templates = fixtures.GpuTemplates(count)
    response = wire_pb2.RawListGpusResponse.FromString(
        fixtures.list_response(
            [templates.gpu(i, fixtures.RV_BASE + i) for i in range(count)],
            fixtures.RV_BASE + count,
        )
    )
    wire = sum(len(raw) for raw in response.gpu_list.items) / count
    watches: list[_IdleWatch] = []

    def watch(_: Any) -> Interface[Any]:
        w = _IdleWatch()
        watches.append(w)
        return w

    gc.collect()
    rss_before = _rss()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    # What the clientset does with a list response, then an informer as the factory builds it.
    listed = [
        GPUList(
            items=gpus_from_wire(response.gpu_list.items),
            metadata=ListMeta(resource_version=response.gpu_list.list_meta.resource_version),
        )
    ]
    informer: SharedIndexInformer[Any] = SharedIndexInformer(
        ListWatch(list_func=lambda _: listed[0], watch_func=watch),
        name="s6",
        key_func=cluster_scoped_key_func,
        indexers={NAMESPACE_INDEX: meta_namespace_index_func},
    )
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name="s6-informer")
    thread.start()
    if not informer.wait_for_sync(WAIT):
        raise TimeoutError("informer did not sync")
    listed.clear()  # only the informer's cache keeps the GPUs now (it lists once)
    gc.collect()
    after = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    rss_after = _rss()
    if len(informer.get_store()) != count:
        raise AssertionError("not every GPU was cached")
    stop.set()
    for w in watches:
        w.stop()
    thread.join()
    return {
        "bytes_per_gpu": (after - before) / count,
        "rss_per_gpu": (rss_after - rss_before) / count,
        "wire_bytes_per_gpu": wire,
    }


def run(smoke: bool) -> list[Row]:
    count = 1_000 if smoke else 10_000
    repeats = 1 if smoke else REPEATS
    results = [
        child_result(
            [sys.executable, "-m", "benchmarks.s6_memory", "--child", str(count)], timeout=WAIT
        )
        for _ in range(repeats)
    ]
    return [
        ratio_row(
            "S6",
            f"memory per cached GPU (3 conditions), {count:,} GPUs",
            stats([r["bytes_per_gpu"] for r in results]),
            stats([r["wire_bytes_per_gpu"] for r in results]),
            unit="B/GPU",
            op="<=",
            limit=2.0,
            baseline_label="serialized size of the same GPU",
            smoke=smoke,
            extra={"rss_per_gpu": [r["rss_per_gpu"] for r in results], "gpus": count},
        )
    ]


def main() -> None:
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--child", type=int)
    known, _ = parser.parse_known_args()
    if known.child is not None:
        print(json.dumps(measure_child(known.child)))
        return
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
