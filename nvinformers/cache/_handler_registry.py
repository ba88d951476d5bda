"""An informer's handlers: registering and removing them, and their resync.

client-go's ``sharedProcessor``: each handler is a
:class:`~nvinformers.cache._processor.ProcessorListener` with its own thread.
"""

from __future__ import annotations

import itertools
import logging
import threading
from collections.abc import Callable
from typing import Any

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


class HandlerRegistry:
    """An informer's handlers and their resync (client-go's ``sharedProcessor``).

    Owned by the informer: ``indexer`` is its cache (replayed to late handlers and on resync),
    ``resync_period`` its default, ``informer_synced`` tells whether it has synced.

    Thread-safety: every method may be called from any thread. :attr:`lock` is the informer's
    delivery lock: it guards the replacement of :attr:`listeners`; the informer holds it while it
    applies a batch to its store and hands out the notifications, and :meth:`add` while it
    snapshots the cache for a late handler (so the handler sees a consistent snapshot followed
    by live events). It also guards whether the handlers' threads were started and stopped, so
    that a handler added while the informer starts or stops is started or refused, never left
    without a thread (client-go's ``listenersStarted`` under ``listenersLock``). Readers without
    the lock see one consistent tuple.
    """

    def __init__(
        self,
        name: str,
        *,
        indexer: KeyedIndexer[Any],
        clock: Clock,
        resync_period: float,
        informer_synced: Callable[[], bool],
    ) -> None:
        self.name = name
        self._indexer = indexer
        self._clock = clock
        self._informer_synced = informer_synced
        self.default_resync = self._clamp_resync(resync_period)
        # client-go: the default resync period doubles as the resync check period. It shrinks
        # only before the informer starts, under the informer's state lock (see resync_period).
        self.resync_check_period = self.default_resync
        self.lock = threading.Lock()
        self.listeners: tuple[ProcessorListener, ...] = ()  # replaced under lock
        self._started = False  # guarded by lock: the handlers' threads run
        self._stopped = False  # guarded by lock: they were stopped; no handler may join
        self._names = itertools.count(1)

    @staticmethod
    def _clamp_resync(period: float) -> float:
        if period <= 0:
            return 0.0
        return max(period, MINIMUM_RESYNC_PERIOD)

    def resync_period(self, requested: float | None, started: bool) -> float:
        """The resync period a new handler gets for ``requested`` (None: the default), by
        client-go's rules (see ``SharedIndexInformer.add_event_handler``). Before the informer
        starts, a shorter period shrinks the check period: call it under the informer's state
        lock."""
        period = self._clamp_resync(self.default_resync if requested is None else requested)
        if period > 0:
            if self.resync_check_period == 0:
                log.warning(
                    "%s: handler asked for resync every %.1f s, but the informer was "
                    "built without resync; it will not be resynced",
                    self.name,
                    period,
                )
                period = 0.0
            elif period < self.resync_check_period:
                if started:
                    period = self.resync_check_period
                else:
                    self.resync_check_period = period
        return period

    def add(
        self, handler: ResourceEventHandler, period: float, name: str | None
    ) -> ResourceEventHandlerRegistration:
        """Register ``handler`` with resync ``period``; once the handlers run it first gets
        every cached object, then its thread starts.

        Raises:
            InformerStoppedError: the handlers were stopped (the informer stopped).
        """
        listener = ProcessorListener(
            handler,
            name=name or f"handler-{next(self._names)}",
            informer_name=self.name,
            informer_synced=self._informer_synced,
            resync_period=period,
        )
        listener.next_resync = self._clock.now() + period
        with self.lock:
            if self._stopped:
                raise InformerStoppedError(f"{self.name}: cannot add a handler after stop")
            if self._started:
                objects = self._indexer.list()
                listener.add_many([(ADD, obj, True) for obj in objects], initial=len(objects))
            self.listeners = (*self.listeners, listener)
            if self._started:
                listener.start()
        listener.check_synced()  # synced already, with nothing to replay
        return ResourceEventHandlerRegistration(listener)

    def remove(self, registration: ResourceEventHandlerRegistration) -> ProcessorListener:
        """Stop delivering to the handler; return its listener (a call in progress finishes on
        its thread). Does not block."""
        listener = registration._listener
        with self.lock:
            self.listeners = tuple(x for x in self.listeners if x is not listener)
        listener.stop()
        return listener

    def start(self) -> None:
        """Start every handler's thread (the informer starts)."""
        with self.lock:
            self._started = True
            for listener in self.listeners:
                listener.start()

    def stop(self) -> None:
        """Stop every handler and wait for its thread (the informer stopped). Blocks."""
        with self.lock:
            self._stopped = True
            listeners = self.listeners
        for listener in listeners:
            listener.stop()
        for listener in listeners:
            listener.join()

    def check_synced(self) -> None:
        """The informer synced: tell every handler (outside the lock)."""
        for listener in self.listeners:
            listener.check_synced()

    def resync_due(self) -> None:
        """Replay the cache to the handlers due for a resync (on the informer's queue thread)."""
        now = self._clock.now()
        due = [x for x in self.listeners if x.resync_period > 0 and now >= x.next_resync]
        if not due:
            return
        with self.lock:
            objects = self._indexer.list()
            notes: list[Notification] = [(UPDATE, obj, obj) for obj in objects]
            for listener in due:
                listener.add_many(notes)
                listener.next_resync = now + listener.resync_period
