"""S5: workqueue add → get → done throughput, one producer and 1 or 4 workers.

Shape: client-go's ``BenchmarkQueue``-style end-to-end run: one producer thread adds N distinct
items to an unnamed :class:`nvinformers.workqueue.Queue` while the workers loop ``get`` →
``done``; we time from the first add until every worker has seen the shutdown (all items
processed).

Baseline, same run, same shape: ``queue.Queue`` with ``put`` / ``get`` (no de-duplication, no
processing set), the bare producer/consumer mechanism of the standard library.

Target: workqueue items/s >= 0.8x the baseline, with 1 worker and with 4 workers.
"""

from __future__ import annotations

import queue
import threading
import time

from benchmarks.common import CLIENT_CPU, Row, pin, ratio_row, script_main, stats
from nvinformers.workqueue import Queue

REPEATS = 5
_SENTINEL = -1


def stdlib_rate(items: int, workers: int) -> float:
    q: queue.Queue[int] = queue.Queue()

    def worker() -> None:
        while True:
            if q.get() == _SENTINEL:
                return

    threads = [threading.Thread(target=worker, name=f"s5-q{i}") for i in range(workers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for i in range(items):
        q.put(i)
    for _ in range(workers):
        q.put(_SENTINEL)
    for t in threads:
        t.join()
    return items / (time.perf_counter() - start)


def workqueue_rate(items: int, workers: int) -> float:
    q: Queue[int] = Queue()

    def worker() -> None:
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            q.done(item)  # type: ignore[arg-type]

    threads = [threading.Thread(target=worker, name=f"s5-w{i}") for i in range(workers)]
    for t in threads:
        t.start()
    start = time.perf_counter()
    for i in range(items):
        q.add(i)
    q.shut_down()
    for t in threads:
        t.join()
    return items / (time.perf_counter() - start)


def run(smoke: bool) -> list[Row]:
    pin(CLIENT_CPU)
    items = 2_000 if smoke else 200_000
    repeats = 1 if smoke else REPEATS
    rows: list[Row] = []
    for workers in (1, 4):
        base: list[float] = []
        ours: list[float] = []
        for i in range(repeats):
            # Alternate the order so that background load hits both sides alike.
            if i % 2:
                ours.append(workqueue_rate(items, workers) / 1e3)
                base.append(stdlib_rate(items, workers) / 1e3)
            else:
                base.append(stdlib_rate(items, workers) / 1e3)
                ours.append(workqueue_rate(items, workers) / 1e3)
        rows.append(
            ratio_row(
                f"S5/{workers}w",
                f"workqueue add/get/done, producer + {workers} worker(s)",
                stats(ours),
                stats(base),
                unit="k items/s",
                op=">=",
                limit=0.8,
                baseline_label="queue.Queue put/get, same threads",
                smoke=smoke,
                extra={"items": items},
            )
        )
    return rows


def main() -> None:
    script_main(run, __doc__.splitlines()[0])


if __name__ == "__main__":
    main()
