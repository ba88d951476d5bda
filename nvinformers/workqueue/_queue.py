"""The basic work queue: fair, stingy, de-duplicating (client-go ``util/workqueue/queue.go``).

client-go's properties (fair, stingy, multiple producers and consumers, shutdown notification)
are spelled out as :class:`Queue`'s semantics.
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, TypeVar

from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.workqueue._metrics import new_queue_metrics

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

__all__ = ["Queue"]

T = TypeVar("T", bound=Hashable)


def none_item_error(method: str) -> ValueError:
    return ValueError(f"{method}: None cannot be queued (get() uses None to mean 'no item')")


class Queue(Generic[T]):
    """A work queue of hashable items with client-go's semantics.

    Semantics:

    * :meth:`add` marks an item as needing processing. An item already waiting in the queue is not
      added twice. An item currently being processed is not queued again right away: it is marked
      dirty and queued by :meth:`done`, so it is processed again, by one worker at a time.
    * :meth:`get` hands out the oldest queued item and marks it as being processed; the worker must
      call :meth:`done` with it when finished, whatever the outcome.
    * After :meth:`shut_down`, :meth:`add` silently drops items; :meth:`get` keeps handing out what
      is queued and, once the queue is empty, returns ``(None, True)``. Items marked dirty while
      being processed before the shutdown are still re-queued by :meth:`done`.
    * ``None`` is not a valid item (``get`` uses it to mean "no item").

    Metrics: a queue with a non-empty ``name`` exports client-go's ``workqueue_*`` metrics with
    label ``name`` on ``registry`` (see :mod:`nvinformers.workqueue._metrics`); an unnamed queue has
    no metrics and pays nothing for them.

    Thread-safety: all methods are thread-safe. :meth:`get` blocks until an item is available or the
    queue shuts down; :meth:`shut_down_with_drain` blocks until the queued and in-flight items are
    done. No other method blocks beyond a short internal lock. No user code runs under the lock
    except the items' ``__hash__`` and ``__eq__``.

    Args:
        name: the queue's name for metrics (``""``: no metrics).
        clock: the clock for duration metrics and ``get(timeout=...)``; defaults to the real
            monotonic clock.
        registry: the Prometheus registry for the metrics of a named queue; defaults to
            ``prometheus_client.REGISTRY``. Ignored for unnamed queues.
    """

    __slots__ = (
        "__weakref__",
        "_clock",
        "_dirty",
        "_drain",
        "_drained",
        "_idle_getters",
        "_lock",
        "_metrics",
        "_name",
        "_not_empty",
        "_not_empty_timed",
        "_processing",
        "_queue",
        "_shutting_down",
        "_timed_getters",
    )

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not isinstance(name, str):
            raise TypeError(f"Queue name must be a str, got {type(name).__name__}")
        self._name = name
        self._clock: Clock = REAL_CLOCK if clock is None else clock

        # _lock guards every field below. The two conditions share it.
        self._lock = threading.Lock()
        # Wake-ups for get(): one waiter per queued item, all waiters on shutdown. Getters without
        # a timeout wait on _not_empty, getters with one on _not_empty_timed (through the clock).
        self._not_empty = threading.Condition(self._lock)
        self._not_empty_timed = threading.Condition(self._lock)
        # Signalled when a drain may be complete (queue and processing empty) or is cancelled.
        self._drained = threading.Condition(self._lock)

        # The order in which items are handed out. Invariant: every queued item is in _dirty and
        # not in _processing, and appears in _queue exactly once.
        self._queue: deque[T] = deque()
        # Items that need processing: the queued ones, plus the ones marked again while being
        # processed (those are queued by done()).
        self._dirty: set[T] = set()
        # Items handed out by get() and not yet passed to done(). May overlap _dirty.
        self._processing: set[T] = set()
        # Getters blocked on _not_empty and not yet notified. Exact: incremented just before
        # _not_empty.wait() and decremented by whoever notifies them (an untimed Condition.wait
        # only returns when notified), so add() and done() call notify() only when it will wake
        # someone. Counting "threads in get()" instead would keep notifying, uselessly, until a
        # woken getter gets the GIL back: that was most of the cost with several workers.
        self._idle_getters = 0
        # Getters blocked on _not_empty_timed, counted by themselves (a timed wait cannot tell a
        # timeout from a notification): may overcount briefly, which costs a no-op notify only.
        self._timed_getters = 0
        self._shutting_down = False
        # True while shut_down_with_drain() waits; shut_down() clears it to cancel the wait.
        self._drain = False

        self._metrics = new_queue_metrics(
            name, clock=self._clock, lock=self._lock, registry=registry
        )

    @property
    def name(self) -> str:
        """The queue's name (``""`` for an unnamed queue)."""
        return self._name

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing.

        Does nothing if the item is already waiting or the queue is shutting down. If the item is
        being processed, it is queued again when the worker calls :meth:`done`.

        Raises:
            ValueError: ``item`` is None.
        """
        if item is None:
            raise none_item_error("add")
        # Hot path (add, get, done): explicit acquire/release, because "with lock" costs about
        # twice as much on CPython 3.11 (Lock.__exit__ takes *args), and the body is kept inline
        # rather than calling _add_locked. See benchmarks/s5_workqueue.py.
        lock = self._lock
        lock.acquire()
        try:
            if self._shutting_down or item in self._dirty:
                return
            if self._metrics is not None:
                self._metrics.add_locked(item)
            self._dirty.add(item)
            if item in self._processing:
                return
            self._queue.append(item)
            if self._idle_getters or self._timed_getters:
                self._wake_getter_locked()
        finally:
            lock.release()

    def _add_locked(self, item: T) -> None:
        """:meth:`add` for a caller that holds ``_lock`` and checked ``item`` is not None."""
        if self._shutting_down or item in self._dirty:
            return
        if self._metrics is not None:
            self._metrics.add_locked(item)
        self._dirty.add(item)
        if item in self._processing:
            return
        self._queue.append(item)
        if self._idle_getters or self._timed_getters:
            self._wake_getter_locked()

    def _wake_getter_locked(self) -> None:
        """Wake one getter for one newly queued item. Caller holds ``_lock``."""
        if self._idle_getters:
            self._idle_getters -= 1
            self._not_empty.notify()
        elif self._timed_getters:
            self._not_empty_timed.notify()

    def len(self) -> int:
        """Return the number of queued items (not counting items being processed).

        For information only: do not gate :meth:`add` or :meth:`get` on it, as it may change at
        once.
        """
        with self._lock:
            return len(self._queue)

    def __len__(self) -> int:
        """Same as :meth:`len`."""
        return self.len()

    def get(self, timeout: float | None = None) -> tuple[T | None, bool]:
        """Hand out the next item, blocking until one is queued or the queue shuts down.

        The item is marked as being processed: call :meth:`done` with it when finished. During
        shutdown, queued items are still handed out until the queue is empty.

        Blocking: until an item is queued or the queue shuts down; with ``timeout``, at most that
        many seconds of the queue's clock (an extension over client-go; ``timeout=0`` polls).

        Args:
            timeout: seconds to wait at most, or None to wait without limit.

        Returns:
            ``(item, False)`` for an item; ``(None, True)`` when the queue is shut down and empty
            (the worker should exit); ``(None, False)`` when ``timeout`` expired first.

        Raises:
            ValueError: ``timeout`` is negative.
        """
        if timeout is not None and not timeout >= 0:
            raise ValueError(f"get: timeout must be >= 0 seconds, got {timeout!r}")
        lock = self._lock
        lock.acquire()
        try:
            queue = self._queue
            if not queue and not self._shutting_down:
                if timeout is None:
                    while not queue and not self._shutting_down:
                        self._idle_getters += 1
                        self._not_empty.wait()
                else:
                    self._wait_for_item_locked(timeout)
                    if not queue:
                        return None, self._shutting_down
            if not queue:
                return None, True
            item = queue.popleft()
            self._processing.add(item)
            self._dirty.discard(item)
            if self._metrics is not None:
                self._metrics.get_locked(item)
            return item, False
        finally:
            lock.release()

    def _wait_for_item_locked(self, timeout: float) -> None:
        """Wait up to ``timeout`` clock seconds for an item or shutdown. Caller holds ``_lock``."""
        clock = self._clock
        deadline = clock.now() + timeout
        self._timed_getters += 1
        try:
            while not self._queue and not self._shutting_down and clock.now() < deadline:
                clock.wait_until(self._not_empty_timed, deadline)
        finally:
            self._timed_getters -= 1

    def done(self, item: T) -> None:
        """Mark ``item`` as no longer being processed.

        If the item was added again while it was being processed, it is queued again now.

        Raises:
            ValueError: ``item`` is not being processed (not handed out by :meth:`get`, or
                :meth:`done` already called). client-go ignores this silently; here it would
                otherwise corrupt the queue (a dirty item queued twice), so it is reported.
        """
        lock = self._lock
        lock.acquire()
        try:
            try:
                self._processing.remove(item)
            except KeyError:
                raise ValueError(f"done({item!r}): the item is not being processed") from None
            if self._metrics is not None:
                self._metrics.done_locked(item)
            if item in self._dirty:
                self._queue.append(item)
                if self._idle_getters or self._timed_getters:
                    self._wake_getter_locked()
            elif self._drain and not self._processing and not self._queue:
                self._drained.notify_all()
        finally:
            lock.release()

    def shut_down(self) -> None:
        """Stop accepting items; workers drain what is queued, then :meth:`get` reports shutdown.

        Does not wait for workers. Cancels a :meth:`shut_down_with_drain` waiting in another thread.
        Idempotent.
        """
        self._signal_shutdown(drain=False)

    def shut_down_with_drain(self) -> None:
        """Shut down like :meth:`shut_down`, then wait until queued and in-flight items are done.

        Workers must keep calling :meth:`get` and :meth:`done` until :meth:`get` reports shutdown,
        otherwise this blocks forever. A :meth:`shut_down` call from another thread stops the wait
        (client-go: a second SIGTERM forces the shutdown).

        client-go's implementation waits only for the in-flight items while its doc promises that
        queued items are processed too; this waits for both, so when it returns no worker is still
        busy with an item of this queue.

        Blocking: until the queue is empty with nothing in flight, or :meth:`shut_down` is called.
        """
        self._signal_shutdown(drain=True)
        self._wait_drained()

    def shutting_down(self) -> bool:
        """Return True once :meth:`shut_down` or :meth:`shut_down_with_drain` has been called."""
        with self._lock:
            return self._shutting_down

    def _signal_shutdown(self, *, drain: bool) -> None:
        """Mark the queue as shutting down and wake every waiter."""
        with self._lock:
            self._shutting_down = True
            self._drain = drain
            self._idle_getters = 0
            self._not_empty.notify_all()
            self._not_empty_timed.notify_all()
            # Waking a draining thread when drain is cancelled lets it see _drain is False.
            self._drained.notify_all()

    def _wait_drained(self) -> None:
        """Block while a drain is requested and items are queued or in flight."""
        with self._lock:
            while self._drain and (self._processing or self._queue):
                self._drained.wait()

    def __repr__(self) -> str:
        with self._lock:
            return (
                f"<{type(self).__name__} name={self._name!r} queued={len(self._queue)} "
                f"processing={len(self._processing)} shutting_down={self._shutting_down}>"
            )
