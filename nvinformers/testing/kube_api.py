"""A local Kubernetes API server for tests: real HTTP/1.1 on loopback, the list/watch protocol.

:class:`FakeKubeAPIServer` serves Nodes (cluster-scoped) and Pods (namespaced) the way the
Kubernetes API server does, so the official ``kubernetes`` client, its ``SharedInformer`` and
:mod:`nvinformers.kube` informers all run against it unchanged::

    with FakeKubeAPIServer() as server:
        server.add_node("node-1", labels={"gpu": "true"}, conditions={"Ready": "True"})
        api = kubernetes.client.ApiClient(server.configuration())
        informer = new_node_informer(api)
        ...
        server.end_watches()            # every watch ends cleanly; clients re-watch
        api.close()

What it implements:

* Routes: ``/api/v1/nodes[/{name}[/status]]``, ``/api/v1/pods`` and
  ``/api/v1/namespaces/{ns}/pods[/{name}[/status]]``; verbs list, watch, get, create (POST),
  update (PUT), patch (PATCH: ``application/merge-patch+json``, and
  ``application/strategic-merge-patch+json`` treated as a merge patch that merges
  ``status.conditions`` and ``status.addresses`` by ``type`` and ``spec.containers`` by
  ``name``), delete. The ``status`` subresource changes only ``status``; the main resource keeps
  the stored ``status`` (the Node and Pod strategies' rule).
* One global integer ``resourceVersion``: every write bumps it by one and appends one change to
  a bounded history (``history_limit``; at twice that it is trimmed back). A write that changes
  nothing writes nothing. ``metadata.resourceVersion`` in a PUT or PATCH body is a precondition
  (409 Conflict when stale).
* Lists: ``{"kind": "NodeList", "apiVersion": "v1", "metadata": {"resourceVersion": ...},
  "items": [...]}``, items without ``kind`` / ``apiVersion`` as the API server sends them; label
  selectors (:mod:`nvinformers.labels`) and equality field selectors (``metadata.name``,
  ``metadata.namespace``, and for Pods ``spec.nodeName`` and ``status.phase``). Every list
  serves the latest state (a deliberate simplification: an ``Exact`` list of an older revision is
  not reconstructed; it is 410 once compacted).
* Watches: chunked transfer encoding, one JSON event per line. From ``""`` / ``"0"`` (or with
  ``sendInitialEvents=true``): an ADDED burst of the current state, sorted by key; with
  ``sendInitialEvents`` (which requires ``resourceVersionMatch=NotOlderThan``) then a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``. From a revision: the history after it, then
  live changes, with no gap between the two. A revision older than the compacted history gets
  an in-stream ``ERROR`` event carrying a 410 ``Status`` and the stream ends, as the API server
  does. DELETED carries the last state with the deletion's revision. Selectors follow the watch
  cache: an object that stops matching arrives as DELETED, one that starts matching as ADDED.
  ``timeoutSeconds`` ends the stream cleanly. BOOKMARKs (when ``allowWatchBookmarks=true``) on
  :meth:`FakeKubeAPIServer.send_bookmarks` and every ``bookmark_interval`` seconds; they are
  queued in order with the events, so a bookmark never overtakes an event it covers.
* Errors are ``Status`` objects with the API server's codes and reasons (404 NotFound,
  409 AlreadyExists / Conflict, 400 BadRequest, 415, 422 Invalid, 410 Expired).

Fault injection and inspection (thread-safe, usable while clients are connected):
:meth:`~FakeKubeAPIServer.end_watches`, :meth:`~FakeKubeAPIServer.drop_next_events`,
:meth:`~FakeKubeAPIServer.compact`, :meth:`~FakeKubeAPIServer.fail_next`,
:meth:`~FakeKubeAPIServer.hold_watch_requests` (park new watch requests, e.g. to change and
compact the history while a client's watch is down), :meth:`~FakeKubeAPIServer.pause_delivery`
/ :meth:`~FakeKubeAPIServer.resume_delivery` (queue events, then release them at wire speed),
request counters (:meth:`~FakeKubeAPIServer.request_count`) and a log of recent requests.

Threads: ``kube-api-serve`` accepts connections; each connection is served by its own
``kube-api-conn-<n>`` thread (a watch holds one for its lifetime). All are joined by
:meth:`~FakeKubeAPIServer.stop`, which first ends every watch and shuts every connection down.
No thread sleeps: watches wait on their own condition variable.
"""

from __future__ import annotations

import builtins
import contextlib
import itertools
import json
import logging
import re
import socket
import threading
import time
import uuid
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any, Final, Self
from urllib.parse import parse_qs, urlsplit

from nvinformers import labels

__all__ = [
    "FakeKubeAPIServer",
    "FakeKubeAPIError",
    "RequestRecord",
    "INITIAL_EVENTS_END_ANNOTATION",
]

log = logging.getLogger("nvinformers.testing.kube_api")

INITIAL_EVENTS_END_ANNOTATION: Final = "k8s.io/initial-events-end"

_JSON: Final = "application/json"
_MERGE_PATCH: Final = "application/merge-patch+json"
_STRATEGIC_PATCH: Final = "application/strategic-merge-patch+json"
#: Lines written per chunk at most when a watcher has a backlog.
_MAX_LINES_PER_CHUNK: Final = 512
_dumps: Final = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False).encode

_ROUTE: Final = re.compile(
    r"^/api/v1(?:/namespaces/(?P<ns>[^/]+))?/(?P<res>[a-z]+)"
    r"(?:/(?P<name>[^/]+)(?:/(?P<sub>[a-z]+))?)?/?$"
)

# strategic merge: list fields merged by a key instead of replaced.
_MERGE_KEYS: Final[Mapping[tuple[str, ...], str]] = {
    ("status", "conditions"): "type",
    ("status", "addresses"): "type",
    ("spec", "containers"): "name",
}


