"""``FakeKubeAPIServer``: the fake Kubernetes API server's façade — lifecycle, a Python object
API for tests, inspection and fault injection.

The parts it joins: :mod:`._http` (connections), :mod:`._handlers` (endpoints, request faults),
:mod:`._registry` (the verbs), :mod:`nvinformers.testing.tracker` (revisioned storage and
watches, the store every fake shares). See the package docstring for what is served.
"""

from __future__ import annotations

import builtins
import contextlib
import json
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Final, Self

from nvinformers.testing.kube_api._errors import FakeKubeAPIError
from nvinformers.testing.kube_api._handlers import (
    STOPPING,
    TIMED_OUT,
    APIHandlers,
    RequestFaults,
    RequestLog,
    RequestRecord,
)
from nvinformers.testing.kube_api._http import HTTPServer
from nvinformers.testing.kube_api._registry import (
    Record,
    Registry,
    merge_conditions,
    new_object,
    now,
)
from nvinformers.testing.kube_api._resources import resource_named
from nvinformers.testing.tracker import ObjectTracker

__all__ = ["FakeKubeAPIServer", "RequestRecord", "DEFAULT_NAMESPACES"]

#: Namespaces a new server has (a real cluster's first two).
DEFAULT_NAMESPACES: Final = ("default", "kube-system")
_KUBECONFIG_NAME: Final = "nvinformers-fake"


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
        self._registry = Registry(self._tracker)
        self._faults = RequestFaults()
        self._log = RequestLog()
        self._handlers = APIHandlers(
            self._registry, self._faults, self._log,
            bookmark_interval=bookmark_interval, address=lambda: f"{self._host}:{self._port}",
        )  # fmt: skip
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
        httpd = HTTPServer((self._host, self._port), self._handlers)
        self._port = httpd.server_address[1]
        self._httpd = httpd
        httpd.start()
        return self

    def stop(self) -> None:
        """End every watch, close every connection and join every thread (idempotent)."""
        httpd = self._httpd
        if httpd is None:
            return
        self._tracker.end_watches(STOPPING, close=True)
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

    @property
    def requests(self) -> builtins.list[RequestRecord]:
        """The last 1,000 requests, oldest first (a copy)."""
        return self._log.snapshot()

    def request_count(self, verb: str, resource: str | None = None) -> int:
        """How many ``verb`` requests (list, watch, get, create, update, patch, delete) arrived,
        for ``resource`` or for all resources."""
        return self._log.count(verb, resource)

    def last_request(self, verb: str, resource: str | None = None) -> RequestRecord | None:
        """The most recent request of ``verb`` (and ``resource``), or None."""
        return self._log.last(verb, resource)

    def wait_for_watches(self, count: int, timeout: float = 10.0) -> bool:
        """Block until at least ``count`` watches are open; False on timeout."""
        return self._tracker.wait_for_watches(count, timeout)

    # ---------------------------------------------------------------------- fault injection

    def end_watches(self) -> int:
        """End every open watch cleanly after what it has queued (as a server-side timeout
        does); returns how many."""
        return self._tracker.end_watches(TIMED_OUT, drain=True)

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
        return self._registry.create(res, namespace, dict(obj), admit=False).load()

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

        return self._registry.update(res, namespace, name, None, change).load()

    def delete(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """Delete an object; returns its last state (at the deletion's revision)."""
        return self._registry.delete(resource_named(resource), namespace, name).load()

    def get(self, resource: str, name: str, *, namespace: str = "") -> dict[str, Any]:
        """The stored object (with kind and apiVersion)."""
        res = resource_named(resource)
        return self._registry.get(res, namespace, name).load()

    def list(
        self, resource: str, *, namespace: str = "", label_selector: str = ""
    ) -> builtins.list[dict[str, Any]]:
        """The stored objects of ``resource`` matching, sorted by namespace and name."""
        res = resource_named(resource)
        records, _ = self._registry.list(res, namespace, label_selector, "")
        return [r.load() for r in records]
