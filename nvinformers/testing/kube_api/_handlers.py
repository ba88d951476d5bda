"""The HTTP endpoints of the fake Kubernetes API server: each request routed, logged, answered.

:class:`APIHandlers` is what the HTTP server calls for every request (:class:`~._http.App`):
fixed endpoints (health, ``/version``, discovery) and the resources' verbs (PATCH bodies by
:mod:`nvinformers.testing._patch`), in the representation the client accepts (JSON, or a
``Table``). :class:`RequestLog` counts and records the requests for tests. :class:`RequestFaults`
holds the fault injection that acts on requests rather than on stored state (dropped events,
ended watches and compaction are the tracker's): answer the next N requests of a verb with an
error ``Status``, park new watch requests (to change and compact the history while a client's
watch is down), pause the delivery of watch events.

A watch becomes a stream (:func:`stream`) that holds the connection's thread and blocks on its
watcher's condition (no polling, no sleep): it writes the batches of :meth:`ObjectTracker.events
<nvinformers.testing.tracker.ObjectTracker.events>` as HTTP chunks of one JSON event per line (at
most :data:`MAX_LINES_PER_CHUNK` lines per chunk; events queue while delivery is paused),
rendered as the client asked: the object itself (:class:`JSONRenderer`), or a one-row ``Table``
(:class:`TableRenderer`, column definitions in the first event only). It ends when the tracker
ends its watch: after what is queued (:data:`TIMED_OUT`: a server-side timeout) or at once
(:data:`STOPPING`: the server is stopping).

Thread-safety: called on every connection's thread at once; the log has its own lock, the faults
one condition (guarding the failure queues, the hold flag and the count of parked requests;
:meth:`RequestFaults.park` blocks on it), the rest is the registry's and the tracker's.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final, Protocol

from nvinformers.errors import BadRequestError
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing import _patch as patch
from nvinformers.testing.kube_api import _resources as discovery
from nvinformers.testing.kube_api import _tables as tables
from nvinformers.testing.kube_api._errors import (
    FakeKubeAPIError,
    bad_request,
    expired,
    invalid,
)
from nvinformers.testing.kube_api._http import (
    HEALTH_PATHS,
    JSON,
    Handler,
    MediaRange,
    Route,
    parse_accept,
    route,
    verb_for,
)
from nvinformers.testing.kube_api._registry import Record, Registry, dumps
from nvinformers.testing.kube_api._resources import Resource
from nvinformers.testing.tracker import (
    BOOKMARK,
    Ended,
    ObjectTracker,
    RevisionExpiredError,
    WatchEvent,
    parse_revision,
    watch_start,
)

__all__ = [
    "APIHandlers",
    "RequestLog",
    "RequestRecord",
    "RequestFaults",
    "STOPPING",
    "TIMED_OUT",
]

#: Lines written per chunk at most when a watch has a backlog.
MAX_LINES_PER_CHUNK: Final = 512
#: Why the tracker ended a watch: the server is stopping (the stream ends at once; a watch
#: opened meanwhile is refused with 503).
STOPPING: Final = "stop"
#: Why the tracker ended a watch: a server-side timeout (the stream sends what is queued first).
TIMED_OUT: Final = "end"


class Renderer(Protocol):
    """Turns one watch event into one line (with its newline)."""

    def __call__(self, event: WatchEvent[Record]) -> bytes: ...


def _bookmark_object(res: Resource, event: WatchEvent[Record]) -> bytes:
    meta: dict[str, object] = {"resourceVersion": str(event.revision), "creationTimestamp": None}
    if event.initial_events_end:
        meta["annotations"] = {INITIAL_EVENTS_END_ANNOTATION: "true"}
    return dumps({"kind": res.kind, "apiVersion": "v1", "metadata": meta}).encode()


class JSONRenderer:
    """``{"type": ..., "object": <the object>}`` lines, as the API server streams them."""

    def __init__(self, res: Resource) -> None:
        self._res = res

    def __call__(self, event: WatchEvent[Record]) -> bytes:
        record = event.object
        body = record.full() if record is not None else _bookmark_object(self._res, event)
        return b'{"type":"%s","object":%s}\n' % (event.type.encode(), body)


class TableRenderer:
    """Lines whose object is a one-row ``Table`` (column definitions in the first only)."""

    def __init__(self, res: Resource, version: str, include: str) -> None:
        self._res = res
        self._version = version
        self._include = include
        self._headers = True

    def __call__(self, event: WatchEvent[Record]) -> bytes:
        if event.type == BOOKMARK:
            # A bookmark's object carries only a revision; its table has no rows.
            rows = []
        else:
            assert event.object is not None
            rows = [event.object.load()]
        doc = tables.table(
            self._res, rows, resource_version=str(event.revision), version=self._version,
            include=self._include, headers=self._headers,
        )  # fmt: skip
        self._headers = False
        return b'{"type":"%s","object":%s}\n' % (event.type.encode(), dumps(doc).encode())


def stream(
    write_chunk: Callable[[bytes], None],
    events: Iterable[list[WatchEvent[Record]] | Ended],
    render: Renderer,
) -> None:
    """Write a watch's ``events`` (:meth:`ObjectTracker.events
    <nvinformers.testing.tracker.ObjectTracker.events>`) as chunks of rendered lines, then the
    last, empty chunk.

    Raises:
        OSError: the client went away.
    """
    for item in events:
        if isinstance(item, Ended):
            break
        write_chunk(b"".join(render(e) for e in item))  # rendered outside every lock
    write_chunk(b"")


log = logging.getLogger("nvinformers.testing.kube_api")


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server received. Requests outside the resources (discovery, health)
    have verb ``get`` and resource ``""``."""

    method: str
    path: str
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str
    query: Mapping[str, str]


class RequestLog:
    """Counts of requests by (verb, resource) and the last 1,000 requests."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # guarded by _lock
        self._requests: deque[RequestRecord] = deque(maxlen=1000)  # guarded by _lock

    def record(self, method: str, rt: Route, verb: str) -> None:
        res = rt.resource.plural if rt.resource is not None else ""
        entry = RequestRecord(
            method, rt.path, verb, res, rt.namespace, rt.name, rt.subresource, rt.query
        )
        with self._lock:
            self._counts[(verb, res)] += 1
            self._requests.append(entry)

    def count(self, verb: str, resource: str | None) -> int:
        with self._lock:
            if resource is not None:
                return self._counts[(verb, resource)]
            return sum(n for (v, _), n in self._counts.items() if v == verb)

    def last(self, verb: str, resource: str | None) -> RequestRecord | None:
        with self._lock:
            for entry in reversed(self._requests):
                if entry.verb == verb and resource in (None, entry.resource):
                    return entry
        return None

    def snapshot(self) -> list[RequestRecord]:
        with self._lock:
            return list(self._requests)


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _invalid_revision(rv: str) -> FakeKubeAPIError:
    return bad_request(f'invalid resource version "{rv}"')


_PATCH_TYPES: Final = (patch.JSON, patch.MERGE, patch.STRATEGIC_MERGE)


def _apply_patch(content_type: str, current: dict[str, Any], body: bytes) -> dict[str, Any]:
    """``current`` (not modified) with the PATCH ``body`` of ``content_type`` applied (see
    :mod:`nvinformers.testing._patch`).

    Raises:
        FakeKubeAPIError: as the API server answers: 415 another content type, 400 a body that
            does not decode (or a strategic merge list entry without its key), 422 a JSON patch
            that does not apply or a result that is not an object.
    """
    if content_type not in _PATCH_TYPES:
        raise FakeKubeAPIError(
            415,
            "UnsupportedMediaType",
            f"the body of the request was in an unknown format - accepted media types include: "
            f"{', '.join(_PATCH_TYPES)}",
        )
    try:
        doc = json.loads(body) if body else None
    except ValueError as exc:
        raise bad_request(f"error decoding patch: {exc}") from exc
    apply: Callable[[Any, Any], Any]
    if content_type == patch.JSON:
        if not isinstance(doc, list):
            raise bad_request("error decoding patch: a JSON patch must be a list of operations")
        apply, refused = patch.apply_json_patch, invalid  # 422: the patch does not apply
    elif not isinstance(doc, dict):
        raise bad_request("error decoding patch: a merge patch must be a JSON object")
    elif content_type == patch.MERGE:
        apply, refused = patch.apply_merge_patch, invalid  # (a merge patch always applies)
    else:
        apply, refused = patch.apply_strategic_merge_patch, bad_request  # 400: a malformed body
    try:
        patched = apply(current, doc)
    except BadRequestError as exc:
        raise refused(exc.message) from exc
    if not isinstance(patched, dict):
        raise invalid("the patched object is not a JSON object")
    return patched


class APIHandlers:
    """Serves the requests of one fake server (see the module docstring)."""

    def __init__(
        self,
        registry: Registry,
        faults: RequestFaults,
        request_log: RequestLog,
        *,
        bookmark_interval: float | None,
        address: Callable[[], str],
    ) -> None:
        self._registry = registry
        self._tracker: ObjectTracker[Record] = registry.tracker
        self._faults = faults
        self._log = request_log
        self._bookmark_interval = bookmark_interval
        self._address = address

    def handle(self, handler: Handler, method: str) -> None:
        """Serve one request (called on the connection's thread)."""
        content_type = JSON
        try:
            body = handler.read_body() if method in ("POST", "PUT", "PATCH") else b""
            rt = route(handler.path)
            accept = parse_accept(handler.headers.get("Accept"))
            if rt.resource is None:
                self._log.record(method, rt, "get")
                code, payload, content_type = self._serve_fixed(method, rt, accept)
            else:
                verb = verb_for(method, rt)
                self._log.record(method, rt, verb)
                failure = self._faults.take_failure(verb)
                if failure is not None:
                    raise failure
                if verb == "watch":
                    self._serve_watch(handler, rt, accept)
                    return
                ctype = (handler.headers.get("Content-Type") or "").split(";")[0].strip()
                code, payload = self._serve(verb, rt, body, ctype, accept)
        except FakeKubeAPIError as err:
            code, payload = err.code, dumps(err.status()).encode()
        except (ValueError, TypeError) as err:
            code, payload = 400, dumps(bad_request(f"bad request: {err}").status()).encode()
        handler.respond(code, payload, content_type)

    def _serve_fixed(
        self, method: str, rt: Route, accept: Sequence[MediaRange]
    ) -> tuple[int, bytes, str]:
        if method != "GET":
            raise FakeKubeAPIError(405, "MethodNotAllowed", f"{method} is not supported")
        if rt.endpoint in HEALTH_PATHS:
            text = "ok"
            if "verbose" in rt.query:
                text = f"[+]ping ok\n{rt.endpoint[1:]} check passed\n"
            return 200, text.encode(), "text/plain; charset=utf-8"
        doc: Mapping[str, Any]
        if rt.endpoint == "/version":
            doc = discovery.version_info()
        elif rt.endpoint == "/api/v1":
            doc = discovery.resource_list()
        else:  # /api or /apis: aggregated when the client prefers it, as the API server does
            for media, params in accept:
                version = discovery.aggregated_version(media, params)
                if version is not None:
                    ctype, doc = discovery.aggregated(version, core=rt.endpoint == "/api")
                    return 200, dumps(doc).encode(), ctype
                if media in ("application/json", "application/*", "*/*"):
                    break
            if rt.endpoint == "/api":
                doc = discovery.api_versions(self._address())
            else:
                doc = discovery.group_list()
        return 200, dumps(doc).encode(), JSON

    @staticmethod
    def _representation(accept: Sequence[MediaRange]) -> str | None:
        """The Table version the client prefers, or None for plain JSON.

        Raises:
            FakeKubeAPIError: 406 when it accepts neither.
        """
        for media, params in accept:
            version = tables.table_version(media, params)
            if version is not None:
                return version
            if media in ("application/json", "application/*", "*/*") and "as" not in params:
                return None
        raise FakeKubeAPIError(
            406, "NotAcceptable", "only the following media types are accepted: application/json, "
            "application/json;as=Table;v=v1;g=meta.k8s.io",
        )  # fmt: skip

    def _serve(
        self, verb: str, rt: Route, body: bytes, content_type: str, accept: Sequence[MediaRange]
    ) -> tuple[int, bytes]:
        res = rt.resource
        assert res is not None
        namespace, name, sub = rt.namespace, rt.name, rt.subresource
        if verb in ("list", "get"):
            version = self._representation(accept)
            if verb == "list":
                return 200, self._list_body(res, namespace, rt.query, version)
            record = self._registry.get(res, namespace, name)
            if version is None:
                return 200, record.full()
            doc = tables.table(
                res, [record.load()], resource_version=str(record.revision), version=version,
                include=tables.include_object(rt.query),
            )  # fmt: skip
            return 200, dumps(doc).encode()
        if verb == "delete":
            return 200, self._registry.delete(res, namespace, name).full()
        if verb == "patch":
            return 200, self._registry.update(
                res, namespace, name, sub, lambda cur: _apply_patch(content_type, cur, body)
            ).full()
        try:
            sent = json.loads(body) if body else None
        except ValueError as exc:
            raise bad_request(f"the request body is not JSON: {exc}") from exc
        if verb == "create":
            return 201, self._registry.create(res, namespace, sent, admit=True).full()
        if not isinstance(sent, dict) or not isinstance(sent.get("metadata"), dict):
            raise bad_request("the request body must be a JSON object with metadata")
        if sent["metadata"].get("name") not in (None, name):
            raise bad_request(f"the name of the object does not match the URL ({name!r})")
        replacement: dict[str, Any] = sent
        return 200, self._registry.update(res, namespace, name, sub, lambda _: replacement).full()

    def _list_body(
        self, res: Resource, namespace: str, query: Mapping[str, str], version: str | None
    ) -> bytes:
        matches = self._registry.matcher(
            res, query.get("labelSelector", ""), query.get("fieldSelector", "")
        )
        rv = query.get("resourceVersion", "")
        if rv and rv != "0" and query.get("resourceVersionMatch") == "Exact":
            try:
                wanted = parse_revision(rv)
            except ValueError:
                raise _invalid_revision(rv) from None
            compacted = self._tracker.compacted_revision
            if wanted < compacted:
                raise expired(wanted, compacted)
        records, revision = self._tracker.list(res.plural, namespace, matches)
        if version is not None:
            doc = tables.table(
                res, [r.load() for r in records], resource_version=str(revision),
                version=version, include=tables.include_object(query),
            )  # fmt: skip
            return dumps(doc).encode()
        head = b'{"kind":"%s","apiVersion":"v1","metadata":{"resourceVersion":"%d"},"items":[' % (
            res.list_kind.encode(),
            revision,
        )
        return head + b",".join(r.item for r in records) + b"]}"

    def _serve_watch(self, handler: Handler, rt: Route, accept: Sequence[MediaRange]) -> None:
        res, query = rt.resource, rt.query
        assert res is not None
        matches = self._registry.matcher(
            res, query.get("labelSelector", ""), query.get("fieldSelector", "")
        )
        rv = query.get("resourceVersion", "")
        bookmarks = _flag(query.get("allowWatchBookmarks"))
        send_initial = query.get("sendInitialEvents")
        if send_initial is not None and _flag(send_initial):
            if query.get("resourceVersionMatch") != "NotOlderThan":
                raise invalid(
                    "resourceVersionMatch: Forbidden: sendInitialEvents requires setting "
                    "resourceVersionMatch to NotOlderThan"
                )
            if not bookmarks:
                raise invalid("allowWatchBookmarks: Required: sendInitialEvents requires it")
        elif query.get("resourceVersionMatch"):
            raise invalid("resourceVersionMatch is forbidden for watch unless sendInitialEvents")
        try:
            since, initial = watch_start(rv, None if send_initial is None else _flag(send_initial))
        except ValueError:
            raise _invalid_revision(rv) from None
        timeout = query.get("timeoutSeconds")
        deadline = time.monotonic() + float(timeout) if timeout else None
        version = self._representation(accept)
        render: Renderer = (
            JSONRenderer(res)
            if version is None
            else TableRenderer(res, version, tables.include_object(query))
        )
        self._faults.park()
        try:
            watcher = self._tracker.watch(
                res.plural, rt.namespace, matches, since=since, initial_events=initial,
                initial_events_end=initial and send_initial is not None, bookmarks=bookmarks,
            )  # fmt: skip
        except RevisionExpiredError as exc:
            # The API server answers 200 and ends the stream with an ERROR event (410).
            handler.start_stream()
            status = expired(exc.revision, exc.compacted).status()
            handler.write_chunk(b'{"type":"ERROR","object":%s}\n' % dumps(status).encode())
            handler.write_chunk(b"")
            return
        try:
            ended = watcher.ended
            if ended is not None and ended.reason == STOPPING:
                raise FakeKubeAPIError(503, "ServiceUnavailable", "the server is shutting down")
            handler.start_stream()
            events = self._tracker.events(
                watcher, deadline=deadline, limit=MAX_LINES_PER_CHUNK, held=self._faults.paused,
                bookmark_interval=self._bookmark_interval if bookmarks else None,
            )  # fmt: skip
            stream(handler.write_chunk, events, render)
        except OSError:
            log.debug("kube-api: watch client went away")
        finally:
            self._tracker.unwatch(watcher)


class RequestFaults:
    """Injected failures, parked watch requests and paused delivery (see the module docstring)."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._failures: dict[str, deque[FakeKubeAPIError]] = {}  # guarded by _cond
        self._holding = False  # guarded by _cond
        self._held = 0  # guarded by _cond
        self._released = False  # guarded by _cond: the server is stopping, park nothing
        self._paused = False  # read without the lock by streams: a bool flips atomically

    def fail_next(self, verb: str, count: int, error: FakeKubeAPIError) -> None:
        """Answer the next ``count`` requests of ``verb`` with ``error``."""
        with self._cond:
            self._failures.setdefault(verb, deque()).extend([error] * count)

    def take_failure(self, verb: str) -> FakeKubeAPIError | None:
        """Consume the next injected failure of ``verb`` (None: none pending)."""
        with self._cond:
            queue = self._failures.get(verb)
            return queue.popleft() if queue else None

    @contextlib.contextmanager
    def hold_watch_requests(self) -> Iterator[None]:
        """Park new watch requests (:meth:`park`) until the block exits."""
        with self._cond:
            self._holding = True
        try:
            yield
        finally:
            with self._cond:
                self._holding = False
                self._cond.notify_all()

    def park(self) -> None:
        """Block a watch request while requests are held (returns at once otherwise, and when
        :meth:`release_all` is called)."""
        with self._cond:
            if not self._holding or self._released:
                return
            self._held += 1
            self._cond.notify_all()
            self._cond.wait_for(lambda: not self._holding or self._released)
            self._held -= 1

    def wait_for_held(self, count: int, timeout: float) -> bool:
        """Block until ``count`` watch requests are parked; False on timeout."""
        with self._cond:
            return self._cond.wait_for(lambda: self._held >= count, timeout)

    def release_all(self, released: bool = True) -> None:
        """Let every parked request go and park none (the server is stopping); ``False``
        re-arms parking (the server starts again)."""
        with self._cond:
            self._released = released
            self._cond.notify_all()

    def pause(self, paused: bool) -> None:
        """Pause (queue events without sending them) or resume delivery."""
        self._paused = paused

    def paused(self) -> bool:
        return self._paused
