"""Waiting for caches to sync: one mechanism, for threads and for asyncio.

client-go's ``WaitForCacheSync`` polls ``HasSynced`` functions every 100 ms; its newer ``WaitFor``
waits on ``HasSyncedChecker().Done()`` channels. nvinformers does the latter. Informers and
handler registrations (threaded or asyncio) each own a :class:`~nvinformers.cancel.Latch`,
``sync_done()``, set the moment ``has_synced()`` turns True — or when it never can any more (the
informer stopped, the handler was removed). A :class:`SyncWait` over such sources is woken by
their latches: a thread blocks in :meth:`SyncWait.wait`; a coroutine awaits
:meth:`SyncWait.wait_async` (:func:`nvinformers.aio.wait_for_cache_sync`), whose loop they wake
with one ``call_soon_threadsafe``: no thread waits on the loop's behalf. Cancelling the awaiting
task leaves nothing behind.

What cannot signal is checked every :data:`POLL_INTERVAL` (client-go's 100 ms) while the wait
lasts: plain functions (or objects with ``has_synced`` but no ``sync_done``), and a ``stop``
event set by another party (a ``threading.Event`` cannot wake a thread waiting on something
else). :meth:`SyncWait.interrupt` ends a wait at once.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import Protocol, runtime_checkable

from nvinformers.cancel import Latch

__all__ = [
    "wait_for_cache_sync",
    "SyncWait",
    "SyncSource",
    "HasSynced",
    "SyncedLike",
    "POLL_INTERVAL",
]

log = logging.getLogger("nvinformers.cache")

#: Seconds between two checks of what cannot signal (plain functions, a ``stop`` event).
POLL_INTERVAL = 0.1


@runtime_checkable
class HasSynced(Protocol):
    """Anything that reports whether its cache has synced."""

    def has_synced(self) -> bool: ...


@runtime_checkable
class SyncSource(HasSynced, Protocol):
    """A source that signals its sync (client-go's ``HasSyncedChecker``): ``sync_done()`` is set
    once ``has_synced()`` is True for good, or once it never can be."""

    def sync_done(self) -> Latch: ...


#: What the wait functions accept: a ``has_synced`` function or an object that has one.
SyncedLike = Callable[[], bool] | HasSynced


class SyncWait:
    """A wait for several sources (see the module docstring), by one thread or one coroutine.

    Thread-safety: the sources' latches call in from any thread; the wake-up (of the waiting
    thread, or the loop's ``call_soon_threadsafe``) runs there, outside any lock. Use it as a
    context manager: it unregisters from the latches on exit.

    Args:
        items: informers, registrations, their bound ``has_synced`` methods, or plain functions.

    Raises:
        TypeError: an item is neither callable nor has ``has_synced``.
    """

    def __init__(self, items: Iterable[SyncedLike]) -> None:
        resolved = [_resolve(item) for item in items]
        self._latched = [(check, latch) for check, latch in resolved if latch is not None]
        self._polled = [check for check, latch in resolved if latch is None]
        self._wake = threading.Event()
        self._notify: Callable[[], None] | None = None
        self._interrupted = False
        self._removers = [latch.add_callback(self._changed) for _, latch in self._latched]

    def outcome(self) -> bool | None:
        """True: all synced; False: one never will, or interrupted; None: still open.

        Never asks a signalling source before its latch is set.
        """
        if self._interrupted:
            return False
        if not all(latch.is_set() for _, latch in self._latched):
            return None
        if not all(check() for check, _ in self._latched):
            return False  # a source gave up (an informer stopped before it synced)
        return True if all(check() for check in self._polled) else None

    def interrupt(self) -> None:
        """End the wait at once with False (its owner is stopping). Idempotent."""
        self._interrupted = True
        self._changed()

    def wait(self, stop: threading.Event | None = None, timeout: float | None = None) -> bool:
        """Block until :meth:`outcome` is decided, ``stop`` is set or ``timeout`` passes.

        Returns:
            True only when everything synced.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            self._wake.clear()  # before the checks: a signal after them sets it again
            outcome = self.outcome()
            if outcome is not None:
                return outcome
            if stop is not None and stop.is_set():
                log.info("stop requested before caches synced")
                return False
            pause = None if deadline is None else deadline - time.monotonic()
            if pause is not None and pause <= 0:
                return False
            if stop is not None or self._polled:
                pause = POLL_INTERVAL if pause is None else min(pause, POLL_INTERVAL)
            self._wake.wait(pause)

    async def wait_async(self, timeout: float | None = None) -> bool:
        """Await :meth:`outcome` without blocking the loop, up to ``timeout`` seconds.

        Returns:
            True only when everything synced.

        Raises:
            asyncio.CancelledError: the awaiting task was cancelled.
        """
        # Imported here: thread users of the cache (the Kubernetes source has no gRPC, which
        # would load asyncio anyway) must not pay asyncio's import at start-up.
        import asyncio

        loop = asyncio.get_running_loop()
        wake = asyncio.Event()

        def notify() -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
                loop.call_soon_threadsafe(wake.set)

        self._notify = notify
        try:
            async with asyncio.timeout(timeout):
                while True:
                    wake.clear()  # before the check: a signal after it sets it again
                    outcome = self.outcome()
                    if outcome is not None:
                        return outcome
                    poll = loop.call_later(POLL_INTERVAL, wake.set) if self._polled else None
                    try:
                        await wake.wait()
                    finally:
                        if poll is not None:
                            poll.cancel()
        except TimeoutError:
            return False

    def __enter__(self) -> SyncWait:
        return self

    def __exit__(self, *exc: object) -> None:
        removers, self._removers = self._removers, []
        for remove in removers:
            remove()

    def _changed(self) -> None:
        self._wake.set()
        notify = self._notify
        if notify is not None:
            notify()


def wait_for_cache_sync(
    stop: threading.Event | None,
    *has_synced: SyncedLike,
    timeout: float | None = None,
) -> bool:
    """Block until every source reports synced (client-go's ``WaitForCacheSync``).

    Pass informers and handler registrations, or their ``has_synced`` methods (a handler that must
    see the whole initial list before acting waits on its registration, not just on the
    informer): they wake this thread the moment they sync. Any number of threads may wait.

    Args:
        stop: ends the wait (with False) when set; None: only ``timeout`` does.
        *has_synced: sources, their ``has_synced`` methods, or plain functions.
        timeout: seconds to wait at most (None: no limit).

    Returns:
        True when all have synced (also when none is given); False when ``stop`` was set or
        ``timeout`` passed first, or an informer stopped before it synced.

    Raises:
        TypeError: an argument is neither callable nor has ``has_synced``.
    """
    with SyncWait(has_synced) as sync:
        return sync.wait(stop, timeout)


def _resolve(item: SyncedLike) -> tuple[Callable[[], bool], Latch | None]:
    """The check and, when it signals, the latch of one item."""
    owner = item.__self__ if inspect.ismethod(item) and item.__name__ == "has_synced" else item
    if isinstance(owner, SyncSource):
        return owner.has_synced, owner.sync_done()
    if isinstance(owner, HasSynced):
        return owner.has_synced, None
    if callable(owner):
        return owner, None
    raise TypeError(
        "wait_for_cache_sync: expected a has_synced function or an object with has_synced(), "
        f"got {type(item).__name__}"
    )
