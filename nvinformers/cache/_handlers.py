"""Event handlers: what an informer calls when its cache changes.

Mirrors client-go's ``ResourceEventHandler`` family. A handler has three methods:

* ``on_add(obj, is_in_initial_list)``: a new object; ``is_in_initial_list`` is True for objects
  delivered as part of the first list, or of the replay a handler receives when it is added to a
  running informer.
* ``on_update(old, new)``: a changed object. Also called with ``old is new`` (same resource
  version) for resyncs, which replay the cache from memory.
* ``on_delete(obj)``: a removed object: its last known state, or a
  :class:`~nvinformers.cache._store.DeletedFinalStateUnknown` (``.key``, ``.obj``) when the deletion
  was noticed only by a relist. Use :func:`deleted_key_and_object` to handle both without the
  type-assertion bugs that crash Go controllers.

Handlers run on the handler's own thread, after the store has been updated, sequentially and in
order per object. They should return promptly; heavy work belongs in a workqueue.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache._store import (
    DeletedFinalStateUnknown,
    deletion_handling_meta_namespace_key_func,
)

__all__ = [
    "ResourceEventHandler",
    "ResourceEventHandlerFuncs",
    "ResourceEventHandlerDetailedFuncs",
    "FilteringResourceEventHandler",
    "deleted_key_and_object",
]

T = TypeVar("T")


class ResourceEventHandler(Protocol):
    """Receives notifications from an informer (see the module docstring)."""

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None: ...

    def on_update(self, old: Any, new: Any) -> None: ...

    def on_delete(self, obj: Any) -> None: ...


class ResourceEventHandlerFuncs(Generic[T]):
    """A handler made of optional functions; missing ones ignore their notification.

    ``on_add`` takes just the object (use :class:`ResourceEventHandlerDetailedFuncs` to receive
    ``is_in_initial_list``).
    """

    __slots__ = ("_on_add", "_on_update", "_on_delete")

    def __init__(
        self,
        *,
        on_add: Callable[[T], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T | DeletedFinalStateUnknown[T]], None] | None = None,
    ) -> None:
        self._on_add = on_add
        self._on_update = on_update
        self._on_delete = on_delete

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        if self._on_add is not None:
            self._on_add(obj)

    def on_update(self, old: Any, new: Any) -> None:
        if self._on_update is not None:
            self._on_update(old, new)

    def on_delete(self, obj: Any) -> None:
        if self._on_delete is not None:
            self._on_delete(obj)


class ResourceEventHandlerDetailedFuncs(ResourceEventHandlerFuncs[T]):
    """Like :class:`ResourceEventHandlerFuncs`, but ``on_add`` also gets ``is_in_initial_list``."""

    __slots__ = ("_on_add_detailed",)

    def __init__(
        self,
        *,
        on_add: Callable[[T, bool], None] | None = None,
        on_update: Callable[[T, T], None] | None = None,
        on_delete: Callable[[T | DeletedFinalStateUnknown[T]], None] | None = None,
    ) -> None:
        super().__init__(on_update=on_update, on_delete=on_delete)
        self._on_add_detailed = on_add

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        if self._on_add_detailed is not None:
            self._on_add_detailed(obj, is_in_initial_list)


class FilteringResourceEventHandler:
    """Passes to ``handler`` only the objects ``filter_func`` accepts, converting transitions.

    client-go's semantics: an update where the old object matched and the new one does not
    becomes ``on_delete(old)``; one where only the new object matches becomes ``on_add(new)``;
    deletes of objects that never matched are dropped. ``filter_func`` must be pure (it may see
    the same object several times) and must not mutate the object.
    """

    __slots__ = ("filter_func", "handler")

    def __init__(self, filter_func: Callable[[Any], bool], handler: ResourceEventHandler) -> None:
        self.filter_func = filter_func
        self.handler = handler

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        if self.filter_func(obj):
            self.handler.on_add(obj, is_in_initial_list)

    def on_update(self, old: Any, new: Any) -> None:
        new_ok = self.filter_func(new)
        old_ok = self.filter_func(old)
        if new_ok and old_ok:
            self.handler.on_update(old, new)
        elif new_ok:
            self.handler.on_add(new, False)
        elif old_ok:
            self.handler.on_delete(old)

    def on_delete(self, obj: Any) -> None:
        target = obj.obj if isinstance(obj, DeletedFinalStateUnknown) else obj
        if target is None or self.filter_func(target):
            self.handler.on_delete(obj)


def deleted_key_and_object(obj: Any) -> tuple[str, Any | None]:
    """Split what ``on_delete`` received into ``(key, last known object or None)``.

    Works for plain objects and for :class:`DeletedFinalStateUnknown` tombstones alike.
    """
    if isinstance(obj, DeletedFinalStateUnknown):
        return obj.key, obj.obj
    return deletion_handling_meta_namespace_key_func(obj), obj
