"""Listers: read-only, selector-aware views of an informer's indexer; the GPU lister.

Mirrors client-go ``tools/cache/listers.go`` (``ListAll``, ``ListAllByNamespace``), the generic
``listers.ResourceIndexer[T]`` and, for GPUs, a generated lister::

    lister = factory.device().v1alpha1().gpus().lister()
    gpu = lister.get("gpu-0")                       # NotFoundError if not cached
    ready_rack_a = lister.list("rack=a")            # or labels.parse("rack=a")

A lister answers ``get``/``list`` from the local cache, never from
the server, and reports a missing object with the very error the clientset raises
(``NotFoundError``: ``gpus.device.nvidia.com "gpu-9" not found``), so code can switch between a
live client and a lister without changing its error handling.

Sharing: the objects returned are the cached objects themselves, shared with the cache and with
every other reader. GPUs are immutable, so they cannot be corrupted. For mutable object types
(for example Kubernetes client models) callers must not mutate what a lister returns; copy first.

Blocking: every call takes the store's lock briefly (a dict lookup, or a copy of a list of
references); label matching runs after the lock is released.

Freshness: a lister is as fresh as its informer's cache, which is eventually consistent. Before an
informer has synced, a lister may be empty or partial.
"""

from __future__ import annotations

import builtins
import logging
from collections.abc import Callable, Iterable
from typing import Generic, TypeVar

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU, RESOURCE
from nvinformers.cache import NAMESPACE_INDEX, Indexer, KeyedIndexer, split_meta_namespace_key
from nvinformers.errors import GROUP, NotFoundError
from nvinformers.meta import Object

__all__ = ["Lister", "NamespaceLister", "SelectorLike", "GPULister"]

_LOG = logging.getLogger("nvinformers.listers")

T = TypeVar("T", bound=Object)

#: What ``list`` accepts: a parsed selector, a selector string (``"rack=a,!draining"``), or None
#: (everything).
SelectorLike = labels.Selector | str | None


def _as_selector(selector: SelectorLike) -> labels.Selector | None:
    """Return the selector to match with, or None when it selects everything."""
    if selector is None:
        return None
    if isinstance(selector, str):
        if not selector:
            return None
        selector = labels.parse(selector)
    # client-go short-circuits labels.Everything(): no per-object label reads at all.
    if selector.empty():
        return None
    return selector


def _filter(objs: Iterable[T], selector: labels.Selector | None) -> list[T]:
    if selector is None:
        return objs if isinstance(objs, list) else list(objs)
    if selector is labels.nothing():
        return []  # client-go: labels.Nothing() selects nothing, without reading any labels
    matches = selector.matches
    return [obj for obj in objs if matches(obj.metadata.labels)]


def _getter(indexer: Indexer[T]) -> Callable[[str], T | None]:
    # Bind straight to the thread-safe store when we can: one Python call less on the hottest
    # read path (lister.get runs once per reconcile).
    if isinstance(indexer, KeyedIndexer):
        get: Callable[[str], T | None] = indexer.thread_safe_store.get
        return get
    return indexer.get_by_key


