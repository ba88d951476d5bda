"""The ops HTTP server: ``/healthz``, ``/readyz`` and ``/metrics`` (stdlib ``http.server``).

It answers ``GET`` (and ``HEAD`` for the checks):

``/metrics``
    the Prometheus exposition of a registry, by prometheus_client's own handler
    (``MetricsHandler``: content negotiation, OpenMetrics when the scraper asks for it, gzip,
    ``name[]`` filters). Like prometheus_client's own server, it answers ``GET`` only.
``/healthz``, ``/readyz``, ``/healthz/<check>``, ``/readyz/<check>``
    the results of a check function per kind, rendered by
    :func:`nvinformers.controller._healthz.respond`.

One thread serves (``nvinformers-manager-http``), one thread per request handles
(``nvinformers-manager-http-request``); all are joined on :meth:`OpsServer.stop`, and the serving
loop stops at once (a wake-up pipe instead of ``serve_forever``'s 0.5 s poll). Idle connections
are dropped after 10 s.

Security: it exposes metrics and health only, no mutation; the :class:`~nvinformers.controller.
Manager` binds it to 127.0.0.1 unless told otherwise.
"""

from __future__ import annotations

import logging
import os
import selectors
import socket
import socketserver
import threading
import time
from collections.abc import Callable, Mapping
from http.server import ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry
from prometheus_client.exposition import MetricsHandler

from nvinformers.controller._healthz import CheckResult, respond

__all__ = ["OpsServer"]

log = logging.getLogger("nvinformers.controller")

#: Seconds a request's socket may stay idle before the server drops it.
_REQUEST_TIMEOUT = 10.0

#: ``kind`` (``healthz``, ``readyz``) -> the function that runs that kind's checks.
CheckRunners = Mapping[str, Callable[[], list[CheckResult]]]


class OpsServer(ThreadingHTTPServer):
    """The ops server (see the module docstring); serves on ``nvinformers-manager-http``.

    Args:
        host: the address to bind (an IPv6 address binds IPv6).
        port: the port; 0 picks a free one (see :attr:`port`).
        registry: what ``/metrics`` serves.
        checks: the check runners by kind.

    Raises:
        OSError: the address cannot be bound.
    """

    def __init__(
        self, host: str, port: int, registry: CollectorRegistry, checks: CheckRunners
    ) -> None:
        self.host = host
        self.checks = checks
        self._threads_lock = threading.Lock()
        self._request_threads: set[threading.Thread] = set()  # guarded by _threads_lock
        self._closing = False
        self._wake_r, self._wake_w = os.pipe()
        if ":" in host:
            self.address_family = socket.AF_INET6
        # prometheus_client's handler reads the registry from its class.
        handler = type("_OpsRequestHandler", (_OpsRequestHandler,), {"registry": registry})
        try:
            super().__init__((host, port), handler)
        except BaseException:
            os.close(self._wake_r)
            os.close(self._wake_w)
            raise
        self.port: int = self.server_address[1]
        self._thread = threading.Thread(
            target=self._serve, name="nvinformers-manager-http", daemon=True
        )

    @property
    def url(self) -> str:
        """``http://host:port``."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> None:
        """Start serving. Does not block."""
        self._thread.start()

    def stop(self, timeout: float) -> bool:
        """Stop serving and join every thread, within ``timeout``; True if all ended."""
        deadline = time.monotonic() + timeout
        self._closing = True
        os.write(self._wake_w, b"x")
        self._thread.join(timeout)
        self.server_close()
        os.close(self._wake_r)
        os.close(self._wake_w)
        with self._threads_lock:
            threads = [*self._request_threads, self._thread]
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN (a DNS lookup that can hang on
        # machines without DNS); the name is only used for CGI, so skip it.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name = str(host)
        self.server_port = int(port)

    def _serve(self) -> None:
        # serve_forever() polls for shutdown every 0.5 s; the wake-up pipe stops it at once.
        with selectors.DefaultSelector() as selector:
            selector.register(self.socket, selectors.EVENT_READ)
            selector.register(self._wake_r, selectors.EVENT_READ)
            while True:
                events = selector.select()
                if self._closing:
                    return
                for key, _ in events:
                    if key.fileobj is self.socket:
                        self.handle_request()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._process_request_tracked,
            args=(request, client_address),
            name="nvinformers-manager-http-request",
            daemon=True,
        )
        with self._threads_lock:
            self._request_threads.add(thread)
        thread.start()

    def _process_request_tracked(self, request: Any, client_address: Any) -> None:
        try:
            self.process_request_thread(request, client_address)
        finally:
            with self._threads_lock:
                self._request_threads.discard(threading.current_thread())

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("manager: error while serving an ops request from %s", client_address)


class _OpsRequestHandler(MetricsHandler):
    server: OpsServer
    timeout = _REQUEST_TIMEOUT
    server_version = "nvinformers-manager"

    def do_GET(self) -> None:  # noqa: N802 - http.server names it
        if self.path.partition("?")[0].rstrip("/") == "/metrics":
            super().do_GET()  # prometheus_client's exposition
            return
        self._serve(head=False)

    def do_HEAD(self) -> None:  # noqa: N802 - http.server names it
        self._serve(head=True)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("manager: ops request from %s: " + format, self.client_address[0], *args)

    def _serve(self, *, head: bool) -> None:
        path, _, query = self.path.partition("?")
        path = path.rstrip("/") or "/"
        for kind, run in self.server.checks.items():
            prefix = f"/{kind}"
            if path == prefix or path.startswith(prefix + "/"):
                only = path[len(prefix) + 1 :]
                accept = self.headers.get("Accept", "")
                self._send(*respond(kind, run(), only, accept, query), head=head)
                return
        if path == "/metrics":
            self._send(405, "text/plain; charset=utf-8", b"/metrics answers GET only\n", head)
            return
        paths = ", ".join(f"/{kind}" for kind in self.server.checks)
        self._send(
            404, "text/plain; charset=utf-8", f"not found: try {paths}, /metrics\n".encode(), head
        )

    def _send(self, status: int, content_type: str, body: bytes, head: bool) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        if not head:
            self.wfile.write(body)
