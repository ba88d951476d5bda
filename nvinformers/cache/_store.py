"""The object-based store and indexer interfaces, their implementation over keys, and the keys.

Mirrors client-go ``tools/cache/store.go`` and ``index.go``: :class:`Store` is what a reflector
writes into (add / update / delete / replace), :class:`Indexer` adds index queries for listers and
controllers. :class:`KeyedIndexer` implements both by computing each object's key with a key
function and delegating to a :class:`~nvinformers.cache._thread_safe_store.ThreadSafeStore`.

Contract shared by every implementation:

* Objects are stored and handed out by reference. What ``get``/``list``/``by_index`` return is
  shared with the cache and with every other reader: never mutate it. GPUs are immutable, so
  they cannot be corrupted; for mutable object types (Kubernetes client models) callers must copy
  before changing anything.
* All methods are thread-safe. Reads take the store lock briefly; writes hold it while index
  functions run (those must be pure and fast).

Keys, and the tombstone a missed delete turns into, mirror the key helpers of client-go's
``store.go`` and ``controller.go``: :func:`meta_namespace_key_func`,
:func:`deletion_handling_meta_namespace_key_func`, :func:`cluster_scoped_key_func` (the name
alone, for GPUs: some servers stamp ``namespace: default`` on them) and
:func:`split_meta_namespace_key`. A key function is any ``Callable[[Any], str]`` that is pure,
fast and deterministic: the same object must always produce the same key, or the store cannot
find it again to update or delete it. Objects are read through ``obj.metadata.name`` and
``obj.metadata.namespace``, so GPUs and Kubernetes client models (``V1Pod`` and friends) work
alike, or through the readers a class registered with
:func:`nvinformers.meta.register_header_accessors` (``GPU`` does: its ``metadata`` is a view
built on every read, and the informer reads keys and revisions several times per watch event).
"""

from __future__ import annotations

import builtins
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache._thread_safe_store import Indexers, IndexFunc, ThreadSafeStore
from nvinformers.errors import NvInformersError
from nvinformers.meta import header_accessors

__all__ = [
    "Store",
    "Indexer",
    "KeyedIndexer",
    "new_store",
    "new_indexer",
    "KeyFunc",
    "ExplicitKey",
    "KeyFuncError",
    "DeletedFinalStateUnknown",
    "meta_namespace_key_func",
    "deletion_handling_meta_namespace_key_func",
    "cluster_scoped_key_func",
    "split_meta_namespace_key",
    "resource_version_of",
]

T = TypeVar("T")

#: A function that computes the store key of an object (see the module docstring for the rules).
KeyFunc = Callable[[Any], str]


class ExplicitKey(str):
    """A key given directly: every key function in this module returns it unchanged.

    client-go ``cache.ExplicitKey``: lets a caller queue or delete by key when no object exists.
    """

    __slots__ = ()


class KeyFuncError(NvInformersError, ValueError):
    """An object's key cannot be computed: it has no ``metadata``, or an empty or non-string name.

    The message names the object's type and the problem, and hints at the tombstone-aware key
    function when the object is a :class:`DeletedFinalStateUnknown`.
    """


@dataclass(frozen=True, slots=True)
class DeletedFinalStateUnknown(Generic[T]):
    """A delete the informer noticed only on relist: the object vanished while disconnected.

    client-go ``cache.DeletedFinalStateUnknown``, with one change that removes a whole class of
    controller crashes: every delete a handler sees has a key, here or on the object itself, so a
    handler never has to guess the type to find out *what* was deleted::

        def on_delete(obj):
            key = deletion_handling_meta_namespace_key_func(obj)   # works for both forms

    Attributes:
        key: the store key the object was cached under.
        obj: the last state the cache knew, possibly stale (the object may have changed on the
            server before it was deleted), or None when that state is unknown.
    """

    key: str
    obj: T | None


