"""Event handlers: turn informer events into reconcile requests (controller-runtime ``handler``).

An event handler receives the events that passed a watch's predicates and adds
:class:`~nvinformers.controller._reconcile.Request` objects to the controller's queue::

    class EventHandler(Protocol):
        def create(self, event: CreateEvent, queue: RequestQueue) -> None: ...
        def update(self, event: UpdateEvent, queue: RequestQueue) -> None: ...
        def delete(self, event: DeleteEvent, queue: RequestQueue) -> None: ...

Built-ins:

* :func:`enqueue_request_for_object` (controller-runtime ``EnqueueRequestForObject``, the default
  of ``Controller.watch``): one request for the object's own key. The key comes from the
  informer's key function, so GPUs are requested by name. Relist-detected deletes
  (tombstones) are requested by the key recorded in the tombstone, even when no last known
  object exists.
* :func:`enqueue_mapped` (``EnqueueRequestsFromMapFunc``): ``fn(obj) -> Iterable[Request]`` maps an
  object to the requests of *other* objects, e.g. a GPU event to the node it lives on. Updates map
  both the old and the new state (an object that moved from node A to node B reconciles both),
  and the requests are de-duplicated. A tombstone's last known object is mapped; a tombstone
  without one cannot be mapped: it is skipped, logged and counted in
  ``nvinformers_controller_events_skipped_total{reason="unknown_final_state"}``.
* :class:`EventHandlerFuncs` (``handler.Funcs``): your own functions per event kind.

Handlers run on the informer's handler thread: they must only compute requests and add them,
never block, never do I/O. The work belongs in the reconciler. An exception from a handler (or a
predicate) is logged by the controller, counted as ``reason="handler_error"``, and the event is
dropped; the handler keeps receiving events.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from typing import Any, Protocol, runtime_checkable

from nvinformers.controller._event import CreateEvent, DeleteEvent, UpdateEvent
from nvinformers.controller._reconcile import Request
from nvinformers.errors import NvInformersError

__all__ = [
    "RequestQueue",
    "EventHandler",
    "MapFunc",
    "EnqueueRequestForObject",
    "EnqueueRequestsFromMapFunc",
    "EventHandlerFuncs",
    "enqueue_request_for_object",
    "enqueue_mapped",
    "check_event_handler",
]

#: ``obj -> Iterable[Request]``: the requests an object's event should trigger.
MapFunc = Callable[[Any], Iterable[Request]]


class RequestQueue(Protocol):
    """The part of the controller's rate-limiting queue an event handler may use."""

    def add(self, item: Request) -> None:
        """Queue ``item`` now (de-duplicated with a queued equal request)."""
        ...

    def add_after(self, item: Request, delay: float) -> None:
        """Queue ``item`` after ``delay`` seconds."""
        ...

    def add_rate_limited(self, item: Request) -> None:
        """Queue ``item`` after its rate limiter's delay."""
        ...


@runtime_checkable
class EventHandler(Protocol):
    """Turns events into requests (see the module docstring)."""

    def create(self, event: CreateEvent[Any], queue: RequestQueue) -> None:
        """Handle a create event."""
        ...

    def update(self, event: UpdateEvent[Any], queue: RequestQueue) -> None:
        """Handle an update event."""
        ...

    def delete(self, event: DeleteEvent[Any], queue: RequestQueue) -> None:
        """Handle a delete event."""
        ...


