"""Work queues that add items later: :class:`DelayingQueue` (client-go ``delaying_queue.go``) and
:class:`RateLimitingQueue`, whose re-adds a rate limiter paces (``rate_limiting_queue.go``)."""

from __future__ import annotations

import heapq
import itertools
import logging
import math
import threading
from collections.abc import Hashable
from typing import TYPE_CHECKING, Generic, NamedTuple, TypeVar

from nvinformers.workqueue._queue import Queue, none_item_error
from nvinformers.workqueue._rate_limiters import RateLimiter, default_controller_rate_limiter

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nvinformers.clock import Clock

__all__ = ["DelayingQueue", "RateLimitingQueue"]

T = TypeVar("T", bound=Hashable)

_log = logging.getLogger("nvinformers.workqueue")


class _Waiting(NamedTuple, Generic[T]):
    """A heap entry: ``item`` is ready at ``ready_at`` (clock time); ``seq`` breaks ties FIFO.

    Ordered as a tuple; ``seq`` is unique, so items (which need only be hashable) are never
    compared.
    """

    ready_at: float
    seq: int
    item: T


class DelayingQueue(Queue[T]):
    """A :class:`Queue` with :meth:`add_after`: re-queue an item after a delay, not in a hot loop.

    Semantics (client-go's ``DelayingInterface``):

    * ``add_after(item, delay)`` with ``delay <= 0`` is :meth:`add`. Otherwise the item waits until
      the clock reaches ``now + delay`` and is then added (with the usual de-duplication). An item
      that is already waiting keeps the *earlier* of its two ready times; the item is added once.
    * Items become ready in order of ready time (FIFO among equal times) as soon as the clock
      reaches their ready time.
    * Every ``add_after`` made before shutdown counts one ``workqueue_retries_total``.
    * After shutdown, ``add_after`` does nothing and waiting items are dropped.

    Implementation: one waiting thread (named ``nvinformers-workqueue-delay-<name>``), started by
    the first ``add_after`` with a positive delay, keeps a min-heap by ready time plus a dict
    item -> entry. It sleeps on a condition until the earliest ready time (through the clock, so a
    :class:`~nvinformers.clock.FakeClock` step wakes it) or until an earlier item arrives; with
    nothing waiting it sleeps without a timeout. client-go's 10 s heartbeat ("insurance against
    weird things") is left out so that an idle queue never wakes up: every add_after that moves
    the earliest ready time notifies the thread. :meth:`shut_down` and
    :meth:`shut_down_with_drain` stop and join it.

    Thread-safety: all methods are thread-safe; ``add_after`` does not block beyond short internal
    locks. The queue holds a reference from its thread while items wait: call :meth:`shut_down`
    when finished with it.

    Args:
        name, clock, registry: as for :class:`Queue`; ``clock`` also measures the delays.
    """

    __slots__ = (
        "_delay_cond",
        "_delay_lock",
        "_seq",
        "_stale",
        "_waiter_stopped",
        "_waiter_thread",
        "_waiting",
        "_waiting_by_item",
        "_wakeups",
    )

    def __init__(
        self,
        name: str = "",
        *,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, clock=clock, registry=registry)
        # _delay_lock guards the fields below (never held together with the queue's _lock:
        # ready items are handed to the queue after it is released). _delay_cond wakes the
        # waiting thread when an earlier item arrives or on shutdown.
        self._delay_lock = threading.Lock()
        self._delay_cond = threading.Condition(self._delay_lock)
        # Min-heap by (ready_at, seq). An entry is live iff _waiting_by_item[entry.item] is it;
        # an entry replaced by an earlier ready time stays in the heap as stale until popped.
        self._waiting: list[_Waiting[T]] = []
        self._waiting_by_item: dict[T, _Waiting[T]] = {}
        # Number of stale entries in _waiting; the heap is rebuilt when they outnumber live ones.
        self._stale = 0
        self._seq = itertools.count()
        self._waiter_thread: threading.Thread | None = None
        # Set on shutdown; the thread exits and add_after drops items from then on.
        self._waiter_stopped = False
        # How many times the waiting thread woke up (for tests: no wake-ups while idle).
        self._wakeups = 0

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` once ``delay`` seconds of the queue's clock have passed.

        ``delay <= 0`` adds at once. If the item is already waiting, the earlier ready time wins.
        Dropped if the queue is shutting down.

        Args:
            item: the item.
            delay: seconds from now.

        Raises:
            ValueError: ``item`` is None or ``delay`` is NaN.
        """
        if item is None:
            raise none_item_error("add_after")
        if math.isnan(delay):
            raise ValueError(f"add_after({item!r}): delay must be a number of seconds, got NaN")
        with self._lock:
            if self._shutting_down:
                return
            if self._metrics is not None:
                self._metrics.retry_locked()
            if delay <= 0:
                self._add_locked(item)
                return
        ready_at = self._clock.now() + delay
        with self._delay_lock:
            if self._waiter_stopped:
                return
            existing = self._waiting_by_item.get(item)
            if existing is not None:
                if existing.ready_at <= ready_at:
                    return
                self._stale += 1
            entry = _Waiting(ready_at, next(self._seq), item)
            heapq.heappush(self._waiting, entry)
            self._waiting_by_item[item] = entry
            if self._stale > len(self._waiting_by_item):
                self._compact_locked()
            if self._waiting[0] is entry:
                # A new earliest ready time: the thread must shorten its wait (or start).
                if self._waiter_thread is None:
                    self._start_waiter_locked()
                else:
                    self._delay_cond.notify()

    def shut_down(self) -> None:
        """Shut down (see :meth:`Queue.shut_down`), drop waiting items and join the waiting thread.

        Must not be called from the waiting thread (no user code runs there).
        """
        super().shut_down()
        self._stop_waiter()

    def shut_down_with_drain(self) -> None:
        """Shut down, drop waiting items, join the waiting thread, then wait for the drain.

        See :meth:`Queue.shut_down_with_drain`. client-go leaves its waiting goroutine running until
        its next wake-up; here it is stopped before waiting for the workers.
        """
        self._signal_shutdown(drain=True)
        self._stop_waiter()
        self._wait_drained()

    def _start_waiter_locked(self) -> None:
        """Start the waiting thread. Caller holds ``_delay_lock``."""
        thread = threading.Thread(
            target=self._waiting_loop,
            name=f"nvinformers-workqueue-delay-{self._name or hex(id(self))}",
            # Daemon so that a queue the user forgot to shut down cannot hang interpreter exit;
            # shut_down() joins it.
            daemon=True,
        )
        self._waiter_thread = thread
        thread.start()

    def _stop_waiter(self) -> None:
        with self._delay_lock:
            self._waiter_stopped = True
            self._waiting.clear()
            self._waiting_by_item.clear()
            self._stale = 0
            thread = self._waiter_thread
            self._delay_cond.notify_all()
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def _compact_locked(self) -> None:
        """Drop stale heap entries. Caller holds ``_delay_lock``."""
        by_item = self._waiting_by_item
        self._waiting = [e for e in self._waiting if by_item.get(e.item) is e]
        heapq.heapify(self._waiting)
        self._stale = 0

    def _take_ready_locked(self, now: float) -> list[T]:
        """Pop the items whose ready time has come. Caller holds ``_delay_lock``."""
        heap = self._waiting
        by_item = self._waiting_by_item
        ready: list[T] = []
        while heap:
            head = heap[0]
            if by_item.get(head.item) is not head:
                heapq.heappop(heap)
                self._stale -= 1
            elif head.ready_at <= now:
                heapq.heappop(heap)
                del by_item[head.item]
                ready.append(head.item)
            else:
                break
        return ready

    def _waiting_loop(self) -> None:
        """Body of the waiting thread: add items as they become ready, until shutdown."""
        clock = self._clock
        try:
            while True:
                with self._delay_lock:
                    while True:
                        if self._waiter_stopped:
                            return
                        ready = self._take_ready_locked(clock.now())
                        if ready:
                            break
                        # After _take_ready_locked the head, if any, is live and in the future.
                        deadline = self._waiting[0].ready_at if self._waiting else None
                        clock.wait_until(self._delay_cond, deadline)
                        self._wakeups += 1
                # Hand the batch to the queue outside _delay_lock (the two locks never nest).
                with self._lock:
                    for item in ready:
                        self._add_locked(item)
        except Exception:  # pragma: no cover - only an item's __hash__/__eq__ can raise here
            _log.exception(
                "workqueue %r: delaying thread failed; delayed items are lost", self._name
            )


class RateLimitingQueue(DelayingQueue[T]):
    """A :class:`DelayingQueue` that re-adds failed items after a delay chosen by a rate limiter.

    Semantics (client-go's ``RateLimitingInterface``):

    * :meth:`add_rate_limited` records a failure with the limiter and adds the item after the delay
      the limiter returns (``add_after(item, limiter.when(item))``).
    * :meth:`forget` tells the limiter to stop tracking the item, after a success or a final
      failure. It does not replace :meth:`done`, which must still be called. Remember to call it:
      otherwise the item's next failure backs off from where the last one stopped. (The built-in
      per-item limiters bound their memory, so a missing ``forget`` cannot grow it forever.)
    * :meth:`num_requeues` returns the limiter's failure count for the item.

    Thread-safety: all methods are thread-safe. The limiter is called without any queue lock held.

    Args:
        name, clock, registry: as for :class:`DelayingQueue`. ``clock`` is not passed to
            ``rate_limiter``; give the limiter the same clock if it needs one.
        rate_limiter: the limiter; defaults to :func:`default_controller_rate_limiter`.
    """

    __slots__ = ("_rate_limiter",)

    def __init__(
        self,
        name: str = "",
        *,
        rate_limiter: RateLimiter[T] | None = None,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        super().__init__(name, clock=clock, registry=registry)
        self._rate_limiter: RateLimiter[T] = (
            default_controller_rate_limiter() if rate_limiter is None else rate_limiter
        )

    @property
    def rate_limiter(self) -> RateLimiter[T]:
        """The limiter pacing :meth:`add_rate_limited`."""
        return self._rate_limiter

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after the delay the rate limiter assigns to its next retry.

        Raises:
            ValueError: ``item`` is None.
        """
        self.add_after(item, self._rate_limiter.when(item))

    def forget(self, item: T) -> None:
        """Clear the limiter's failure history for ``item``; :meth:`done` is still required."""
        self._rate_limiter.forget(item)

    def num_requeues(self, item: T) -> int:
        """Return how many times ``item`` has been re-added through :meth:`add_rate_limited`."""
        return self._rate_limiter.num_requeues(item)