def resource_version_of(obj: Any) -> Any:
    """``obj.metadata.resource_version``, or what the object's registered reader returns.

    Raises:
        AttributeError: ``obj`` has no ``metadata`` (or no resource version in it).
    """
    return header_accessors(type(obj)).resource_version(obj)


def _metadata_of(obj: Any) -> Any:
    metadata = getattr(obj, "metadata", None)
    if metadata is None:
        if isinstance(obj, DeletedFinalStateUnknown):
            raise KeyFuncError(
                f"cannot compute a key for DeletedFinalStateUnknown(key={obj.key!r}): use "
                "deletion_handling_meta_namespace_key_func, or read the tombstone's .key"
            )
        raise KeyFuncError(
            f"cannot compute a key for {type(obj).__name__} object {obj!r:.80}: it has no metadata"
        )
    return metadata


def _name_of(obj: Any, metadata: Any) -> str:
    name = getattr(metadata, "name", None)
    if not name or not isinstance(name, str):
        raise KeyFuncError(
            f"cannot compute a key for {type(obj).__name__} object {obj!r:.80}: "
            f"metadata.name is {name!r} (a non-empty string is required)"
        )
    return name


def meta_namespace_key_func(obj: Any) -> str:
    """Return ``namespace/name`` for ``obj``, or ``name`` when its namespace is empty.

    client-go ``MetaNamespaceKeyFunc``. An :class:`ExplicitKey` is returned unchanged. A
    :class:`DeletedFinalStateUnknown` is *not* unwrapped (use
    :func:`deletion_handling_meta_namespace_key_func` for delete paths). A namespace of None (as
    Kubernetes client models have for cluster-scoped objects) counts as empty.

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object with ``metadata.name`` and ``metadata.namespace``, or an ExplicitKey.

    Returns:
        The key.

    Raises:
        KeyFuncError: ``obj`` has no metadata, or an empty or non-string name.
    """
    accessors = header_accessors(type(obj))
    if accessors.direct:
        name = accessors.name(obj)
        if name and type(name) is str:
            namespace = accessors.namespace(obj)
            return f"{namespace}/{name}" if namespace else name
    if isinstance(obj, ExplicitKey):
        return str(obj)
    metadata = _metadata_of(obj)
    name = _name_of(obj, metadata)
    namespace = getattr(metadata, "namespace", None)
    if namespace:
        return f"{namespace}/{name}"
    return name


def deletion_handling_meta_namespace_key_func(obj: Any) -> str:
    """Like :func:`meta_namespace_key_func`, but a tombstone yields its recorded key.

    client-go ``DeletionHandlingMetaNamespaceKeyFunc``: use it wherever a delete notification's
    object is keyed (``on_delete`` handlers, workqueue producers).

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object, an :class:`ExplicitKey` or a :class:`DeletedFinalStateUnknown`.

    Returns:
        The key.

    Raises:
        KeyFuncError: ``obj`` is not a tombstone and has no metadata or no name.
    """
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return meta_namespace_key_func(obj)


def cluster_scoped_key_func(obj: Any) -> str:
    """Return the object's name alone, ignoring any namespace stamped on it.

    For cluster-scoped resources such as GPUs: some servers stamp ``namespace: default`` on
    objects that have no namespace, and keying by ``namespace/name`` would then make
    ``lister.get("gpu-0")`` miss. A :class:`DeletedFinalStateUnknown` yields its recorded key and
    an :class:`ExplicitKey` is returned unchanged, so this one function serves adds, updates and
    deletes.

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object with ``metadata.name``, an ExplicitKey or a DeletedFinalStateUnknown.

    Returns:
        The name (or the explicit / recorded key).

    Raises:
        KeyFuncError: ``obj`` has no metadata, or an empty or non-string name.
    """
    accessors = header_accessors(type(obj))
    if accessors.direct:
        name = accessors.name(obj)
        if name and type(name) is str:
            return name
    if isinstance(obj, ExplicitKey):
        return str(obj)
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key
    return _name_of(obj, _metadata_of(obj))


