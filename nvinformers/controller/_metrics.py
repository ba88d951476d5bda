"""Prometheus metrics of controllers, with controller-runtime's names and label sets.

Mirrors ``sigs.k8s.io/controller-runtime/pkg/internal/controller/metrics``:

===================================================================  =========  ==================
metric                                                               type       labels
===================================================================  =========  ==================
``controller_runtime_reconcile_total``                               counter    controller, result
``controller_runtime_reconcile_errors_total``                        counter    controller
``controller_runtime_terminal_reconcile_errors_total``               counter    controller
``controller_runtime_reconcile_panics_total``                        counter    controller
``controller_runtime_reconcile_time_seconds``                        histogram  controller
``controller_runtime_max_concurrent_reconciles``                     gauge      controller
``controller_runtime_active_workers``                                gauge      controller
``nvinformers_controller_events_skipped_total``                      counter    controller, reason
===================================================================  =========  ==================

``result`` is one of ``success``, ``error``, ``requeue``, ``requeue_after``. ``requeue`` stays at
0: it counts controller-runtime's deprecated ``Result.Requeue`` flag, which
:class:`~nvinformers.controller._reconcile.Result` does not have; it is exported so that dashboards
written for controller-runtime keep working. Every series of a controller is exported, at 0, from
the moment the controller is created (controller-runtime pre-initialises them too).

``reconcile_time_seconds`` uses controller-runtime's 40 buckets, 5 ms to 60 s (its native
histogram has no Python counterpart). ``controller_runtime_reconcile_timeouts_total`` is not
exported: a Python reconcile cannot be cancelled, so there is no reconcile timeout.

``nvinformers_controller_events_skipped_total`` (an nvinformers addition) counts informer events
the controller's handlers could not turn into requests; ``reason`` is one of ``key_error`` (the
key function raised), ``unknown_final_state`` (a relist-detected delete without a last known
object reached a map function), ``handler_error`` (a predicate or handler raised).

How it is recorded, and why: every worker thread owns a :class:`WorkerStats` and is its only
writer, so recording a reconcile takes no lock at all (a ``prometheus_client`` counter or histogram
takes one per call). The registry's collector sums the workers' stats when scraped, as the
workqueue's and the informers' collectors do. A scrape may see one reconcile half-recorded (its
count but not yet its duration); the next scrape is exact.

Registries: each registry gets one collector, registered once, shared by every controller created
with that registry. Two controllers with different names become different ``controller`` label
values; two live controllers with the *same* name share their series (summed), as they would
share a labelled child in controller-runtime. The counters of a controller that has been garbage
collected are kept (folded into per-name totals), so counters never go backwards; its gauges read
0.
"""

from __future__ import annotations

import threading
import weakref
from collections import Counter
from collections.abc import Iterable, Iterator
from typing import Final

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from nvinformers.workqueue._metrics import Histogram, registered_collector

__all__ = [
    "RECONCILE_TIME_BUCKETS",
    "RESULT_LABELS",
    "SKIP_REASONS",
    "ControllerMetrics",
    "WorkerStats",
    "new_controller_metrics",
]

#: controller-runtime's ``reconcile_time_seconds`` buckets (upper bounds, seconds).
RECONCILE_TIME_BUCKETS: Final[tuple[float, ...]] = (
    0.005, 0.01, 0.025, 0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.45, 0.5, 0.6, 0.7, 0.8,
    0.9, 1.0, 1.25, 1.5, 1.75, 2.0, 2.5, 3.0, 3.5, 4.0, 4.5, 5.0, 6.0, 7.0, 8.0, 9.0, 10.0, 15.0,
    20.0, 25.0, 30.0, 40.0, 50.0, 60.0,
)  # fmt: skip

#: The values of the ``result`` label of ``controller_runtime_reconcile_total``.
RESULT_LABELS: Final[tuple[str, ...]] = ("success", "error", "requeue", "requeue_after")

#: The values of the ``reason`` label of ``nvinformers_controller_events_skipped_total``.
SKIP_REASONS: Final[tuple[str, ...]] = ("key_error", "unknown_final_state", "handler_error")

_RECONCILE_TOTAL = "controller_runtime_reconcile_total"
_RECONCILE_ERRORS = "controller_runtime_reconcile_errors_total"
_TERMINAL_ERRORS = "controller_runtime_terminal_reconcile_errors_total"
_PANICS = "controller_runtime_reconcile_panics_total"
_RECONCILE_TIME = "controller_runtime_reconcile_time_seconds"
_MAX_CONCURRENT = "controller_runtime_max_concurrent_reconciles"
_ACTIVE_WORKERS = "controller_runtime_active_workers"
_SKIPPED = "nvinformers_controller_events_skipped_total"

