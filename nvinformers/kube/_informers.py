"""Shared informers and listers of Kubernetes API objects (Nodes, Pods, any list function; an
example is in :mod:`nvinformers.kube`).

The informers are :class:`nvinformers.cache.SharedIndexInformer` over a
:class:`~nvinformers.kube._listwatch.KubeListWatch`: objects are keyed ``namespace/name`` (the
name alone for cluster-scoped kinds) and indexed by namespace; everything the GPU informers
guarantee holds (see :mod:`nvinformers.cache._shared_informer`).

Listers raise the API server's own not-found error: ``nodes "node-9" not found`` for core
resources, ``deployments.apps "web" not found`` for grouped ones (pass the resource qualified
with its group).
"""

from __future__ import annotations

import functools
import weakref
from typing import Any, Final

from nvinformers.cache import (
    NAMESPACE_INDEX,
    Indexer,
    Indexers,
    SharedIndexInformer,
    TweakListOptionsFunc,
    meta_namespace_index_func,
    meta_namespace_key_func,
)
from nvinformers.errors import NotFoundError
from nvinformers.kube._listwatch import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_REQUEST_TIMEOUT,
    KubeListWatch,
    ListFunc,
)
from nvinformers.kube._objects import KubeObject
from nvinformers.listers import Lister, NamespaceLister

__all__ = [
    "new_informer",
    "new_node_informer",
    "new_pod_informer",
    "lister_for",
    "KubeLister",
    "KubeNamespaceLister",
    "not_found",
]

#: Namespaced-ness of the core resources the helpers know, for :func:`lister_for`.
_CORE_NAMESPACED: Final[dict[str, bool]] = {
    "nodes": False,
    "namespaces": False,
    "persistentvolumes": False,
    "pods": True,
    "services": True,
    "endpoints": True,
    "configmaps": True,
    "secrets": True,
    "events": True,
    "persistentvolumeclaims": True,
    "serviceaccounts": True,
}

# What new_informer knows about the informers it built: (resource, namespaced).
_BUILT: weakref.WeakKeyDictionary[SharedIndexInformer[Any], tuple[str, bool]] = (
    weakref.WeakKeyDictionary()
)


def not_found(resource: str, name: str) -> NotFoundError:
    """The API server's not-found error for Kubernetes resources.

    ``resource`` is printed as given: ``"nodes"`` for core resources, ``"deployments.apps"`` for
    grouped ones.
    """
    return NotFoundError.for_object(resource, name, group="")


def new_informer(
    list_func: ListFunc,
    *,
    resource: str,
    namespaced: bool,
    name: str | None = None,
    namespace: str = "",
    field_selector: str = "",
    tweak_list_options: TweakListOptionsFunc | None = None,
    indexers: Indexers | None = None,
    request_timeout: float = DEFAULT_REQUEST_TIMEOUT,
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT,
    strip_managed_fields: bool = True,
    **informer_options: Any,
) -> SharedIndexInformer[KubeObject]:
    """Build a shared informer over any official-client list function.

    Args:
        list_func: e.g. ``CoreV1Api(api_client).list_node``,
            ``AppsV1Api(api_client).list_deployment_for_all_namespaces``.
        resource: the plural resource (``"nodes"``; ``"deployments.apps"`` for grouped ones),
            for names, logs and errors.
        namespaced: whether the resource is namespaced (for :func:`lister_for`).
        name: the informer's name in logs, metrics and thread names (default: ``resource``).
        namespace, field_selector, tweak_list_options, request_timeout, connect_timeout,
            strip_managed_fields: as for :class:`~nvinformers.kube.KubeListWatch`.
        indexers: extra indexes; the ``namespace`` index is always added.
        **informer_options: passed to :class:`SharedIndexInformer` (``resync_period``,
            ``watch_inactivity_timeout``, ``backoff``, ``transform``, ``registry``...).

    Returns:
        A new, unstarted informer of :class:`KubeObject` keyed ``namespace/name``.

    Raises:
        ValueError: ``resource`` is empty, or an option is invalid.
    """
    if not resource:
        raise ValueError("resource must be the plural resource name, e.g. 'nodes'")
    lw = KubeListWatch(
        list_func,
        resource=resource,
        namespace=namespace,
        field_selector=field_selector,
        tweak_list_options=tweak_list_options,
        request_timeout=request_timeout,
        connect_timeout=connect_timeout,
        strip_managed_fields=strip_managed_fields,
    )
    all_indexers: Indexers = {NAMESPACE_INDEX: meta_namespace_index_func}
    all_indexers.update(indexers or {})
    informer: SharedIndexInformer[KubeObject] = SharedIndexInformer(
        lw,
        name=name or resource,
        indexers=all_indexers,
        key_func=meta_namespace_key_func,
        **informer_options,
    )
    _BUILT[informer] = (resource, namespaced)
    return informer


def _core_v1(api_client: Any) -> Any:
    from kubernetes.client import CoreV1Api

    return CoreV1Api(api_client)


def new_node_informer(api_client: Any, **options: Any) -> SharedIndexInformer[KubeObject]:
    """A shared informer of Nodes (cluster-scoped, keyed by name).

    Args:
        api_client: a ``kubernetes.client.ApiClient``.
        **options: as for :func:`new_informer` (``tweak_list_options``, ``resync_period``...).
    """
    return new_informer(
        _core_v1(api_client).list_node, resource="nodes", namespaced=False, **options
    )


def new_pod_informer(
    api_client: Any, namespace: str = "", **options: Any
) -> SharedIndexInformer[KubeObject]:
    """A shared informer of Pods of one namespace, or of all namespaces (``namespace=""``).

    For a node-local daemon, pass ``field_selector=f"spec.nodeName={node}"`` so that only that
    node's Pods are listed, watched and cached.

    Args:
        api_client: a ``kubernetes.client.ApiClient``.
        namespace: the namespace to watch; ``""`` watches every namespace.
        **options: as for :func:`new_informer`.
    """
    core = _core_v1(api_client)
    if namespace:
        list_func = functools.partial(core.list_namespaced_pod, namespace)
    else:
        list_func = core.list_pod_for_all_namespaces
    return new_informer(list_func, resource="pods", namespaced=True, **options)


#: A lister of Kubernetes objects: the generic lister with the core group's error messages.
KubeLister = Lister[KubeObject]
KubeNamespaceLister = NamespaceLister[KubeObject]


def lister_for(
    informer: SharedIndexInformer[KubeObject] | Indexer[KubeObject],
    resource: str | None = None,
    *,
    namespaced: bool | None = None,
) -> KubeLister:
    """Return a lister over ``informer``'s cache.

    Args:
        informer: an informer (or its indexer).
        resource: the plural resource for errors; default: the one the informer was built with
            by :func:`new_informer`.
        namespaced: default: what the informer was built with, else known for core resources.

    Raises:
        ValueError: ``resource`` or ``namespaced`` is not given and cannot be inferred.
    """
    built = _BUILT.get(informer) if isinstance(informer, SharedIndexInformer) else None
    if resource is None:
        if built is None:
            raise ValueError(
                "lister_for: pass resource= (the informer was not built by new_informer)"
            )
        resource = built[0]
    if namespaced is None:
        if built is not None and built[0] == resource:
            namespaced = built[1]
        elif resource in _CORE_NAMESPACED:
            namespaced = _CORE_NAMESPACED[resource]
        else:
            raise ValueError(f"lister_for: pass namespaced= for resource {resource!r}")
    indexer = informer.get_indexer() if isinstance(informer, SharedIndexInformer) else informer
    return Lister(indexer, resource=resource, namespaced=namespaced, group="")
