"""HTTP/1.1 plumbing of the fake Kubernetes API server: the listening socket, one named thread
per connection, request bodies, responses and chunked writes.

:class:`HTTPServer` hands every request to an :class:`App` (the fake server) and tracks its
connection threads so that :meth:`HTTPServer.close` can shut every connection down and join
every thread.

Threads: ``nvinformers-kube-api-serve`` accepts connections; each connection is served by its own
``nvinformers-kube-api-conn-<n>`` thread (a watch holds one for its lifetime).
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol

__all__ = ["App", "Handler", "HTTPServer", "JSON"]

log = logging.getLogger("nvinformers.testing.kube_api")

JSON: Final = "application/json"


class App(Protocol):
    """What serves the requests."""

    def handle(self, handler: Handler, method: str) -> None: ...


class Handler(BaseHTTPRequestHandler):
    """One connection's request handler: dispatches every method to the app."""

    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: HTTPServer

    def do_GET(self) -> None:
        self.server.app.handle(self, "GET")

    def do_POST(self) -> None:
        self.server.app.handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.app.handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.app.handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.app.handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube-api: " + format, *args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(self, code: int, body: bytes, content_type: str = JSON) -> None:
        self.send_response(code)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def start_stream(self, content_type: str = JSON) -> None:
        """Send the headers of a chunked response; the connection closes after it (one watch
        per connection, as clients use them)."""
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.close_connection = True

    def write_chunk(self, data: bytes) -> None:
        """Write one chunk (``b""`` ends the response). Raises OSError if the client left."""
        self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))


class HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose connection threads are named, tracked and joined."""

    daemon_threads = True
    block_on_close = False  # close() joins the threads itself
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: App) -> None:
        self.app = app
        self._conn_lock = threading.Lock()
        self._connections: dict[Any, threading.Thread] = {}  # guarded by _conn_lock
        self._conn_ids = itertools.count(1)
        super().__init__(address, Handler)
        self._serve_thread = threading.Thread(
            target=self.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="nvinformers-kube-api-serve",
            daemon=True,
        )

    def start(self) -> None:
        self._serve_thread.start()

    def process_request(self, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=self._serve_connection,
            args=(request, client_address),
            name=f"nvinformers-kube-api-conn-{next(self._conn_ids)}",
            daemon=True,
        )
        with self._conn_lock:
            self._connections[request] = thread
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.debug("kube-api: connection from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            with self._conn_lock:
                self._connections.pop(request, None)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("kube-api: error serving %s", client_address, exc_info=True)

    def close(self) -> None:
        """Stop accepting, shut every connection down and join every thread (blocks until
        the connection threads return; streams must have been told to end first)."""
        self.shutdown()
        self._serve_thread.join()
        with self._conn_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()
        self.server_close()