# Help texts are controller-runtime's, so that the exposition matches a Go controller's.
_HELP = {
    _RECONCILE_TOTAL: "Total number of reconciliations per controller",
    _RECONCILE_ERRORS: "Total number of reconciliation errors per controller",
    _TERMINAL_ERRORS: "Total number of terminal reconciliation errors per controller",
    _PANICS: "Total number of reconciliation panics per controller",
    _RECONCILE_TIME: "Length of time per reconciliation per controller",
    _MAX_CONCURRENT: "Maximum number of concurrent reconciles per controller",
    _ACTIVE_WORKERS: "Number of currently used workers per controller",
    _SKIPPED: "Informer events a controller's handlers could not turn into requests, by reason",
}


class WorkerStats:
    """The counters of one worker (thread or task), which is their only writer; also their sum.

    Semantics: ``results[i]`` counts reconciles by result (in the order of
    :data:`RESULT_LABELS`); ``errors``, ``terminal_errors`` and ``panics`` count what their names
    say; ``time`` is the reconcile-time histogram; ``busy`` is True while the worker is
    reconciling (the active-workers gauge).

    Thread-safety: written by one worker without a lock, read by the collector (integer and
    float reads are atomic under the GIL).
    """

    __slots__ = ("busy", "errors", "panics", "results", "terminal_errors", "time")

    def __init__(self) -> None:
        self.results = [0, 0, 0, 0]
        self.errors = 0
        self.terminal_errors = 0
        self.panics = 0
        self.time = Histogram(RECONCILE_TIME_BUCKETS)
        self.busy = False

    def add(self, other: WorkerStats) -> None:
        """Add ``other``'s counters to these (scrape-time sums; ``busy`` is not summed)."""
        self.results = [a + b for a, b in zip(self.results, other.results, strict=True)]
        self.errors += other.errors
        self.terminal_errors += other.terminal_errors
        self.panics += other.panics
        self.time.merge(other.time)


class _Counters:
    """What outlives a controller: its workers' stats and its skipped-event counts."""

    __slots__ = ("lock", "skipped", "workers")

    def __init__(self) -> None:
        # lock guards the two fields (not the WorkerStats' contents, which their workers own).
        self.lock = threading.Lock()
        self.workers: list[WorkerStats] = []
        self.skipped: Counter[str] = Counter(dict.fromkeys(SKIP_REASONS, 0))

    def add_to(self, totals: WorkerStats, skipped: Counter[str]) -> None:
        """Add these counters to ``totals`` and ``skipped``."""
        with self.lock:
            workers = list(self.workers)
            skipped.update(self.skipped)
        for stats in workers:
            totals.add(stats)


class ControllerMetrics:
    """The metrics state of one controller.

    Thread-safety: :meth:`new_worker` and :meth:`skipped` take a short internal lock; they are
    called once per worker and once per skipped event, never per reconcile. Each worker records
    its reconciles in its own :class:`WorkerStats` without a lock.

    Args:
        name: the ``controller`` label value.
        max_concurrent_reconciles: exported as ``controller_runtime_max_concurrent_reconciles``.
    """

    __slots__ = ("__weakref__", "counters", "max_concurrent_reconciles", "name")

    def __init__(self, name: str, max_concurrent_reconciles: int) -> None:
        self.name = name
        self.max_concurrent_reconciles = max_concurrent_reconciles
        self.counters = _Counters()

    def new_worker(self) -> WorkerStats:
        """Return a fresh :class:`WorkerStats` for a new worker, included in scrapes."""
        stats = WorkerStats()
        with self.counters.lock:
            self.counters.workers.append(stats)
        return stats

    def skipped(self, reason: str) -> None:
        """Count one event skipped for ``reason`` (one of :data:`SKIP_REASONS`)."""
        with self.counters.lock:
            self.counters.skipped[reason] += 1

    def active_workers(self) -> int:
        """How many workers are reconciling right now."""
        with self.counters.lock:
            workers = list(self.counters.workers)
        return sum(1 for stats in workers if stats.busy)


class _Snapshot:
    """One ``controller`` label value's series at a scrape."""

    __slots__ = ("active", "max_concurrent", "skipped", "totals")

    def __init__(self) -> None:
        self.totals = WorkerStats()
        self.skipped: Counter[str] = Counter()
        self.active = 0
        self.max_concurrent = 0


