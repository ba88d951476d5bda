"""Asyncio event handlers: informer notifications delivered on an event loop.

:func:`add_async_event_handler` registers a handler whose ``on_add``, ``on_update`` and
``on_delete`` run **on the event loop's thread**, as coroutines (awaited) or plain functions
(called), with the informer's guarantees intact: after the store is updated, sequentially (each
call finishes before the next starts) and therefore in order per object.

How a notification travels, and why it is cheap:

1. The informer's processing thread hands it to this handler's own thread, as for any handler
   (client-go's ``processorListener``: a slow handler never delays the store or other handlers).
2. That thread appends it to a buffer shared with the loop, under a lock. Only when the buffer
   was not already announced does it call ``loop.call_soon_threadsafe`` to wake the consumer; so
   while the loop is busy, thousands of notifications cost one cross-thread wake-up, not one each.
3. A single long-lived consumer task (one per handler, created at registration) swaps the whole
   buffer out and delivers it in order. No task is created per notification, and nothing goes
   back to a thread. The consumer yields to the loop every :data:`YIELD_EVERY` deliveries, so a
   burst of handlers that never suspend cannot monopolise the loop.

Failures: a handler that raises (including a stray ``CancelledError`` of its own) is logged, at
most once per 10 s with a count of what was suppressed, and counted in ``errors``; it keeps
receiving. When the loop is closed, or the consumer ended because the loop is shutting down,
notifications are dropped and counted in ``dropped`` (with one log line per 10 s) instead of
raising in the informer's thread, and the handler is removed from the informer.

Sync: the registration's :meth:`~AsyncEventHandlerRegistration.has_synced` is True once the
informer has synced and every initial-list add has been **delivered on the loop** (awaited), not
merely handed over; its :meth:`~AsyncEventHandlerRegistration.sync_done` latch is set then (or
when the handler stops), so :func:`nvinformers.aio.wait_for_cache_sync` and
:meth:`~AsyncEventHandlerRegistration.wait_synced` are woken, never poll.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import itertools
import logging
import threading
from collections.abc import Awaitable, Callable
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache import (
    DeletedFinalStateUnknown,
    ResourceEventHandlerRegistration,
    SharedIndexInformer,
)
from nvinformers.cache._processor import (
    ADD,
    DELETE,
    UPDATE,
    LogThrottle,
    Notification,
    log_handler_error,
)
from nvinformers.cache._wait import SyncWait
from nvinformers.cancel import Latch

__all__ = [
    "AsyncResourceEventHandler",
    "AsyncResourceEventHandlerFuncs",
    "AsyncResourceEventHandlerDetailedFuncs",
    "AsyncEventHandlerRegistration",
    "add_async_event_handler",
    "YIELD_EVERY",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.aio")

#: The consumer yields to the event loop after this many deliveries without a suspension.
YIELD_EVERY = 64
#: Seconds between two logged handler errors (or two logged drops) of one handler.
_LOG_INTERVAL = 10.0

# Why delivery ended (the bridge's _closed_reason).
_REMOVED = "the handler was removed"
_LOOP_CLOSED = "the event loop is closed"
_CONSUMER_ENDED = "its consumer task ended (the event loop is shutting down)"

#: What an asyncio handler method may return: an awaitable (awaited) or None.
MaybeAwaitable = Awaitable[None] | None


class AsyncResourceEventHandler(Protocol):
    """An event handler whose methods run on the event loop.

    Each method may be a coroutine function (its coroutine is awaited before the next
    notification is delivered) or a plain function (called on the loop thread: it must not
    block). See :class:`nvinformers.cache.ResourceEventHandler` for the meaning of each call.
    """

    def on_add(self, obj: Any, is_in_initial_list: bool) -> MaybeAwaitable: ...

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable: ...

    def on_delete(self, obj: Any) -> MaybeAwaitable: ...


class AsyncResourceEventHandlerFuncs(Generic[T]):
    """An asyncio handler made of optional coroutine functions (plain functions work too).

    Missing functions ignore their notification. ``on_add`` takes just the object; use
    :class:`AsyncResourceEventHandlerDetailedFuncs` to also receive ``is_in_initial_list``.
    ``on_delete`` receives the last known object or a
    :class:`~nvinformers.cache.DeletedFinalStateUnknown` tombstone.
    """

    __slots__ = ("_on_add", "_on_update", "_on_delete")

    def __init__(
        self,
        *,
        on_add: Callable[[T], MaybeAwaitable] | None = None,
        on_update: Callable[[T, T], MaybeAwaitable] | None = None,
        on_delete: Callable[[T | DeletedFinalStateUnknown[T]], MaybeAwaitable] | None = None,
    ) -> None:
        self._on_add = on_add
        self._on_update = on_update
        self._on_delete = on_delete

    def on_add(self, obj: Any, is_in_initial_list: bool) -> MaybeAwaitable:
        return None if self._on_add is None else self._on_add(obj)

    def on_update(self, old: Any, new: Any) -> MaybeAwaitable:
        return None if self._on_update is None else self._on_update(old, new)

    def on_delete(self, obj: Any) -> MaybeAwaitable:
        return None if self._on_delete is None else self._on_delete(obj)


class AsyncResourceEventHandlerDetailedFuncs(AsyncResourceEventHandlerFuncs[T]):
    """Like :class:`AsyncResourceEventHandlerFuncs`; ``on_add`` also gets ``is_in_initial_list``."""

    __slots__ = ("_on_add_detailed",)

    def __init__(
        self,
        *,
        on_add: Callable[[T, bool], MaybeAwaitable] | None = None,
        on_update: Callable[[T, T], MaybeAwaitable] | None = None,
        on_delete: Callable[[T | DeletedFinalStateUnknown[T]], MaybeAwaitable] | None = None,
    ) -> None:
        super().__init__(on_update=on_update, on_delete=on_delete)
        self._on_add_detailed = on_add

    def on_add(self, obj: Any, is_in_initial_list: bool) -> MaybeAwaitable:
        add = self._on_add_detailed
        return None if add is None else add(obj, is_in_initial_list)


class _Bridge:
    """The threaded handler registered on the informer: moves notifications to the loop.

    Its ``on_*`` methods run on the informer's handler thread. ``_lock`` guards ``_buffer``,
    ``_wake_pending``, ``_closed_reason`` and ``_initial_pending``. Invariant: while
    ``_wake_pending`` is True, a wake-up of the consumer is scheduled or the consumer has not yet
    swapped the buffer out, so a notification appended then will be seen without a new wake-up.
    """

    __slots__ = (
        "_lock",
        "_buffer",
        "_wake_pending",
        "_closed_reason",
        "_initial_pending",
        "_owner",
    )

    def __init__(self, owner: AsyncEventHandlerRegistration) -> None:
        self._lock = threading.Lock()
        self._buffer: list[Notification] = []
        self._wake_pending = False
        self._closed_reason: str | None = None  # why delivery ended; None while open
        self._initial_pending = 0
        self._owner = owner

    @property
    def closed(self) -> bool:
        return self._closed_reason is not None

    def close_locked(self, reason: str) -> int:
        """End delivery (first reason wins); drop the buffer. Caller holds ``_lock``.

        Returns:
            How many buffered notifications were dropped.
        """
        if self._closed_reason is None:
            self._closed_reason = reason
        lost = len(self._buffer)
        self._buffer.clear()
        self._initial_pending = 0
        return lost

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._put((ADD, obj, is_in_initial_list), is_in_initial_list)

    def on_update(self, old: Any, new: Any) -> None:
        self._put((UPDATE, old, new), False)

    def on_delete(self, obj: Any) -> None:
        self._put((DELETE, obj, None), False)

    def _put(self, note: Notification, initial: bool) -> None:
        owner = self._owner
        loop = owner._loop
        with self._lock:
            if self._closed_reason is None and loop.is_closed():
                self.close_locked(_LOOP_CLOSED)
            reason = self._closed_reason
            if reason is None:
                self._buffer.append(note)
                if initial:
                    self._initial_pending += 1
                if self._wake_pending:
                    return
                self._wake_pending = True
        if reason is not None:
            if reason != _REMOVED:  # a call racing remove() is not a loss worth a log line
                owner._dropped_on_handler_thread(1, reason)
            return
        try:
            loop.call_soon_threadsafe(owner._wake)
        except RuntimeError:  # closed between the check and the call
            with self._lock:
                lost = self.close_locked(_LOOP_CLOSED)
            owner._dropped_on_handler_thread(lost, _LOOP_CLOSED)


class AsyncEventHandlerRegistration:
    """An asyncio handler added with :func:`add_async_event_handler`.

    Reports the handler's sync state and backlog and removes it. Thread-safety: the properties,
    :meth:`has_synced` and :meth:`remove` may be used from any thread; :meth:`wait_synced` and
    :meth:`aclose` are coroutines of the handler's loop.
    """

    _ids = itertools.count(1)

    def __init__(
        self,
        informer: SharedIndexInformer[Any],
        handler: AsyncResourceEventHandler,
        loop: asyncio.AbstractEventLoop,
        name: str | None = None,
    ) -> None:
        self._informer = informer
        self._handler = handler
        self._loop = loop
        self._bridge = _Bridge(self)
        self._inner: ResourceEventHandlerRegistration | None = None
        self._name = name or f"async-handler-{next(self._ids)}"
        self._task: asyncio.Task[None] | None = None
        # Loop-only state.
        self._wakeup = asyncio.Event()
        # Set once has_synced(), or once delivery ended; set outside the bridge's lock.
        self._sync_done = Latch()
        self._in_flight = 0
        # Statistics: delivered/errors written on the loop, dropped under _stats_lock.
        self.delivered = 0
        self.errors = 0
        self._dropped = 0
        self._stats_lock = threading.Lock()
        self._error_log = LogThrottle(_LOG_INTERVAL)
        self._drop_log = LogThrottle(_LOG_INTERVAL)

    # ------------------------------------------------------------------------------ reads

    @property
    def name(self) -> str:
        """The handler's name (metrics label, thread and task names)."""
        return self._name

    @property
    def informer(self) -> SharedIndexInformer[Any]:
        return self._informer

    @property
    def informer_registration(self) -> ResourceEventHandlerRegistration | None:
        """The registration of the threaded bridge on the informer."""
        return self._inner

    @property
    def loop(self) -> asyncio.AbstractEventLoop:
        return self._loop

    @property
    def dropped(self) -> int:
        """Notifications dropped because the loop was closed or the consumer had ended."""
        return self._dropped

    @property
    def closed(self) -> bool:
        """True once the handler was removed, its consumer ended or its loop closed."""
        return self._bridge.closed

    @property
    def backlog(self) -> int:
        """Notifications not yet delivered: in the informer's handler thread, in the buffer to
        the loop, and being delivered."""
        inner = self._inner
        upstream = 0 if inner is None else inner.backlog
        return upstream + len(self._bridge._buffer) + self._in_flight

    def has_synced(self) -> bool:
        """True once the informer synced and every initial-list add was delivered on the loop."""
        inner = self._inner
        return inner is not None and inner.has_synced() and self._bridge._initial_pending == 0

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once delivery ended (removed, loop gone)."""
        return self._sync_done

    async def wait_synced(self) -> bool:
        """Wait until :meth:`has_synced`; False if the informer stopped or the handler was
        removed first. Must run on the handler's loop."""
        with SyncWait((self,)) as sync:
            return await sync.wait_async()

    def _check_synced(self) -> None:
        # Called when the threaded registration synced (on its handler thread) and after the
        # loop delivered the last initial add: whichever of the two comes second sees both done.
        if self.has_synced():
            self._sync_done.set()

    # ---------------------------------------------------------------------------- removal

    def remove(self) -> None:
        """Stop delivering: queued notifications are dropped, a call in progress finishes.

        Removes the bridge from the informer (client-go's asynchronous ``RemoveEventHandler``)
        and lets the consumer task end. Does not block; idempotent; callable from any thread.
        Use :meth:`aclose` to also wait for the consumer and the handler thread.
        """
        bridge = self._bridge
        with bridge._lock:
            bridge.close_locked(_REMOVED)
        self._sync_done.set()
        inner = self._inner
        if inner is not None:
            self._informer.remove_event_handler(inner)
        if _running_loop() is self._loop:
            self._wake()
        else:
            # A closed loop took its consumer task with it: nothing to wake.
            with contextlib.suppress(RuntimeError):
                self._loop.call_soon_threadsafe(self._wake)

    async def aclose(self, timeout: float | None = None) -> bool:
        """Remove the handler and wait for its in-flight call, its task and its thread to end.

        A call in progress gets ``timeout`` seconds to finish, then is cancelled. The informer's
        handler thread is joined in the default executor, not on the loop.

        Returns:
            True if everything ended within ``timeout`` (the consumer was not cancelled).
        """
        self.remove()
        graceful = True
        task = self._task
        if task is not None and not task.done() and task is not asyncio.current_task():
            done, _ = await asyncio.wait({task}, timeout=timeout)
            if not done:
                graceful = False
                task.cancel()
                await asyncio.wait({task})
        inner = self._inner
        if inner is not None:
            joined = await asyncio.get_running_loop().run_in_executor(
                None, self._informer.shut_down_event_handler, inner, timeout
            )
            graceful = graceful and joined
        return graceful

    # ------------------------------------------------------------------------- loop side

    def _start(self) -> None:
        if self._task is None and not self.closed:
            self._task = self._loop.create_task(
                self._consume(), name=f"nvinformers-aio-{self._informer.name}-{self._name}"
            )

    def _wake(self) -> None:
        self._wakeup.set()

    async def _consume(self) -> None:
        bridge = self._bridge
        wakeup = self._wakeup
        # Deliveries since this task last gave the loop a turn. Carried across batches: when the
        # next wake-up is already pending, awaiting it does not suspend.
        since_yield = 0
        try:
            while True:
                if not wakeup.is_set():
                    since_yield = 0
                await wakeup.wait()
                wakeup.clear()
                with bridge._lock:
                    if bridge.closed:
                        return
                    batch = bridge._buffer
                    bridge._buffer = []
                    bridge._wake_pending = False
                    self._in_flight = len(batch)
                if batch:
                    since_yield = await self._deliver(batch, since_yield)
        finally:
            self._in_flight = 0
            self._consumer_ended()

    async def _deliver(self, batch: list[Notification], since_yield: int) -> int:
        """Deliver ``batch`` in order; returns the deliveries made since the last yield."""
        handler = self._handler
        bridge = self._bridge
        current = asyncio.current_task()
        for kind, a, b in batch:
            if bridge.closed:  # removed while delivering: drop the rest, as client-go does
                self._in_flight = 0
                return since_yield
            try:
                if kind == UPDATE:
                    result = handler.on_update(a, b)
                elif kind == ADD:
                    result = handler.on_add(a, b)
                else:
                    result = handler.on_delete(a)
                if result is not None and inspect.isawaitable(result):
                    await result
            except asyncio.CancelledError:
                if current is not None and current.cancelling():
                    raise  # our task is being cancelled: stop, do not count it as a failure
                self._on_handler_error(kind)
            except Exception:
                self._on_handler_error(kind)
            self.delivered += 1
            self._in_flight -= 1
            if kind == ADD and b:
                with bridge._lock:
                    last = bridge._initial_pending == 1
                    if bridge._initial_pending > 0:
                        bridge._initial_pending -= 1
                if last:
                    self._check_synced()
            # Whether an awaited handler suspended cannot be told cheaply (a coroutine that
            # never awaits anything does not), so every delivery counts.
            since_yield += 1
            if since_yield >= YIELD_EVERY:
                since_yield = 0
                await asyncio.sleep(0)
        return since_yield

    def _consumer_ended(self) -> None:
        bridge = self._bridge
        with bridge._lock:
            already = bridge.closed
            lost = bridge.close_locked(_CONSUMER_ENDED)
        self._sync_done.set()
        if lost and not already:
            self._count_drops(lost, _CONSUMER_ENDED)
        if not already:
            # The loop is going away without remove(): stop the informer from feeding us.
            log.info(
                "%s: asyncio handler %s stopped with its event loop; removing it",
                self._informer.name,
                self._name,
            )
            inner = self._inner
            if inner is not None:
                self._informer.remove_event_handler(inner)

    def _on_handler_error(self, kind: int) -> None:
        self.errors += 1
        handler = f"asyncio handler {self._name}"
        log_handler_error(log, self._error_log, self._informer.name, handler, kind)

    # ---------------------------------------------------------------- handler-thread side

    def _dropped_on_handler_thread(self, n: int, why: str) -> None:
        first = self._count_drops(n, why)
        if first:
            # Runs on the informer's handler thread: removing only flags the listener to stop.
            inner = self._inner
            if inner is not None:
                self._informer.remove_event_handler(inner)

    def _count_drops(self, n: int, why: str) -> bool:
        """Count ``n`` dropped notifications; log at most every 10 s. True on the first drop."""
        with self._stats_lock:
            first = self._dropped == 0
            self._dropped += n
            total = self._dropped
        if (n or first) and self._drop_log.allow() is not None:
            log.warning(
                "%s: asyncio handler %s is dropping notifications: %s (%d dropped so far)",
                self._informer.name,
                self._name,
                why,
                total,
            )
        return first

    def __repr__(self) -> str:
        return (
            f"<AsyncEventHandlerRegistration {self._informer.name}/{self._name} "
            f"backlog={self.backlog} errors={self.errors} closed={self.closed}>"
        )


