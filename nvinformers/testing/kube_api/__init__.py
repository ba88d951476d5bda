"""A local Kubernetes API server for tests and examples: real HTTP/1.1 on loopback, enough of the
API for the official client, kubectl and kopf.

:class:`FakeKubeAPIServer` serves namespaces, nodes, pods and events (core/v1) the way the
Kubernetes API server does::

    with FakeKubeAPIServer() as server:
        server.add_node("node-1", labels={"gpu": "true"}, conditions={"Ready": "True"})
        server.write_kubeconfig(tmp_path / "kubeconfig")   # for kubectl, kopf, load_kube_config
        api = server.api_client()                          # or the official client directly
        ...
        server.end_watches()            # every watch ends cleanly; clients re-watch

What it serves (one module per concept):

* Discovery (:mod:`._resources`): ``/version``, ``/api``, ``/api/v1``, ``/apis``, and aggregated
  discovery (``apidiscovery.k8s.io`` v2/v2beta1) for clients that ask for it first, as kubectl
  does; health (``/healthz``, ``/livez``, ``/readyz``).
* Resources (:mod:`._resources`, :mod:`._http`, :mod:`._handlers`, :mod:`._registry`):
  ``/api/v1/<plural>[/<name>[/status]]`` and
  ``/api/v1/namespaces/<ns>/<plural>[/<name>[/status]]``; verbs list, watch, get, create (POST,
  ``generateName`` included), update (PUT), patch (PATCH), delete. Namespaces ``default`` and
  ``kube-system`` exist from the start; a create over HTTP in a namespace that does not exist is
  404, as the API server's admission answers. The ``status`` subresource changes only
  ``status``; the main resource keeps the stored ``status``.
* Patches (:mod:`nvinformers.testing._patch`): JSON merge, strategic merge (keyed lists of the
  core types merge by key) and JSON patch.
* Storage (:mod:`._registry` over :mod:`nvinformers.testing.tracker`, the store every fake
  shares): one global integer ``resourceVersion``, a bounded history, a write that changes
  nothing writes nothing, ``metadata.resourceVersion`` in a write is a precondition (409
  Conflict when stale).
* Lists: ``{"kind": "NodeList", ...}`` with items without ``kind`` / ``apiVersion``, as the API
  server sends them; label selectors and equality field selectors (``metadata.name``,
  ``metadata.namespace``, ``spec.unschedulable`` for nodes, ``spec.nodeName`` and
  ``status.phase`` for pods...). Every list serves the latest state, complete (``limit`` is
  ignored, as for the API server's lists from its watch cache); an ``Exact`` list of a
  compacted revision is 410.
* Tables (:mod:`._tables`): ``Accept: application/json;as=Table;v=v1;g=meta.k8s.io`` gets
  kubectl's columns, ``-o wide`` ones included.
* Watches (:mod:`._handlers`): chunked, one JSON event per line. From ``""`` / ``"0"`` (or with
  ``sendInitialEvents=true``): an ADDED burst of the current state, sorted by key; with
  ``sendInitialEvents`` (which requires ``resourceVersionMatch=NotOlderThan``) then a BOOKMARK
  annotated ``k8s.io/initial-events-end: "true"``. From a revision: the history after it, then
  live changes, with no gap. A revision older than the history gets an in-stream ``ERROR``
  event carrying a 410 ``Status`` and the stream ends, as the API server does. DELETED carries
  the last state with the deletion's revision. Selectors follow the watch cache: an object that
  stops matching arrives as DELETED, one that starts matching as ADDED. ``timeoutSeconds`` ends
  the stream cleanly. BOOKMARKs (when ``allowWatchBookmarks=true``) on
  :meth:`~FakeKubeAPIServer.send_bookmarks` and every ``bookmark_interval`` seconds, queued in
  order with the events.
* Errors are ``Status`` objects with the API server's codes and reasons (:mod:`._errors`).

Fault injection and inspection (thread-safe, usable while clients are connected):
:meth:`~FakeKubeAPIServer.end_watches`, :meth:`~FakeKubeAPIServer.drop_next_events`,
:meth:`~FakeKubeAPIServer.compact`, :meth:`~FakeKubeAPIServer.fail_next`,
:meth:`~FakeKubeAPIServer.hold_watch_requests`, :meth:`~FakeKubeAPIServer.pause_delivery` /
:meth:`~FakeKubeAPIServer.resume_delivery`, request counters and a log of recent requests.

Threads (:mod:`._http`): ``nvinformers-kube-api-serve`` accepts connections; each connection has
its own ``nvinformers-kube-api-conn-<n>`` thread (a watch holds one for its lifetime). All are
joined by :meth:`~FakeKubeAPIServer.stop`, which first ends every watch. No thread sleeps:
watches wait on their own condition variable.

The ``nvinformers fake-kube-apiserver`` command (:mod:`._command`) runs one with a few Nodes and
writes a kubeconfig for it.
"""

from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.testing.kube_api._errors import FakeKubeAPIError
from nvinformers.testing.kube_api._server import (
    DEFAULT_NAMESPACES,
    FakeKubeAPIServer,
    RequestRecord,
)

__all__ = [
    "FakeKubeAPIServer",
    "FakeKubeAPIError",
    "RequestRecord",
    "DEFAULT_NAMESPACES",
    "INITIAL_EVENTS_END_ANNOTATION",
]
