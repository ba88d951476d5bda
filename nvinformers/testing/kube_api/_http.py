"""HTTP/1.1 for the fake Kubernetes API server: the listening socket, one named thread per
connection, request bodies, responses and chunked writes; and routing: which endpoint a path
names, which verb a method means, which representation the client accepts.

:class:`HTTPServer` hands every request to an :class:`App` (the fake server) and tracks its
connection threads so that :meth:`HTTPServer.close` can shut every connection down and join
every thread. Paths served (:func:`route`)::

    /version  /healthz  /livez  /readyz (and their /<check> sub-paths)
    /api  /api/v1  /apis
    /api/v1/<plural>[/<name>[/<sub>]]                        cluster-scoped, or all namespaces
    /api/v1/namespaces/<ns>/<plural>[/<name>[/<sub>]]        namespaced

``/api/v1/namespaces/<name>[/status]`` is the Namespace object itself (namespaces are a
cluster-scoped resource whose path looks like a namespace prefix).

Threads: ``nvinformers-kube-api-serve`` accepts connections; each connection is served by its own
``nvinformers-kube-api-conn-<n>`` thread (a watch holds one for its lifetime). The routing
functions are pure.
"""

from __future__ import annotations

import contextlib
import itertools
import logging
import socket
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, Final, Protocol
from urllib.parse import parse_qs, urlsplit

from nvinformers.testing.kube_api._errors import FakeKubeAPIError, path_not_found
from nvinformers.testing.kube_api._resources import RESOURCES, Resource

__all__ = [
    "App",
    "Handler",
    "HTTPServer",
    "JSON",
    "Route",
    "route",
    "verb_for",
    "parse_accept",
    "MediaRange",
    "HEALTH_PATHS",
]

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

    def _dispatch(self) -> None:
        self.server.app.handle(self, self.command)

    # http.server looks up do_<METHOD>; every method goes to the app.
    do_GET = do_POST = do_PUT = do_PATCH = do_DELETE = _dispatch  # noqa: N815

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


HEALTH_PATHS: Final = ("/healthz", "/livez", "/readyz")
_SIMPLE: Final = frozenset({"/version", "/api", "/api/v1", "/apis", *HEALTH_PATHS})

#: One ``Accept`` entry: the media type and its parameters (``as``, ``g``, ``v``...).
MediaRange = tuple[str, dict[str, str]]


@dataclass(frozen=True, slots=True)
class Route:
    """What a request names. ``endpoint`` is the path for the fixed endpoints (``/api``,
    ``/healthz``...) and ``"resource"`` for an object or collection."""

    endpoint: str
    path: str
    query: Mapping[str, str]
    resource: Resource | None = None
    namespace: str = ""
    name: str = ""
    subresource: str = ""


def route(raw_path: str) -> Route:
    """Parse a request target.

    Raises:
        FakeKubeAPIError: 404 for a path the fake does not serve.
    """
    split = urlsplit(raw_path)
    path = split.path.rstrip("/") or "/"
    query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
    if path in _SIMPLE:
        return Route(path, path, query)
    head, _, check = path.rpartition("/")
    if head in HEALTH_PATHS and check:
        return Route(head, path, query)
    parts = path.split("/")[1:]
    if parts[:2] != ["api", "v1"] or len(parts) < 3:
        raise path_not_found()
    segments = parts[2:]
    namespace = ""
    if (
        segments[0] == "namespaces"
        and len(segments) >= 3
        and segments[2] in RESOURCES
        and RESOURCES[segments[2]].namespaced
    ):
        namespace, segments = segments[1], segments[2:]
    if len(segments) > 3 or not all(segments):
        raise path_not_found()
    res = RESOURCES.get(segments[0])
    name = segments[1] if len(segments) > 1 else ""
    sub = segments[2] if len(segments) > 2 else ""
    if res is None or (sub and sub not in res.subresources):
        raise path_not_found()
    if res.namespaced and name and not namespace:
        raise path_not_found()
    return Route("resource", path, query, res, namespace, name, sub)


def verb_for(method: str, rt: Route) -> str:
    """The Kubernetes verb of ``method`` on ``rt``.

    Raises:
        FakeKubeAPIError: 405 for a method the endpoint does not take.
    """
    verb = ""
    if method == "GET":
        if rt.name:
            verb = "get"
        else:
            watch = rt.query.get("watch")
            verb = "watch" if watch is not None and watch.lower() in ("true", "1") else "list"
    elif method == "POST":
        verb = "" if rt.name else "create"
    elif rt.name:
        verb = {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")
    if verb == "" or (rt.subresource and verb not in ("get", "update", "patch")):
        raise FakeKubeAPIError(
            405,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        )
    return verb


def parse_accept(header: str | None) -> list[MediaRange]:
    """The entries of an ``Accept`` header, most preferred first (``q`` respected, ``q=0``
    dropped, ties in the order given). No header: ``application/json``."""
    entries: list[tuple[float, int, MediaRange]] = []
    for position, part in enumerate((header or "application/json").split(",")):
        media, *raw_params = (p.strip() for p in part.split(";"))
        params: dict[str, str] = {}
        for raw in raw_params:
            key, _, value = raw.partition("=")
            params[key.strip()] = value.strip().strip('"')
        try:
            quality = float(params.pop("q", "1"))
        except ValueError:
            quality = 1.0
        if media and quality > 0:
            entries.append((-quality, position, (media.lower(), params)))
    return [entry for _, _, entry in sorted(entries)]
