"""Prometheus metrics for named workqueues, with client-go's metric names.

Mirrors client-go's ``util/workqueue/metrics.go`` (and the series controller-runtime registers):

=================================================  =========  ===================================
metric (label ``name``)                            type       meaning
=================================================  =========  ===================================
``workqueue_depth``                                gauge      items added, not yet handed out
``workqueue_adds_total``                           counter    adds that were not de-duplicated
``workqueue_queue_duration_seconds``               histogram  time from add to get
``workqueue_work_duration_seconds``                histogram  time from get to done
``workqueue_unfinished_work_seconds``              gauge      summed age of in-flight items
``workqueue_longest_running_processor_seconds``    gauge      age of the oldest in-flight item
``workqueue_retries_total``                        counter    ``add_after`` calls
=================================================  =========  ===================================

Histogram buckets are 1e-8 s to 1e3 s, one per power of ten (controller-runtime's buckets).

How it differs from client-go, and why:

* Only named queues have metrics; an unnamed queue holds ``None`` instead of a
  :class:`QueueMetrics` and pays one ``is not None`` test per operation.
* Nothing is pushed into ``prometheus_client`` metric objects on the hot path. Each queue keeps
  plain counters and histogram buckets beside its own state, under its own lock (client-go's
  ``defaultQueueMetrics`` also "expects the caller to lock"). A single custom collector per
  registry reads them at scrape time. So a named queue costs a few integer updates and three
  clock reads per item, and takes no extra lock.
* ``unfinished_work_seconds`` and ``longest_running_processor_seconds`` are computed when scraped,
  from the in-flight items' start times: always fresh, and no 500 ms refresh goroutine (thread).

Registries: each ``prometheus_client`` registry gets one collector, registered once, shared by every
named queue created with that registry; queues with different names become different ``name`` label
values. Two live queues with the *same* name on one registry share their series, as in client-go
(where both would get the same labelled child): counters, depth and histograms are summed, the
unfinished-work gauge is summed and the longest-running gauge is the maximum. Counters and
histograms of a queue that has been garbage collected are kept (folded into per-name totals), so
counters never go backwards; its gauges drop out.
"""

from __future__ import annotations

import threading
import weakref
from bisect import bisect_left
from collections.abc import Hashable, Iterable, Iterator
from itertools import accumulate
from typing import TYPE_CHECKING, TypeVar, cast

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

if TYPE_CHECKING:
    from nvinformers.clock import Clock

__all__ = [
    "DURATION_BUCKETS",
    "Histogram",
    "QueueMetrics",
    "new_queue_metrics",
    "registered_collector",
]

#: Upper bounds (seconds) of the duration histograms' buckets: 10 ns to 1000 s, x10 each.
DURATION_BUCKETS: tuple[float, ...] = tuple(10.0**exponent for exponent in range(-8, 4))

_DEPTH = "workqueue_depth"
_ADDS = "workqueue_adds_total"
_QUEUE_DURATION = "workqueue_queue_duration_seconds"
_WORK_DURATION = "workqueue_work_duration_seconds"
_UNFINISHED = "workqueue_unfinished_work_seconds"
_LONGEST = "workqueue_longest_running_processor_seconds"
_RETRIES = "workqueue_retries_total"

_HELP = {
    _DEPTH: "Current depth of workqueue",
    _ADDS: "Total number of adds handled by workqueue",
    _QUEUE_DURATION: "How long in seconds an item stays in workqueue before being requested",
    _WORK_DURATION: "How long in seconds processing an item from workqueue takes",
    _UNFINISHED: (
        "How many seconds of work has been done that is in progress and hasn't been observed by "
        "work_duration. Large values indicate stuck threads. One can deduce the number of stuck "
        "threads by observing the rate at which this increases."
    ),
    _LONGEST: "How many seconds has the longest running processor for workqueue been running",
    _RETRIES: "Total number of retries handled by workqueue",
}


class Histogram:
    """Bucket counts and sum of observations, exposed by a collector at scrape time.

    prometheus_client's Histogram takes a lock and walks its buckets on every observation; the
    workqueue, a handler thread (up to 100,000 calls a second) and a controller's workers record
    here instead (one bisect and two additions, which hot paths inline).

    ``counts[i]`` counts observations v with ``bounds[i-1] < v <= bounds[i]``; the last slot is
    the +Inf bucket (so its count is everything's). Cumulated only when exposed.

    Thread-safety: none; its one writer, or its owner's lock, guards it. A scrape that does not
    take that lock reads a copy of the counts (:meth:`cumulative`).
    """

    __slots__ = ("bounds", "counts", "total")

    def __init__(self, bounds: tuple[float, ...]) -> None:
        self.bounds = bounds
        self.counts = [0] * (len(bounds) + 1)
        self.total = 0.0

    def observe(self, value: float) -> None:
        """Record one observation."""
        self.counts[bisect_left(self.bounds, value)] += 1
        self.total += value

    def merge(self, other: Histogram) -> None:
        """Add ``other``'s observations (same bounds) to these."""
        for i, n in enumerate(other.counts):
            self.counts[i] += n
        self.total += other.total

    def cumulative(self) -> list[tuple[str, float]]:
        """The cumulative ``(le, count)`` pairs a histogram family takes, ending with +Inf."""
        # repr() spells the bounds exactly as prometheus_client's Histogram does.
        labels = (*(repr(bound) for bound in self.bounds), "+Inf")
        return [(le, float(n)) for le, n in zip(labels, accumulate(list(self.counts)), strict=True)]


