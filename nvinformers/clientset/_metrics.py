"""Prometheus metrics of the clientset.

=============================================================  =========  ==================
metric                                                         type       labels
=============================================================  =========  ==================
``nvinformers_client_requests_total``                          counter    ``method``, ``code``
``nvinformers_client_request_duration_seconds``                histogram  ``method``
``nvinformers_client_stream_messages_received_total``          counter    ``method``
=============================================================  =========  ==================

``method`` is the RPC's short name (``GetGpu``, ``ListGpus``, ``WatchGpus``) and ``code`` the gRPC
status code name (``OK``, ``NOT_FOUND``), so both label sets are bounded. Unary calls are counted
and timed by the metrics interceptor. For a watch stream the interceptor times only the stream's
establishment; the watch adapter counts every message it receives and, when the watch ends, its
final code in ``requests_total`` (a stream's status only exists at its end).

The metrics are one collector per registry, shared by every clientset using that registry
(registering the same names twice in one registry would raise). Tests pass a fresh
``CollectorRegistry`` through ``Config(metrics_registry=...)``.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import Metric
from prometheus_client.registry import Collector

from nvinformers.workqueue._metrics import registered_collector

__all__ = ["ClientMetrics", "client_metrics", "short_method"]

#: Local RPCs answer in well under a millisecond; large lists and slow servers take seconds.
_DURATION_BUCKETS = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
)


def short_method(full_method: str) -> str:
    """``/pkg.Service/Method`` → ``Method`` (the bounded ``method`` label)."""
    return full_method.rpartition("/")[2] or full_method


class ClientMetrics(Collector):
    """The clientset's metrics, registered on a registry as one collector (all names or none).

    Thread-safety: prometheus_client collectors are thread-safe; so is this class.
    """

    def __init__(self) -> None:
        self.requests = Counter(
            "nvinformers_client_requests",
            "gRPC requests to the Device API by method and final status code "
            "(watch streams are counted when they end).",
            ["method", "code"],
            registry=None,
        )
        self.duration = Histogram(
            "nvinformers_client_request_duration_seconds",
            "Duration of unary gRPC requests, and of watch stream establishment, in seconds.",
            ["method"],
            buckets=_DURATION_BUCKETS,
            registry=None,
        )
        self.stream_messages = Counter(
            "nvinformers_client_stream_messages_received",
            "Messages received on gRPC watch streams.",
            ["method"],
            registry=None,
        )
        self._parts = (self.requests, self.duration, self.stream_messages)

    def describe(self) -> Iterable[Metric]:
        # Lets the registry detect a clash with other collectors' names at register() time.
        return [metric for part in self._parts for metric in part.describe()]

    def collect(self) -> Iterable[Metric]:
        return [metric for part in self._parts for metric in part.collect()]


def client_metrics(registry: CollectorRegistry | None = None) -> ClientMetrics:
    """The clientset metrics registered in ``registry`` (None: the global default registry).

    The first call for a registry registers the collector; later calls return the same object.

    Raises:
        ValueError: another component already registered metrics of the same names in this
            registry (prometheus_client's duplicate-timeseries error, in the message).
    """
    return registered_collector(ClientMetrics, registry, "nvinformers_client_*")
