"""Soak: the chaos workload without pauses, for 30 minutes, watching the client for growth.

Usage::

    make soak                                   # 30 minutes, writes docs/soak.csv and docs/soak.png
    make soak SOAK_ARGS="--duration 2m"         # a short validation run
    python -m benchmarks.soak --duration 90s --csv /tmp/s.csv --png /tmp/s.png --no-faults
    python -m benchmarks.soak --plot-only --seed 123     # redraw docs/soak.png from docs/soak.csv

Two processes, so that only the SDK is measured:

* the **server process** runs a FakeServer on a Unix socket, the churn of
  ``tests/chaos/workload.py`` (creates, Ready flips and deletes at ``--rate`` writes per second,
  without pauses) and, unless ``--no-faults``, its fault episodes one after another every
  10-30 s (streams ended with every status, compaction, dropped events, failing calls, malformed
  events, server restarts with changes while it is down, periods ignoring the revision);
* the **client process** (this one) runs what a node agent runs: a GPU informer, a handler, and
  a workqueue-driven controller with two workers reading the lister.

Every ``--interval`` seconds (10) the client samples its RSS, thread count (OS threads, gRPC's
included), open file descriptors and cache size into the CSV, with the largest handler backlog,
informer queue depth and workqueue depth seen over the interval (polled every 0.25 s); at the
end it draws them (PNG, matplotlib Agg) and prints the figures.

Verdict — the run fails (exit status 1) when anything grows without bound:

=============  ==========================================================================
figure         bound
=============  ==========================================================================
RSS            least-squares slope over the second half of the run <= 20 MB/hour (a leak
               of 1 byte per event at 300 events/s is ~1 MB/hour; a leaked GPU per event
               ~300 MB/hour)
threads        max over the second half <= max over the first half + 4
open fds       max over the second half <= max over the first half + 8
backlog        max over the second half <= 10 s of events (10 x rate), and it drains to 0
               within 60 s once the churn stops
convergence    once the churn stops, the cache equals a fresh list from the server
=============  ==========================================================================

Short runs (fewer than 4 samples per half) report the figures without the slope verdict.

The informer's backoff is scaled down (0.1 s doubling to 1 s, instead of 0.8 s to 30 s) so that
it spends the run following the churn rather than waiting out a backoff grown by earlier
episodes (client-go resets it only after 2 minutes without a failure); watch timeouts keep their
production values (5-10 minutes).
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import logging
import multiprocessing
import os
import random
import re
import sys
import tempfile
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.connection import Connection
from multiprocessing.synchronize import Event as MpEvent
from typing import Any

import psutil
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import BackoffConfig, SharedIndexInformer
from nvinformers.clientset import Config, new_for_config
from nvinformers.controller import Controller, Request, Result
from nvinformers.errors import NotFoundError, StatusError
from nvinformers.informers import new_gpu_informer
from nvinformers.listers import GPULister

SOAK_BACKOFF = BackoffConfig(initial=0.1, cap=1.0)
RSS_SLOPE_LIMIT_MB_PER_HOUR = 20.0
THREAD_SLACK = 4
FD_SLACK = 8
BACKLOG_SECONDS = 10.0
DRAIN_TIMEOUT = 60.0
MIN_SAMPLES_PER_HALF = 4
COLUMNS = (
    "seconds",
    "rss_mb",
    "threads",
    "python_threads",
    "open_fds",
    "handler_backlog",
    "informer_queue",
    "workqueue",
    "cached_gpus",
    "events",
    "lists",
)


# ------------------------------------------------------------------------------ server side


def _server_main(
    socket_path: str,
    seed: int,
    rate: float,
    faults: bool,
    ready: MpEvent,
    stop: MpEvent,
    results: Connection,
) -> None:
    """The server process: FakeServer, churn and faults until ``stop`` is set."""
    from nvinformers.testing import FakeServer
    from tests.chaos.workload import Churn, FaultInjector, Ledger

    server = FakeServer(
        socket_path=socket_path,
        gpus=40,
        flip_interval=None,
        bookmark_interval=60.0,
        compaction_interval=300.0,
        seed=seed,
    ).start()
    ledger = Ledger()
    churn = Churn(server, random.Random(seed), ledger, rate=rate)
    injector = FaultInjector(
        server, random.Random(seed + 1), ledger=ledger, pause=(10.0, 30.0), outage=(0.5, 3.0)
    )
    stop_churn, stop_faults = threading.Event(), threading.Event()
    threads = [threading.Thread(target=churn.run, args=(stop_churn,), name="soak-churn")]
    if faults:
        threads.append(
            threading.Thread(target=injector.run, args=(stop_faults,), name="soak-faults")
        )
    for thread in threads:
        thread.start()
    ready.set()
    stop.wait()
    stop_faults.set()
    if faults:
        threads[1].join()  # finishes the episode in progress: the server ends up healthy
    stop_churn.set()
    threads[0].join()
    results.send(
        {
            "writes": dict(churn.ops),
            "episodes": dict(injector.episodes),
            "revision": server.revision,
        }
    )
    # Serve on until the client has checked convergence and closes the pipe.
    results.poll(None)
    server.stop()


# ------------------------------------------------------------------------------ client side


class CountingHandler:
    """A cheap handler that touches every object it is given (a node agent's logger)."""

    def __init__(self) -> None:
        self.counts = {"add": 0, "update": 0, "delete": 0}

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self.counts["add"] += 1
        _ = obj.metadata.name

    def on_update(self, old: Any, new: Any) -> None:
        self.counts["update"] += 1
        _ = new.metadata.resource_version

    def on_delete(self, obj: Any) -> None:
        self.counts["delete"] += 1


class ReadyReconciler:
    """Reads each requested GPU from the lister; remembers nothing about deleted ones."""

    def __init__(self, lister: GPULister) -> None:
        self._lister = lister
        self.reconciles = 0

    def reconcile(self, request: Request) -> Result:
        self.reconciles += 1
        try:
            gpu: GPU = self._lister.get(request.name)
        except NotFoundError:
            return Result()
        _ = gpu.status.conditions
        return Result()


class LogCounter(logging.Handler):
    """Counts WARNING+ records of the nvinformers loggers (the log volume must stay bounded)."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        self.count += 1


@dataclass
class Samples:
    rows: list[dict[str, float]] = field(default_factory=list)

    def column(self, name: str) -> list[float]:
        return [row[name] for row in self.rows]


def _queues(informer: SharedIndexInformer[GPU], controller: Controller) -> dict[str, float]:
    return {
        "handler_backlog": sum(r.backlog for r in informer.handlers()),
        "informer_queue": informer.queue_depth,
        "workqueue": controller.queue.len(),
    }


def _sample(
    started: float,
    process: psutil.Process,
    informer: SharedIndexInformer[GPU],
    queues: dict[str, float],
) -> dict[str, float]:
    stats = informer.reflector.stats
    return {
        "seconds": round(time.monotonic() - started, 1),
        "rss_mb": round(process.memory_info().rss / 2**20, 2),
        "threads": process.num_threads(),
        "python_threads": threading.active_count(),
        "open_fds": process.num_fds(),
        **queues,
        "cached_gpus": len(informer.get_indexer()),
        "events": sum(dict(stats.events).values()),
        "lists": sum(dict(stats.lists).values()),
    }


def slope_per_hour(xs_seconds: Sequence[float], ys: Sequence[float]) -> float:
    """Least-squares slope of ``ys`` against time, per hour."""
    n = len(xs_seconds)
    if n < 2:
        return 0.0
    mean_x = sum(xs_seconds) / n
    mean_y = sum(ys) / n
    sxx = sum((x - mean_x) ** 2 for x in xs_seconds)
    if sxx == 0:
        return 0.0
    sxy = sum((x - mean_x) * (y - mean_y) for x, y in zip(xs_seconds, ys, strict=True))
    return sxy / sxx * 3600.0


def parse_duration(text: str) -> float:
    """``90``, ``90s``, ``2m``, ``1.5h`` → seconds."""
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smh]?)\s*", text)
    if found is None:
        raise argparse.ArgumentTypeError(f"bad duration {text!r}: use e.g. 90, 90s, 2m, 1h")
    return float(found[1]) * {"": 1, "s": 1, "m": 60, "h": 3600}[found[2]]


def plot(samples: Samples, path: str, title: str, second_half_slope: float | None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    minutes = [s / 60 for s in samples.column("seconds")]
    fig, axes = plt.subplots(4, 1, figsize=(10, 11), sharex=True)
    rss = samples.column("rss_mb")
    axes[0].plot(minutes, rss, color="tab:blue", label="RSS")
    if second_half_slope is not None:
        half = len(minutes) // 2
        xs, ys = minutes[half:], rss[half:]
        mean_x, mean_y = sum(xs) / len(xs), sum(ys) / len(ys)
        per_minute = second_half_slope / 60
        axes[0].plot(
            xs,
            [mean_y + per_minute * (x - mean_x) for x in xs],
            "--",
            color="tab:red",
            label=f"second-half slope {second_half_slope:+.1f} MB/h",
        )
    axes[0].set_ylabel("RSS (MB)")
    axes[0].legend(loc="lower right")
    axes[1].plot(minutes, samples.column("threads"), label="OS threads")
    axes[1].plot(minutes, samples.column("python_threads"), label="Python threads")
    axes[1].set_ylabel("threads")
    axes[1].legend(loc="lower right")
    axes[2].plot(minutes, samples.column("open_fds"), color="tab:green")
    axes[2].set_ylabel("open fds")
    axes[3].plot(minutes, samples.column("handler_backlog"), label="handler backlog")
    axes[3].plot(minutes, samples.column("workqueue"), label="workqueue depth")
    axes[3].plot(minutes, samples.column("informer_queue"), label="informer queue")
    axes[3].set_ylabel("items waiting")
    axes[3].set_xlabel("minutes")
    axes[3].legend(loc="upper right")
    for ax in axes:
        ax.grid(alpha=0.3)
        top = max((max(line.get_ydata(), default=0) for line in ax.get_lines()), default=0)
        ax.set_ylim(0, float(top) * 1.15 + 1)  # headroom: a flat line must not hug the frame
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    plt.close(fig)


def _wait(predicate: Any, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    tick = threading.Event()
    while not predicate():
        if time.monotonic() >= deadline:
            return bool(predicate())
        tick.wait(0.05)
    return True


def run(args: argparse.Namespace) -> int:
    seed = args.seed if args.seed is not None else random.SystemRandom().randrange(2**32)
    print(
        f"soak: {args.duration:.0f} s, {args.rate:.0f} writes/s, faults "
        f"{'on' if args.faults else 'off'}, seed {seed}, sampling every {args.interval:.0f} s",
        flush=True,
    )
    counter = LogCounter()
    logging.getLogger("nvinformers").addHandler(counter)
    logging.getLogger("nvinformers").propagate = args.verbose
    if args.verbose:
        logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(levelname)s %(message)s")

    directory = tempfile.mkdtemp(dir="/tmp", prefix="nvi-soak-")
    socket_path = os.path.join(directory, "api.sock")
    ctx = multiprocessing.get_context("spawn")
    ready, stop = ctx.Event(), ctx.Event()
    here, there = ctx.Pipe()
    server = ctx.Process(
        target=_server_main,
        args=(socket_path, seed, args.rate, args.faults, ready, stop, there),
        name="soak-server",
    )
    server.start()
    if not ready.wait(60):
        server.kill()
        print("soak: the server process did not start", file=sys.stderr)
        return 2

    registry = CollectorRegistry()
    clientset = new_for_config(Config(target=f"unix://{socket_path}", metrics_registry=registry))
    informer = new_gpu_informer(clientset, backoff=SOAK_BACKOFF, registry=registry)
    counting = CountingHandler()
    informer.add_event_handler(counting, name="counter")
    reconciler = ReadyReconciler(GPULister(informer.get_indexer()))
    controller = Controller("soak", reconciler, max_concurrent_reconciles=2, registry=registry)
    controller.watch(informer)
    stop_informer = threading.Event()
    informer_thread = threading.Thread(
        target=informer.run, args=(stop_informer,), name="soak-informer"
    )
    informer_thread.start()
    samples = Samples()
    process = psutil.Process()
    failures: list[str] = []
    verdicts: list[str] = []
    started = time.monotonic()
    try:
        if not informer.wait_for_sync(60):
            print("soak: the informer did not sync", file=sys.stderr)
            return 2
        controller.start()
        controller.wait_for_started(60)
        with open(args.csv, "w", newline="") as out:
            writer = csv.DictWriter(out, fieldnames=COLUMNS)
            writer.writeheader()
            started = time.monotonic()  # time 0: synced, the workload running
            deadline = started + args.duration
            tick = threading.Event()
            next_sample = started
            queues = _queues(informer, controller)
            while True:
                row = _sample(started, process, informer, queues)
                samples.rows.append(row)
                writer.writerow(row)
                out.flush()
                if args.progress:
                    print(
                        f"  {row['seconds']:7.0f}s rss {row['rss_mb']:7.1f} MB  threads "
                        f"{row['threads']:3.0f}  fds {row['open_fds']:3.0f}  backlog "
                        f"{row['handler_backlog']:5.0f}  cached {row['cached_gpus']:4.0f}",
                        flush=True,
                    )
                if next_sample >= deadline:
                    break
                next_sample = min(next_sample + args.interval, deadline)
                queues = _queues(informer, controller)
                while not tick.wait(min(0.25, max(0.0, next_sample - time.monotonic()))):
                    now = _queues(informer, controller)
                    queues = {k: max(v, now[k]) for k, v in queues.items()}
                    if time.monotonic() >= next_sample:
                        break

        # Stop the workload; the server finishes its fault episode and keeps serving.
        stop.set()
        server_stats = here.recv() if here.poll(120) else {}
        drained = _wait(
            lambda: (
                sum(r.backlog for r in informer.handlers()) == 0
                and informer.queue_depth == 0
                and controller.queue.len() == 0
            ),
            DRAIN_TIMEOUT,
        )
        if not drained:
            failures.append(f"the backlog did not drain within {DRAIN_TIMEOUT:.0f} s")

        def converged() -> bool:
            try:
                listed = clientset.device_v1alpha1().gpus().list(timeout=30)
            except StatusError:  # the channel may still be reconnecting after a fault
                return False
            want = {g.metadata.name: g.metadata.resource_version for g in listed.items}
            have = {
                g.metadata.name: g.metadata.resource_version for g in informer.get_indexer().list()
            }
            return want == have

        if not _wait(converged, DRAIN_TIMEOUT):
            failures.append("the cache did not converge to the server's state")
    finally:
        controller.stop()
        stop_informer.set()
        informer_thread.join(60)
        clientset.close()
        stop.set()
        here.close()
        server.join(60)
        if server.is_alive():
            server.kill()
        with contextlib.suppress(OSError):  # the server process removed its socket
            os.rmdir(directory)

    # -- figures and verdict ------------------------------------------------------------------
    half = len(samples.rows) // 2
    first, second = samples.rows[:half], samples.rows[half:]
    seconds, rss = samples.column("seconds"), samples.column("rss_mb")
    slope: float | None = None
    if len(first) >= MIN_SAMPLES_PER_HALF and len(second) >= MIN_SAMPLES_PER_HALF:
        slope = slope_per_hour(seconds[half:], rss[half:])

    def peak(rows: list[dict[str, float]], name: str) -> float:
        return max((row[name] for row in rows), default=0.0)

    backlog_limit = BACKLOG_SECONDS * args.rate
    figures = {
        "peak RSS (MB)": peak(samples.rows, "rss_mb"),
        "RSS slope, second half (MB/hour)": slope,
        "max threads": peak(samples.rows, "threads"),
        "max open fds": peak(samples.rows, "open_fds"),
        "max handler backlog": peak(samples.rows, "handler_backlog"),
        "max workqueue depth": peak(samples.rows, "workqueue"),
        "max informer queue": peak(samples.rows, "informer_queue"),
    }
    if slope is not None:
        ok = slope <= RSS_SLOPE_LIMIT_MB_PER_HOUR
        verdicts.append(
            f"RSS slope {slope:+.1f} MB/h <= {RSS_SLOPE_LIMIT_MB_PER_HOUR:.0f}: "
            f"{'ok' if ok else 'FAIL'}"
        )
        if not ok:
            failures.append("RSS grows")
        for name, slack in (("threads", THREAD_SLACK), ("open_fds", FD_SLACK)):
            limit = peak(first, name) + slack
            ok = peak(second, name) <= limit
            verdicts.append(
                f"{name}: second-half max {peak(second, name):.0f} <= {limit:.0f}: "
                f"{'ok' if ok else 'FAIL'}"
            )
            if not ok:
                failures.append(f"{name} grow")
    else:
        verdicts.append("run too short for the growth verdicts (figures only)")
    backlog_ok = peak(second, "handler_backlog") <= backlog_limit
    verdicts.append(
        f"handler backlog: second-half max {peak(second, 'handler_backlog'):.0f} <= "
        f"{backlog_limit:.0f}: {'ok' if backlog_ok else 'FAIL'}"
    )
    if not backlog_ok:
        failures.append("the handler backlog grows")

    title = (
        f"nvinformers soak: {args.duration / 60:.0f} min, {args.rate:.0f} writes/s, "
        f"faults {'on' if args.faults else 'off'}, seed {seed}"
    )
    plot(samples, args.png, title, slope)
    elapsed = time.monotonic() - started
    print(f"soak finished after {elapsed:.0f} s; samples in {args.csv}, plot in {args.png}")
    print(f"  server: {server_stats}")
    print(
        f"  client: handler {counting.counts}, {reconciler.reconciles} reconciles, "
        f"{int(samples.rows[-1]['events']) if samples.rows else 0} watch events, "
        f"{int(samples.rows[-1]['lists']) if samples.rows else 0} lists, "
        f"{counter.count} WARNING+ log lines"
    )
    for name, value in figures.items():
        print(f"  {name}: {'n/a' if value is None else f'{value:.1f}'}")
    for verdict in verdicts:
        print(f"  {verdict}")
    if failures:
        print(f"soak FAILED: {'; '.join(failures)}")
        return 1
    print("soak passed: nothing grows without bound")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.soak", description=__doc__.splitlines()[0] if __doc__ else None
    )
    parser.add_argument("--duration", type=parse_duration, default=1800.0, help="e.g. 2m (30m)")
    parser.add_argument("--rate", type=float, default=300.0, help="writes per second (300)")
    parser.add_argument("--interval", type=float, default=10.0, help="seconds between samples")
    parser.add_argument("--seed", type=int, default=None, help="seed of the workload")
    parser.add_argument("--csv", default="docs/soak.csv", help="samples (docs/soak.csv)")
    parser.add_argument("--png", default="docs/soak.png", help="plot (docs/soak.png)")
    parser.add_argument(
        "--no-faults", dest="faults", action="store_false", help="churn only, no fault episodes"
    )
    parser.add_argument("--progress", action="store_true", help="print every sample")
    parser.add_argument("-v", "--verbose", action="store_true", help="show the SDK's warnings")
    parser.add_argument(
        "--plot-only",
        action="store_true",
        help="redraw --png from an existing --csv (give the run's --seed/--rate for the title)",
    )
    args = parser.parse_args(argv)
    if args.plot_only:
        return replot(args)
    return run(args)


def replot(args: argparse.Namespace) -> int:
    """Redraw the PNG of a finished run from its CSV."""
    with open(args.csv, newline="") as src:
        samples = Samples([{k: float(v) for k, v in row.items()} for row in csv.DictReader(src)])
    half = len(samples.rows) // 2
    slope = None
    if half >= MIN_SAMPLES_PER_HALF:
        slope = slope_per_hour(samples.column("seconds")[half:], samples.column("rss_mb")[half:])
    minutes = samples.rows[-1]["seconds"] / 60 if samples.rows else 0.0
    title = (
        f"nvinformers soak: {minutes:.0f} min, {args.rate:.0f} writes/s, "
        f"faults {'on' if args.faults else 'off'}, seed {args.seed}"
    )
    plot(samples, args.png, title, slope)
    print(f"redrew {args.png} from {args.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
