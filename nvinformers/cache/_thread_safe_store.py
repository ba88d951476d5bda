"""A thread-safe, key-based object store with secondary indices, and index functions.

Mirrors client-go ``tools/cache/thread_safe_store.go`` (``threadSafeMap`` and its
``storeIndex``): items by key, plus per-index maps from indexed value to the set of keys carrying
it. Callers compute keys; the object-based :class:`~nvinformers.cache._store.KeyedIndexer` is
layered on top.

Beyond client-go:

* :meth:`ThreadSafeStore.apply` applies a batch of upserts and deletes under one lock
  acquisition (client-go's ``Transaction``; batching watch events gave up to ~30x write
  throughput, kubernetes#132240).
* An index function that raises never panics the process and never leaves the store half
  updated: the object is indexed under no values for that index, the failure is logged on the
  ``nvinformers.cache`` logger (after the lock is released) and counted in
  :attr:`ThreadSafeStore.index_errors`.
* :meth:`ThreadSafeStore.replace` builds the new items and indices *outside* the lock and swaps
  them in, so a relist of thousands of objects does not stall readers.
* The values each key is indexed under are remembered, so updates and deletes never call the
  index function on the old object: no double-logged failures, and an impure index function
  cannot leave stale index entries behind.

Index functions (client-go ``tools/cache/index.go``): an *index function* maps an object to the
values it is indexed under (for example its namespace, its node, a label's value); each index
maps every value to the set of keys of the objects carrying it, so that
``by_index("namespace", "team-a")`` costs one dict lookup instead of a scan of the whole cache
(client-go measured -69 % to -97 % controller time from switching full lists to an index,
kubernetes#135551). They run under the store's lock on every write: they must be **pure and
fast** (read the object, compute, return; no I/O, no locks, no calls into the store or the
informer, no mutation of the object).
"""

from __future__ import annotations

import builtins
import logging
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Final, Generic, TypeVar

from nvinformers.errors import NvInformersError
from nvinformers.meta import header_accessors

__all__ = [
    "ThreadSafeStore",
    "IndexFunc",
    "Indexers",
    "Index",
    "Indices",
    "NAMESPACE_INDEX",
    "meta_namespace_index_func",
    "IndexConflictError",
]

_LOG = logging.getLogger("nvinformers.cache")

T = TypeVar("T")

#: Maps an object to the values it is indexed under: a list (or any iterable) of ``str``. Return
#: an empty list to leave the object out of the index. A bare ``str`` is rejected (it would
#: otherwise be indexed under each of its characters).
IndexFunc = Callable[[Any], Iterable[str]]

#: Index name → index function.
Indexers = dict[str, IndexFunc]

#: One index: indexed value → keys of the objects indexed under it.
Index = dict[str, set[str]]

#: Index name → index.
Indices = dict[str, Index]

#: The name of the built-in namespace index (client-go ``cache.NamespaceIndex``). Namespaced
#: listers use it when present and fall back to a scan otherwise.
NAMESPACE_INDEX = "namespace"


class IndexConflictError(NvInformersError, ValueError):
    """An index of that name already exists (raised by ``add_indexers``; the store is unchanged)."""


def meta_namespace_index_func(obj: Any) -> list[str]:
    """Index an object by its namespace (``""`` for cluster-scoped objects).

    client-go ``MetaNamespaceIndexFunc``: the function behind :data:`NAMESPACE_INDEX`. A namespace
    of None (as Kubernetes client models have for cluster-scoped objects) is indexed as ``""``.

    Thread-safety: pure; safe from any thread.

    Args:
        obj: an object with ``metadata.namespace``.

    Returns:
        ``[namespace]``.

    Raises:
        AttributeError: ``obj`` has no ``metadata`` (the store logs, counts and survives it).
    """
    return [header_accessors(type(obj)).namespace(obj) or ""]


_EMPTY: Final[tuple[str, ...]] = ()
_MISSING: Final = object()

#: Failures logged with a traceback per write call; the rest of a burst is summarised in one line,
#: so a broken index function cannot flood the log with one traceback per object on a relist.
_MAX_LOGGED_FAILURES: Final = 3

