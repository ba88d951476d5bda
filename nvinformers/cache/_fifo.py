"""RealFIFO: the in-order queue between the reflector and the store.

client-go's current model (``RealFIFO``, the default since 1.36): every event is kept, in arrival
order, with no per-key coalescing; a relist is one atomic ``ReplacedAll`` delta whose consumer
computes the deletions against the store; the consumer takes *batches* (up to 1000 deltas) and
applies each batch to the store in one transaction (kubernetes#132240 measured up to 30x write
throughput). Transforms run on enqueue, so queued objects are already in their cached form.

Consumption is inline, with no consumer thread (client-go's ``processLoop`` pops from one): the
thread that pushes a delta while no drain is in progress becomes the drainer and hands the queued
deltas, in order and in batches, to ``process`` before its push returns; a delta pushed meanwhile
by another thread (the resync timer) is queued and applied by that drainer. In Go a channel
hand-off costs nanoseconds; in Python a wake-up of another thread costs 5-35 µs (a futex, a
context switch and a GIL transfer), more than applying an event to the store, so the informer
applies events on the reflector's thread instead of paying a hand-off per event. ``process`` runs
no user code except index functions (user handlers run on their own threads), so the reflector is
never blocked by a slow handler.

Producers: the reflector thread (``add``/``update``/``delete``/``replace``/``bookmark``, the
:class:`ReflectorStore` it writes to), and the resync timer (``resync``).

Thread-safety: the deque is used lock-free (its ``append`` and ``popleft`` are atomic) and a drain
lock, taken without blocking, elects the thread that drains. Queued deltas are plain
``(DeltaType, obj)`` pairs.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from threading import Lock
from typing import Any, Generic, Protocol, TypeVar

__all__ = [
    "DeltaType",
    "Replacement",
    "RealFIFO",
    "TransformFunc",
    "ProcessFunc",
    "AppliedFunc",
    "ReflectorStore",
    "DEFAULT_BATCH_SIZE",
]

T = TypeVar("T")
TransformFunc = Callable[[Any], Any]

#: client-go's ``defaultBatchSize``.
DEFAULT_BATCH_SIZE = 1000

log = logging.getLogger("nvinformers.cache")


class DeltaType(Enum):
    """What happened to an object (client-go's delta types that RealFIFO uses)."""

    ADDED = "Added"
    UPDATED = "Updated"
    DELETED = "Deleted"
    #: A whole relist: ``obj`` is a :class:`Replacement`.
    REPLACED_ALL = "ReplacedAll"
    #: The server's progress notification: ``obj`` is the resource version (str).
    BOOKMARK = "Bookmark"
    #: Time to check which handlers are due for a resync (``obj`` is None).
    SYNC = "Sync"


#: Called with how many objects a relist added, updated or deleted, once it was applied.
AppliedFunc = Callable[[int], None]


@dataclass(frozen=True, slots=True)
class Replacement(Generic[T]):
    """The payload of a ``REPLACED_ALL`` delta: a full list and the revision it was taken at.

    Attributes:
        objects: the listed objects.
        resource_version: the list's revision.
        on_applied: when set, ``process`` (the informer) calls it once the relist was applied,
            with the number of objects it added, updated or deleted (0: the store already held
            exactly this list). The reflector's progress check reads it; see
            :meth:`ReflectorStore.replace`.
    """

    objects: Sequence[T]
    resource_version: str
    on_applied: AppliedFunc | None = None


class ReflectorStore(Protocol):
    """The narrow slice of a store the reflector writes to (the informer's :class:`RealFIFO`)."""

    def add(self, obj: Any) -> None: ...

    def update(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(
        self, objects: list[Any], resource_version: str, *, on_applied: AppliedFunc | None = None
    ) -> None:
        """Replace the content with a full list. The reflector passes ``on_applied`` only for a
        progress check; the store must then call it once the list was applied, with the number
        of objects it added, updated or deleted (a store that never calls it leaves checks
        without a result: they neither explain a silence nor report a frozen stream)."""
        ...

    def bookmark(self, resource_version: str) -> None: ...


#: What ``process=`` receives: a batch of ``(DeltaType, obj)`` pairs, oldest first.
ProcessFunc = Callable[[list[tuple[DeltaType, Any]]], None]

_ADDED, _UPDATED, _DELETED = DeltaType.ADDED, DeltaType.UPDATED, DeltaType.DELETED
_REPLACED_ALL, _BOOKMARK, _SYNC = DeltaType.REPLACED_ALL, DeltaType.BOOKMARK, DeltaType.SYNC


class RealFIFO:
    """An unbounded, in-order queue of deltas, applied in batches by the pushing thread.

    Args:
        process: called with each batch of ``(DeltaType, obj)`` pairs, in order, one batch at a
            time, by the pushing thread (see the module docstring). An exception it raises is
            logged and the drain goes on with the next batch.
        transform: applied to every object on enqueue (not to bookmarks). If it raises, the error
            is logged and counted (``transform_errors``) and the object is queued untransformed:
            a failing user function must not make an object vanish from the cache.
        batch_size: most deltas per batch handed to ``process``.

    Raises:
        ValueError: ``batch_size`` is less than 1.
    """

    def __init__(
        self,
        *,
        process: ProcessFunc,
        transform: TransformFunc | None = None,
        batch_size: int = DEFAULT_BATCH_SIZE,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        # Used lock-free (see _push): only deque.append and deque.popleft touch it.
        self._items: deque[tuple[DeltaType, Any]] = deque()
        self._closed = False  # set once by close(), from any thread
        # Held by the thread draining; it takes whatever is pushed meanwhile.
        self._drain_lock = Lock()
        self._process = process
        self._batch_size = batch_size
        self._transform = transform
        self.transform_errors = 0  # written by the producer thread only

    def set_transform(self, transform: TransformFunc | None) -> None:
        """Replace the transform (the informer allows this only before it starts)."""
        self._transform = transform

    def _transformed(self, obj: Any) -> Any:
        try:
            return self._transform(obj)  # type: ignore[misc]
        except Exception:
            self.transform_errors += 1
            log.exception("transform failed; caching the object untransformed")
            return obj

    def _push(self, dtype: DeltaType, obj: Any) -> None:
        """Queue the delta, then drain the queue unless another thread is draining it.

        Lock-free on the queue itself (``deque.append`` / ``popleft`` are atomic): this runs once
        per watch event. No delta is ever left behind: a pusher that finds the drain lock taken
        has appended first, and the drainer re-checks the queue after releasing the lock.
        """
        if self._closed:
            return
        items = self._items
        items.append((dtype, obj))
        drain = self._drain_lock
        while items and drain.acquire(False):
            try:
                self._drain_locked()
            finally:
                drain.release()

    def _drain_locked(self) -> None:
        """Apply queued deltas in order until the queue is empty (caller holds the drain lock)."""
        items = self._items
        process = self._process
        while items:
            if self._closed:
                items.clear()  # the informer is stopping: what is left is dropped
                return
            count = len(items)
            try:
                if count == 1:  # the usual case, a watch event: no comprehension for one item
                    process([items.popleft()])
                else:
                    process([items.popleft() for _ in range(min(count, self._batch_size))])
            except Exception:  # a bug must not stop the cache: log and keep going
                log.exception("failed to process queued deltas")

    def add(self, obj: Any) -> None:
        """Queue an ADDED event (the store treats it as an update if the key is known)."""
        self._push(_ADDED, obj if self._transform is None else self._transformed(obj))

    def update(self, obj: Any) -> None:
        """Queue a MODIFIED event."""
        self._push(_UPDATED, obj if self._transform is None else self._transformed(obj))

    def delete(self, obj: Any) -> None:
        """Queue a DELETED event carrying the object's last known state."""
        self._push(_DELETED, obj if self._transform is None else self._transformed(obj))

    def replace(
        self,
        objects: Iterable[Any],
        resource_version: str,
        *,
        on_applied: AppliedFunc | None = None,
    ) -> None:
        """Queue a whole relist as one atomic delta.

        ``on_applied`` travels with it (:attr:`Replacement.on_applied`): ``process`` calls it
        with the number of changes the relist made, on whichever thread applies it.
        """
        if self._transform is None:
            items = list(objects)
        else:
            items = [self._transformed(o) for o in objects]
        self._push(_REPLACED_ALL, Replacement(items, resource_version, on_applied))

    def resync(self) -> None:
        """Queue a resync check, processed in order with the events around it."""
        self._push(_SYNC, None)

    def bookmark(self, resource_version: str) -> None:
        """Queue a progress notification (lets the store know how fresh it is)."""
        self._push(_BOOKMARK, resource_version)

    def close(self) -> None:
        """Stop accepting deltas.

        A drain in progress stops after its current batch and what is still queued is dropped:
        the informer closes the queue only once it is stopping. Does not block.
        """
        self._closed = True

    def __len__(self) -> int:
        return len(self._items)  # an atomic read
