"""``FakeKubeAPIServer``: the fake Kubernetes API server's façade — lifecycle, request dispatch,
the verbs' semantics, a Python object API for tests, and fault injection.

The parts it joins: :mod:`.http` (connections), :mod:`.routing` (paths, verbs, ``Accept``),
:mod:`.discovery`, :mod:`.tracker` (revisioned storage and watches), :mod:`.objects` (stored
form and write rules), :mod:`.patch`, :mod:`.tables`, :mod:`.watch` (streams) and
:mod:`.faults`. See the package docstring for what is served.
"""

from __future__ import annotations

import builtins
import contextlib
import functools
import json
import logging
import re
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from nvinformers import labels
from nvinformers.testing.kube_api import discovery, patch, tables
from nvinformers.testing.kube_api.errors import (
    FakeKubeAPIError,
    already_exists,
    bad_request,
    conflict,
    expired,
    invalid,
    not_found,
)
from nvinformers.testing.kube_api.faults import RequestFaults
from nvinformers.testing.kube_api.http import JSON, Handler, HTTPServer
from nvinformers.testing.kube_api.objects import (
    Record,
    dumps,
    encode,
    keep_server_fields,
    merge_conditions,
    new_object,
    now,
    prepare_create,
    split_status,
)
from nvinformers.testing.kube_api.resources import Resource, resource_named
from nvinformers.testing.kube_api.routing import (
    HEALTH_PATHS,
    MediaRange,
    Route,
    parse_accept,
    route,
    verb_for,
)
from nvinformers.testing.kube_api.tracker import (
    Key,
    ObjectExistsError,
    ObjectNotFoundError,
    ObjectTracker,
    RevisionExpiredError,
    StaleRevisionError,
)
from nvinformers.testing.kube_api.watch import JSONRenderer, Renderer, TableRenderer, stream

__all__ = ["FakeKubeAPIServer", "RequestRecord", "DEFAULT_NAMESPACES"]

log = logging.getLogger("nvinformers.testing.kube_api")

#: Namespaces a new server has (a real cluster's first two).
DEFAULT_NAMESPACES: Final = ("default", "kube-system")
# The API server refuses to delete these.
_UNDELETABLE: Final = frozenset({"default", "kube-system", "kube-public"})
_FIELD_TERM: Final = re.compile(r"([A-Za-z.]+)\s*(==|=|!=)\s*(.*)")
_KUBECONFIG_NAME: Final = "nvinformers-fake"

_Matcher = Callable[[Record], bool]
# How a write changes an object: a new dict from a fresh copy of the stored one.
_Change = Callable[[dict[str, Any]], dict[str, Any]]


@dataclass(frozen=True, slots=True)
class RequestRecord:
    """One request the server received (see :attr:`FakeKubeAPIServer.requests`). Requests
    outside the resources (discovery, health) have verb ``get`` and resource ``""``."""

    method: str
    path: str
    verb: str
    resource: str
    namespace: str
    name: str
    subresource: str
    query: Mapping[str, str]


def _flag(value: str | None) -> bool:
    return value is not None and value.lower() in ("true", "1")


def _parse_revision(rv: str) -> int:
    if rv in ("", "0"):
        return 0
    if not rv.isdigit():
        raise bad_request(f'invalid resource version "{rv}"')
    return int(rv)


