"""streaming-daemon: an event-driven node agent built on a shared GPU informer.

The Python peer of the Go SDK's ``watch`` example, made production-shaped:

* a user unary interceptor that stamps every call with ``x-request-id`` metadata, and a user
  stream interceptor that logs each long-lived watch it opens (the SDK's latency-logging
  interceptor stays first in the chain);
* a shared informer (list, then watch, reconnect, relist with tombstones) whose handler logs every
  GPU ``Ready`` transition — no reconnection code in the example at all;
* the controller ``Manager`` serving ``/metrics`` (client RPCs, informer, handler backlog),
  ``/healthz`` and ``/readyz`` (Kubernetes' text form, ``?format=json`` for JSON) on 127.0.0.1 —
  the same endpoints every nvinformers agent serves, not a format of its own;
* graceful shutdown on SIGTERM / SIGINT at any moment, also during start-up
  (:class:`nvinformers.signals.SignalStop`): every thread joined, the socket closed, exit 0.

Run it against the fake server::

    nvinformers fake-server --socket /tmp/nvdapi.sock &
    NVIDIA_DEVICE_API_TARGET=unix:///tmp/nvdapi.sock python streaming_daemon.py --metrics-port 9400
"""

from __future__ import annotations

import argparse
import logging
import sys
import threading
import uuid
from collections.abc import Callable
from typing import Any

import grpc

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import DeletedFinalStateUnknown, ResourceEventHandlerFuncs
from nvinformers.clientset import Config, new_for_config
from nvinformers.controller import Manager
from nvinformers.informers import SharedInformerFactory
from nvinformers.signals import SignalStop

log = logging.getLogger("streaming-daemon")


class _CallDetails(grpc.ClientCallDetails):
    """Call details with extra metadata (grpc's ClientCallDetails is an abstract record)."""

    def __init__(
        self, details: grpc.ClientCallDetails, metadata: list[tuple[str, str | bytes]]
    ) -> None:
        self.method = details.method
        self.timeout = details.timeout
        self.metadata = tuple(metadata)
        self.credentials = details.credentials
        self.wait_for_ready = details.wait_for_ready
        self.compression = details.compression


class RequestIDInterceptor(grpc.UnaryUnaryClientInterceptor):
    """Adds ``x-request-id`` to every unary call (the seed's ``nv-trace-…`` header)."""

    def intercept_unary_unary(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        metadata = list(details.metadata or ())
        metadata.append(("x-request-id", f"nv-trace-{uuid.uuid4().hex[:12]}"))
        return continuation(_CallDetails(details, metadata), request)


class WatchLoggingInterceptor(grpc.UnaryStreamClientInterceptor):
    """Logs every long-lived watch stream the informer opens."""

    def intercept_unary_stream(
        self, continuation: Callable[..., Any], details: grpc.ClientCallDetails, request: Any
    ) -> Any:
        log.info("starting long-lived watch stream method=%s", details.method)
        return continuation(details, request)


def _ready(gpu: GPU) -> bool:
    return meta.is_status_condition_true(gpu.status.conditions, "Ready")


def _log_add(gpu: GPU) -> None:
    log.info(
        "gpu discovered name=%s uuid=%s ready=%s", gpu.metadata.name, gpu.spec.uuid, _ready(gpu)
    )


def _log_update(old: GPU, new: GPU) -> None:
    if _ready(old) != _ready(new):
        condition = meta.find_status_condition(new.status.conditions, "Ready")
        log.info(
            "gpu status changed name=%s uuid=%s ready=%s reason=%s resource_version=%s",
            new.metadata.name,
            new.spec.uuid,
            _ready(new),
            condition.reason if condition else "",
            new.metadata.resource_version,
        )


def _log_delete(obj: GPU | DeletedFinalStateUnknown[GPU]) -> None:
    if isinstance(obj, DeletedFinalStateUnknown):
        log.info("gpu removed (noticed on relist) name=%s", obj.key)
    else:
        log.info("gpu removed name=%s", obj.metadata.name)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--target", help="Device API target (default: $NVIDIA_DEVICE_API_TARGET)")
    parser.add_argument("--metrics-port", type=int, default=9400, help="0 = pick a free port")
    parser.add_argument("--resync", type=float, default=0.0, help="handler resync period, s")
    parser.add_argument("-v", "--verbose", action="store_true")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )

    # From here on a SIGTERM stops cleanly at any moment, also while the cache syncs (before
    # manager.run() takes over the signals, and after it gives them back).
    with SignalStop() as signals:
        return run(args, signals.event)


def run(args: argparse.Namespace, stop: threading.Event) -> int:
    """Serve until ``stop`` is set; returns the exit code (0 after a graceful stop)."""
    config = Config(
        target=args.target,
        unary_interceptors=(RequestIDInterceptor(),),
        stream_interceptors=(WatchLoggingInterceptor(),),
    )
    with new_for_config(config) as clientset:
        factory = SharedInformerFactory(clientset, args.resync)
        gpus = factory.device().v1alpha1().gpus()
        gpus.informer().add_event_handler(
            ResourceEventHandlerFuncs(
                on_add=_log_add, on_update=_log_update, on_delete=_log_delete
            ),
            name="ready-logger",
        )
        # /healthz: every informer healthy (synced, a working watch, not frozen); /readyz:
        # synced; /metrics: the global registry the clientset and the factory record into.
        manager = Manager(port=args.metrics_port)
        manager.add_informer_factory(factory)
        manager.start()
        log.info("metrics and health on %s (/metrics, /healthz, /readyz)", manager.url)
        log.info("target=%s; waiting for the GPU cache to sync", clientset.target)
        if all(factory.wait_for_cache_sync(stop).values()):
            log.info("cache synced: %d GPUs; watching for changes", len(gpus.lister().list()))
        elif not stop.is_set():
            log.error("cache did not sync")
        manager.run(stop)  # blocks until SIGTERM / SIGINT, then stops informers and server
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
