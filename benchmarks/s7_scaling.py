"""S7: initial sync time and cache memory from 1,000 to 100,000 GPUs.

Shape: client-go's ``BenchmarkSharedIndexInformer`` sizes (10k-160k objects): the same measurements
as S2 (list → ``has_synced()`` against the raw-bytes server, wall clock, median of repeats) and S6
(``tracemalloc`` bytes retained by a synced informer, a fresh process per size), at 1k, 3k, 10k,
30k and 100k GPUs. We fit ``y = a * n^k`` by least squares on the logarithms and report ``k``.

There is no baseline: the target is that both grow linearly, i.e. fitted exponent <= 1.1.
"""

from __future__ import annotations

import math
import sys

from benchmarks.common import (
    CLIENT_CPU,
    REPEATS,
    SERVER_CPU,
    Row,
    Stats,
    child_result,
    pin,
    script_main,
    stats,
)
from benchmarks.rawserver import RawServerProcess
from benchmarks.s2_initial_sync import informer_seconds

WAIT = 300.0


def exponent(points: list[tuple[float, float]]) -> float:
    """Least-squares slope of log(y) against log(n)."""
    xs = [math.log(n) for n, _ in points]
    ys = [math.log(y) for _, y in points]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    return sum((x - mx) * (y - my) for x, y in zip(xs, ys, strict=True)) / sum(
        (x - mx) ** 2 for x in xs
    )


def run(smoke: bool) -> list[Row]:
    sizes = [100, 300] if smoke else [1_000, 3_000, 10_000, 30_000, 100_000]
    repeats = 1 if smoke else REPEATS
    times: list[tuple[float, float]] = []
    time_stats: dict[int, Stats] = {}
    with RawServerProcess(cpu=SERVER_CPU) as server:
        pin(CLIENT_CPU)
        for count in sizes:
            server.configure(gpus=count)
            if not smoke:
                informer_seconds(server, count)  # warm-up
            s = stats([informer_seconds(server, count) * 1e3 for _ in range(repeats)])
            time_stats[count] = s
            times.append((count, s.median))
    memory: list[tuple[float, float]] = []
    for count in sizes:
        result = child_result(
            [sys.executable, "-m", "benchmarks.s6_memory", "--child", str(count)], timeout=WAIT
        )
        memory.append((count, result["bytes_per_gpu"] * count))
    time_k = exponent(times)
    memory_k = exponent(memory)
    extra_t = {"points_ms": {str(n): time_stats[n].median for n in sizes}}
    extra_m = {"points_bytes": {str(n): m for n, m in memory}}
    return [
        Row(
            id="S7/time",
            figure="initial sync time vs GPUs (fitted exponent)",
            value=time_k,
            unit="",
            target="<= 1.1",
            ok=None if smoke else time_k <= 1.1,
            spread=", ".join(
                f"{n // 1000 or n}{'k' if n >= 1000 else ''}: {y:.0f} ms" for n, y in times
            ),
            extra=extra_t,
        ),
        Row(
            id="S7/memory",
            figure="cache memory vs GPUs (fitted exponent)",
            value=memory_k,
            unit="",
            target="<= 1.1",
            ok=None if smoke else memory_k <= 1.1,
            spread=", ".join(
                f"{n // 1000 or n}{'k' if n >= 1000 else ''}: {m / 1e6:.1f} MB" for n, m in memory
            ),
            extra=extra_m,
        ),
    ]


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