class SkipEventError(NvInformersError):
    """Raised by a built-in handler for an event it cannot turn into requests.

    The controller counts it in ``nvinformers_controller_events_skipped_total{reason=...}``
    (``reason`` is one of :data:`nvinformers.controller._metrics.SKIP_REASONS`) and logs it. Not
    part of the public API: custom handlers simply return, or raise any other exception (counted
    as ``handler_error``).
    """

    def __init__(self, reason: str, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def _request_for_key(key: str) -> Request:
    try:
        return Request.from_key(key)
    except ValueError as exc:
        raise SkipEventError("key_error", f"cannot make a request from key {key!r}: {exc}") from exc


def _key_of(event: CreateEvent[Any] | UpdateEvent[Any] | DeleteEvent[Any]) -> str:
    try:
        return event.key
    except Exception as exc:  # the key function is user-replaceable: any error is a key error
        raise SkipEventError("key_error", f"cannot compute the object's key: {exc}") from exc


class EnqueueRequestForObject:
    """Enqueues a request for the event's own object, by its store key.

    controller-runtime ``EnqueueRequestForObject``; see the module docstring.

    Thread-safety: stateless.
    """

    __slots__ = ()

    def create(self, event: CreateEvent[Any], queue: RequestQueue) -> None:
        queue.add(_request_for_key(_key_of(event)))

    def update(self, event: UpdateEvent[Any], queue: RequestQueue) -> None:
        # The key of the new state; old and new share it (the informer keys both the same way).
        queue.add(_request_for_key(_key_of(event)))

    def delete(self, event: DeleteEvent[Any], queue: RequestQueue) -> None:
        queue.add(_request_for_key(_key_of(event)))

    def __repr__(self) -> str:
        return "enqueue_request_for_object()"


class EnqueueRequestsFromMapFunc:
    """Enqueues the requests ``map_func`` returns for the event's object.

    controller-runtime ``EnqueueRequestsFromMapFunc``; see the module docstring.

    Thread-safety: as thread-safe as ``map_func``; the controller calls it from one informer
    handler thread per watch.

    Args:
        map_func: ``obj -> Iterable[Request]``; must not block, must not mutate ``obj``.
    """

    __slots__ = ("_map_func",)

    def __init__(self, map_func: MapFunc) -> None:
        if not callable(map_func):
            raise TypeError(f"enqueue_mapped: map_func must be callable, got {map_func!r}")
        self._map_func = map_func

    def _map(self, obj: Any) -> list[Request]:
        requests: object = self._map_func(obj)
        if not isinstance(requests, Iterable):
            raise TypeError(
                f"map function {self._map_func!r} returned {requests!r}; expected an iterable "
                "of Request objects (return [] for none)"
            )
        out: list[Request] = []
        for request in requests:
            if not isinstance(request, Request):
                raise TypeError(
                    f"map function {self._map_func!r} returned {request!r} "
                    f"({type(request).__name__}); expected Request objects"
                )
            out.append(request)
        return out

    def create(self, event: CreateEvent[Any], queue: RequestQueue) -> None:
        for request in self._map(event.object):
            queue.add(request)

    def update(self, event: UpdateEvent[Any], queue: RequestQueue) -> None:
        # Both states: a GPU that moved from one node to another concerns both nodes.
        # dict.fromkeys de-duplicates and keeps the order. A resync passes one object twice.
        requests = dict.fromkeys(self._map(event.object_new))
        if event.object_old is not event.object_new:
            requests.update(dict.fromkeys(self._map(event.object_old)))
        for request in requests:
            queue.add(request)

    def delete(self, event: DeleteEvent[Any], queue: RequestQueue) -> None:
        if event.object is None:
            raise SkipEventError(
                "unknown_final_state",
                f"delete of {event.tombstone_key!r} was noticed only by a relist and its last "
                "state is unknown: the map function has no object to map",
            )
        for request in self._map(event.object):
            queue.add(request)

    def __repr__(self) -> str:
        return f"enqueue_mapped({getattr(self._map_func, '__name__', self._map_func)!r})"


class EventHandlerFuncs:
    """An event handler made of optional functions (controller-runtime ``handler.Funcs``).

    A missing function ignores its events.
    """

    __slots__ = ("_create", "_delete", "_update")

    def __init__(
        self,
        *,
        create: Callable[[CreateEvent[Any], RequestQueue], None] | None = None,
        update: Callable[[UpdateEvent[Any], RequestQueue], None] | None = None,
        delete: Callable[[DeleteEvent[Any], RequestQueue], None] | None = None,
    ) -> None:
        self._create = create
        self._update = update
        self._delete = delete

    def create(self, event: CreateEvent[Any], queue: RequestQueue) -> None:
        if self._create is not None:
            self._create(event, queue)

    def update(self, event: UpdateEvent[Any], queue: RequestQueue) -> None:
        if self._update is not None:
            self._update(event, queue)

    def delete(self, event: DeleteEvent[Any], queue: RequestQueue) -> None:
        if self._delete is not None:
            self._delete(event, queue)


def enqueue_request_for_object() -> EnqueueRequestForObject:
    """The default handler: one request per event, for the object's own key."""
    return EnqueueRequestForObject()


def enqueue_mapped(map_func: MapFunc) -> EnqueueRequestsFromMapFunc:
    """A handler that enqueues ``map_func(obj)``'s requests (see the module docstring).

    Raises:
        TypeError: ``map_func`` is not callable.
    """
    return EnqueueRequestsFromMapFunc(map_func)


def check_event_handler(handler: object) -> EventHandler:
    """Return ``handler`` if it has callable ``create``, ``update`` and ``delete`` methods.

    Raises:
        TypeError: it does not; the message names the usual mistakes (passing a map function
            instead of ``enqueue_mapped(fn)``, or an informer event handler).
    """
    if isinstance(handler, EventHandler) and all(
        callable(getattr(handler, m, None)) for m in ("create", "update", "delete")
    ):
        return handler
    hint = ""
    if hasattr(handler, "on_add"):
        hint = (
            "; it looks like an informer ResourceEventHandler (on_add/on_update/on_delete): "
            "a controller handler receives events and the queue instead"
        )
    elif callable(handler):
        hint = "; to map objects to requests, pass enqueue_mapped(fn)"
    raise TypeError(
        f"{handler!r} is not a controller event handler: it needs create(event, queue), "
        f"update(event, queue) and delete(event, queue) methods{hint}"
    )