#: Index name → key → the values that key is currently indexed under (non-empty tuples only).
_IndexedValues = dict[str, dict[str, tuple[str, ...]]]


class _IndexFailure:
    """One index function failure, logged after the store lock is released."""

    __slots__ = ("error", "index_name", "key")

    def __init__(self, index_name: str, key: str, error: Exception) -> None:
        self.index_name = index_name
        self.key = key
        self.error = error


# One shared tuple per single index value: most objects are indexed under one value that many
# share (every GPU under namespace ""), and the store remembers each key's values, so sharing
# saves a tuple per object and per index (~48 bytes). Bounded; beyond the bound tuples are fresh.
_SINGLES: dict[str, tuple[str]] = {}
_MAX_SINGLES = 1 << 16


def _single(value: str) -> tuple[str]:
    values = _SINGLES.get(value)
    if values is None:
        values = (value,)
        if len(_SINGLES) < _MAX_SINGLES:
            _SINGLES[value] = values
    return values


def _normalize(values: Iterable[str]) -> tuple[str, ...]:
    """Turn an index function's result into a tuple of distinct strings, or raise TypeError."""
    # Fast path: the usual index function returns a one-element list of str.
    if type(values) is list and len(values) == 1 and type(values[0]) is str:
        return _SINGLES.get(values[0]) or _single(values[0])
    if isinstance(values, str):
        raise TypeError(f"index function returned the str {values!r}; it must return a list of str")
    try:
        # dict.fromkeys: drop duplicates, keep order.
        out = tuple(dict.fromkeys(values))
    except TypeError as exc:
        raise TypeError(
            f"index function must return a list of str, got {type(values).__name__}: {exc}"
        ) from exc
    for value in out:
        if not isinstance(value, str):
            raise TypeError(
                f"index function returned the non-str value {value!r} "
                f"({type(value).__name__}); index values must be str"
            )
    return out


def _build_indices(
    indexers: Mapping[str, IndexFunc], items: Mapping[str, Any], failures: list[_IndexFailure]
) -> tuple[Indices, _IndexedValues]:
    """Index every item with every indexer, from scratch."""
    indices: Indices = {}
    indexed: _IndexedValues = {}
    for name, func in indexers.items():
        index: dict[str, set[str]] = {}
        by_key: dict[str, tuple[str, ...]] = {}
        singles: dict[str, list[str]] = {}  # value → keys, for the usual one-value case
        for key, obj in items.items():
            # The index function, with its one-value fast path inlined: this runs once per
            # object of a relist (100,000 GPUs in a large one).
            try:
                values = func(obj)
            except Exception as exc:
                failures.append(_IndexFailure(name, key, exc))
                continue
            if type(values) is list and len(values) == 1 and type(value := values[0]) is str:
                by_key[key] = _SINGLES.get(value) or _single(value)
                same = singles.get(value)
                if same is None:
                    singles[value] = [key]
                else:
                    same.append(key)
                continue
            try:
                normalized = _normalize(values)
            except TypeError as exc:
                failures.append(_IndexFailure(name, key, exc))
                continue
            if not normalized:
                continue
            by_key[key] = normalized
            for value in normalized:
                keys = index.get(value)
                if keys is None:
                    index[value] = {key}
                else:
                    keys.add(key)
        for value, same in singles.items():
            keys = index.get(value)
            if keys is None:
                index[value] = set(same)
            else:
                keys.update(same)
        indices[name] = index
        indexed[name] = by_key
    return indices, indexed


def _log_failures(failures: Sequence[_IndexFailure]) -> None:
    for failure in failures[:_MAX_LOGGED_FAILURES]:
        _LOG.error(
            "index function %r failed for key %r; the object is indexed under no values for "
            "that index",
            failure.index_name,
            failure.key,
            exc_info=failure.error,
        )
    if len(failures) > _MAX_LOGGED_FAILURES:
        _LOG.error(
            "%d more index function failures in the same store write were not logged (indexes: %s)",
            len(failures) - _MAX_LOGGED_FAILURES,
            sorted({f.index_name for f in failures[_MAX_LOGGED_FAILURES:]}),
        )