class _Counts:
    """The monotonic part of one queue's metrics (kept after the queue is gone)."""

    __slots__ = ("adds", "queue_duration", "retries", "work_duration")

    def __init__(self) -> None:
        self.adds = 0
        self.retries = 0
        self.queue_duration = Histogram(DURATION_BUCKETS)
        self.work_duration = Histogram(DURATION_BUCKETS)

    def merge(self, other: _Counts) -> None:
        self.adds += other.adds
        self.retries += other.retries
        self.queue_duration.merge(other.queue_duration)
        self.work_duration.merge(other.work_duration)

    def copy(self) -> _Counts:
        c = _Counts()
        c.merge(self)
        return c


class _Snapshot:
    """One name's series values at scrape time."""

    __slots__ = ("counts", "depth", "longest", "unfinished")

    def __init__(self, counts: _Counts) -> None:
        self.counts = counts
        self.depth = 0
        self.unfinished = 0.0
        self.longest = 0.0


class QueueMetrics:
    """The metrics state of one named queue (client-go's ``defaultQueueMetrics``).

    Semantics: ``add_locked`` runs for every add that was not de-duplicated (including an add of
    an item being processed), ``get_locked`` when an item is handed to a worker, ``done_locked``
    when the worker calls ``done``, ``retry_locked`` for every ``add_after``. Depth counts adds not
    yet handed out; queue duration is measured from the first such add; work duration from get
    to done.

    Thread-safety: every ``*_locked`` method and every field is guarded by ``lock``, the owning
    queue's lock, which the caller holds. The registry's collector takes the same lock to read a
    consistent snapshot.
    """

    __slots__ = (
        "__weakref__",
        "_add_times",
        "_counts",
        "_depth",
        "_now",
        "_processing_starts",
        "lock",
        "name",
    )

    def __init__(self, name: str, *, clock: Clock, lock: threading.Lock) -> None:
        self.name = name
        self.lock = lock
        # Bound once: read three times per item on the hot path.
        self._now = clock.now
        self._counts = _Counts()
        # Items added and not yet handed out (client-go's depth gauge).
        self._depth = 0
        # item -> time of the add that made it dirty; removed when handed out.
        self._add_times: dict[Hashable, float] = {}
        # item -> time it was handed out; removed by done. Feeds the unfinished/longest gauges.
        self._processing_starts: dict[Hashable, float] = {}

    def add_locked(self, item: Hashable) -> None:
        """Record an add that made ``item`` dirty."""
        self._counts.adds += 1
        self._depth += 1
        if item not in self._add_times:
            self._add_times[item] = self._now()

    def get_locked(self, item: Hashable) -> None:
        """Record that ``item`` was handed to a worker."""
        self._depth -= 1
        now = self._now()
        self._processing_starts[item] = now
        added = self._add_times.pop(item, None)
        if added is not None:
            # Observe into the histogram, inline (hot path).
            waited = now - added
            hist = self._counts.queue_duration
            hist.counts[bisect_left(DURATION_BUCKETS, waited)] += 1
            hist.total += waited

    def done_locked(self, item: Hashable) -> None:
        """Record that the worker finished ``item``."""
        started = self._processing_starts.pop(item, None)
        if started is not None:
            # Observe into the histogram, inline (hot path).
            worked = self._now() - started
            hist = self._counts.work_duration
            hist.counts[bisect_left(DURATION_BUCKETS, worked)] += 1
            hist.total += worked

    def retry_locked(self) -> None:
        """Record one ``add_after`` call."""
        self._counts.retries += 1

    def snapshot(self) -> tuple[_Counts, int, float, float]:
        """Return (counts copy, depth, unfinished seconds, longest seconds), taking ``lock``."""
        with self.lock:
            now = self._now()
            unfinished = 0.0
            longest = 0.0
            for started in self._processing_starts.values():
                age = now - started
                unfinished += age
                longest = max(longest, age)
            return self._counts.copy(), self._depth, unfinished, longest