class _ControllerCollector(Collector):
    """Exposes every controller of one registry; registered on that registry exactly once."""

    def __init__(self) -> None:
        # _lock guards _tracked and _retired; it is never held while reading a controller.
        self._lock = threading.Lock()
        # Weak references to the live controllers' metrics, with their counters (kept alive).
        self._tracked: list[tuple[weakref.ref[ControllerMetrics], str, _Counters]] = []
        # name -> counters folded in from controllers that have been garbage collected.
        self._retired: dict[str, _Snapshot] = {}

    def track(self, metrics: ControllerMetrics) -> None:
        with self._lock:
            self._retired.setdefault(metrics.name, _Snapshot())
            self._prune_locked()
            self._tracked.append((weakref.ref(metrics), metrics.name, metrics.counters))

    def _prune_locked(self) -> list[ControllerMetrics]:
        live: list[ControllerMetrics] = []
        kept = []
        for tracked in self._tracked:
            ref, name, counters = tracked
            metrics = ref()
            if metrics is None:
                retired = self._retired[name]
                counters.add_to(retired.totals, retired.skipped)
            else:
                live.append(metrics)
                kept.append(tracked)
        self._tracked = kept
        return live

    def describe(self) -> Iterable[Metric]:
        # Lets the registry detect a clash with other collectors' names at register() time.
        return list(self._families({}))

    def collect(self) -> Iterable[Metric]:
        with self._lock:
            live = self._prune_locked()
            snapshots: dict[str, _Snapshot] = {}
            for name, retired in self._retired.items():
                snap = snapshots[name] = _Snapshot()
                snap.totals.add(retired.totals)
                snap.skipped.update(retired.skipped)
        for metrics in live:
            snap = snapshots[metrics.name]
            metrics.counters.add_to(snap.totals, snap.skipped)
            snap.active += metrics.active_workers()
            snap.max_concurrent += metrics.max_concurrent_reconciles
        return list(self._families(snapshots))

    @staticmethod
    def _families(snapshots: dict[str, _Snapshot]) -> Iterator[Metric]:
        lbl = ["controller"]
        total = CounterMetricFamily(
            _RECONCILE_TOTAL, _HELP[_RECONCILE_TOTAL], labels=["controller", "result"]
        )
        errors = CounterMetricFamily(_RECONCILE_ERRORS, _HELP[_RECONCILE_ERRORS], labels=lbl)
        terminal = CounterMetricFamily(_TERMINAL_ERRORS, _HELP[_TERMINAL_ERRORS], labels=lbl)
        panics = CounterMetricFamily(_PANICS, _HELP[_PANICS], labels=lbl)
        time_hist = HistogramMetricFamily(_RECONCILE_TIME, _HELP[_RECONCILE_TIME], labels=lbl)
        max_concurrent = GaugeMetricFamily(_MAX_CONCURRENT, _HELP[_MAX_CONCURRENT], labels=lbl)
        active = GaugeMetricFamily(_ACTIVE_WORKERS, _HELP[_ACTIVE_WORKERS], labels=lbl)
        skipped = CounterMetricFamily(_SKIPPED, _HELP[_SKIPPED], labels=["controller", "reason"])
        for name in sorted(snapshots):
            snap = snapshots[name]
            t = snap.totals
            for label, n in zip(RESULT_LABELS, t.results, strict=True):
                total.add_metric([name, label], n)
            errors.add_metric([name], t.errors)
            terminal.add_metric([name], t.terminal_errors)
            panics.add_metric([name], t.panics)
            time_hist.add_metric([name], t.time.cumulative(), t.time.total)
            max_concurrent.add_metric([name], snap.max_concurrent)
            active.add_metric([name], snap.active)
            for reason in sorted({*SKIP_REASONS, *snap.skipped}):
                skipped.add_metric([name, reason], snap.skipped[reason])
        yield from (total, errors, terminal, panics, time_hist, max_concurrent, active, skipped)


def new_controller_metrics(
    name: str, *, max_concurrent_reconciles: int, registry: CollectorRegistry | None
) -> ControllerMetrics:
    """Create a controller's metrics and export them on ``registry`` (default: the global one).

    Every series of the controller exists, at 0, as soon as this returns.

    Raises:
        ValueError: the registry already has other metrics with these names.
    """
    metrics = ControllerMetrics(name, max_concurrent_reconciles)
    registered_collector(_ControllerCollector, registry, "controller_runtime_*").track(metrics)
    return metrics