class FakeKubeAPIServer:
    """A Kubernetes API server for namespaces, nodes, pods and events on ``127.0.0.1``.

    Args:
        host: the address to listen on.
        port: the port (0: an ephemeral port; read :attr:`url`).
        history_limit: changes retained for watches from a revision (at least; trimmed back to
            this when twice as many accumulate).
        bookmark_interval: seconds between periodic BOOKMARKs to watches that allow them
            (None: only on :meth:`send_bookmarks`).
        namespaces: the namespaces that exist from the start (each is one write, so the first
            object a test adds has the revision ``len(namespaces) + 1``).
        start: start serving immediately (otherwise call :meth:`start`).

    Thread-safety: every public method is thread-safe and may be called while clients are
    connected. Methods that return objects return fresh dicts the caller owns. Nothing blocks
    but :meth:`stop` (joins the threads) and the ``wait_for_*`` methods.
    """

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        history_limit: int = 10_000,
        bookmark_interval: float | None = None,
        namespaces: Iterable[str] = DEFAULT_NAMESPACES,
        start: bool = False,
    ) -> None:
        if bookmark_interval is not None and bookmark_interval <= 0:
            raise ValueError(f"bookmark_interval must be > 0, got {bookmark_interval}")
        self._host = host
        self._port = port
        self._bookmark_interval = bookmark_interval
        self._tracker: ObjectTracker[Record] = ObjectTracker(history_limit=history_limit)
        self._faults = RequestFaults()
        self._stats_lock = threading.Lock()
        self._counts: Counter[tuple[str, str]] = Counter()  # guarded by _stats_lock
        self.requests: deque[RequestRecord] = deque(maxlen=1000)  # guarded by _stats_lock
        self._httpd: HTTPServer | None = None
        for name in namespaces:
            self.create("namespaces", {"metadata": {"name": name}})
        if start:
            self.start()

    # -------------------------------------------------------------------------- lifecycle

    def start(self) -> Self:
        """Start serving (idempotent). Returns self."""
        if self._httpd is not None:
            return self
        self._tracker.reopen()
        self._faults.release_all(False)
        httpd = HTTPServer((self._host, self._port), self)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        httpd.start()
        return self

    def stop(self) -> None:
        """End every watch, close every connection and join every thread (idempotent)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._tracker.end_watches("stop", close=True)
        self._faults.release_all()
        httpd.close()
        self._httpd = None

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

    def kubeconfig(self, *, namespace: str = "default") -> dict[str, Any]:
        """A kubeconfig (as a dict) whose current context is this server, without auth."""
        name = _KUBECONFIG_NAME
        return {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": name, "cluster": {"server": self.url}}],
            "users": [{"name": name, "user": {}}],
            "contexts": [
                {"name": name, "context": {"cluster": name, "user": name, "namespace": namespace}}
            ],
            "current-context": name,
            "preferences": {},
        }

    def write_kubeconfig(self, path: str | Path) -> Path:
        """Write :meth:`kubeconfig` to ``path`` (JSON, which every YAML reader reads) for
        kubectl, kopf and ``kubernetes.config.load_kube_config``. Returns the path.

        Raises:
            FileExistsError: ``path`` exists and is not a kubeconfig this server wrote (a
                user's own kubeconfig is never overwritten).
        """
        target = Path(path)
        if target.exists():
            try:
                existing = json.loads(target.read_text())
                ours = existing.get("current-context") == _KUBECONFIG_NAME
            except (ValueError, AttributeError, OSError):
                ours = False
            if not ours:
                raise FileExistsError(f"{target} exists and is not a fake kubeconfig; not replaced")
        target.write_text(json.dumps(self.kubeconfig(), indent=2) + "\n")
        return target

    # ------------------------------------------------------------------------- inspection

    @property
    def revision(self) -> int:
        """The current global revision."""
        return self._tracker.revision

    @property
    def compacted_revision(self) -> int:
        """Watches from a revision older than this get 410 RevisionExpiredError."""
        return self._tracker.compacted_revision

    def request_count(self, verb: str, resource: str | None = None) -> int:
        """How many ``verb`` requests (list, watch, get, create, update, patch, delete) arrived,
        for ``resource`` or for all resources."""
        with self._stats_lock:
            if resource is not None:
                return self._counts[(verb, resource)]
            return sum(n for (v, _), n in self._counts.items() if v == verb)

    def last_request(self, verb: str, resource: str | None = None) -> RequestRecord | None:
        """The most recent request of ``verb`` (and ``resource``), or None."""
        with self._stats_lock:
            for record in reversed(self.requests):
                if record.verb == verb and resource in (None, record.resource):
                    return record
        return None

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        return self._tracker.wait_for_watches(count, timeout)

    # ---------------------------------------------------------------------- fault injection

    def end_watches(self) -> int:
        """End every open watch cleanly after what it has queued (as a server-side timeout
        does); returns how many."""
        return self._tracker.end_watches("end")

    def drop_next_events(self, count: int) -> None:
        """Do not deliver the next ``count`` changes to open watches (lost on the wire).

        The changes are still stored and in the history: a watch started later from an older
        revision replays them.
        """
        self._tracker.drop_next_events(count)

    def compact(self, revision: int | None = None) -> int:
        """Drop the history up to ``revision`` (default: all of it); returns the compacted
        revision. Watches from older revisions then get 410 RevisionExpiredError."""
        return self._tracker.compact(revision)

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
        self._faults.fail_next(verb, count, FakeKubeAPIError(code, reason, message))

    def send_bookmarks(self) -> int:
        """Queue a BOOKMARK at the current revision to every watch that allows bookmarks.

        Returns how many watches got one.
        """
        return self._tracker.send_bookmarks()

    def hold_watch_requests(self) -> contextlib.AbstractContextManager[None]:
        """Park new watch requests until the block exits (they then proceed as sent).

        For changing and compacting the history while a client's watch is down::

            with server.hold_watch_requests():
                server.end_watches()
                server.wait_for_held_watches(1)       # the client's re-watch is parked
                server.delete_node("node-1"); server.compact()
            # the parked watch now asks for a compacted revision: 410, and the client relists
        """
        return self._faults.hold_watch_requests()

    def wait_for_held_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until ``count`` watch requests are parked by :meth:`hold_watch_requests`."""
        return self._faults.wait_for_held(count, timeout)

    def pause_delivery(self) -> None:
        """Queue events in the open watches without sending them (see :meth:`resume_delivery`)."""
        self._faults.pause(True)

    def resume_delivery(self) -> None:
        """Send the queued events, as fast as the connections take them."""
        self._faults.pause(False)
        self._tracker.wake_watches()

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
        obj = new_object("Node", name, "", labels, annotations)
        obj["spec"] = dict(spec or {})
        obj["status"] = dict(status or {})
        if conditions is not None:
            obj["status"]["conditions"] = merge_conditions(conditions, {})
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
        """Create a Pod with one ``main`` container (running and ready when ``phase`` is
        ``Running``). Returns the stored object.

        Like writing to storage directly, this does not require the namespace to exist (a
        create over HTTP does).
        """
        obj = new_object("Pod", name, namespace, labels, annotations)
        spec: dict[str, Any] = {"containers": [{"name": "main", "image": "busybox"}]}
        if node_name:
            spec["nodeName"] = node_name
        obj["spec"] = spec
        obj["status"] = {"phase": phase}
        if phase == "Running":
            obj["status"]["containerStatuses"] = [
                {
                    "name": "main", "image": "busybox", "imageID": "docker.io/library/busybox",
                    "ready": True, "started": True,
                    "restartCount": 0, "state": {"running": {"startedAt": now()}},
                }
            ]  # fmt: skip
        if conditions is not None:
            obj["status"]["conditions"] = merge_conditions(conditions, {})
        return self.create("pods", obj, namespace=namespace)

    def delete_pod(self, name: str, namespace: str = "default") -> dict[str, Any]:
        """Delete a Pod; returns its last state."""
        return self.delete("pods", name, namespace=namespace)

    # ------------------------------------------------------------------ object API: generic

    def create(
        self, resource: str, obj: Mapping[str, Any], *, namespace: str = ""
    ) -> dict[str, Any]:
        """Store a new object of ``resource`` (``"nodes"``, ``"pods"``, ``"namespaces"``,
        ``"events"``); fills in uid, creationTimestamp and resourceVersion. Returns the stored
        object.

        Raises:
            FakeKubeAPIError: 409 if it exists, 400/422 for a malformed object.
            ValueError: an unknown resource.
        """
        res = resource_named(resource)
        return self._create(res, namespace, dict(obj), admit=False).load()

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
        nothing. Returns the stored object.

        ``mutate`` runs outside the server's locks, on a fresh copy; when another write lands
        in between, it runs again on the newer object (``GuaranteedUpdate``).
        """
        res = resource_named(resource)

        def change(obj: dict[str, Any]) -> dict[str, Any]:
            meta = obj.setdefault("metadata", {})
            for key, value in (("labels", labels), ("annotations", annotations)):
                if value is not None:
                    meta[key] = dict(value)
                    if not value:
                        del meta[key]
            if conditions is not None:
                status = obj.setdefault("status", {})
                status["conditions"] = merge_conditions(conditions, status)
            if mutate is not None:
                mutate(obj)
            return obj

        return self._update(res, namespace, name, None, change).load()

    def delete(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """Delete an object; returns its last state (at the deletion's revision)."""
        return self._delete(resource_named(resource), namespace, name).load()

    def get(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """The stored object (with kind and apiVersion)."""
        res = resource_named(resource)
        return self._get(res, namespace, name).load()

    def list(
        self, resource: str, *, namespace: str = "", label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """The stored objects of ``resource`` matching, sorted by namespace and name."""
        res = resource_named(resource)
        records, _ = self._tracker.list(
            res.plural, namespace, self._matcher(res, label_selector, "")
        )
        return [r.load() for r in records]

    # ----------------------------------------------------------------- verbs (shared by HTTP)

    @staticmethod
    def _key(res: Resource, namespace: str, name: str) -> Key:
        if res.namespaced and not namespace:
            raise bad_request(f"{res.plural} are namespaced: a namespace is required")
        return (res.plural, namespace if res.namespaced else "", name)

    def _get(self, res: Resource, namespace: str, name: str) -> Record:
        try:
            return self._tracker.get(self._key(res, namespace, name))
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def _create(self, res: Resource, namespace: str, obj: Any, *, admit: bool) -> Record:
        namespace, name, prepared = prepare_create(res, namespace, obj)
        if admit and res.namespaced:
            # NamespaceLifecycle admission: no objects in a namespace that does not exist.
            try:
                self._tracker.get(("namespaces", "", namespace))
            except ObjectNotFoundError:
                raise not_found("namespaces", namespace) from None
        key = self._key(res, namespace, name)
        try:
            return self._tracker.create(key, lambda rev: encode(res, namespace, prepared, rev))
        except ObjectExistsError:
            raise already_exists(res.plural, name) from None

    def _update(
        self, res: Resource, namespace: str, name: str, subresource: str | None, change: _Change
    ) -> Record:
        """GuaranteedUpdate: read, compute the new state outside the lock, write if the object
        is still the one read, else retry on the newer one.

        ``subresource``: None applies ``change`` as is (the test API); ``""`` and ``"status"``
        apply the status subresource rule. A ``metadata.resourceVersion`` in the changed object
        that differs from the stored one is a precondition: 409 StaleRevisionError.
        """
        key = self._key(res, namespace, name)
        while True:
            current = self._get(res, namespace, name)
            before = current.body()
            desired = change(current.body())
            if not isinstance(desired, dict) or not isinstance(desired.get("metadata"), dict):
                raise bad_request("the object must be a JSON object with metadata")
            wanted = str(desired["metadata"].get("resourceVersion") or "")
            if wanted and wanted != str(current.revision):
                raise conflict(res.plural, name)
            if subresource is not None:
                desired = split_status(current.body(), desired, status=subresource == "status")
            keep_server_fields(name, key[1], before, desired)
            if desired == before:
                return current  # a write that changes nothing writes nothing
            try:
                return self._tracker.update(
                    key, current.revision, functools.partial(encode, res, key[1], desired)
                )
            except StaleRevisionError:
                continue  # written in between: compute again from the newer object
            except ObjectNotFoundError:
                raise not_found(res.plural, name) from None

    def _delete(self, res: Resource, namespace: str, name: str) -> Record:
        key = self._key(res, namespace, name)
        if res.plural == "namespaces":
            if name in _UNDELETABLE:
                raise FakeKubeAPIError(
                    403, "Forbidden", f'namespaces "{name}" is forbidden: this namespace may not '
                    "be deleted", name=name, kind="namespaces",
                )  # fmt: skip
            self._get(res, "", name)
            # The namespace controller's work, done at once: its objects go first.
            for plural in ("pods", "events"):
                for child in self._tracker.keys(plural):
                    if child[1] == name:
                        with contextlib.suppress(ObjectNotFoundError):
                            self._tracker.delete(child)
        try:
            return self._tracker.delete(key)
        except ObjectNotFoundError:
            raise not_found(res.plural, name) from None

    def _matcher(self, res: Resource, label_selector: str, field_selector: str) -> _Matcher | None:
        try:
            selector = labels.parse(label_selector) if label_selector else None
        except ValueError as exc:
            raise bad_request(f"unable to parse requirement: {exc}") from exc
        wanted: builtins.list[tuple[str, str, bool]] = []
        for term in filter(None, (t.strip() for t in field_selector.split(","))):
            match = _FIELD_TERM.fullmatch(term)
            if match is None:
                raise bad_request(f"invalid field selector: {term!r}")
            field, op, value = match.groups()
            if field not in res.fields:
                raise bad_request(f'field label not supported: "{field}"')
            wanted.append((field, value, op != "!="))
        if selector is None and not wanted:
            return None
        matches = selector.matches if selector is not None else None

        def filt(record: Record) -> bool:
            if matches is not None and not matches(record.labels):
                return False
            fields = record.fields
            return all((fields.get(f, "") == v) is eq for f, v, eq in wanted)

        return filt

    # ---------------------------------------------------------------------- HTTP handling

    def handle(self, handler: Handler, method: str) -> None:
        """Serve one request (called on the connection's thread)."""
        content_type = JSON
        try:
            body = handler.read_body() if method in ("POST", "PUT", "PATCH") else b""
            rt = route(handler.path)
            accept = parse_accept(handler.headers.get("Accept"))
            if rt.resource is None:
                self._record(method, rt, "get")
                code, payload, content_type = self._serve_fixed(method, rt, accept)
            else:
                verb = verb_for(method, rt)
                self._record(method, rt, verb)
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

    def _record(self, method: str, rt: Route, verb: str) -> None:
        res = rt.resource.plural if rt.resource is not None else ""
        with self._stats_lock:
            self._counts[(verb, res)] += 1
            self.requests.append(
                RequestRecord(
                    method, rt.path, verb, res, rt.namespace, rt.name, rt.subresource, rt.query
                )
            )

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
                doc = discovery.api_versions(f"{self._host}:{self._port}")
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
            record = self._get(res, namespace, name)
            if version is None:
                return 200, record.full()
            doc = tables.table(
                res, [record.load()], resource_version=str(record.revision), version=version,
                include=tables.include_object(rt.query),
            )  # fmt: skip
            return 200, dumps(doc).encode()
        if verb == "delete":
            return 200, self._delete(res, namespace, name).full()
        if verb == "patch":
            return 200, self._update(
                res, namespace, name, sub, lambda cur: patch.apply(content_type, cur, body)
            ).full()
        try:
            sent = json.loads(body) if body else None
        except ValueError as exc:
            raise bad_request(f"the request body is not JSON: {exc}") from exc
        if verb == "create":
            return 201, self._create(res, namespace, sent, admit=True).full()
        if not isinstance(sent, dict) or not isinstance(sent.get("metadata"), dict):
            raise bad_request("the request body must be a JSON object with metadata")
        if sent["metadata"].get("name") not in (None, name):
            raise bad_request(f"the name of the object does not match the URL ({name!r})")
        replacement: dict[str, Any] = sent
        return 200, self._update(res, namespace, name, sub, lambda _: replacement).full()

    def _list_body(
        self, res: Resource, namespace: str, query: Mapping[str, str], version: str | None
    ) -> bytes:
        matches = self._matcher(res, query.get("labelSelector", ""), query.get("fieldSelector", ""))
        rv = query.get("resourceVersion", "")
        if rv and rv != "0" and query.get("resourceVersionMatch") == "Exact":
            wanted = _parse_revision(rv)
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
        matches = self._matcher(res, query.get("labelSelector", ""), query.get("fieldSelector", ""))
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
        initial = _flag(send_initial) if send_initial is not None else rv in ("", "0")
        since = None if initial or rv in ("", "0") else _parse_revision(rv)
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
            if watcher.ended == "stop":
                raise FakeKubeAPIError(503, "ServiceUnavailable", "the server is shutting down")
            handler.start_stream()
            stream(
                handler.write_chunk, watcher, render, deadline=deadline,
                bookmark_interval=self._bookmark_interval if bookmarks else None,
                paused=self._faults.paused,
                send_bookmark=lambda: self._tracker.send_bookmark(watcher),
            )  # fmt: skip
        except OSError:
            log.debug("kube-api: watch client went away")
        finally:
            self._tracker.unwatch(watcher)
