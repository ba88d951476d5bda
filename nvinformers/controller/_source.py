"""Sources: what a controller watches (controller-runtime's ``source`` package).

An :class:`InformerSource` is one ``watch()`` — an informer, predicates and an event handler —
the one way both controller drivers declare what they watch (controller-runtime's
``source.Kind``). The controller starts it (registers it on the informer as
``controller-<name>``, made unique there) when it starts, and waits for its
:meth:`~InformerSource.sync_items`: the informer's sync and the registration's initial list.

Its ``on_add``/``on_update``/``on_delete`` run on the informer's handler thread: they build the
event, evaluate the predicates and call the event handler, which only adds requests to the
thread-safe queue (for both drivers). An exception from a predicate or a handler is handed to
``on_skip`` (counted and logged by the controller); the event is dropped, the source keeps
working.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from nvinformers.cache import DeletedFinalStateUnknown, KeyFunc, meta_namespace_key_func
from nvinformers.controller._event import CreateEvent, DeleteEvent, UpdateEvent
from nvinformers.controller.handler import (
    EnqueueRequestForObject,
    EventHandler,
    RequestQueue,
    check_event_handler,
)
from nvinformers.controller.predicates import Predicate, check_predicates

if TYPE_CHECKING:
    from nvinformers.cache import (
        ResourceEventHandlerRegistration,
        SharedIndexInformer,
    )
    from nvinformers.cache._wait import SyncedLike

__all__ = ["InformerSource", "SkipHook"]

#: Told about an event a source could not turn into requests: ``(error, kind, object)``.
SkipHook = Callable[[Exception, str, Any], None]


@runtime_checkable
class HasInformer(Protocol):
    """A typed informer accessor such as ``GPUInformer`` (``.informer()``)."""

    def informer(self) -> SharedIndexInformer[Any]: ...


class InformerSource:
    """One watch (see the module docstring).

    Thread-safety: :meth:`start` is called once, by the controller; the ``on_*`` methods run on
    the informer's handler thread; the rest may be called from any thread.

    Args: those of :meth:`~nvinformers.controller._core.ControllerCore.watch`.

    Raises:
        TypeError: ``informer``, ``handler`` or a predicate has the wrong type.
    """

    __slots__ = (
        "_handler",
        "_key_func",
        "_on_skip",
        "_predicates",
        "_queue",
        "informer",
        "registration",
    )

    def __init__(
        self,
        informer: SharedIndexInformer[Any] | HasInformer,
        handler: EventHandler | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> None:
        self.informer = _as_informer(informer)
        self._handler = (
            EnqueueRequestForObject() if handler is None else check_event_handler(handler)
        )
        self._predicates = check_predicates(predicates)
        # The informer's key function: requests name objects as the informer's cache does
        # (GPUs by name, namespaced objects by namespace/name).
        self._key_func: KeyFunc = getattr(self.informer, "key_func", meta_namespace_key_func)
        self._queue: RequestQueue | None = None
        self._on_skip: SkipHook | None = None
        self.registration: ResourceEventHandlerRegistration | None = None

    def start(self, controller: str, queue: RequestQueue, on_skip: SkipHook) -> None:
        """Register with the informer as ``controller-<controller>`` (made unique on it).

        Raises:
            InformerStoppedError: the informer has stopped.
        """
        self._queue = queue
        self._on_skip = on_skip
        base = f"controller-{controller}"
        taken = {r.name for r in self.informer.handlers()}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        self.registration = self.informer.add_event_handler(self, name=name)

    def sync_items(self) -> tuple[SyncedLike, ...]:
        """What must sync before the workers start: the informer and the registration."""
        registration = self.registration
        return (self.informer,) if registration is None else (self.informer, registration)

    def pending_sync(self) -> str | None:
        """Why this source has not synced yet, or None when it has."""
        informer = self.informer
        if not informer.has_synced():
            health = getattr(informer, "health", None)
            reason = health().reason if callable(health) else ""
            detail = f" ({reason})" if reason not in ("", "ok", "not synced") else ""
            return f"informer {informer.name!r} has not synced{detail}"
        registration = self.registration
        if registration is None:
            return f"handler on informer {informer.name!r} is not registered"
        if not registration.has_synced():
            return (
                f"handler {registration.name!r} has not received the initial list of informer "
                f"{informer.name!r}"
            )
        return None

    def remove(self) -> None:
        """Stop delivery to this source at once (queued events are dropped). Does not block."""
        if self.registration is not None:
            self.informer.remove_event_handler(self.registration)

    def join(self, timeout: float | None) -> bool:
        """Remove the handler and wait up to ``timeout`` s for its thread; True if it ended."""
        registration = self.registration
        if registration is None:
            return True
        return self.informer.shut_down_event_handler(
            registration, timeout=None if timeout is None else max(0.0, timeout)
        )

    # ----------------------------------------------------- ResourceEventHandler (informer side)

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._handle("create", CreateEvent(obj, is_in_initial_list, self._key_func), obj)

    def on_update(self, old: Any, new: Any) -> None:
        self._handle("update", UpdateEvent(old, new, self._key_func), new)

    def on_delete(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            event: DeleteEvent[Any] = DeleteEvent(obj.obj, True, obj.key, self._key_func)
        else:
            event = DeleteEvent(obj, False, "", self._key_func)
        self._handle("delete", event, obj)

    def _handle(self, kind: str, event: Any, obj: Any) -> None:
        """Pass ``event`` through the predicates' and the handler's ``kind`` method (``create``,
        ``update`` or ``delete``); hand what raises to ``on_skip``."""
        try:
            for predicate in self._predicates:
                if not getattr(predicate, kind)(event):
                    return
            getattr(self._handler, kind)(event, self._queue)
        except Exception as exc:
            if self._on_skip is not None:
                self._on_skip(exc, kind, obj)

    def __repr__(self) -> str:
        return f"<InformerSource {getattr(self.informer, 'name', self.informer)!r}>"


def _as_informer(source: object) -> SharedIndexInformer[Any]:
    if hasattr(source, "add_event_handler") and hasattr(source, "has_synced"):
        return cast("SharedIndexInformer[Any]", source)
    if isinstance(source, HasInformer):
        return source.informer()
    raise TypeError(
        "watch() needs a SharedIndexInformer or a typed informer with an informer() method "
        f"(such as factory.device().v1alpha1().gpus()), got {source!r}"
    )