class FakeKubeAPIError(Exception):
    """A request the fake refuses: carries the HTTP code, reason and message of its Status."""

    def __init__(
        self, code: int, reason: str, message: str, *, name: str = "", kind: str = ""
    ) -> None:
        super().__init__(message)
        self.code = code
        self.reason = reason
        self.message = message
        self.name = name
        self.kind = kind

    def status(self) -> dict[str, Any]:
        """The error as a Kubernetes ``Status`` object."""
        out: dict[str, Any] = {
            "kind": "Status",
            "apiVersion": "v1",
            "metadata": {},
            "status": "Failure",
            "message": self.message,
            "reason": self.reason,
            "code": self.code,
        }
        if self.name or self.kind:
            out["details"] = {"name": self.name, "kind": self.kind}
        return out


def _bad_request(message: str) -> FakeKubeAPIError:
    return FakeKubeAPIError(400, "BadRequest", message)


def _invalid(message: str) -> FakeKubeAPIError:
    return FakeKubeAPIError(422, "Invalid", message)


@dataclass(frozen=True, slots=True)
class _Resource:
    plural: str
    kind: str
    namespaced: bool
    fields: tuple[str, ...]

    @property
    def list_kind(self) -> str:
        return f"{self.kind}List"

    def typemeta(self) -> bytes:
        return b'{"kind":"%s","apiVersion":"v1",' % self.kind.encode()


_RESOURCES: Final[Mapping[str, _Resource]] = {
    "nodes": _Resource("nodes", "Node", False, ("metadata.name",)),
    "pods": _Resource(
        "pods",
        "Pod",
        True,
        ("metadata.name", "metadata.namespace", "spec.nodeName", "status.phase"),
    ),
}


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server received (see :attr:`FakeKubeAPIServer.requests`)."""

    method: str
    path: str
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str
    query: Mapping[str, str]


# ------------------------------------------------------------------------------------ storage


def _now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _dig(obj: Mapping[str, Any], dotted: str) -> str:
    value: Any = obj
    for part in dotted.split("."):
        if not isinstance(value, Mapping):
            return ""
        value = value.get(part)
    return value if isinstance(value, str) else ""


class _Record:
    """The stored state of one object: its JSON without kind/apiVersion, and what filters read."""

    __slots__ = ("item", "labels", "fields", "rev")

    def __init__(self, item: bytes, lbls: dict[str, str], fields: dict[str, str], rev: int):
        self.item = item
        self.labels = lbls
        self.fields = fields
        self.rev = rev


class _Change:
    """One entry of the history. ``prev_*`` describe the state before (MODIFIED only)."""

    __slots__ = (
        "rev",
        "resource",
        "namespace",
        "type",
        "item",
        "labels",
        "fields",
        "prev_item",
        "prev_labels",
        "prev_fields",
        "_line",
    )

    def __init__(
        self,
        rev: int,
        resource: _Resource,
        namespace: str,
        etype: str,
        record: _Record,
        prev: _Record | None,
    ) -> None:
        self.rev = rev
        self.resource = resource
        self.namespace = namespace
        self.type = etype
        self.item = record.item
        self.labels = record.labels
        self.fields = record.fields
        self.prev_item = prev.item if prev is not None else None
        self.prev_labels = prev.labels if prev is not None else None
        self.prev_fields = prev.fields if prev is not None else None
        self._line: bytes | None = None

    def line(self) -> bytes:
        """The watch line of this change as it happened (shared by unfiltered watchers)."""
        line = self._line
        if line is None:
            line = _event_line(self.type, self.resource, self.item)
            self._line = line
        return line

    def vanished_line(self) -> bytes:
        """DELETED carrying the previous state at this change's revision (stopped matching)."""
        assert self.prev_item is not None
        prev = json.loads(self.prev_item)
        prev.setdefault("metadata", {})["resourceVersion"] = str(self.rev)
        return _event_line("DELETED", self.resource, _dumps(prev).encode())


def _load(raw: bytes) -> dict[str, Any]:
    """Decode a stored object (always a JSON object) into a new dict the caller owns."""
    obj = json.loads(raw)
    assert isinstance(obj, dict)
    return obj


def _full(resource: _Resource, item: bytes) -> bytes:
    """The object with kind and apiVersion (what GET and watch events carry)."""
    if item == b"{}":
        return resource.typemeta()[:-1] + b"}"
    return resource.typemeta() + item[1:]


def _event_line(etype: str, resource: _Resource, item: bytes) -> bytes:
    return b'{"type":"%s","object":%s}\n' % (etype.encode(), _full(resource, item))


_Filter = Callable[[Mapping[str, str], Mapping[str, str]], bool]


class _Watcher:
    """One open watch: a buffer of lines, filled by writers in revision order."""

    __slots__ = ("resource", "namespace", "filter", "bookmarks", "cond", "buffer", "ended")

    def __init__(
        self, resource: _Resource, namespace: str, filt: _Filter | None, bookmarks: bool
    ) -> None:
        self.resource = resource
        self.namespace = namespace
        self.filter = filt
        self.bookmarks = bookmarks
        self.cond = threading.Condition(threading.Lock())
        self.buffer: deque[bytes] = deque()  # guarded by cond
        self.ended: str | None = None  # guarded by cond: why the server ends this watch

    def line_for_locked(self, change: _Change) -> bytes | None:
        """The line this watcher gets for ``change`` (None: not for it). Storage lock held."""
        if change.resource is not self.resource:
            return None
        if self.namespace and change.namespace != self.namespace:
            return None
        filt = self.filter
        if filt is None:
            return change.line()
        now = filt(change.labels, change.fields)
        if change.type == "MODIFIED":
            assert change.prev_labels is not None
            assert change.prev_fields is not None
            before = filt(change.prev_labels, change.prev_fields)
            if now and before:
                return change.line()
            if now:
                return _event_line("ADDED", change.resource, change.item)
            if before:
                return change.vanished_line()
            return None
        return change.line() if now else None

    def push(self, line: bytes) -> None:
        with self.cond:
            self.buffer.append(line)
            self.cond.notify()

    def end(self, reason: str) -> None:
        with self.cond:
            if self.ended is None:
                self.ended = reason
            self.cond.notify()


