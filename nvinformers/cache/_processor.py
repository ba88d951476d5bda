"""An informer's handlers: registering them, their resync, and per-handler delivery.

:class:`HandlerRegistry` is client-go's ``sharedProcessor`` (registering and removing handlers,
resync); each handler is a :class:`ProcessorListener` (``processorListener``) with its own buffer
and its own thread.

client-go's ``processorListener``: one slow or failing handler must never delay the store or the
other handlers ("one slow controller will doom all other controllers sharing the informer",
kubernetes#27078), and dropping notifications would silently lose events for handlers that are
not purely level-based. So each handler's buffer is unbounded — and, unlike client-go
(kubernetes#121474, client-go#1326), its length is always visible (``backlog``, exported as the
``nvinformers_informer_handler_backlog`` gauge).

The informer appends whole batches (one lock round and at most one wake-up per batch); the handler
thread takes everything queued at once, then calls the handler for each notification in order. A
handler that raises is logged (rate-limited) and counted, and keeps receiving.

Wake-ups are what a storm costs in Python, not the notifications: on a busy core, waking the
handler thread per event means two or more context switches and two GIL transfers per event (10-30
µs, several times the work of delivering it). So the handler thread, once it has drained its
queue, *lingers* in a timed wait that producers do not interrupt:
notifications queued meanwhile are picked up together when it ends (during a storm, dozens per
wake-up). The linger starts at :data:`LINGER_MIN` and doubles while notifications keep arriving,
up to :data:`LINGER_MAX`. Only a handler thread that lingered and found nothing goes to sleep for
good, and the next notification wakes it at once: an isolated event is delivered without delay and
an idle informer costs no CPU. The price is at most ``LINGER_MAX`` of extra latency, for events
that arrive while a burst is being delivered.

The wake-up itself is a bare ``threading.Lock`` used as a binary semaphore, not a ``Condition``
(whose ``wait`` allocates a lock and runs a page of Python each time).
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from bisect import bisect_left
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from nvinformers.cache._handlers import ResourceEventHandler
from nvinformers.cache._store import KeyedIndexer
from nvinformers.cancel import Latch
from nvinformers.clock import Clock
from nvinformers.errors import NvInformersError
from nvinformers.workqueue._metrics import Histogram

__all__ = [
    "Notification",
    "ADD",
    "UPDATE",
    "DELETE",
    "LINGER_MIN",
    "LINGER_MAX",
    "ProcessorListener",
    "LogThrottle",
    "log_handler_error",
    "HandlerRegistry",
    "ResourceEventHandlerRegistration",
    "InformerStoppedError",
    "MINIMUM_RESYNC_PERIOD",
]

log = logging.getLogger("nvinformers.cache.handlers")
# The registry's records name the informer (a handler's resync request it cannot honour).
_informer_log = logging.getLogger("nvinformers.cache.informer")

#: Notification kinds. A notification is ``(kind, a, b)``: ADD → (obj, is_in_initial_list),
#: UPDATE → (old, new), DELETE → (obj or tombstone, None).
ADD, UPDATE, DELETE = 0, 1, 2
Notification = tuple[int, Any, Any]

#: Seconds a handler thread that just drained its queue first waits for more before it sleeps
#: (see the module docstring); doubled after every linger that brought notifications, up to
#: :data:`LINGER_MAX`, and reset when a linger brings nothing.
LINGER_MIN = 0.0001
LINGER_MAX = 0.002


#: Upper bounds (seconds) of the buckets of a handler's duration histogram.
_HANDLER_DURATION_BUCKETS: tuple[float, ...] = (
    0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
    2.5, 5.0, 10.0, 30.0, 60.0,
)  # fmt: skip


class LogThrottle:
    """Allows one log record per ``interval`` seconds and counts the ones it holds back.

    For errors that can repeat at event rate (raising handlers, skipped events): a handler that
    raises on every event must not write a traceback per event, so one record per interval is
    logged and the next one says how many were held back meanwhile (metrics count them all).

    Thread-safety: :meth:`allow` may be called from any thread (a lock guards the counters); it
    never blocks beyond that lock.
    """

    __slots__ = ("interval", "_now", "_lock", "_last", "_held")

    def __init__(
        self, interval: float = 10.0, *, now: Callable[[], float] = time.monotonic
    ) -> None:
        self.interval = interval
        self._now = now
        self._lock = threading.Lock()
        self._last: float | None = None  # guarded by _lock: monotonic time of the last record
        self._held = 0  # guarded by _lock: records held back since then

    def allow(self) -> int | None:
        """Whether to log now.

        Returns None when a record was allowed less than ``interval`` seconds ago (this one is
        counted as held back); otherwise how many were held back since the last allowed record,
        for the caller to mention.
        """
        now = self._now()
        with self._lock:
            if self._last is not None and now - self._last < self.interval:
                self._held += 1
                return None
            held, self._held, self._last = self._held, 0, now
            return held


def log_handler_error(
    logger: logging.Logger, throttle: LogThrottle, informer: str, handler: str, kind: int
) -> None:
    """Log the exception being handled, raised by ``handler`` on a ``kind`` notification.

    Unless ``throttle`` holds the record back. ``handler`` names it (``"handler gpus"``).
    """
    suppressed = throttle.allow()
    if suppressed is None:
        return
    logger.exception(
        "%s: %s raised in %s (it keeps receiving events)%s",
        informer,
        handler,
        ("on_add", "on_update", "on_delete")[kind],
        f"; {suppressed} more errors since the last report" if suppressed else "",
    )


class ProcessorListener:
    """Delivers notifications to one handler on its own thread.

    Args:
        handler: the user's handler.
        name: bounded, user-chosen name (metrics label, thread name).
        informer_name: the owning informer's name (logs, thread name).
        informer_synced: tells whether the informer has applied its first full list.
        resync_period: seconds between resyncs for this handler (0: never).

    Thread-safety: ``add_many`` is called by the informer (under its delivery lock); ``stop``,
    ``backlog``, ``has_synced`` from any thread. ``_lock`` guards ``_pending``,
    ``_initial_pending``, ``_stopping``, ``_sleeping`` and ``_lingering``. The handler thread sets
    ``_sleeping`` (or ``_lingering``) under ``_lock`` only when nothing is pending, then blocks on
    ``_wakeup`` (a lock it holds); whoever clears ``_sleeping`` under ``_lock`` releases
    ``_wakeup``, so a notification can never be left waiting for a sleeping thread. A release
    that arrives after a lingering wait timed out only causes one spurious wake-up (the thread
    re-checks under ``_lock``).
    """

    def __init__(
        self,
        handler: ResourceEventHandler,
        *,
        name: str,
        informer_name: str,
        informer_synced: Callable[[], bool],
        resync_period: float = 0.0,
    ) -> None:
        self.handler = handler
        self.name = name
        self.informer_name = informer_name
        self._informer_synced = informer_synced
        self.resync_period = resync_period
        self.next_resync = 0.0  # owned by the informer's processing thread
        self._lock = threading.Lock()
        self._wakeup = threading.Lock()
        self._wakeup.acquire()
        self._sleeping = False
        self._lingering = False
        self._pending: deque[Notification] = deque()
        self._initial_pending = 0
        # Set once has_synced() (or once stopped): set by check_synced(), never under _lock.
        self.sync_done = Latch()
        self._in_flight = 0
        self._stopping = False
        self._thread: threading.Thread | None = None
        # Statistics, written by the handler thread only (read at scrape time).
        self.delivered = 0
        self.errors = 0
        self.durations = Histogram(_HANDLER_DURATION_BUCKETS)
        # One traceback per 10 s; the errors in between are counted and summarised in the next
        # log line, so a handler failing on every event cannot flood the log.
        self._error_log = LogThrottle(10.0)

    # ------------------------------------------------------------------------- producer side

    def add_many(self, notifications: Sequence[Notification], initial: int = 0) -> None:
        """Queue notifications in order; ``initial`` of them are initial-list adds."""
        if not notifications:
            return
        lock = self._lock
        lock.acquire()
        try:
            if self._stopping:
                return
            self._pending.extend(notifications)
            self._initial_pending += initial
            if self._sleeping:
                self._sleeping = False
                self._wakeup.release()
        finally:
            lock.release()

    # ------------------------------------------------------------------------------ control

    def start(self) -> None:
        """Start the handler thread (once)."""
        if self._thread is not None:
            return
        self._thread = threading.Thread(
            target=self._run,
            name=f"nvinformers-handler-{self.informer_name}-{self.name}",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop accepting and delivering notifications; a call in progress finishes.

        Queued notifications are discarded (client-go's listener does the same on shutdown).
        Does not block; see :meth:`join`.
        """
        with self._lock:
            self._stopping = True
            self._pending.clear()
            self._initial_pending = 0
            if self._sleeping or self._lingering:
                self._sleeping = self._lingering = False
                self._wakeup.release()
        self.sync_done.set()  # a stopped handler never receives the rest of the initial list

    def join(self, timeout: float | None = None) -> bool:
        """Wait for the handler thread to end; True if it did (or never started)."""
        thread = self._thread
        if thread is None or thread is threading.current_thread():
            return True
        thread.join(timeout)
        return not thread.is_alive()

    @property
    def backlog(self) -> int:
        """Notifications queued or being delivered."""
        return len(self._pending) + self._in_flight

    def has_synced(self) -> bool:
        """True once the informer has synced and every initial-list add reached this handler."""
        return self._informer_synced() and self._initial_pending == 0

    def check_synced(self) -> None:
        """Set :attr:`sync_done` if :meth:`has_synced`. Called by the informer once it synced
        and by the handler thread after the last initial-list add: the second sees both done."""
        if self.has_synced():
            self.sync_done.set()

    @property
    def stopped(self) -> bool:
        return self._stopping

    # ------------------------------------------------------------------------ handler thread

    def _run(self) -> None:
        lock = self._lock
        wakeup = self._wakeup
        pending = self._pending
        handler = self.handler
        durations = self.durations
        counts = durations.counts
        buckets = durations.bounds
        perf = time.perf_counter
        linger = LINGER_MIN
        lingered = False  # the last wait was a linger
        while True:
            lock.acquire()
            self._lingering = False
            if self._stopping:
                lock.release()
                return
            if not pending:
                if lingered:
                    # A whole linger went by without a notification: the burst is over.
                    self._sleeping = True
                    lock.release()
                    lingered = False
                    linger = LINGER_MIN
                    wakeup.acquire()  # until add_many() or stop() releases it
                else:
                    self._lingering = True
                    lock.release()
                    lingered = True
                    wakeup.acquire(timeout=linger)  # only stop() cuts it short
                continue
            if lingered:
                # Notifications keep coming: linger longer next time, so that a storm is
                # delivered in ever larger batches (fewer wake-ups per notification).
                linger = min(linger * 2, LINGER_MAX)
                lingered = False
            batch = list(pending)
            pending.clear()
            self._in_flight = len(batch)
            lock.release()
            for kind, a, b in batch:
                if self.stopped:  # remove_event_handler() or shutdown while delivering
                    self._in_flight = 0
                    return
                start = perf()
                try:
                    if kind == UPDATE:
                        handler.on_update(a, b)
                    elif kind == ADD:
                        handler.on_add(a, b)
                    else:
                        handler.on_delete(a)
                except Exception:
                    self._on_handler_error(kind)
                # Recorded in the histogram, inline (once per notification).
                elapsed = perf() - start
                counts[bisect_left(buckets, elapsed)] += 1
                durations.total += elapsed
                self.delivered += 1
                self._in_flight -= 1
                if kind == ADD and b:
                    with lock:
                        last = self._initial_pending == 1
                        if self._initial_pending > 0:
                            self._initial_pending -= 1
                    if last:
                        self.check_synced()

    def _on_handler_error(self, kind: int) -> None:
        self.errors += 1
        log_handler_error(log, self._error_log, self.informer_name, f"handler {self.name}", kind)


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
                _informer_log.warning(
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
