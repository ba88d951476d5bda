"""An asyncio front for the thread-safe workqueue: ``item, shutdown = await queue.get()``.

:class:`AsyncQueue` wraps a :class:`~nvinformers.workqueue.RateLimitingQueue` without changing
its semantics (fair, de-duplicating, one worker per item, rate-limited retries): producers on any
thread keep calling the thread-safe ``add`` (an informer's handler thread, for instance), and
coroutines on one event loop take items with ``await get()``.

How ``get`` waits without blocking the loop or leaking threads:

* When no other coroutine is waiting and an item is queued, ``get`` takes it at once with the
  wrapped queue's non-blocking ``get(timeout=0)`` (one short lock, no thread involved).
* Otherwise it parks a future in a FIFO of waiters. **One** pump thread per queue
  (``nvinformers-aio-queue-<name>``) performs the blocking ``get`` — only while a coroutine is
  waiting, so items are not taken from the wrapped queue ahead of demand (which would defeat its
  de-duplication) — and hands each item to the loop with ``call_soon_threadsafe`` (several
  items per call when several coroutines wait). No thread is started per call.
* **A cancelled ``get`` never loses an item.** If it is cancelled while waiting, its future is
  dropped and an item the pump fetches for it later goes to the next waiter, or is kept, at the
  head of the line, for the next ``get``. If it is cancelled after its item arrived but before it
  resumed, it puts the item back at the head of the line the same way. An item kept like this
  is still "being processed" in the wrapped queue (a re-add marks it dirty, as usual), and
  :meth:`AsyncQueue.len` counts it.

Shutdown: :meth:`AsyncQueue.shut_down` shuts the wrapped queue down; waiting coroutines get what
is still queued, then ``(None, True)``; the pump thread ends. :meth:`AsyncQueue.aclose` also
waits for the pump thread and joins it. If the wrapped queue is shut down directly, the pump
notices too.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections import deque
from collections.abc import Hashable
from typing import Generic, TypeVar

from nvinformers.workqueue import RateLimitingQueue

__all__ = ["AsyncQueue"]

T = TypeVar("T", bound=Hashable)

log = logging.getLogger("nvinformers.aio")

_GetResult = tuple[T | None, bool]


class AsyncQueue(Generic[T]):
    """A rate-limiting workqueue whose ``get`` is awaited on one event loop.

    Semantics: those of the wrapped :class:`~nvinformers.workqueue.RateLimitingQueue` (see
    :mod:`nvinformers.workqueue`), with ``get`` awaitable and cancellation-safe (module
    docstring). Every method but :meth:`get`, :meth:`shut_down_with_drain` and :meth:`aclose`
    is a thin, non-blocking delegation to the wrapped queue and may be called from any thread.

    Thread-safety / blocking: :meth:`get` is a coroutine of the loop it was first awaited on (the
    queue binds to that loop); nothing blocks the loop beyond the wrapped queue's short locks.

    Args:
        queue: the thread-safe queue to wrap (default: a new ``RateLimitingQueue(name)``).
        name: the name of the default queue (metrics label) and of the pump thread.

    Raises:
        ValueError: both ``queue`` and ``name`` were given and the names differ.
    """

    def __init__(self, queue: RateLimitingQueue[T] | None = None, *, name: str = "") -> None:
        if queue is None:
            queue = RateLimitingQueue(name)
        elif name and name != queue.name:
            raise ValueError(f"AsyncQueue: name {name!r} differs from the queue's {queue.name!r}")
        self._queue: RateLimitingQueue[T] = queue
        self._label = queue.name or hex(id(self))
        self._loop: asyncio.AbstractEventLoop | None = None
        # Loop-only state. Invariant: while a live (not done) waiter exists, _ready is empty.
        self._waiters: deque[asyncio.Future[_GetResult[T]]] = deque()
        self._ready: deque[T] = deque()  # handed out by the wrapped queue, taken by no one yet
        # _cond guards the fields below.
        self._cond = threading.Condition(threading.Lock())
        self._demand = 0  # waiters counted in, not yet satisfied or cancelled
        self._in_transit = 0  # items the pump handed to the loop, not yet delivered
        self._closed = False
        self._pump_running = False
        # Pump threads started (a new one starts only after the last one ended), each with the
        # future it resolves on the loop when it ends; aclose() awaits and joins them.
        self._pumps: list[tuple[threading.Thread, asyncio.Future[None]]] = []

    # --------------------------------------------------------------------------- delegation

    @property
    def queue(self) -> RateLimitingQueue[T]:
        """The wrapped thread-safe queue (add to it from any thread)."""
        return self._queue

    @property
    def name(self) -> str:
        return self._queue.name

    def add(self, item: T) -> None:
        """Mark ``item`` as needing processing (see ``Queue.add``)."""
        self._queue.add(item)

    def add_after(self, item: T, delay: float) -> None:
        """Add ``item`` after ``delay`` seconds (see ``DelayingQueue.add_after``)."""
        self._queue.add_after(item, delay)

    def add_rate_limited(self, item: T) -> None:
        """Add ``item`` after its rate limiter's delay (see ``RateLimitingQueue``)."""
        self._queue.add_rate_limited(item)

    def forget(self, item: T) -> None:
        """Clear the rate limiter's failure history for ``item``."""
        self._queue.forget(item)

    def num_requeues(self, item: T) -> int:
        """How many times ``item`` was re-added through :meth:`add_rate_limited`."""
        return self._queue.num_requeues(item)

    def done(self, item: T) -> None:
        """Mark an item returned by :meth:`get` as processed (see ``Queue.done``)."""
        self._queue.done(item)

    def len(self) -> int:
        """Items waiting to be handed out, including ones kept after a cancelled ``get``."""
        return self._queue.len() + len(self._ready)

    def __len__(self) -> int:
        return self.len()

    def shutting_down(self) -> bool:
        return self._queue.shutting_down()

    # ------------------------------------------------------------------------------- get

    async def get(self) -> tuple[T | None, bool]:
        """Take the next item, waiting (without blocking the loop) until one is queued.

        Call :meth:`done` with the item when finished. Cancellation-safe: a cancelled call
        never loses an item (module docstring).

        Returns:
            ``(item, False)``, or ``(None, True)`` once the queue is shut down and empty.

        Raises:
            RuntimeError: the queue is already used from another event loop.
            asyncio.CancelledError: the calling task was cancelled.
        """
        loop = self._bind_loop()
        waiters = self._waiters
        while waiters and waiters[0].done():  # cancelled waiters not yet cleaned up
            waiters.popleft()
        if not waiters:
            if self._ready:
                return self._ready.popleft(), False
            item, shutdown = self._queue.get(timeout=0)
            if item is not None or shutdown:
                return item, shutdown
        future: asyncio.Future[_GetResult[T]] = loop.create_future()
        waiters.append(future)
        self._change_demand(1)
        try:
            return await future
        except asyncio.CancelledError:
            if future.done() and not future.cancelled():
                # Our item arrived, but we were cancelled before we could return it.
                got, _ = future.result()
                if got is not None:
                    self._hand_back(got)
            else:
                with contextlib.suppress(ValueError):  # already pruned by a later get()
                    waiters.remove(future)
                self._change_demand(-1)
            raise

    def _bind_loop(self) -> asyncio.AbstractEventLoop:
        loop = asyncio.get_running_loop()
        if self._loop is None:
            self._loop = loop
        elif self._loop is not loop:
            raise RuntimeError(
                f"AsyncQueue {self._label}: used from a second event loop; it belongs to the "
                "loop of its first get()"
            )
        return loop

    def _next_live_waiter(self) -> asyncio.Future[_GetResult[T]] | None:
        waiters = self._waiters
        while waiters:
            future = waiters.popleft()
            if not future.done():
                return future
        return None

    def _hand_back(self, item: T) -> None:
        """Give an item a cancelled getter could not return to the next waiter, or keep it."""
        future = self._next_live_waiter()
        if future is None:
            self._ready.appendleft(item)
        else:
            future.set_result((item, False))
            self._change_demand(-1)

    def _deliver(self, items: list[T], shutdown: bool) -> None:
        """Loop callback of the pump: resolve waiters in order; keep what nobody waits for."""
        satisfied = 0
        for item in items:
            future = self._next_live_waiter()
            if future is None:
                self._ready.append(item)
            else:
                future.set_result((item, False))
                satisfied += 1
        if shutdown:
            while (future := self._next_live_waiter()) is not None:
                future.set_result((None, True))
                satisfied += 1
        with self._cond:
            self._in_transit -= len(items)
            self._demand -= satisfied

    def _change_demand(self, delta: int) -> None:
        """Count waiters in or out; the first waiter while no pump runs starts one (on the loop)."""
        with self._cond:
            self._demand += delta
            if delta <= 0:
                return
            if self._pump_running:
                self._cond.notify()
                return
            self._pump_running = True
            loop = self._loop
            assert loop is not None
            exited: asyncio.Future[None] = loop.create_future()
            thread = threading.Thread(
                target=self._pump_loop,
                args=(loop, exited),
                name=f"nvinformers-aio-queue-{self._label}",
                # Daemon: a queue that is never shut down must not hang interpreter exit.
                daemon=True,
            )
            self._pumps.append((thread, exited))
            thread.start()

    # --------------------------------------------------------------------------- the pump

    def _pump_loop(self, loop: asyncio.AbstractEventLoop, exited: asyncio.Future[None]) -> None:
        """Body of the pump thread: fetch items while coroutines wait for them."""
        queue = self._queue
        cond = self._cond
        try:
            while True:
                with cond:
                    # Items handed to the loop but not delivered yet will satisfy waiters that
                    # are still counted: fetching for them again would take items ahead of
                    # demand (and away from the wrapped queue's de-duplication).
                    while self._demand - self._in_transit <= 0 and not self._closed:
                        cond.wait()
                    want = self._demand - self._in_transit
                    if want <= 0:
                        return  # shut down, and nobody waits
                item, shutdown = queue.get()
                batch: list[T] = [] if item is None else [item]
                while not shutdown and len(batch) < want:
                    more, shutdown = queue.get(timeout=0)
                    if more is None:
                        break
                    batch.append(more)
                with cond:
                    self._in_transit += len(batch)
                try:
                    loop.call_soon_threadsafe(self._deliver, batch, shutdown)
                except RuntimeError:
                    with cond:
                        self._in_transit -= len(batch)
                    self._loop_closed(batch)
                    return
                if shutdown:
                    return
        except Exception:  # only an item's __hash__/__eq__ can raise here
            log.exception("AsyncQueue %s: pump thread failed", self._label)
        finally:
            with cond:
                self._pump_running = False
            # A closed loop has nobody left to await the pump.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_set_done, exited)

    def _loop_closed(self, batch: list[T]) -> None:
        # Nobody will ever take these on the closed loop; return them to the wrapped queue
        # (done() then add()) so that a threaded consumer, or a new AsyncQueue, still can.
        log.warning(
            "AsyncQueue %s: the event loop is closed; returning %d item(s) to the queue",
            self._label,
            len(batch),
        )
        for item in batch:
            self._queue.done(item)
            self._queue.add(item)

    # ---------------------------------------------------------------------------- shutdown

    def shut_down(self) -> None:
        """Shut the wrapped queue down; waiters drain what is queued, then get ``(None, True)``.

        Does not wait (see :meth:`aclose`). Idempotent; callable from any thread. Blocks only
        while the wrapped queue joins its (immediately stopping) delay thread.
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        self._queue.shut_down()

    async def shut_down_with_drain(self) -> None:
        """Shut down, then wait until every queued and in-flight item is done.

        The wrapped queue's blocking drain runs in the default executor; workers on this loop
        must keep calling :meth:`get` and :meth:`done` meanwhile. If the awaiting task is
        cancelled, the drain is abandoned (the queue stays shut down).
        """
        with self._cond:
            self._closed = True
            self._cond.notify_all()
        loop = asyncio.get_running_loop()
        try:
            await loop.run_in_executor(None, self._queue.shut_down_with_drain)
        except asyncio.CancelledError:
            self._queue.shut_down()  # releases the executor thread blocked in the drain
            raise

    async def aclose(self) -> None:
        """Shut down (see :meth:`shut_down`), wait for the pump thread to end and join it.

        Must run on the queue's loop (if :meth:`get` was ever awaited).
        """
        self.shut_down()
        with self._cond:
            pumps = list(self._pumps)
            self._pumps.clear()
        for thread, exited in pumps:
            await exited
            thread.join()  # it has left its target function: returns at once

    def __repr__(self) -> str:
        return (
            f"<AsyncQueue {self._label} len={self.len()} waiters={len(self._waiters)} "
            f"shutting_down={self.shutting_down()}>"
        )


def _set_done(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)