def _merge(target: Any, patch: Any, path: tuple[str, ...], strategic: bool) -> Any:
    """RFC 7386 merge patch; with ``strategic``, keyed lists (``_MERGE_KEYS``) merge by key."""
    if not isinstance(patch, dict):
        return patch
    out: dict[str, Any] = dict(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if strategic and key.startswith("$"):
            continue  # strategic directives ($patch, $retainKeys...) are not modelled
        here = (*path, key)
        if value is None:
            out.pop(key, None)
        elif strategic and here in _MERGE_KEYS and isinstance(value, list):
            out[key] = _merge_keyed_list(out.get(key), value, _MERGE_KEYS[here])
        else:
            out[key] = _merge(out.get(key), value, here, strategic)
    return out


def _merge_keyed_list(current: Any, patch: list[Any], key: str) -> list[Any]:
    items: list[Any] = list(current) if isinstance(current, list) else []
    for entry in patch:
        if not isinstance(entry, dict) or key not in entry:
            raise _bad_request(f"strategic merge patch: list entries need the merge key {key!r}")
        position = next(
            (i for i, x in enumerate(items) if isinstance(x, dict) and x.get(key) == entry[key]),
            None,
        )
        if entry.get("$patch") == "delete":
            if position is not None:
                del items[position]
        elif position is None:
            items.append({k: v for k, v in entry.items() if not k.startswith("$")})
        else:
            items[position] = _merge(items[position], entry, (), True)
    return items


def _string_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    ):
        raise _invalid(f"{what} must be a map of strings to strings")
    return value


# -------------------------------------------------------------------------------- HTTP plumbing