def split_meta_namespace_key(key: str) -> tuple[str, str]:
    """Split a store key into ``(namespace, name)``.

    client-go ``SplitMetaNamespaceKey``: ``"name"`` → ``("", "name")``; ``"ns/name"`` →
    ``("ns", "name")``.

    Args:
        key: a key made by :func:`meta_namespace_key_func` or :func:`cluster_scoped_key_func`.

    Returns:
        ``(namespace, name)``; the namespace is ``""`` for cluster-scoped keys.

    Raises:
        ValueError: the key has more than one ``/``.
    """
    parts = key.split("/")
    if len(parts) == 1:
        return "", parts[0]
    if len(parts) == 2:
        return parts[0], parts[1]
    raise ValueError(f"unexpected key format: {key!r}")


class Store(Protocol[T]):
    """A thread-safe, key-addressed collection of objects (client-go ``cache.Store``).

    Keys come from the implementation's key function. Writes are upserts: ``add`` of an existing
    key replaces it, ``update`` of a missing key adds it, ``delete`` of a missing key does
    nothing. Returned objects are shared: never mutate them.
    """

    def add(self, obj: T) -> None:
        """Insert or replace ``obj`` under its key.

        Raises:
            KeyFuncError: the key of ``obj`` cannot be computed.
        """
        ...

    def update(self, obj: T) -> None:
        """Same as :meth:`add`."""
        ...

    def delete(self, obj: T | DeletedFinalStateUnknown[T]) -> None:
        """Remove the object with the key of ``obj`` (a tombstone's recorded key is used as is).

        Raises:
            KeyFuncError: the key of ``obj`` cannot be computed.
        """
        ...

    def list(self) -> builtins.list[T]:
        """Every stored object, in no particular order (a new list of shared objects)."""
        ...

    def list_keys(self) -> builtins.list[str]:
        """Every stored key, in no particular order."""
        ...

    def get(self, obj: T) -> T | None:
        """The stored object with the key of ``obj``, or None.

        Raises:
            KeyFuncError: the key of ``obj`` cannot be computed.
        """
        ...

    def get_by_key(self, key: str) -> T | None:
        """The object stored under ``key``, or None."""
        ...

    def replace(self, objs: Iterable[T], resource_version: str) -> None:
        """Replace the whole content with ``objs`` (taken at ``resource_version``).

        Raises:
            KeyFuncError: the key of one of ``objs`` cannot be computed; nothing changed.
        """
        ...

    def resync(self) -> None:
        """Meaningless for a plain store (kept for client-go parity; queues implement it)."""
        ...


class Indexer(Store[T], Protocol[T]):
    """A :class:`Store` with secondary indices (client-go ``cache.Indexer``).

    Index queries raise ``ValueError`` for an unknown index name.
    """

    def index(self, index_name: str, obj: Any) -> builtins.list[T]:
        """Stored objects sharing at least one value of ``index_name`` with ``obj``."""
        ...

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Keys indexed under ``value`` in ``index_name``."""
        ...

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        """Every value some object is indexed under in ``index_name``."""
        ...

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        """Objects indexed under ``value`` in ``index_name``."""
        ...

    def get_indexers(self) -> Indexers:
        """A copy of the index name → index function map."""
        ...

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes at any time; stored objects are indexed immediately.

        Raises:
            IndexConflictError: one of the names already exists; nothing changed.
        """
        ...


