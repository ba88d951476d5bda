"""streaming-daemon: an event-driven node agent built on a shared GPU informer.

The Python peer of the Go SDK's ``watch`` example, made production-shaped:

* a user unary interceptor that stamps every call with ``x-request-id`` metadata, and a user
  stream interceptor that logs each long-lived watch it opens (the SDK's latency-logging
  interceptor stays first in the chain);
* a shared informer (list, then watch, reconnect, relist with tombstones) whose handler logs every
  GPU ``Ready`` transition — no reconnection code in the example at all;
* Prometheus metrics (client RPCs, informer, handler backlog) and a health check on 127.0.0.1;
* graceful shutdown on SIGTERM / SIGINT: every thread joined, the socket closed.

Run it against the fake server::

    nvinformers fake-server --socket /tmp/nvdapi.sock &
    NVIDIA_DEVICE_API_TARGET=unix:///tmp/nvdapi.sock python streaming_daemon.py --metrics-port 9400
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
import threading
import uuid
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import grpc
from prometheus_client import REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import DeletedFinalStateUnknown, ResourceEventHandlerFuncs
from nvinformers.clientset import Config, new_for_config
from nvinformers.informers import SharedInformerFactory

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


class OpsServer:
    """``/metrics`` and ``/healthz`` on 127.0.0.1 (port 0 picks a free one)."""

    def __init__(
        self, port: int, health: Callable[[], dict[str, Any]], registry: CollectorRegistry
    ):
        registry_ = registry

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    body, ctype, code = generate_latest(registry_), CONTENT_TYPE_LATEST, 200
                elif self.path == "/healthz":
                    report = health()
                    body = json.dumps(report).encode()
                    ctype, code = "application/json", 200 if report["healthy"] else 503
                else:
                    body, ctype, code = b"not found\n", "text/plain", 404
                self.send_response(code)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.httpd.server_address[1]
        self.thread = threading.Thread(
            target=self.httpd.serve_forever, name="streaming-daemon-ops", daemon=True
        )

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join()


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

    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        log.info("received shutdown signal, stopping")
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)

    config = Config(
        target=args.target,
        unary_interceptors=(RequestIDInterceptor(),),
        stream_interceptors=(WatchLoggingInterceptor(),),
    )
    with new_for_config(config) as clientset:
        factory = SharedInformerFactory(clientset, args.resync)
        gpus = factory.device().v1alpha1().gpus()
        informer = gpus.informer()
        informer.add_event_handler(
            ResourceEventHandlerFuncs(
                on_add=_log_add, on_update=_log_update, on_delete=_log_delete
            ),
            name="ready-logger",
        )

        def health() -> dict[str, Any]:
            h = informer.health()
            return {"healthy": h.healthy, "reason": h.reason, "synced": h.synced}

        ops = OpsServer(args.metrics_port, health, REGISTRY)
        ops.start()
        log.info("metrics and health on http://127.0.0.1:%d (/metrics, /healthz)", ops.port)
        factory.start(stop)
        log.info("target=%s; waiting for the GPU cache to sync", clientset.target)
        if not all(factory.wait_for_cache_sync(stop).values()):
            log.error("cache did not sync before shutdown")
        else:
            log.info("cache synced: %d GPUs; watching for changes", len(gpus.lister().list()))
        stop.wait()
        factory.shutdown()
        ops.stop()
    log.info("stopped cleanly")
    return 0


if __name__ == "__main__":
    sys.exit(main())
