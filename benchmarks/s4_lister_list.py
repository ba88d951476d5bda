"""S4: ``lister.list(selector)`` over 10,000 cached GPUs.

Shape: client-go's ``BenchmarkLister_Match_10k``: list with an equality label selector that
matches a tenth of the cache (``example.com/rack=rack-3``; every GPU carries one of ten racks).

Baseline, same run, same objects: a list comprehension over the same ``dict`` of GPUs keeping those
whose label matches (``[g for g in d.values() if g.metadata.labels.get(k) == v]``), i.e. the bare
filter a cache user would write without a lister.

Target: lister lists/s >= 0.5x the baseline.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from benchmarks import fixtures
from benchmarks.common import CLIENT_CPU, Row, pin, ratio_row, script_main, stats
from benchmarks.s3_lister_get import cached_gpus, gpu_lister
from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU

REPEATS = 5
VALUE = "rack-3"


def lists_per_second(list_fn: Callable[[], list[Any]], rounds: int) -> float:
    start = time.perf_counter()
    for _ in range(rounds):
        list_fn()
    return rounds / (time.perf_counter() - start)


def run(smoke: bool) -> list[Row]:
    pin(CLIENT_CPU)
    count = 1_000 if smoke else 10_000
    rounds = 2 if smoke else 20
    repeats = 1 if smoke else REPEATS
    gpus = cached_gpus(count)
    lister = gpu_lister(gpus)
    plain = {gpu.metadata.name: gpu for gpu in gpus}
    key = fixtures.LABEL_KEY
    selector = labels.parse(f"{key}={VALUE}")

    def baseline_list() -> list[GPU]:
        return [g for g in plain.values() if g.metadata.labels.get(key) == VALUE]

    def lister_list() -> list[GPU]:
        return lister.list(selector)

    expected = {g.metadata.name for g in baseline_list()}
    if {g.metadata.name for g in lister_list()} != expected or len(expected) != count // 10:
        raise AssertionError("lister and baseline disagree")
    base: list[float] = []
    ours: list[float] = []
    for i in range(repeats):
        pair = [(base, baseline_list), (ours, lister_list)]
        for out, fn in pair if i % 2 == 0 else reversed(pair):
            out.append(lists_per_second(fn, rounds))
    return [
        ratio_row(
            "S4",
            f"lister.list(selector) over {count:,} GPUs, 1/10 match",
            stats(ours),
            stats(base),
            unit="lists/s",
            op=">=",
            limit=0.5,
            baseline_label="list comprehension filtering the same dict by label",
            smoke=smoke,
        )
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