class _WorkqueueCollector(Collector):
    """Exposes every named queue of one registry; registered on that registry exactly once."""

    def __init__(self) -> None:
        # _lock guards _tracked, _retired and _prune_at. It is never held together with a queue's
        # lock: collect() reads the queues after releasing it, and queues never take it.
        self._lock = threading.Lock()
        # Each queue by weak reference, with its name and the counts it mutates (held strongly:
        # read after the queue died, when nobody mutates them any more).
        self._tracked: list[tuple[weakref.ref[QueueMetrics], str, _Counts]] = []
        # name -> counts folded in from queues that have been garbage collected.
        self._retired: dict[str, _Counts] = {}
        # Prune dead entries when _tracked reaches this size (amortised O(1) per track()).
        self._prune_at = 64

    def track(self, metrics: QueueMetrics) -> None:
        with self._lock:
            self._retired.setdefault(metrics.name, _Counts())
            self._tracked.append((weakref.ref(metrics), metrics.name, metrics._counts))
            if len(self._tracked) >= self._prune_at:
                self._prune_locked()
                self._prune_at = max(64, 2 * len(self._tracked))

    def _prune_locked(self) -> list[QueueMetrics]:
        """Fold dead queues into ``_retired``; return the live queues' metrics (strong refs)."""
        live: list[QueueMetrics] = []
        kept = []
        for tracked in self._tracked:
            ref, name, counts = tracked
            metrics = ref()
            if metrics is None:
                self._retired[name].merge(counts)
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
            snapshots = {name: _Snapshot(c.copy()) for name, c in self._retired.items()}
        # Each queue's lock is taken after _lock is released, so that creating a queue (track)
        # never waits behind a scrape that waits for a busy queue.
        for metrics in live:
            counts, depth, unfinished, longest = metrics.snapshot()
            snap = snapshots[metrics.name]
            snap.counts.merge(counts)
            snap.depth += depth
            snap.unfinished += unfinished
            snap.longest = max(snap.longest, longest)
        return list(self._families(snapshots))

    @staticmethod
    def _families(snapshots: dict[str, _Snapshot]) -> Iterator[Metric]:
        labels = ["name"]
        depth = GaugeMetricFamily(_DEPTH, _HELP[_DEPTH], labels=labels)
        adds = CounterMetricFamily(_ADDS, _HELP[_ADDS], labels=labels)
        queue_duration = HistogramMetricFamily(
            _QUEUE_DURATION, _HELP[_QUEUE_DURATION], labels=labels
        )
        work_duration = HistogramMetricFamily(_WORK_DURATION, _HELP[_WORK_DURATION], labels=labels)
        unfinished = GaugeMetricFamily(_UNFINISHED, _HELP[_UNFINISHED], labels=labels)
        longest = GaugeMetricFamily(_LONGEST, _HELP[_LONGEST], labels=labels)
        retries = CounterMetricFamily(_RETRIES, _HELP[_RETRIES], labels=labels)
        for name in sorted(snapshots):
            snap = snapshots[name]
            value = [name]
            depth.add_metric(value, snap.depth)
            adds.add_metric(value, snap.counts.adds)
            for family, hist in (
                (queue_duration, snap.counts.queue_duration),
                (work_duration, snap.counts.work_duration),
            ):
                family.add_metric(value, hist.cumulative(), hist.total)
            unfinished.add_metric(value, snap.unfinished)
            longest.add_metric(value, snap.longest)
            retries.add_metric(value, snap.counts.retries)
        yield from (depth, adds, queue_duration, work_duration, unfinished, longest, retries)


K = TypeVar("K", bound=Collector)

# registry -> {collector class: its collector}. Weak keys: a throw-away registry is not kept alive.
_collectors: weakref.WeakKeyDictionary[CollectorRegistry, dict[type[Collector], Collector]] = (
    weakref.WeakKeyDictionary()
)
_collectors_lock = threading.Lock()


def registered_collector(kind: type[K], registry: CollectorRegistry | None, names: str) -> K:
    """Return ``registry``'s one collector of class ``kind``, created and registered on first use.

    Shared by every metrics object (queue, controller, informer, clientset) created with that
    registry (default: ``prometheus_client.REGISTRY``).

    Raises:
        ValueError: the registry already has other metrics with these names (``names``, e.g.
            ``"workqueue_*"``, says which in the message).
    """
    registry = REGISTRY if registry is None else registry
    with _collectors_lock:
        by_kind = _collectors.setdefault(registry, {})
        collector = by_kind.get(kind)
        if collector is None:
            collector = kind()
            try:
                registry.register(collector)
            except ValueError as exc:
                raise ValueError(
                    f"cannot register the {names} metrics on {registry!r}: {exc}"
                ) from exc
            by_kind[kind] = collector
        return cast(K, collector)


def new_queue_metrics(
    name: str, *, clock: Clock, lock: threading.Lock, registry: CollectorRegistry | None
) -> QueueMetrics | None:
    """Return the metrics state for a queue, or None when the queue is unnamed (no metrics).

    Registers the workqueue collector on ``registry`` (default: ``prometheus_client.REGISTRY``) the
    first time a named queue uses that registry.

    Args:
        name: the queue's name, exported as the ``name`` label; ``""`` disables metrics.
        clock: the queue's clock, used for the duration metrics.
        lock: the queue's lock, which guards the returned state.
        registry: the registry to expose the metrics on.

    Raises:
        ValueError: the registry already has other metrics with the workqueue_* names.
    """
    if not name:
        return None
    metrics = QueueMetrics(name, clock=clock, lock=lock)
    registered_collector(_WorkqueueCollector, registry, "workqueue_*").track(metrics)
    return metrics
