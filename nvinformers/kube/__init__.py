"""The Kubernetes API as an informer source (optional extra ``kube``).

The same :class:`~nvinformers.cache.SharedIndexInformer`, listers and controllers that serve GPUs
from the Device API serve Kubernetes objects fetched with the official ``kubernetes`` client::

    kubernetes.config.load_kube_config()          # or load_incluster_config()
    api = kubernetes.client.ApiClient()
    nodes = new_node_informer(api, tweak_list_options=lambda o: replace(o, label_selector="gpu"))
    nodes.add_event_handler(ResourceEventHandlerFuncs(on_update=lambda old, new: ...))
    threading.Thread(target=nodes.run, args=(stop,), name="nodes-informer").start()
    nodes.wait_for_sync(30)
    node = lister_for(nodes).get("node-1")          # KubeObject; NotFoundError if absent

* :mod:`~nvinformers.kube._objects` — :class:`KubeObject`, an immutable view over an object's JSON
  bytes (the cache's memory-lean object type), :class:`KubeList`, :func:`parse_list`,
  :func:`strip_managed_fields`; :mod:`~nvinformers.kube._label_tables` — :class:`Labels`.
* :mod:`~nvinformers.kube._listwatch` — :class:`KubeListWatch`: list and watch through an
  official-client list function, bypassing its model deserialization;
  :mod:`~nvinformers.kube._watch` — :class:`KubeWatch`, :func:`decode_event`;
  :mod:`~nvinformers.kube._status` — HTTP failures as :mod:`nvinformers.errors` (the one place
  they are mapped).
* :mod:`~nvinformers.kube._informers` — :func:`new_informer`, :func:`new_node_informer`,
  :func:`new_pod_informer`, :func:`lister_for`.

Requires the official client: ``pip install nvinformers[kube]``. A test server that speaks the
same protocol is :class:`nvinformers.testing.kube_api.FakeKubeAPIServer`.
"""

try:
    import kubernetes as _kubernetes  # noqa: F401
except ImportError as exc:  # pragma: no cover - exercised only without the extra
    raise ImportError(
        "nvinformers.kube needs the official Kubernetes client: pip install 'nvinformers[kube]'"
    ) from exc

from nvinformers.kube._informers import (
    KubeLister,
    KubeNamespaceLister,
    lister_for,
    new_informer,
    new_node_informer,
    new_pod_informer,
    not_found,
)
from nvinformers.kube._label_tables import EMPTY_LABELS, Labels
from nvinformers.kube._listwatch import KubeListWatch
from nvinformers.kube._objects import (
    Condition,
    KubeList,
    KubeObject,
    ListMeta,
    ObjectMeta,
    parse_list,
    strip_managed_fields,
)
from nvinformers.kube._status import error_from_api_exception, error_from_status
from nvinformers.kube._watch import KubeWatch, decode_event

__all__ = [
    # objects
    "KubeObject",
    "KubeList",
    "ObjectMeta",
    "ListMeta",
    "Labels",
    "Condition",
    "EMPTY_LABELS",
    "parse_list",
    "strip_managed_fields",
    # list-watch
    "KubeListWatch",
    "KubeWatch",
    "decode_event",
    "error_from_status",
    "error_from_api_exception",
    # informers and listers
    "new_informer",
    "new_node_informer",
    "new_pod_informer",
    "lister_for",
    "KubeLister",
    "KubeNamespaceLister",
    "not_found",
]
