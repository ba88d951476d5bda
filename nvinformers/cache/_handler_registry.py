"""An informer's handlers: registering and removing them, their resync, the sync they wait for.

client-go's ``sharedProcessor`` as the informer runs it: each handler is a
:class:`~nvinformers.cache._processor.ProcessorListener` with its own thread; the informer hands
every notification to each of them under ``_delivery_lock``, and a handler registered on a running
informer first receives a snapshot of the cache under that lock.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Generic, TypeVar

from nvinformers.cache._fifo import RealFIFO
from nvinformers.cache._handlers import ResourceEventHandler
from nvinformers.cache._processor import ADD, UPDATE, Notification, ProcessorListener
from nvinformers.cache._store import KeyedIndexer
from nvinformers.cancel import Latch
from nvinformers.clock import Clock
from nvinformers.errors import NvInformersError

__all__ = [
    "HandlerRegistry",
    "ResourceEventHandlerRegistration",
    "InformerStoppedError",
    "MINIMUM_RESYNC_PERIOD",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.informer")

#: client-go's ``minimumResyncPeriod``.
MINIMUM_RESYNC_PERIOD = 1.0


class InformerStoppedError(NvInformersError, RuntimeError):
    """The informer has stopped; it cannot be restarted or take new handlers."""


class ResourceEventHandlerRegistration:
    """Returned by ``add_event_handler``; identifies the handler and reports its sync state."""

    __slots__ = ("_listener",)

    def __init__(self, listener: ProcessorListener) -> None:
        self._listener = listener

    @property
    def name(self) -> str:
        return self._listener.name

    def has_synced(self) -> bool:
        """True once the informer synced and every initial-list add reached this handler."""
        return self._listener.has_synced()

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once the handler was removed or the informer
        stopped (client-go's ``HasSyncedChecker().Done()``)."""
        return self._listener.sync_done

    @property
    def backlog(self) -> int:
        """Notifications waiting for (or being delivered to) this handler."""
        return self._listener.backlog

    @property
    def errors(self) -> int:
        """How many notifications this handler raised on."""
        return self._listener.errors


class HandlerRegistry(Generic[T]):
    """The informer's handlers and resync (the fields are set by :class:`SharedIndexInformer`)."""

    name: str
    _clock: Clock
    _indexer: KeyedIndexer[T]
    _fifo: RealFIFO
    _state_lock: threading.Lock
    _started: bool  # guarded by _state_lock
    _stopped: bool  # guarded by _state_lock
    _delivery_lock: threading.Lock
    _listeners: tuple[ProcessorListener, ...]  # replaced under _delivery_lock
    _handler_names: Iterator[int]
    # client-go: the default resync period doubles as the resync check period.
    _default_resync: float
    _resync_check_period: float
    _synced: bool
    # Set once synced, or once stopped unsynced (see sync_done); set outside every lock.
    _sync_done: Latch

    @staticmethod
    def _clamp_resync(period: float) -> float:
        if period <= 0:
            return 0.0
        return max(period, MINIMUM_RESYNC_PERIOD)

    def add_event_handler(
        self,
        handler: ResourceEventHandler,
        resync_period: float | None = None,
        *,
        name: str | None = None,
    ) -> ResourceEventHandlerRegistration:
        """Register ``handler``; on a running informer it first receives every cached object.

        A handler added after start gets an ``on_add(obj, is_in_initial_list=True)`` for every
        object in the cache, then live events, with nothing missed or repeated in between; its
        registration's ``has_synced()`` turns true once those adds were delivered.

        Args:
            handler: receives the notifications on its own thread.
            resync_period: this handler's resync period in seconds (None: the informer's
                default; 0: none). Periods under 1 s are raised to 1 s; on a running informer,
                periods under its resync check period are raised to it; an informer built with
                resync 0 resyncs nobody (client-go's rules).
            name: metrics label and thread name (bounded: do not use per-object names).

        Raises:
            InformerStoppedError: the informer has stopped.
        """
        period = self._default_resync if resync_period is None else resync_period
        period = self._clamp_resync(period)
        with self._state_lock:
            if self._stopped:
                raise InformerStoppedError(f"{self.name}: cannot add a handler after stop")
            started = self._started
            if period > 0:
                if self._resync_check_period == 0:
                    log.warning(
                        "%s: handler asked for resync every %.1f s, but the informer was "
                        "built without resync; it will not be resynced",
                        self.name,
                        period,
                    )
                    period = 0.0
                elif period < self._resync_check_period:
                    if started:
                        period = self._resync_check_period
                    else:
                        self._resync_check_period = period
        listener = ProcessorListener(
            handler,
            name=name or f"handler-{next(self._handler_names)}",
            informer_name=self.name,
            informer_synced=self.has_synced,
            resync_period=period,
        )
        listener.next_resync = self._clock.now() + period
        with self._delivery_lock:
            if started:
                objects = self._indexer.list()
                listener.add_many([(ADD, obj, True) for obj in objects], initial=len(objects))
            self._listeners = (*self._listeners, listener)
            if started:
                listener.start()
        listener.check_synced()  # synced already, with nothing to replay
        return ResourceEventHandlerRegistration(listener)

    def remove_event_handler(self, registration: ResourceEventHandlerRegistration) -> None:
        """Stop delivering to the handler. Idempotent; does not block.

        Queued notifications are dropped; a call in progress finishes on the handler's thread.
        Use :meth:`shut_down_event_handler` to also wait for it.
        """
        listener = registration._listener
        with self._delivery_lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)
        listener.stop()

    def shut_down_event_handler(
        self, registration: ResourceEventHandlerRegistration, timeout: float | None = None
    ) -> bool:
        """Remove the handler and wait until its thread has ended; True if it did in time.

        Must not be called from inside the handler itself (it cannot wait for itself).
        """
        self.remove_event_handler(registration)
        return registration._listener.join(timeout)

    def has_synced(self) -> bool:
        """True once the first full list has been applied to the store (resync is unrelated)."""
        return self._synced

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once the informer stopped before it synced.

        client-go's ``HasSyncedChecker().Done()``: what :mod:`nvinformers.cache._wait` waits on.
        """
        return self._sync_done

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until synced, stopped or ``timeout`` seconds passed; returns :meth:`has_synced`."""
        self._sync_done.wait(timeout)
        return self._synced

    def handlers(self) -> tuple[ResourceEventHandlerRegistration, ...]:
        """The registered handlers."""
        return tuple(ResourceEventHandlerRegistration(x) for x in self._listeners)

    def _signal_synced(self) -> None:
        """Announce the first sync; called after ``_synced`` was set, outside the locks."""
        self._sync_done.set()
        for listener in self._listeners:
            listener.check_synced()

    def _resync_timer(self, stop: threading.Event) -> None:
        # client-go's reflector resync goroutine: every check period, ask the queue to resync;
        # the processing thread then replays the cache to the handlers that are due.
        period = self._resync_check_period
        while not self._clock.wait(stop, period):
            self._fifo.resync()

    def _resync_due_listeners(self) -> None:
        now = self._clock.now()
        due = [x for x in self._listeners if x.resync_period > 0 and now >= x.next_resync]
        if not due:
            return
        with self._delivery_lock:
            objects = self._indexer.list()
            notes: list[Notification] = [(UPDATE, obj, obj) for obj in objects]
            for listener in due:
                listener.add_many(notes)
                listener.next_resync = now + listener.resync_period