def add_async_event_handler(
    informer: SharedIndexInformer[Any],
    handler: AsyncResourceEventHandler,
    *,
    loop: asyncio.AbstractEventLoop | None = None,
    name: str | None = None,
    resync_period: float | None = None,
) -> AsyncEventHandlerRegistration:
    """Register an asyncio handler: its notifications are delivered on ``loop``.

    Semantics: see the module docstring. On a running informer, the handler first receives
    every cached object as an initial add, exactly like a threaded handler.

    Thread-safety: call it on ``loop``'s thread (e.g. from a coroutine), or from any thread
    with an explicit ``loop``; the consumer task is then created on the loop by a callback.
    Does not block beyond the informer's registration lock.

    Args:
        informer: the informer to watch.
        handler: an object with ``on_add``, ``on_update`` and ``on_delete`` (coroutine
            functions or plain functions), e.g. :class:`AsyncResourceEventHandlerFuncs`.
        loop: the loop to deliver on (default: the running loop).
        name: bounded name for logs, metrics and the handler's thread and task.
        resync_period: as for ``informer.add_event_handler``.

    Returns:
        The registration: ``has_synced()``, ``await wait_synced()``, ``backlog``, ``errors``,
        ``remove()``, ``await aclose()``.

    Raises:
        RuntimeError: no ``loop`` was given and none is running in this thread, or the loop is
            closed.
        InformerStoppedError: the informer has stopped.
    """
    running = _running_loop()
    if loop is None:
        if running is None:
            raise RuntimeError(
                "add_async_event_handler: no running event loop in this thread; call it from a "
                "coroutine or pass loop="
            )
        loop = running
    if loop.is_closed():
        raise RuntimeError("add_async_event_handler: the event loop is closed")
    registration = AsyncEventHandlerRegistration(informer, handler, loop, name)
    if running is loop:
        registration._start()
    else:
        loop.call_soon_threadsafe(registration._start)
    try:
        inner = informer.add_event_handler(
            registration._bridge, resync_period, name=registration._name
        )
    except BaseException:
        registration.remove()
        raise
    registration._inner = inner
    inner.sync_done().add_callback(registration._check_synced)
    return registration


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None
