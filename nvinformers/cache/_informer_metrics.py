"""Prometheus metrics of informers, computed when scraped.

Every Python informer peer (kopf, the official client, aiok8s) exports nothing, and client-go
removed its reflector metrics in 2019 because per-reflector labels leaked (kubernetes#53485).
nvinformers exports a full set with bounded labels — ``informer`` (the informer's name) and
``handler`` (the handler's registration name), never anything per object — and drops an
informer's series when it stops.

The informer's threads only bump plain integer counters; this collector reads them at scrape
time, so metrics cost the hot path nothing beyond an addition.

====================================================  ========================================
metric                                                meaning
====================================================  ========================================
nvinformers_informer_synced                           1 once the first list is in the cache
nvinformers_informer_healthy                          1 when the watch is live (see health())
nvinformers_informer_watching                         1 while a watch stream is open
nvinformers_informer_store_objects                    objects in the cache
nvinformers_informer_queue_depth                      received deltas not yet applied
nvinformers_informer_seconds_since_last_event         age of the last event, bookmark, list or
                                                      current progress check
nvinformers_informer_lists_total{reason}              lists: initial, relist, expired,
                                                      progress_check
nvinformers_informer_list_failures_total              failed lists
nvinformers_informer_progress_checks_total{result}    relists of a silent watch: current
                                                      (an idle server), stale (a frozen
                                                      stream), failed
nvinformers_informer_watch_attempts_total             watches opened
nvinformers_informer_watch_restarts_total{reason}     why watches ended: closed, expired, ...
nvinformers_informer_events_received_total{type}      watch events by type (incl. BOOKMARK)
nvinformers_informer_events_applied_total{type}       store changes: added, updated, deleted
nvinformers_informer_stale_events_dropped_total       events older than the cached object
nvinformers_informer_transform_errors_total           transform calls that raised
nvinformers_informer_handler_backlog{handler}         notifications waiting for a handler
nvinformers_informer_handler_notifications_total      notifications delivered to a handler
nvinformers_informer_handler_errors_total             notifications a handler raised on
nvinformers_informer_handler_duration_seconds         time spent in a handler per notification
====================================================  ========================================
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator, Sized
from typing import TYPE_CHECKING, Any, Protocol

from prometheus_client import REGISTRY, CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)

if TYPE_CHECKING:
    from nvinformers.cache._handler_registry import ResourceEventHandlerRegistration
    from nvinformers.cache._reflector import Reflector
    from nvinformers.cache._reflector_health import InformerHealth

__all__ = ["InformerCollector", "MeasuredInformer", "register_informer", "unregister_informer"]

_PREFIX = "nvinformers_informer_"


class MeasuredInformer(Protocol):
    """What the collector reads of an informer (a
    :class:`~nvinformers.cache._shared_informer.SharedIndexInformer`, which registers itself)."""

    @property
    def name(self) -> str: ...
    @property
    def reflector(self) -> Reflector[Any]: ...
    @property
    def queue_depth(self) -> int: ...
    @property
    def transform_errors(self) -> int: ...
    @property
    def applied(self) -> dict[str, int]: ...
    @property
    def stale_events_dropped(self) -> int: ...
    def health(self) -> InformerHealth: ...
    def get_indexer(self) -> Sized: ...
    def handlers(self) -> tuple[ResourceEventHandlerRegistration, ...]: ...


class InformerCollector:
    """Collects the metrics of every running informer registered on one registry."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._informers: weakref.WeakSet[MeasuredInformer] = weakref.WeakSet()

    def add(self, informer: MeasuredInformer) -> None:
        with self._lock:
            self._informers.add(informer)

    def remove(self, informer: MeasuredInformer) -> None:
        with self._lock:
            self._informers.discard(informer)

    def describe(self) -> list[Metric]:
        return []

    def collect(self) -> Iterator[Metric]:
        with self._lock:
            informers = sorted(self._informers, key=lambda x: x.name)
        lbl = ["informer"]
        synced = GaugeMetricFamily(
            _PREFIX + "synced", "1 once the first list is cached.", labels=lbl
        )
        healthy = GaugeMetricFamily(
            _PREFIX + "healthy", "1 while the cache is being kept current.", labels=lbl
        )
        watching = GaugeMetricFamily(_PREFIX + "watching", "1 while a watch is open.", labels=lbl)
        objects = GaugeMetricFamily(_PREFIX + "store_objects", "Objects in the cache.", labels=lbl)
        depth = GaugeMetricFamily(
            _PREFIX + "queue_depth", "Deltas received but not yet applied.", labels=lbl
        )
        age = GaugeMetricFamily(
            _PREFIX + "seconds_since_last_event",
            "Seconds since the last watch event or bookmark, list, or current progress check.",
            labels=lbl,
        )
        lists = CounterMetricFamily(
            _PREFIX + "lists", "Lists by reason.", labels=["informer", "reason"]
        )
        list_failures = CounterMetricFamily(_PREFIX + "list_failures", "Failed lists.", labels=lbl)
        checks = CounterMetricFamily(
            _PREFIX + "progress_checks",
            "Relists of a silent watch by result: current (an idle server), stale (a frozen "
            "stream, the cache repaired), failed.",
            labels=["informer", "result"],
        )
        attempts = CounterMetricFamily(
            _PREFIX + "watch_attempts", "Watch streams opened.", labels=lbl
        )
        restarts = CounterMetricFamily(
            _PREFIX + "watch_restarts", "Ended watches by reason.", labels=["informer", "reason"]
        )
        received = CounterMetricFamily(
            _PREFIX + "events_received", "Watch events by type.", labels=["informer", "type"]
        )
        applied = CounterMetricFamily(
            _PREFIX + "events_applied", "Store changes by type.", labels=["informer", "type"]
        )
        stale = CounterMetricFamily(
            _PREFIX + "stale_events_dropped",
            "Events older than the cached object, dropped.",
            labels=lbl,
        )
        transform_errors = CounterMetricFamily(
            _PREFIX + "transform_errors", "Transform calls that raised.", labels=lbl
        )
        hlbl = ["informer", "handler"]
        backlog = GaugeMetricFamily(
            _PREFIX + "handler_backlog", "Notifications waiting for a handler.", labels=hlbl
        )
        delivered = CounterMetricFamily(
            _PREFIX + "handler_notifications", "Notifications delivered.", labels=hlbl
        )
        errors = CounterMetricFamily(
            _PREFIX + "handler_errors", "Notifications a handler raised on.", labels=hlbl
        )
        durations = HistogramMetricFamily(
            _PREFIX + "handler_duration_seconds",
            "Seconds spent in a handler per notification.",
            labels=hlbl,
        )
        for informer in informers:
            name = informer.name
            health = informer.health()
            stats = informer.reflector.stats
            synced.add_metric([name], 1.0 if health.synced else 0.0)
            healthy.add_metric([name], 1.0 if health.healthy else 0.0)
            watching.add_metric([name], 1.0 if health.watching else 0.0)
            objects.add_metric([name], float(len(informer.get_indexer())))
            depth.add_metric([name], float(informer.queue_depth))
            if health.seconds_since_last_event is not None:
                age.add_metric([name], health.seconds_since_last_event)
            _add_counts(lists, name, stats.lists)
            list_failures.add_metric([name], float(stats.list_failures))
            _add_counts(checks, name, stats.progress_checks)
            attempts.add_metric([name], float(stats.watch_attempts))
            _add_counts(restarts, name, stats.watch_restarts)
            _add_counts(received, name, stats.events)
            _add_counts(applied, name, informer.applied)
            stale.add_metric([name], float(informer.stale_events_dropped))
            transform_errors.add_metric([name], float(informer.transform_errors))
            for registration in informer.handlers():
                listener = registration._listener
                labels = [name, listener.name]
                backlog.add_metric(labels, float(listener.backlog))
                delivered.add_metric(labels, float(listener.delivered))
                errors.add_metric(labels, float(listener.errors))
                hist = listener.durations
                durations.add_metric(labels, hist.cumulative(), sum_value=hist.sum)
        yield from (
            synced, healthy, watching, objects, depth, age, lists, list_failures, checks,
            attempts, restarts, received, applied, stale, transform_errors, backlog, delivered,
            errors, durations,
        )  # fmt: skip


def _add_counts(family: CounterMetricFamily, informer: str, counts: dict[str, int]) -> None:
    """One sample per key of ``counts`` (a copy is read: its writer does not lock)."""
    for label, n in sorted(dict(counts).items()):
        family.add_metric([informer, label], float(n))


_collectors: weakref.WeakKeyDictionary[CollectorRegistry, InformerCollector] = (
    weakref.WeakKeyDictionary()
)
_collectors_lock = threading.Lock()


def _collector_for(registry: CollectorRegistry | None) -> InformerCollector:
    registry = REGISTRY if registry is None else registry
    with _collectors_lock:
        collector = _collectors.get(registry)
        if collector is None:
            collector = InformerCollector()
            registry.register(collector)
            _collectors[registry] = collector
        return collector


def register_informer(informer: MeasuredInformer, registry: CollectorRegistry | None) -> None:
    """Export ``informer``'s metrics on ``registry`` (the default registry when None)."""
    _collector_for(registry).add(informer)


def unregister_informer(informer: MeasuredInformer, registry: CollectorRegistry | None) -> None:
    """Drop ``informer``'s series (called when it stops)."""
    _collector_for(registry).remove(informer)
