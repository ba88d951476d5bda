"""RealFIFO: the in-order queue between the reflector and the store.

client-go's current model (``RealFIFO``, the default since 1.36): every event is kept, in arrival
order, with no per-key coalescing; a relist is one atomic ``ReplacedAll`` delta whose consumer
computes the deletions against the store; the consumer pops *batches* (up to 1000 deltas) and
applies each batch to the store in one transaction (kubernetes#132240 measured up to 30x write
throughput). Transforms run on enqueue, so queued objects are already in their cached form.

Producer: the reflector thread (``add``/``update``/``delete``/``replace``/``bookmark``).
Consumer: the informer's processing thread (``pop_batch``).

Thread-safety: one lock (``_cond``) guards the deque and the closed flag; a push notifies only
when the consumer is waiting, so a busy stream costs one lock round per event and no wake-up.
"""

from __future__ import annotations

import logging
from collections import deque
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from enum import Enum
from threading import Condition
from typing import Any, Generic, TypeVar

__all__ = ["DeltaType", "Delta", "Replacement", "RealFIFO", "TransformFunc", "DEFAULT_BATCH_SIZE"]

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


@dataclass(frozen=True, slots=True)
class Replacement(Generic[T]):
    """The payload of a ``REPLACED_ALL`` delta: a full list and the revision it was taken at."""

    objects: Sequence[T]
    resource_version: str


@dataclass(frozen=True, slots=True)
class Delta:
    """One queued change."""

    type: DeltaType
    obj: Any


_ADDED, _UPDATED, _DELETED = DeltaType.ADDED, DeltaType.UPDATED, DeltaType.DELETED


class RealFIFO:
    """An unbounded, in-order queue of :class:`Delta` with batched pops.

    Args:
        transform: applied to every object on enqueue (not to bookmarks). If it raises, the error
            is logged and counted (``transform_errors``) and the object is queued untransformed:
            a failing user function must not make an object vanish from the cache.
    """

    def __init__(self, *, transform: TransformFunc | None = None) -> None:
        self._cond = Condition()
        self._items: deque[Delta] = deque()  # guarded by _cond
        self._closed = False  # guarded by _cond
        self._consumer_waiting = False  # guarded by _cond
        self._transform = transform
        self.transform_errors = 0  # written by the producer thread only

    def set_transform(self, transform: TransformFunc | None) -> None:
        """Replace the transform (the informer allows this only before it starts)."""
        self._transform = transform

    def _transformed(self, obj: Any) -> Any:
        transform = self._transform
        if transform is None:
            return obj
        try:
            return transform(obj)
        except Exception:
            self.transform_errors += 1
            log.exception("transform failed; caching the object untransformed")
            return obj

    def _push(self, delta: Delta) -> None:
        with self._cond:
            if self._closed:
                return
            self._items.append(delta)
            if self._consumer_waiting:
                self._cond.notify()

    def add(self, obj: Any) -> None:
        """Queue an ADDED event (the store treats it as an update if the key is known)."""
        self._push(Delta(_ADDED, self._transformed(obj)))

    def update(self, obj: Any) -> None:
        """Queue a MODIFIED event."""
        self._push(Delta(_UPDATED, self._transformed(obj)))

    def delete(self, obj: Any) -> None:
        """Queue a DELETED event carrying the object's last known state."""
        self._push(Delta(_DELETED, self._transformed(obj)))

    def replace(self, objects: Iterable[Any], resource_version: str) -> None:
        """Queue a whole relist as one atomic delta."""
        items = [self._transformed(o) for o in objects]
        self._push(Delta(DeltaType.REPLACED_ALL, Replacement(items, resource_version)))

    def resync(self) -> None:
        """Queue a resync check, processed in order with the events around it."""
        self._push(Delta(DeltaType.SYNC, None))

    def bookmark(self, resource_version: str) -> None:
        """Queue a progress notification (lets the store know how fresh it is)."""
        self._push(Delta(DeltaType.BOOKMARK, resource_version))

    def pop_batch(
        self, max_items: int = DEFAULT_BATCH_SIZE, timeout: float | None = None
    ) -> list[Delta] | None:
        """Remove and return up to ``max_items`` deltas in order.

        Blocks until at least one delta is queued, ``timeout`` seconds pass (returns ``[]``) or
        the queue is closed and drained (returns None).
        """
        with self._cond:
            items = self._items
            if not items:
                if self._closed:
                    return None
                self._consumer_waiting = True
                try:
                    self._cond.wait_for(lambda: items or self._closed, timeout)
                finally:
                    self._consumer_waiting = False
                if not items:
                    return None if self._closed else []
            if len(items) <= max_items:
                batch = list(items)
                items.clear()
                return batch
            return [items.popleft() for _ in range(max_items)]

    def close(self) -> None:
        """Stop accepting deltas; the consumer drains what is queued, then gets None."""
        with self._cond:
            self._closed = True
            self._cond.notify_all()

    def __len__(self) -> int:
        with self._cond:
            return len(self._items)
