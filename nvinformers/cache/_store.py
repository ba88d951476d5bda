"""The object-based store and indexer interfaces, and their implementation over keys.

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
"""

from __future__ import annotations

import builtins
from collections.abc import Iterable, Mapping
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache._keys import DeletedFinalStateUnknown, KeyFunc, meta_namespace_key_func
from nvinformers.cache._thread_safe_store import Indexers, IndexFunc, ThreadSafeStore

__all__ = ["Store", "Indexer", "KeyedIndexer", "new_store", "new_indexer"]

T = TypeVar("T")


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
