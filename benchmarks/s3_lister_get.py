"""S3: ``lister.get(name)`` operations per second.

Shape: client-go's lister ``Get`` (``BenchmarkLister``-style: one reader, a warm cache). A GPU
informer's indexer holds 10,000 GPUs (keyed by name, with the namespace index, exactly as the
GPU informer builds it); one thread calls ``GPULister.get(name)`` for names cycling through the
cache.

Baseline, same run, same names: a function that reads a plain ``dict`` of the same GPUs under a
``threading.Lock`` (``with lock: return d.get(name)``), i.e. the bare mechanism of a thread-safe
cache.

Target: lister ops/s >= 0.5x the baseline.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from benchmarks import fixtures
from benchmarks.common import CLIENT_CPU, Row, pin, ratio_row, script_main, stats
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    cluster_scoped_key_func,
    meta_namespace_index_func,
    new_indexer,
)
from nvinformers.listers import GPULister

REPEATS = 5


def cached_gpus(count: int) -> list[GPU]:
    """``count`` decoded GPUs, as an informer caches them."""
    templates = fixtures.GpuTemplates(count)
    return [GPU.from_bytes(templates.gpu(i, fixtures.RV_BASE + i)) for i in range(count)]


def gpu_lister(gpus: list[GPU]) -> GPULister:
    """A GPU lister over an indexer built like the GPU informer's."""
    indexer: Any = new_indexer(
        cluster_scoped_key_func, {NAMESPACE_INDEX: meta_namespace_index_func}
    )
    indexer.replace(gpus, str(fixtures.RV_BASE))
    return GPULister(indexer)


def ops_per_second(get: Callable[[str], Any], names: list[str], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        for name in names:
            get(name)
    return rounds * len(names) / (time.perf_counter() - start)


def run(smoke: bool) -> list[Row]:
    pin(CLIENT_CPU)
    count = 1_000 if smoke else 10_000
    rounds = 2 if smoke else 20
    repeats = 1 if smoke else REPEATS
    gpus = cached_gpus(count)
    lister = gpu_lister(gpus)
    plain = {gpu.metadata.name: gpu for gpu in gpus}
    lock = threading.Lock()

    def baseline_get(name: str) -> GPU | None:
        with lock:
            return plain.get(name)

    names = list(plain)
    if lister.get(names[0]) is not plain[names[0]]:
        raise AssertionError("lister and baseline disagree")
    base: list[float] = []
    ours: list[float] = []
    for i in range(repeats):
        pair = [(base, baseline_get), (ours, lister.get)]
        for out, get in pair if i % 2 == 0 else reversed(pair):
            out.append(ops_per_second(get, names, rounds) / 1e6)
    return [
        ratio_row(
            "S3",
            f"lister.get(name), {count:,} cached GPUs",
            stats(ours),
            stats(base),
            unit="M ops/s",
            op=">=",
            limit=0.5,
            baseline_label="dict.get under a threading.Lock",
            smoke=smoke,
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