class Lister(Generic[T]):
    """Read-only access to one resource in an indexer (client-go generic ``ResourceIndexer``).

    Keys: for cluster-scoped resources the indexer must key objects by name (for GPUs:
    :func:`~nvinformers.cache._store.cluster_scoped_key_func`, which the GPU informer uses); for
    namespaced resources by ``namespace/name``
    (:func:`~nvinformers.cache._store.meta_namespace_key_func`).

    See the module docstring for sharing, blocking and freshness.
    """

    __slots__ = (
        "_get_by_key",
        "_group",
        "_indexer",
        "_namespaced",
        "_resource",
        "_warned_no_index",
    )

    def __init__(
        self,
        indexer: Indexer[T],
        *,
        resource: str,
        namespaced: bool = False,
        group: str = GROUP,
    ) -> None:
        """Create a lister over ``indexer``.

        Args:
            indexer: the informer's indexer (``informer.get_indexer()``).
            resource: the plural resource name used in errors (``"gpus"``; qualified as
                :func:`nvinformers.errors.qualify` does, so ``gpus.device.nvidia.com``).
            namespaced: whether the resource is namespaced (enables :meth:`namespaced`).
            group: qualifies the resource in not-found errors (the Device API's group by
                default; ``""`` for Kubernetes core resources).

        Raises:
            ValueError: ``resource`` is empty.
        """
        if not resource:
            raise ValueError("resource must be a non-empty plural resource name, e.g. 'gpus'")
        self._indexer = indexer
        self._resource = resource
        self._group = group
        self._namespaced = namespaced
        self._get_by_key = _getter(indexer)
        self._warned_no_index = False

    @property
    def group(self) -> str:
        """The API group qualifying the resource in errors ("" for Kubernetes core)."""
        return self._group

    @property
    def resource(self) -> str:
        """The plural resource name (``"gpus"``)."""
        return self._resource

    @property
    def is_namespaced(self) -> bool:
        """Whether the resource is namespaced."""
        return self._namespaced

    @property
    def indexer(self) -> Indexer[T]:
        """The underlying indexer (shared with the informer: do not write to it)."""
        return self._indexer

    def list(self, selector: SelectorLike = None) -> builtins.list[T]:
        """Return the cached objects whose labels match ``selector``.

        Args:
            selector: a :class:`nvinformers.labels.Selector`, a selector string parsed with
                :func:`nvinformers.labels.parse`, or None / ``""`` for every object.

        Returns:
            A new list of shared objects, in no particular order.

        Raises:
            nvinformers.labels.SelectorParseError: ``selector`` is a string that does not parse.
        """
        return _filter(self._indexer.list(), _as_selector(selector))

    def get(self, name: str) -> T:
        """Return the cached object called ``name``.

        For a namespaced resource ``name`` is looked up as a store key, ``namespace/name``
        (client-go's generic lister does the same); prefer ``namespaced(ns).get(name)``.

        Args:
            name: the object's name (cluster-scoped) or key (namespaced).

        Returns:
            The shared cached object.

        Raises:
            NotFoundError: no such object in the cache
                (``gpus.device.nvidia.com "gpu-9" not found``), the same error the clientset
                raises.
        """
        obj = self._get_by_key(name)
        if obj is None:
            if self._namespaced:
                _, name = split_meta_namespace_key(name)
            raise NotFoundError.for_object(self._resource, name, group=self._group)
        return obj

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        """Return the objects indexed under ``value`` in the index ``index_name``.

        Raises:
            ValueError: the indexer has no index called ``index_name``.
        """
        return self._indexer.by_index(index_name, value)

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Return the keys indexed under ``value`` in the index ``index_name``.

        Raises:
            ValueError: the indexer has no index called ``index_name``.
        """
        return self._indexer.index_keys(index_name, value)

    def namespaced(self, namespace: str) -> NamespaceLister[T]:
        """Return a lister restricted to ``namespace`` (``""`` means all namespaces).

        Raises:
            ValueError: the resource is cluster-scoped.
        """
        if not self._namespaced:
            raise ValueError(f"{self._resource} is cluster-scoped: it has no namespaced lister")
        return NamespaceLister(self, namespace)

    def _list_namespace(self, namespace: str, selector: labels.Selector | None) -> builtins.list[T]:
        # client-go ListAllByNamespace: NamespaceAll lists everything; otherwise use the
        # namespace index when the informer has one, else scan (and say so once).
        indexer = self._indexer
        if not namespace:
            return _filter(indexer.list(), selector)
        if NAMESPACE_INDEX in indexer.get_indexers():
            return _filter(indexer.by_index(NAMESPACE_INDEX, namespace), selector)
        if not self._warned_no_index:
            self._warned_no_index = True
            _LOG.warning(
                "%s lister: the indexer has no %r index; listing by namespace scans every "
                "object (add the index with informer.add_indexers({%r: "
                "meta_namespace_index_func}))",
                self._resource,
                NAMESPACE_INDEX,
                NAMESPACE_INDEX,
            )
        objs = [obj for obj in indexer.list() if (obj.metadata.namespace or "") == namespace]
        return _filter(objs, selector)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(resource={self._resource!r}, indexer={self._indexer!r})"


class NamespaceLister(Generic[T]):
    """A :class:`Lister` restricted to one namespace (client-go ``<Kind>NamespaceLister``).

    Obtain it with ``lister.namespaced(ns)``. Same sharing, blocking and freshness contract as
    :class:`Lister`.
    """

    __slots__ = ("_lister", "_namespace")

    def __init__(self, lister: Lister[T], namespace: str) -> None:
        self._lister = lister
        self._namespace = namespace

    @property
    def namespace(self) -> str:
        """The namespace (``""`` means all namespaces)."""
        return self._namespace

    def list(self, selector: SelectorLike = None) -> builtins.list[T]:
        """Return the cached objects of this namespace whose labels match ``selector``.

        Uses the ``namespace`` index when the indexer has it, else scans every object.

        Raises:
            nvinformers.labels.SelectorParseError: ``selector`` is a string that does not parse.
        """
        return self._lister._list_namespace(self._namespace, _as_selector(selector))

    def get(self, name: str) -> T:
        """Return the cached object ``name`` of this namespace.

        Raises:
            NotFoundError: no such object in the cache (``<resource> "<name>" not found``).
        """
        lister = self._lister
        key = f"{self._namespace}/{name}" if self._namespace else name
        obj = lister._get_by_key(key)
        if obj is None:
            raise NotFoundError.for_object(lister.resource, name, group=lister.group)
        return obj

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(resource={self._lister.resource!r}, "
            f"namespace={self._namespace!r})"
        )


class GPULister(Lister[GPU]):
    """Read-only access to the GPUs in an informer's cache (cluster-scoped, keyed by name).

    ``get(name) -> GPU`` raises :class:`nvinformers.errors.NotFoundError`
    (``gpus.device.nvidia.com "gpu-9" not found``) exactly like the clientset;
    ``list(selector=None) -> list[GPU]`` filters by labels. See :class:`Lister` for the rest, and
    for the key function: keyed by name alone, a GPU a server stamped with ``namespace: default``
    is still found by ``get("gpu-0")``.
    """

    __slots__ = ()

    def __init__(self, indexer: Indexer[GPU]) -> None:
        """Create a GPU lister over ``indexer`` (``informer.get_indexer()``)."""
        super().__init__(indexer, resource=RESOURCE, namespaced=False)