class ThreadSafeStore(Generic[T]):
    """A key → object map with secondary indices, safe to use from many threads.

    Semantics: ``add`` and ``update`` are the same upsert; deleting an absent key is a no-op.
    Every index is kept consistent with the items after each call returns (and after each
    change inside :meth:`apply`): a key is in ``indices[name][value]`` iff its object is stored
    and the index function returned ``value`` for it. Value sets that become empty are removed
    (client-go leak fix kubernetes#84959), and an update whose single indexed value is unchanged
    does not touch the index at all (client-go's fast path).

    Objects are stored and returned as given, never copied (the sharing contract of
    :mod:`nvinformers.cache._store`).

    Thread-safety and blocking: one ``threading.Lock`` guards the items, the indices and the
    remembered index values, so they always change together. Reads take it briefly (a dict
    lookup, or a copy of a list of references). Writes hold it while index functions run (the
    only user code ever called under it: see the module docstring); it is not reentrant. Index
    failures are logged after it is released.

    Attributes:
        index_errors: how many times an index function raised or returned something other than a
            list of str (each time, that object was indexed under no values for that index).
            Written under the lock; reading it without the lock is safe.
    """

    def __init__(self, indexers: Mapping[str, IndexFunc] | None = None) -> None:
        """Create an empty store.

        Args:
            indexers: initial index name → index function (see :meth:`add_indexers`).

        Raises:
            TypeError: an index name is not a non-empty str, or a function is not callable.
        """
        self._lock = threading.Lock()
        # Guarded by _lock: the items, and for each index its value → keys map and the values
        # each key is indexed under. All three change together, under one acquisition.
        self._items: dict[str, T] = {}
        self._indices: Indices = {}
        self._indexed: _IndexedValues = {}
        # Guarded by _lock for writes. Copy-on-write: replaced, never mutated in place, so that
        # index() and replace() may take a consistent snapshot of it without the lock.
        self._indexers: Indexers = {}
        self.index_errors = 0
        if indexers:
            self.add_indexers(indexers)

    # ----------------------------------------------------------------------------------- writes

    def add(self, key: str, obj: T) -> None:
        """Insert or replace the object stored under ``key`` and re-index it.

        Blocks while the lock is held by another call; runs the index functions under the lock.

        Args:
            key: the object's key.
            obj: the object (stored by reference).
        """
        failures: list[_IndexFailure] = []
        # Hot path (once per watch event): explicit acquire/release is about twice as fast as
        # "with" on CPython 3.11.
        lock = self._lock
        lock.acquire()
        try:
            self._upsert_locked(key, obj, failures)
            if failures:
                self.index_errors += len(failures)
        finally:
            lock.release()
        if failures:
            _log_failures(failures)

    def update(self, key: str, obj: T) -> None:
        """Same as :meth:`add` (an upsert), named for the caller's intent."""
        self.add(key, obj)

    def delete(self, key: str) -> None:
        """Remove ``key`` and its index entries; a no-op when the key is absent.

        Calls no user code (the indexed values were remembered when the object was added).
        """
        with self._lock:
            self._delete_locked(key)

    def apply(self, changes: Sequence[tuple[str, T | None]]) -> None:
        """Apply a batch of upserts and deletes, in order, under a single lock acquisition.

        Each change is ``(key, obj)`` to upsert or ``(key, None)`` to delete. Readers see either
        none or all of the batch. This is how the informer applies a batch of watch events
        (client-go ``Transaction`` / RealFIFO ``PopBatch``: one acquisition per batch instead of
        per event). Index function failures are logged and counted, never raised.

        Blocks readers for the duration of the batch; keep batches bounded (about 1000).

        Args:
            changes: the changes, applied first to last (a later change to the same key wins).
        """
        failures: list[_IndexFailure] = []
        with self._lock:
            upsert = self._upsert_locked
            delete = self._delete_locked
            for key, obj in changes:
                if obj is None:
                    delete(key)
                else:
                    upsert(key, obj, failures)
            if failures:
                self.index_errors += len(failures)
        if failures:
            _log_failures(failures)

    def replace(self, items: Mapping[str, T]) -> None:
        """Replace the whole content with ``items`` and rebuild every index.

        The new items and indices are built outside the lock (index functions included) and
        swapped in under it, so readers are not stalled by a large relist; they see the old
        content until the swap and the new content after it. A write that lands while the new
        content is being built is overwritten (``replace`` means "exactly these objects").

        Args:
            items: key → object; copied (shallowly), so the caller may reuse the mapping.
        """
        new_items = dict(items)
        while True:
            indexers = self._indexers  # copy-on-write snapshot: see __init__
            failures: list[_IndexFailure] = []
            indices, indexed = _build_indices(indexers, new_items, failures)
            with self._lock:
                # add_indexers() may have run meanwhile; then rebuild with the new indexers so
                # that no index goes missing.
                if self._indexers is indexers:
                    self._items = new_items
                    self._indices = indices
                    self._indexed = indexed
                    self.index_errors += len(failures)
                    break
        if failures:
            _log_failures(failures)

    def add_indexers(self, indexers: Mapping[str, IndexFunc]) -> None:
        """Add indexes; the objects already stored are indexed immediately.

        Allowed at any time (client-go allows it after the informer started, too). Either every
        new index is added or none is.

        Blocks readers and writers while the existing objects are indexed.

        Args:
            indexers: index name → index function (pure and fast; see the class docstring).

        Raises:
            IndexConflictError: an index of one of these names already exists; nothing changed.
            TypeError: a name is not a non-empty str, or a function is not callable.
        """
        new = dict(indexers)
        for name, func in new.items():
            if not isinstance(name, str) or not name:
                raise TypeError(f"index names must be non-empty str, got {name!r}")
            if not callable(func):
                raise TypeError(f"index function for {name!r} is not callable: {func!r}")
        failures: list[_IndexFailure] = []
        with self._lock:
            conflicts = sorted(name for name in new if name in self._indexers)
            if conflicts:
                raise IndexConflictError(
                    f"indexer conflict: index(es) {', '.join(map(repr, conflicts))} already exist"
                )
            indices, indexed = _build_indices(new, self._items, failures)
            self._indices.update(indices)
            self._indexed.update(indexed)
            self._indexers = {**self._indexers, **new}
            if failures:
                self.index_errors += len(failures)
        if failures:
            _log_failures(failures)

    # ------------------------------------------------------------------------------------ reads

    def get(self, key: str) -> T | None:
        """Return the object stored under ``key``, or None."""
        lock = self._lock
        lock.acquire()  # hot path: see add()
        try:
            return self._items.get(key)
        finally:
            lock.release()

    def get_many(self, keys: Iterable[str]) -> dict[str, T]:
        """Return ``{key: object}`` for those of ``keys`` that are stored, read atomically."""
        with self._lock:
            items = self._items
            out: dict[str, T] = {}
            for key in keys:
                obj = items.get(key, _MISSING)
                if obj is not _MISSING:
                    out[key] = obj  # type: ignore[assignment]
            return out

    def list(self) -> builtins.list[T]:
        """Return every stored object (a new list of shared objects, in no particular order)."""
        with self._lock:
            return list(self._items.values())

    def list_keys(self) -> builtins.list[str]:
        """Return every stored key (a new list, in no particular order)."""
        with self._lock:
            return list(self._items)

    def snapshot_items(self) -> dict[str, T]:
        """Return a shallow copy of the key → object map, taken atomically.

        For the informer's relist diff: which cached keys are absent from a fresh list.
        """
        with self._lock:
            return dict(self._items)

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def __contains__(self, key: object) -> bool:
        with self._lock:
            return key in self._items

    def index(self, index_name: str, obj: Any) -> builtins.list[T]:
        """Return the stored objects that share at least one indexed value with ``obj``.

        client-go ``Index``. The index function runs on ``obj`` outside the lock.

        Raises:
            ValueError: no index named ``index_name``.
            Exception: whatever the index function raises on ``obj`` (this is a query: the
                failure is the caller's to see), or TypeError if it returns something other
                than a list of str.
        """
        func = self._indexers.get(index_name)  # copy-on-write: safe without the lock
        if func is None:
            raise ValueError(f'index "{index_name}" does not exist')
        values = _normalize(func(obj))
        with self._lock:
            index = self._index_locked(index_name)
            keys: Iterable[str]
            if len(values) == 1:
                keys = index.get(values[0], ())
            else:
                keys = set().union(*(index.get(value, ()) for value in values))
            items = self._items
            return [items[key] for key in keys]

    def index_keys(self, index_name: str, value: str) -> builtins.list[str]:
        """Return the keys indexed under ``value`` in ``index_name`` (in no particular order).

        Raises:
            ValueError: no index named ``index_name``.
        """
        with self._lock:
            keys = self._index_locked(index_name).get(value)
            return list(keys) if keys else []

    def by_index(self, index_name: str, value: str) -> builtins.list[T]:
        """Return the objects indexed under ``value`` in ``index_name`` (in no particular order).

        Raises:
            ValueError: no index named ``index_name``.
        """
        with self._lock:
            keys = self._index_locked(index_name).get(value)
            if not keys:
                return []
            items = self._items
            return [items[key] for key in keys]

    def list_index_func_values(self, index_name: str) -> builtins.list[str]:
        """Return every value that at least one object is indexed under in ``index_name``.

        Raises:
            ValueError: no index named ``index_name``.
        """
        with self._lock:
            return list(self._index_locked(index_name))

    def get_indexers(self) -> Indexers:
        """Return a copy of the index name → index function map."""
        return dict(self._indexers)

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(items={len(self._items)}, indexers={sorted(self._indexers)}, "
            f"index_errors={self.index_errors})"
        )

    # --------------------------------------------------------------------- helpers (lock held)

    def _index_locked(self, index_name: str) -> dict[str, set[str]]:
        index = self._indices.get(index_name)
        if index is None:
            raise ValueError(f'index "{index_name}" does not exist')
        return index

    def _upsert_locked(self, key: str, obj: T, failures: builtins.list[_IndexFailure]) -> None:
        self._items[key] = obj
        for name, func in self._indexers.items():
            # The index function, with its one-value fast path inlined (once per write per index).
            try:
                values = func(obj)
            except Exception as exc:  # the user's index function: see the module docstring
                failures.append(_IndexFailure(name, key, exc))
                new: tuple[str, ...] = _EMPTY
            else:
                if type(values) is list and len(values) == 1 and type(value := values[0]) is str:
                    new = _SINGLES.get(value) or _single(value)
                else:
                    try:
                        new = _normalize(values)
                    except TypeError as exc:
                        failures.append(_IndexFailure(name, key, exc))
                        new = _EMPTY
            by_key = self._indexed[name]
            old = by_key.get(key, _EMPTY)
            if old == new:
                # client-go's fast path: the (usually single) value is unchanged, so the index
                # needs no work at all.
                continue
            index = self._indices[name]
            for value in old:
                if value not in new:
                    keys = index[value]
                    keys.discard(key)
                    if not keys:
                        del index[value]  # no empty sets left behind (kubernetes#84959)
            for value in new:
                if value not in old:
                    value_keys = index.get(value)
                    if value_keys is None:
                        index[value] = {key}
                    else:
                        value_keys.add(key)
            if new:
                by_key[key] = new
            else:
                del by_key[key]  # old was non-empty, or we would have taken the fast path

    def _delete_locked(self, key: str) -> None:
        if self._items.pop(key, _MISSING) is _MISSING:
            return
        for name, by_key in self._indexed.items():
            old = by_key.pop(key, None)
            if not old:
                continue
            index = self._indices[name]
            for value in old:
                keys = index[value]
                keys.discard(key)
                if not keys:
                    del index[value]  # kubernetes#84959