class _HTTPServer(ThreadingHTTPServer):
    """A threading HTTP server whose connection threads are named, tracked and joined."""

    daemon_threads = True
    block_on_close = False  # FakeKubeAPIServer.stop joins the threads itself
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], app: FakeKubeAPIServer) -> None:
        self.app = app
        super().__init__(address, _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        self.app._start_connection(self, request, client_address)

    def serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except Exception:
            log.debug("kube-api: connection from %s failed", client_address, exc_info=True)
        finally:
            self.shutdown_request(request)
            self.app._connection_done(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.debug("kube-api: error serving %s", client_address, exc_info=True)


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True
    server: _HTTPServer

    def do_GET(self) -> None:
        self.server.app._handle(self, "GET")

    def do_POST(self) -> None:
        self.server.app._handle(self, "POST")

    def do_PUT(self) -> None:
        self.server.app._handle(self, "PUT")

    def do_PATCH(self) -> None:
        self.server.app._handle(self, "PATCH")

    def do_DELETE(self) -> None:
        self.server.app._handle(self, "DELETE")

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("kube-api: " + format, *args)

    def read_body(self) -> bytes:
        length = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(length) if length > 0 else b""

    def respond(self, code: int, body: bytes) -> None:
        self.send_response(code)
        self.send_header("Content-Type", _JSON)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def write_chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%b\r\n" % (len(data), data))


# ------------------------------------------------------------------------------------ the server


class FakeKubeAPIServer:
    """A Kubernetes API server for Nodes and Pods on ``127.0.0.1`` (see the module docstring).

    Args:
        host: the address to listen on.
        port: the port (0: an ephemeral port; read :attr:`url`).
        history_limit: changes retained for watches from a revision (at least; trimmed back to
            this when twice as many accumulate).
        bookmark_interval: seconds between periodic BOOKMARKs to watches that allow them
            (None: only on :meth:`send_bookmarks`).
        start: start serving immediately (otherwise call :meth:`start`).

    Thread-safety: every public method is thread-safe and may be called while clients are
    connected. Methods that return objects return fresh dicts the caller owns.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        history_limit: int = 10_000,
        bookmark_interval: float | None = None,
        start: bool = False,
    ) -> None:
        if history_limit < 1:
            raise ValueError(f"history_limit must be >= 1, got {history_limit}")
        if bookmark_interval is not None and bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0, got {bookmark_interval}")
        self._host = host
        self._port = port
        self._history_limit = history_limit
        self._bookmark_interval = bookmark_interval
        # Storage: one lock guards objects, revision, history, watchers and the fault knobs.
        self._lock = threading.Lock()
        self._cond = threading.Condition(self._lock)  # waits on counts (held/open watches)
        self._objects: dict[tuple[str, str, str], _Record] = {}  # (resource, ns, name)
        self._revision = 0
        self._compacted = 0  # history holds every change with rev > _compacted
        self._history: deque[_Change] = deque()
        self._watchers: list[_Watcher] = []
        self._drop_next = 0
        self._failures: dict[str, deque[tuple[int, str, str]]] = {}
        self._hold_watches = False
        self._held = 0
        self._paused = False
        self._counts: Counter[tuple[str, str]] = Counter()
        self.requests: deque[RequestRecord] = deque(maxlen=1000)
        # HTTP serving state.
        self._httpd: _HTTPServer | None = None
        self._serve_thread: threading.Thread | None = None
        self._conn_lock = threading.Lock()
        self._connections: dict[Any, threading.Thread] = {}  # guarded by _conn_lock
        self._conn_ids = itertools.count(1)
        self._stopping = False
        if start:
            self.start()

    # -------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving (idempotent). Returns self."""
        if self._httpd is not None:
            return self
        self._stopping = False
        httpd = _HTTPServer((self._host, self._port), self)
        self._httpd = httpd
        self._port = httpd.server_address[1]
        thread = threading.Thread(
            target=httpd.serve_forever,
            kwargs={"poll_interval": 0.05},
            name="kube-api-serve",
            daemon=True,
        )
        self._serve_thread = thread
        thread.start()
        return self

    def stop(self) -> None:
        """End every watch, close every connection and join every thread (idempotent)."""
        httpd = self._httpd
        if httpd is None:
            return
        with self._lock:
            self._stopping = True
            watchers = list(self._watchers)
            self._cond.notify_all()
        for watcher in watchers:
            watcher.end("stop")
        httpd.shutdown()
        if self._serve_thread is not None:
            self._serve_thread.join()
        with self._conn_lock:
            connections = list(self._connections.items())
        for sock, _ in connections:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        for _, thread in connections:
            thread.join()
        httpd.server_close()
        self._httpd = None
        self._serve_thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``."""
        return f"http://{self._host}:{self._port}"

    def configuration(self) -> Any:
        """A ``kubernetes.client.Configuration`` pointing at this server (no auth)."""
        from kubernetes.client import Configuration

        config = Configuration(host=self.url)
        config.verify_ssl = False
        return config

    def api_client(self) -> Any:
        """A new ``kubernetes.client.ApiClient`` for this server; the caller closes it."""
        from kubernetes.client import ApiClient

        return ApiClient(self.configuration())

    def _start_connection(self, httpd: _HTTPServer, request: Any, client_address: Any) -> None:
        thread = threading.Thread(
            target=httpd.serve_connection,
            args=(request, client_address),
            name=f"kube-api-conn-{next(self._conn_ids)}",
            daemon=True,
        )
        with self._conn_lock:
            self._connections[request] = thread
        thread.start()

    def _connection_done(self, request: Any) -> None:
        with self._conn_lock:
            self._connections.pop(request, None)

    # ------------------------------------------------------------------------- inspection

    @property
    def revision(self) -> int:
        """The current global revision."""
        with self._lock:
            return self._revision

    @property
    def compacted_revision(self) -> int:
        """Watches from a revision older than this get 410 Expired."""
        with self._lock:
            return self._compacted

    @property
    def watch_count(self) -> int:
        """Open watches (a watch whose client vanished counts until the server next writes)."""
        with self._lock:
            return len(self._watchers)

    def request_count(self, verb: str, resource: str | None = None) -> int:
        """How many ``verb`` requests (list, watch, get, create, update, patch, delete) arrived,
        for ``resource`` or for all resources."""
        with self._lock:
            if resource is not None:
                return self._counts[(verb, resource)]
            return sum(n for (v, _), n in self._counts.items() if v == verb)

    def last_request(self, verb: str, resource: str | None = None) -> RequestRecord | None:
        """The most recent request of ``verb`` (and ``resource``), or None."""
        with self._lock:
            for record in reversed(self.requests):
                if record.verb == verb and resource in (None, record.resource):
                    return record
        return None

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: len(self._watchers) >= count, timeout)

    # ---------------------------------------------------------------------- fault injection

    def end_watches(self) -> int:
        """End every open watch cleanly (as a server-side timeout does); returns how many."""
        with self._lock:
            watchers = list(self._watchers)
        for watcher in watchers:
            watcher.end("end")
        return len(watchers)

    def drop_next_events(self, count: int) -> None:
        """Do not deliver the next ``count`` changes to open watches (lost on the wire).

        The changes are still stored and in the history: a watch started later from an older
        revision replays them.
        """
        with self._lock:
            self._drop_next = max(0, count)

    def compact(self, revision: int | None = None) -> int:
        """Drop the history up to ``revision`` (default: all of it); returns the compacted
        revision. Watches from older revisions then get 410 Expired."""
        with self._lock:
            target = self._revision if revision is None else min(revision, self._revision)
            self._compact_locked(target)
            return self._compacted

    def fail_next(
        self,
        verb: str,
        count: int = 1,
        *,
        code: int = 500,
        reason: str = "InternalError",
        message: str = "injected failure",
    ) -> None:
        """Answer the next ``count`` requests of ``verb`` with an HTTP error ``Status``."""
        with self._lock:
            queue = self._failures.setdefault(verb, deque())
            queue.extend([(code, reason, message)] * count)

    def send_bookmarks(self) -> int:
        """Queue a BOOKMARK at the current revision to every watch that allows bookmarks.

        Returns how many watches got one.
        """
        sent = 0
        with self._lock:
            for watcher in self._watchers:
                if watcher.bookmarks:
                    watcher.push(self._bookmark_line(watcher.resource))
                    sent += 1
        return sent

    @contextlib.contextmanager
    def hold_watch_requests(self) -> Iterator[None]:
        """Park new watch requests until the block exits (they then proceed as sent).

        For changing and compacting the history while a client's watch is down::

            with server.hold_watch_requests():
                server.end_watches()
                server.wait_for_held_watches(1)       # the client's re-watch is parked
                server.delete_node("node-1"); server.compact()
            # the parked watch now asks for a compacted revision: 410, and the client relists
        """
        with self._lock:
            self._hold_watches = True
        try:
            yield
        finally:
            with self._lock:
                self._hold_watches = False
                self._cond.notify_all()

    def wait_for_held_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` watch requests are parked by :meth:`hold_watch_requests`."""
        with self._cond:
            return self._cond.wait_for(lambda: self._held >= count, timeout)

    def pause_delivery(self) -> None:
        """Queue events in the open watches without sending them (see :meth:`resume_delivery`)."""
        with self._lock:
            self._paused = True

    def resume_delivery(self) -> None:
        """Send the queued events, as fast as the connections take them."""
        with self._lock:
            self._paused = False
            watchers = list(self._watchers)
        for watcher in watchers:
            with watcher.cond:
                watcher.cond.notify()

    # -------------------------------------------------------------------- object API: nodes

    def add_node(
        self,
        name: str,
        labels: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
        *,
        annotations: Mapping[str, str] | None = None,
        spec: Mapping[str, Any] | None = None,
        status: Mapping[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Create a Node; ``conditions`` is ``{"Ready": "True"}`` or a list of condition dicts.

        Returns the stored object. Raises :class:`FakeKubeAPIError` (409) if it exists.
        """
        obj = self._new_object("Node", name, "", labels, annotations)
        obj["spec"] = dict(spec or {})
        obj["status"] = dict(status or {})
        if conditions is not None:
            obj["status"]["conditions"] = _conditions(conditions, {})
        return self.create("nodes", obj)

    def update_node(
        self,
        name: str,
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Change a Node: replace its labels / annotations (when given), set conditions by type
        (``{"Ready": "False"}``), then apply ``mutate`` to a copy. Returns the stored object."""
        return self.update(
            "nodes", name, labels=labels, annotations=annotations, conditions=conditions,
            mutate=mutate,
        )  # fmt: skip

    def delete_node(self, name: str) -> dict[str, Any]:
        """Delete a Node; returns its last state. Raises :class:`FakeKubeAPIError` (404)."""
        return self.delete("nodes", name)

    def get_node(self, name: str) -> dict[str, Any]:
        """The stored Node (with kind and apiVersion). Raises :class:`FakeKubeAPIError` (404)."""
        return self.get("nodes", name)

    def list_nodes(self, label_selector: str = "") -> list[dict[str, Any]]:
        """The stored Nodes matching ``label_selector``, sorted by name."""
        return self.list("nodes", label_selector=label_selector)

    # --------------------------------------------------------------------- object API: pods

    def add_pod(
        self,
        name: str,
        namespace: str = "default",
        labels: Mapping[str, str] | None = None,
        *,
        node_name: str = "",
        phase: str = "Running",
        conditions: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
        annotations: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        """Create a Pod (one ``main`` container). Returns the stored object."""
        obj = self._new_object("Pod", name, namespace, labels, annotations)
        spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
        if node_name:
            spec["nodeName"] = node_name
        obj["spec"] = spec
        obj["status"] = {"phase": phase}
        if conditions is not None:
            obj["status"]["conditions"] = _conditions(conditions, {})
        return self.create("pods", obj, namespace=namespace)

    def update_pod(
        self,
        name: str,
        namespace: str = "default",
        *,
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Change a Pod (as :meth:`update_node` does). Returns the stored object."""
        return self.update(
            "pods", name, namespace=namespace, labels=labels, annotations=annotations,
            conditions=conditions, mutate=mutate,
        )  # fmt: skip

    def delete_pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """Delete a Pod; returns its last state."""
        return self.delete("pods", name, namespace=namespace)

    def get_pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """The stored Pod."""
        return self.get("pods", name, namespace=namespace)

    def list_pods(self, namespace: str = "", label_selector: str = "") -> list[dict[str, Any]]:
        """The stored Pods of ``namespace`` (``""``: all) matching ``label_selector``."""
        return self.list("pods", namespace=namespace, label_selector=label_selector)

    # ------------------------------------------------------------------ object API: generic

    def create(
        self, resource: str, obj: Mapping[str, Any], *, namespace: str = ""
    ) -> dict[str, Any]:
        """Store a new object of ``resource`` (``"nodes"``, ``"pods"``); fills in uid,
        creationTimestamp and resourceVersion. Returns the stored object."""
        res = self._resource(resource)
        data = json.loads(_dumps(obj))
        with self._lock:
            record = self._create_locked(res, namespace, data)
        return _load(_full(res, record.item))

    def update(
        self,
        resource: str,
        name: str,
        *,
        namespace: str = "",
        labels: Mapping[str, str] | None = None,
        annotations: Mapping[str, str] | None = None,
        conditions: Mapping[str, str] | Iterable[Mapping[str, Any]] | None = None,
        mutate: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Change an object (see :meth:`update_node`); a change that changes nothing writes
        nothing. Returns the stored object."""
        res = self._resource(resource)

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            if labels is not None:
                meta["labels"] = dict(labels)
                if not labels:
                    del meta["labels"]
            if annotations is not None:
                meta["annotations"] = dict(annotations)
                if not annotations:
                    del meta["annotations"]
            if conditions is not None:
                status = obj.setdefault("status", {})
                status["conditions"] = _conditions(conditions, status)
            if mutate is not None:
                mutate(obj)
            return obj

        with self._lock:
            record = self._modify_locked(res, namespace, name, change)
        return _load(_full(res, record.item))

    def delete(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """Delete an object; returns its last state (at the deletion's revision)."""
        res = self._resource(resource)
        with self._lock:
            record = self._delete_locked(res, namespace, name)
        return _load(_full(res, record.item))

    def get(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """The stored object (with kind and apiVersion)."""
        res = self._resource(resource)
        with self._lock:
            record = self._get_locked(res, namespace, name)
        return _load(_full(res, record.item))

    def list(
        self, resource: str, *, namespace: str = "", label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """The stored objects of ``resource`` matching, sorted by namespace and name."""
        res = self._resource(resource)
        filt = self._filter(res, label_selector, "")
        with self._lock:
            records = self._select_locked(res, namespace, filt)
        return [_load(_full(res, r.item)) for r in records]

    # ------------------------------------------------------------------------- internals

    @staticmethod
    def _resource(resource: str) -> _Resource:
        res = _RESOURCES.get(resource)
        if res is None:
            raise ValueError(f"unknown resource {resource!r} (known: {', '.join(_RESOURCES)})")
        return res

    @staticmethod
    def _new_object(
        kind: str,
        name: str,
        namespace: str,
        lbls: Mapping[str, str] | None,
        annotations: Mapping[str, str] | None,
    ) -> dict[str, Any]:
        meta: dict[str, Any] = {"name": name}
        if namespace:
            meta["namespace"] = namespace
        if lbls:
            meta["labels"] = dict(lbls)
        if annotations:
            meta["annotations"] = dict(annotations)
        return {"kind": kind, "apiVersion": "v1", "metadata": meta}

    def _filter(self, res: _Resource, label_selector: str, field_selector: str) -> _Filter | None:
        try:
            selector = labels.parse(label_selector) if label_selector else None
        except ValueError as exc:
            raise _bad_request(f"unable to parse requirement: {exc}") from exc
        wanted: list[tuple[str, str, bool]] = []
        for term in filter(None, (t.strip() for t in field_selector.split(","))):
            match = re.fullmatch(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)", term)
            if match is None:
                raise _bad_request(f"invalid field selector: {term!r}")
            field, op, value = match.groups()
            if field not in res.fields:
                raise _bad_request(
                    f'field label not supported: "{field}" (the fake supports {res.fields})'
                )
            wanted.append((field, value, op != "!="))
        if selector is None and not wanted:
            return None
        matches = selector.matches if selector is not None else None

        def filt(lbls: Mapping[str, str], fields: Mapping[str, str]) -> bool:
            if matches is not None and not matches(lbls):
                return False
            return all((fields.get(f, "") == v) is eq for f, v, eq in wanted)

        return filt

    def _key(self, res: _Resource, namespace: str, name: str) -> tuple[str, str, str]:
        if res.namespaced and not namespace:
            raise _bad_request(f"{res.plural} are namespaced: a namespace is required")
        if not res.namespaced:
            namespace = ""
        return (res.plural, namespace, name)

    def _get_locked(self, res: _Resource, namespace: str, name: str) -> _Record:
        record = self._objects.get(self._key(res, namespace, name))
        if record is None:
            raise FakeKubeAPIError(
                404, "NotFound", f'{res.plural} "{name}" not found', name=name, kind=res.plural
            )
        return record

    def _select_locked(
        self, res: _Resource, namespace: str, filt: _Filter | None
    ) -> builtins.list[_Record]:
        out = []
        for (plural, ns, _), record in sorted(self._objects.items()):
            if plural != res.plural or (namespace and ns != namespace):
                continue
            if filt is None or filt(record.labels, record.fields):
                out.append(record)
        return out

    def _store_locked(
        self, res: _Resource, namespace: str, obj: dict[str, Any], rev: int
    ) -> _Record:
        """Stamp ``obj`` with ``rev``, serialize it without kind/apiVersion, make a record."""
        meta = obj["metadata"]
        meta["resourceVersion"] = str(rev)
        lbls = _string_map(meta.get("labels"), "metadata.labels")
        _string_map(meta.get("annotations"), "metadata.annotations")
        fields = {f: _dig(obj, f) for f in res.fields}
        if res.namespaced:
            fields["metadata.namespace"] = namespace
        return _Record(_dumps(_api_order(obj)).encode(), lbls, fields, rev)

    def _create_locked(self, res: _Resource, namespace: str, obj: Any) -> _Record:
        if not isinstance(obj, dict) or not isinstance(obj.get("metadata"), dict):
            raise _bad_request("the object must be a JSON object with metadata")
        meta = obj["metadata"]
        name = meta.get("name")
        if not isinstance(name, str) or not name or "/" in name:
            raise _invalid(f"metadata.name: Invalid value: {name!r}")
        namespace = namespace or meta.get("namespace") or ""
        key = self._key(res, namespace, name)
        if res.namespaced:
            meta["namespace"] = namespace
        else:
            meta.pop("namespace", None)
        if key in self._objects:
            raise FakeKubeAPIError(
                409, "AlreadyExists", f'{res.plural} "{name}" already exists',
                name=name, kind=res.plural,
            )  # fmt: skip
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = _now()
        meta.pop("deletionTimestamp", None)
        rev = self._revision + 1
        record = self._store_locked(res, namespace, obj, rev)
        self._revision = rev
        self._objects[key] = record
        self._commit_locked(_Change(rev, res, key[1], "ADDED", record, None))
        return record

    def _modify_locked(
        self,
        res: _Resource,
        namespace: str,
        name: str,
        change: Callable[[dict[str, Any]], dict[str, Any]],
        *,
        precondition: str = "",
    ) -> _Record:
        key = self._key(res, namespace, name)
        current = self._get_locked(res, key[1], name)
        if precondition and precondition != str(current.rev):
            raise FakeKubeAPIError(
                409,
                "Conflict",
                f'Operation cannot be fulfilled on {res.plural} "{name}": the object has been '
                "modified; please apply your changes to the latest version and try again",
                name=name,
                kind=res.plural,
            )
        before = json.loads(current.item)
        after = change(json.loads(current.item))
        if not isinstance(after, dict) or not isinstance(after.get("metadata"), dict):
            raise _bad_request("the object must be a JSON object with metadata")
        meta = after["metadata"]
        for fixed in ("name", "uid", "creationTimestamp"):
            if fixed in before["metadata"] and meta.get(fixed) != before["metadata"][fixed]:
                if fixed == "name":
                    raise _bad_request(f"metadata.name cannot change ({name!r})")
                meta[fixed] = before["metadata"][fixed]
        if res.namespaced:
            meta["namespace"] = key[1]
        after.pop("kind", None)
        after.pop("apiVersion", None)
        meta["resourceVersion"] = before["metadata"].get("resourceVersion")
        if after == before:
            return current  # GuaranteedUpdate: a no-op writes nothing
        rev = self._revision + 1
        record = self._store_locked(res, key[1], after, rev)
        self._revision = rev
        self._objects[key] = record
        self._commit_locked(_Change(rev, res, key[1], "MODIFIED", record, current))
        return record

    def _delete_locked(self, res: _Resource, namespace: str, name: str) -> _Record:
        key = self._key(res, namespace, name)
        current = self._get_locked(res, key[1], name)
        rev = self._revision + 1
        last = json.loads(current.item)
        record = self._store_locked(res, key[1], last, rev)
        self._revision = rev
        del self._objects[key]
        self._commit_locked(_Change(rev, res, key[1], "DELETED", record, None))
        return record

    def _commit_locked(self, change: _Change) -> None:
        self._history.append(change)
        if len(self._history) >= 2 * self._history_limit:
            self._compact_locked(self._history[-self._history_limit - 1].rev)
        if self._drop_next > 0:
            self._drop_next -= 1
            return
        for watcher in self._watchers:
            line = watcher.line_for_locked(change)
            if line is not None:
                watcher.push(line)

    def _compact_locked(self, target: int) -> None:
        history = self._history
        while history and history[0].rev <= target:
            history.popleft()
        self._compacted = max(self._compacted, target)

    def _bookmark_line(self, res: _Resource, *, initial_events_end: bool = False) -> bytes:
        meta: dict[str, Any] = {"resourceVersion": str(self._revision), "creationTimestamp": None}
        if initial_events_end:
            meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
        obj = {"kind": res.kind, "apiVersion": "v1", "metadata": meta}
        return b'{"type":"BOOKMARK","object":%s}\n' % _dumps(obj).encode()

    def _take_failure(self, verb: str) -> FakeKubeAPIError | None:
        with self._lock:
            queue = self._failures.get(verb)
            if not queue:
                return None
            code, reason, message = queue.popleft()
        return FakeKubeAPIError(code, reason, message)

    # ---------------------------------------------------------------------- HTTP handling

    def _handle(self, handler: _Handler, method: str) -> None:
        split = urlsplit(handler.path)
        query = {k: v[-1] for k, v in parse_qs(split.query, keep_blank_values=True).items()}
        route = _ROUTE.match(split.path)
        verb = ""
        try:
            body = handler.read_body() if method in ("POST", "PUT", "PATCH") else b""
            if route is None:
                raise FakeKubeAPIError(404, "NotFound", f"the server could not find {split.path}")
            res = _RESOURCES.get(route["res"])
            namespace = route["ns"] or ""
            name = route["name"] or ""
            sub = route["sub"] or ""
            if res is None or (namespace and not res.namespaced) or sub not in ("", "status"):
                raise FakeKubeAPIError(404, "NotFound", f"the server could not find {split.path}")
            if res.namespaced and name and not namespace:
                raise FakeKubeAPIError(404, "NotFound", f"the server could not find {split.path}")
            verb = _verb(method, bool(name), query)
            if verb == "" or (sub and verb not in ("get", "update", "patch")):
                raise FakeKubeAPIError(
                    405, "MethodNotAllowed", f"{method} is not supported on {split.path}"
                )
            with self._lock:
                self._counts[(verb, res.plural)] += 1
                self.requests.append(
                    RequestRecord(method, split.path, verb, res.plural, namespace, name, sub, query)
                )
            failure = self._take_failure(verb)
            if failure is not None:
                raise failure
            if verb == "watch":
                self._serve_watch(handler, res, namespace, query)
                return
            code, payload = self._serve(handler, verb, res, namespace, name, sub, query, body)
        except FakeKubeAPIError as err:
            code, payload = err.code, _dumps(err.status()).encode()
        except (ValueError, TypeError) as err:
            code = 400
            payload = _dumps(_bad_request(f"bad request: {err}").status()).encode()
        handler.respond(code, payload)

    def _serve(
        self,
        handler: _Handler,
        verb: str,
        res: _Resource,
        namespace: str,
        name: str,
        sub: str,
        query: Mapping[str, str],
        body: bytes,
    ) -> tuple[int, bytes]:
        if verb == "list":
            return 200, self._list_body(res, namespace, query)
        if verb == "get":
            with self._lock:
                record = self._get_locked(res, namespace, name)
            return 200, _full(res, record.item)
        if verb == "delete":
            with self._lock:
                record = self._delete_locked(res, namespace, name)
            return 200, _full(res, record.item)
        try:
            doc = json.loads(body) if body else None
        except ValueError as exc:
            raise _bad_request(f"the request body is not JSON: {exc}") from exc
        if verb == "create":
            with self._lock:
                record = self._create_locked(res, namespace, doc)
            return 201, _full(res, record.item)
        content_type = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
        if verb == "patch" and content_type not in (_MERGE_PATCH, _STRATEGIC_PATCH):
            raise FakeKubeAPIError(
                415,
                "UnsupportedMediaType",
                f"the body of the request was in an unknown format - accepted media types "
                f"include: {_MERGE_PATCH}, {_STRATEGIC_PATCH} (got {content_type!r})",
            )
        if not isinstance(doc, dict):
            raise _bad_request("the request body must be a JSON object")
        if verb == "update":
            return 200, self._put(res, namespace, name, sub, doc)
        return 200, self._patch(res, namespace, name, sub, doc, content_type == _STRATEGIC_PATCH)

    def _put(
        self, res: _Resource, namespace: str, name: str, sub: str, doc: dict[str, Any]
    ) -> bytes:
        meta = doc.get("metadata")
        if not isinstance(meta, dict) or meta.get("name") not in (None, name):
            raise _bad_request(f"the name of the object does not match the URL ({name!r})")
        precondition = str(meta.get("resourceVersion") or "")

        def replace(current: dict[str, Any]) -> dict[str, Any]:
            if sub == "status":
                current["status"] = doc.get("status") or {}
                return current
            new = dict(doc)
            new["metadata"] = {**meta, "name": name}
            if "status" in current:
                new["status"] = current["status"]
            else:
                new.pop("status", None)
            return new

        with self._lock:
            record = self._modify_locked(res, namespace, name, replace, precondition=precondition)
        return _full(res, record.item)

    def _patch(
        self,
        res: _Resource,
        namespace: str,
        name: str,
        sub: str,
        doc: dict[str, Any],
        strategic: bool,
    ) -> bytes:
        meta = doc.get("metadata")
        precondition = str(meta.get("resourceVersion") or "") if isinstance(meta, dict) else ""

        def apply(current: dict[str, Any]) -> dict[str, Any]:
            patched = _merge(current, doc, (), strategic)
            if not isinstance(patched, dict):
                raise _bad_request("the patch must be a JSON object")
            if sub == "status":
                # The status subresource changes status only (ResetObjectMetaForStatus).
                if "status" in patched:
                    current["status"] = patched["status"]
                else:
                    current.pop("status", None)
                return current
            if "status" in current:
                patched["status"] = current["status"]
            else:
                patched.pop("status", None)
            return patched

        with self._lock:
            record = self._modify_locked(res, namespace, name, apply, precondition=precondition)
        return _full(res, record.item)

    def _list_body(self, res: _Resource, namespace: str, query: Mapping[str, str]) -> bytes:
        filt = self._filter(res, query.get("labelSelector", ""), query.get("fieldSelector", ""))
        rv = query.get("resourceVersion", "")
        with self._lock:
            if rv and rv != "0" and query.get("resourceVersionMatch") == "Exact":
                wanted = _parse_revision(rv)
                if wanted < self._compacted:
                    raise _expired(wanted, self._compacted)
            records = self._select_locked(res, namespace, filt)
            revision = self._revision
        head = b'{"kind":"%s","apiVersion":"v1","metadata":{"resourceVersion":"%d"},"items":[' % (
            res.list_kind.encode(),
            revision,
        )
        return head + b",".join(r.item for r in records) + b"]}"

    def _serve_watch(
        self, handler: _Handler, res: _Resource, namespace: str, query: Mapping[str, str]
    ) -> None:
        filt = self._filter(res, query.get("labelSelector", ""), query.get("fieldSelector", ""))
        rv = query.get("resourceVersion", "")
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        send_initial = query.get("sendInitialEvents")
        if send_initial is not None and _flag(send_initial):
            if query.get("resourceVersionMatch") != "NotOlderThan":
                raise _invalid(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                    "resourceVersionMatch to NotOlderThan"
                )
            if not bookmarks:
                raise _invalid("allowWatchBookmarks: Required: sendInitialEvents requires it")
        elif query.get("resourceVersionMatch"):
            raise _invalid("resourceVersionMatch is forbidden for watch unless sendInitialEvents")
        initial = _flag(send_initial) if send_initial is not None else rv in ("", "0")
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        watcher = _Watcher(res, namespace, filt, bookmarks)
        expired: FakeKubeAPIError | None = None
        with self._cond:
            if self._hold_watches:
                self._held += 1
                self._cond.notify_all()
                self._cond.wait_for(lambda: not self._hold_watches or self._stopping)
                self._held -= 1
            if self._stopping:
                raise FakeKubeAPIError(503, "ServiceUnavailable", "the server is shutting down")
            if initial:
                for record in self._select_locked(res, namespace, filt):
                    watcher.buffer.append(_event_line("ADDED", res, record.item))
                if send_initial is not None and _flag(send_initial):
                    watcher.buffer.append(self._bookmark_line(res, initial_events_end=True))
            elif rv in ("", "0"):
                pass  # sendInitialEvents=false: start from now, no initial state
            else:
                since = _parse_revision(rv)
                if since < self._compacted:
                    expired = _expired(since, self._compacted)
                else:
                    for change in self._history:
                        if change.rev > since:
                            line = watcher.line_for_locked(change)
                            if line is not None:
                                watcher.buffer.append(line)
            if expired is None:
                self._watchers.append(watcher)
                self._cond.notify_all()
        handler.send_response(200)
        handler.send_header("Content-Type", _JSON)
        handler.send_header("Transfer-Encoding", "chunked")
        handler.end_headers()
        handler.close_connection = True  # one watch per connection, as clients use them
        try:
            if expired is not None:
                status = expired.status()
                handler.write_chunk(b'{"type":"ERROR","object":%s}\n' % _dumps(status).encode())
                handler.write_chunk(b"")
                return
            self._stream(handler, watcher, deadline)
        except OSError:
            log.debug("kube-api: watch client went away")
        finally:
            with self._lock:
                if watcher in self._watchers:
                    self._watchers.remove(watcher)

    def _stream(self, handler: _Handler, watcher: _Watcher, deadline: float | None) -> None:
        interval = self._bookmark_interval if watcher.bookmarks else None
        next_bookmark = time.monotonic() + interval if interval is not None else None
        cond = watcher.cond
        buffer = watcher.buffer
        while True:
            with cond:
                while True:
                    if watcher.ended is not None:
                        break
                    if buffer and not self._paused:
                        break
                    now = time.monotonic()
                    waits = [t - now for t in (deadline, next_bookmark) if t is not None]
                    if waits and min(waits) <= 0:
                        break
                    cond.wait(min(waits) if waits else None)
                ended = watcher.ended
                lines: list[bytes] = []
                # end_watches() ends a stream after what was already queued (a server-side
                # timeout); stop() ends it at once.
                if ended == "end" or (ended is None and not self._paused):
                    while buffer and len(lines) < _MAX_LINES_PER_CHUNK:
                        lines.append(buffer.popleft())
            if ended is not None and not lines:
                handler.write_chunk(b"")
                return
            if lines:
                handler.write_chunk(b"".join(lines))
                continue
            now = time.monotonic()
            if deadline is not None and now >= deadline:
                handler.write_chunk(b"")  # timeoutSeconds: a clean end of stream
                return
            if next_bookmark is not None and interval is not None and now >= next_bookmark:
                next_bookmark = now + interval
                with self._lock:  # queued behind every event already offered to this watcher
                    watcher.push(self._bookmark_line(watcher.resource))


# The API server serializes Go structs: fields in declaration order.
_OBJECT_ORDER: Final = ("metadata", "spec", "status")
_METADATA_ORDER: Final = (
    "name",
    "generateName",
    "namespace",
    "selfLink",
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "deletionGracePeriodSeconds",
    "labels",
    "annotations",
    "ownerReferences",
    "finalizers",
    "managedFields",
)


def _ordered(data: dict[str, Any], order: tuple[str, ...]) -> dict[str, Any]:
    out = {k: data[k] for k in order if k in data}
    out.update((k, v) for k, v in data.items() if k not in out)
    return out


def _api_order(obj: dict[str, Any]) -> dict[str, Any]:
    """``obj`` without kind/apiVersion, keys in the API server's order (metadata, spec, status;
    managedFields last in metadata)."""
    body = _ordered(
        {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}, _OBJECT_ORDER
    )
    if isinstance(body.get("metadata"), dict):
        body["metadata"] = _ordered(body["metadata"], _METADATA_ORDER)
    return body


def _verb(method: str, named: bool, query: Mapping[str, str]) -> str:
    if method == "GET":
        if named:
            return "get"
        return "watch" if _flag(query.get("watch")) else "list"
    if method == "POST":
        return "" if named else "create"
    if not named:
        return ""
    return {"PUT": "update", "PATCH": "patch", "DELETE": "delete"}.get(method, "")


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _parse_revision(rv: str) -> int:
    if rv in ("", "0"):
        return 0
    if not rv.isdigit():
        raise _bad_request(f'invalid resource version "{rv}"')
    return int(rv)


def _expired(revision: int, compacted: int) -> FakeKubeAPIError:
    return FakeKubeAPIError(410, "Expired", f"too old resource version: {revision} ({compacted})")


def _conditions(
    conditions: Mapping[str, str] | Iterable[Mapping[str, Any]], status: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """Merge ``conditions`` into ``status["conditions"]`` by type; returns the new list."""
    current: list[dict[str, Any]] = [dict(c) for c in status.get("conditions") or ()]
    if isinstance(conditions, Mapping):
        updates: list[dict[str, Any]] = [{"type": t, "status": s} for t, s in conditions.items()]
    else:
        updates = [dict(c) for c in conditions]
    now = _now()
    for update in updates:
        existing = next((c for c in current if c.get("type") == update.get("type")), None)
        if existing is None:
            update.setdefault("lastTransitionTime", now)
            current.append(update)
        else:
            if existing.get("status") != update.get("status"):
                update.setdefault("lastTransitionTime", now)
            existing.update(update)
    return current
