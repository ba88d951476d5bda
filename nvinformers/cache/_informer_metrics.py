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

from prometheus_client import CollectorRegistry
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from nvinformers.workqueue._metrics import registered_collector

if TYPE_CHECKING:
    from nvinformers.cache._processor import ResourceEventHandlerRegistration
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


class InformerCollector(Collector):
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
        synced = _gauge("synced", "1 once the first list is cached.")
        healthy = _gauge("healthy", "1 while the cache is being kept current.")
        watching = _gauge("watching", "1 while a watch is open.")
        objects = _gauge("store_objects", "Objects in the cache.")
        depth = _gauge("queue_depth", "Deltas received but not yet applied.")
        age = _gauge(
            "seconds_since_last_event",
            "Seconds since the last watch event or bookmark, list, or current progress check.",
        )
        lists = _counter("lists", "Lists by reason.", "reason")
        list_failures = _counter("list_failures", "Failed lists.")
        checks = _counter(
            "progress_checks",
            "Relists of a silent watch by result: current (an idle server), stale (a frozen "
            "stream, the cache repaired), failed.",
            "result",
        )
        attempts = _counter("watch_attempts", "Watch streams opened.")
        restarts = _counter("watch_restarts", "Ended watches by reason.", "reason")
        received = _counter("events_received", "Watch events by type.", "type")
        applied = _counter("events_applied", "Store changes by type.", "type")
        stale = _counter("stale_events_dropped", "Events older than the cached object, dropped.")
        transform_errors = _counter("transform_errors", "Transform calls that raised.")
        backlog = _gauge("handler_backlog", "Notifications waiting for a handler.", "handler")
        delivered = _counter("handler_notifications", "Notifications delivered.", "handler")
        errors = _counter("handler_errors", "Notifications a handler raised on.", "handler")
        durations = HistogramMetricFamily(
            _PREFIX + "handler_duration_seconds",
            "Seconds spent in a handler per notification.",
            labels=["informer", "handler"],
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
                durations.add_metric(labels, hist.cumulative(), sum_value=hist.total)
        yield from (
            synced, healthy, watching, objects, depth, age, lists, list_failures, checks,
            attempts, restarts, received, applied, stale, transform_errors, backlog, delivered,
            errors, durations,
        )  # fmt: skip


def _gauge(name: str, documentation: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(_PREFIX + name, documentation, labels=["informer", *labels])


def _counter(name: str, documentation: str, *labels: str) -> CounterMetricFamily:
    return CounterMetricFamily(_PREFIX + name, documentation, labels=["informer", *labels])


def _add_counts(family: CounterMetricFamily, informer: str, counts: dict[str, int]) -> None:
    """One sample per key of ``counts`` (a copy is read: its writer does not lock)."""
    for label, n in sorted(dict(counts).items()):
        family.add_metric([informer, label], float(n))


def register_informer(informer: MeasuredInformer, registry: CollectorRegistry | None) -> None:
    """Export ``informer``'s metrics on ``registry`` (the default registry when None)."""
    registered_collector(InformerCollector, registry, "nvinformers_informer_*").add(informer)


def unregister_informer(informer: MeasuredInformer, registry: CollectorRegistry | None) -> None:
    """Drop ``informer``'s series (called when it stops)."""
    registered_collector(InformerCollector, registry, "nvinformers_informer_*").remove(informer)