class KeyedIndexer(Generic[T]):
    """An :class:`Indexer` that keys objects with ``key_func`` over a :class:`ThreadSafeStore`.

    client-go's ``cache`` struct (``NewStore`` / ``NewIndexer``). See the module docstring for the
    sharing and thread-safety contract.

    Attributes:
        key_func: computes each object's key (read-only after construction).
        thread_safe_store: the underlying key-based store, for callers that already have keys
            (the informer's batch :meth:`ThreadSafeStore.apply`, its relist diff via
            :meth:`ThreadSafeStore.snapshot_items`). Writes through it must use keys made by
            ``key_func``.
    """

    __slots__ = ("key_func", "thread_safe_store")

    def __init__(
        self,
        key_func: KeyFunc = meta_namespace_key_func,
        indexers: Mapping[str, IndexFunc] | None = None,
    ) -> None:
        """Create an empty indexer.

        Args:
            key_func: the key function (:func:`meta_namespace_key_func` by default; use
                :func:`cluster_scoped_key_func` for GPUs).
            indexers: initial index name → index function.

        Raises:
            TypeError: ``key_func`` is not callable, or an indexer is malformed.
        """
        if not callable(key_func):
            raise TypeError(f"key_func must be callable, got {key_func!r}")
        self.key_func: KeyFunc = key_func
        self.thread_safe_store: ThreadSafeStore[T] = ThreadSafeStore(indexers)

    def add(self, obj: T) -> None:
        self.thread_safe_store.add(self.key_func(obj), obj)

    def update(self, obj: T) -> None:
        self.thread_safe_store.update(self.key_func(obj), obj)

    def delete(self, obj: T | DeletedFinalStateUnknown[T]) -> None:
        # A tombstone carries the key the object was stored under: use it as is, whatever the
        # key function (client-go relies on the key function unwrapping it; ours need not).
        key = obj.key if isinstance(obj, DeletedFinalStateUnknown) else self.key_func(obj)
        self.thread_safe_store.delete(key)

    def list(self) -> builtins.list[T]:
        return self.thread_safe_store.list()

    def list_keys(self) -> builtins.list[str]:
        return self.thread_safe_store.list_keys()

    def get(self, obj: T) -> T | None:
        return self.thread_safe_store.get(self.key_func(obj))

    def get_by_key(self, key: str) -> T | None:
        return self.thread_safe_store.get(key)

    def replace(self, objs: Iterable[T], resource_version: str) -> None:
        # Keys are computed before the store is touched, so a bad object leaves it unchanged.
        key_func = self.key_func
        self.thread_safe_store.replace({key_func(obj): obj for obj in objs})

    def resync(self) -> None:
        """Do nothing: a store has nothing to resync (client-go ``cache.Resync`` is a no-op)."""

    def index(self, index_name: str, obj: Any) -> builtins.list[T]:
        return self.thread_safe_store.index(index_name, obj)

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        return self.thread_safe_store.index_keys(index_name, value)

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        return self.thread_safe_store.list_index_func_values(index_name)

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        return self.thread_safe_store.by_index(index_name, value)

    def get_indexers(self) -> Indexers:
        return self.thread_safe_store.get_indexers()

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        self.thread_safe_store.add_indexers(indexers)

    def __len__(self) -> int:
        return len(self.thread_safe_store)

    def __repr__(self) -> str:
        key_func = getattr(self.key_func, "__name__", repr(self.key_func))
        return f"{type(self).__name__}(key_func={key_func}, store={self.thread_safe_store!r})"


def new_store(key_func: KeyFunc = meta_namespace_key_func) -> KeyedIndexer[Any]:
    """Return an empty store without indices (client-go ``NewStore``).

    Annotate the variable to fix the object type: ``store: Store[GPU] = new_store()``.
    """
    return KeyedIndexer(key_func)


def new_indexer(
    key_func: KeyFunc = meta_namespace_key_func,
    indexers: Mapping[str, IndexFunc] | None = None,
) -> KeyedIndexer[Any]:
    """Return an empty indexer (client-go ``NewIndexer``).

    Annotate the variable to fix the object type::

        indexer: Indexer[GPU] = new_indexer(cluster_scoped_key_func,
                                             {NAMESPACE_INDEX: meta_namespace_index_func})

    Raises:
        TypeError: ``key_func`` is not callable, or an indexer is malformed.
    """
    return KeyedIndexer(key_func, indexers)
