"""The events predicates and handlers see (controller-runtime's ``event`` package).

An informer notification becomes one of three events before it reaches a controller's predicates
and event handler:

* :class:`CreateEvent` — ``on_add``: a new object, or one of the initial list
  (``is_in_initial_list``);
* :class:`UpdateEvent` — ``on_update``: ``object_old`` → ``object_new``; a resync delivers the same
  object twice (same resource version);
* :class:`DeleteEvent` — ``on_delete``: the last known state of a deleted object. When the
  informer noticed the delete only on a relist (its watch was down), ``delete_state_unknown`` is
  True and ``object`` is the possibly stale last known state — or None when even that is unknown.
  Unlike controller-runtime, which drops such a delete when the tombstone carries no object, the
  event still has a :attr:`~DeleteEvent.key`, so the default handler can enqueue it.

Every event knows the store key of its object (:attr:`key`), computed on demand with the
informer's key function (GPUs are keyed by name, namespaced objects by ``namespace/name``).

Events are immutable; the objects they carry are shared with the informer's cache and every other
handler: never mutate them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Generic, TypeVar

from nvinformers.cache import KeyFunc, KeyFuncError, meta_namespace_key_func

__all__ = ["CreateEvent", "UpdateEvent", "DeleteEvent"]

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class CreateEvent(Generic[T]):
    """An object was added to the cache.

    Attributes:
        object: the new object.
        is_in_initial_list: True for objects of the informer's first list (or of the replay a
            handler receives when it registers with a running informer).
        key_func: the informer's key function (used by :attr:`key`).
    """

    object: T
    is_in_initial_list: bool = False
    key_func: KeyFunc = field(default=meta_namespace_key_func, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The object's store key.

        Raises:
            KeyFuncError: the object has no usable name.
        """
        return self.key_func(self.object)


@dataclass(frozen=True, slots=True)
class UpdateEvent(Generic[T]):
    """An object in the cache changed (or was resynced: ``object_old is object_new``).

    Attributes:
        object_old: the previous state.
        object_new: the new state.
        key_func: the informer's key function (used by :attr:`key`).
    """

    object_old: T
    object_new: T
    key_func: KeyFunc = field(default=meta_namespace_key_func, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The store key of the new state.

        Raises:
            KeyFuncError: the object has no usable name.
        """
        return self.key_func(self.object_new)


@dataclass(frozen=True, slots=True)
class DeleteEvent(Generic[T]):
    """An object was deleted.

    Attributes:
        object: the last known state; None only when ``delete_state_unknown`` and the informer
            has no last known state either.
        delete_state_unknown: True when the delete was noticed only by a relist (client-go's
            ``DeletedFinalStateUnknown`` tombstone): ``object`` may be stale.
        tombstone_key: the key recorded in the tombstone ("" for an ordinary delete).
        key_func: the informer's key function (used by :attr:`key`).
    """

    object: T | None
    delete_state_unknown: bool = False
    tombstone_key: str = ""
    key_func: KeyFunc = field(default=meta_namespace_key_func, repr=False, compare=False)

    @property
    def key(self) -> str:
        """The deleted object's store key: the tombstone's key, else the object's.

        Raises:
            KeyFuncError: neither a tombstone key nor an object with a usable name.
        """
        if self.tombstone_key:
            return self.tombstone_key
        if self.object is None:
            raise KeyFuncError("cannot compute the key of a delete event without key or object")
        return self.key_func(self.object)
