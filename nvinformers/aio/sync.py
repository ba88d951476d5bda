"""Awaiting cache sync from asyncio without blocking the event loop.

The asyncio peer of :func:`nvinformers.cache.wait_for_cache_sync` (client-go's
``WaitForCacheSync``). It accepts the same ``has_synced`` functions, and waits for each in the
cheapest way its owner allows:

* an informer's ``has_synced`` (or the informer itself): the informer's own sync event is waited
  on by :meth:`~nvinformers.cache.SharedIndexInformer.wait_for_sync` in the loop's default
  executor, in slices of :data:`SYNC_WAIT_SLICE` seconds. The loop wakes the moment the informer
  syncs (the executor thread is woken by a ``threading.Event``, not a poll); an unsynced slice
  costs the loop one callback; a cancelled wait gives its executor thread back within one slice
  (no thread stays blocked on behalf of a waiter that has gone), and ``asyncio.run`` joins it
  when it shuts the default executor down. An informer that stops before it synced ends the
  wait with False instead of hanging.
* the ``has_synced`` of an asyncio handler registration (:mod:`nvinformers.aio.handlers`), or
  the registration itself: awaited natively, on the loop.
* any other function, for example the ``has_synced`` of a threaded handler registration, which
  has no event to wait on: polled on the loop, every 5 ms at first, backing off to client-go's
  100 ms. Such functions only trail an informer's sync by the time a handler thread takes to
  hand over the initial list, so the first, short polls usually see them true.

Cancellation: cancelling the awaiting task cancels the wait and leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import inspect
from collections.abc import Awaitable, Callable
from typing import Protocol, runtime_checkable

__all__ = [
    "wait_for_cache_sync",
    "informer_synced",
    "HasSynced",
    "SyncedLike",
    "AsyncSyncSource",
    "SYNC_WAIT_SLICE",
    "POLL_INTERVAL",
]

#: Longest time an executor thread blocks in ``informer.wait_for_sync`` per loop round trip
#: (client-go's poll interval, but a sync wakes the waiter at once rather than at the next poll).
SYNC_WAIT_SLICE = 0.1
#: client-go polls ``has_synced`` functions every 100 ms; the poll here starts faster.
POLL_INTERVAL = 0.1
_FIRST_POLL = 0.005


@runtime_checkable
class HasSynced(Protocol):
    """Anything that reports whether its cache has synced (informers, registrations)."""

    def has_synced(self) -> bool: ...


@runtime_checkable
class _BlockingSyncSource(Protocol):
    """An informer: it can block until synced and tell whether it stopped."""

    def has_synced(self) -> bool: ...

    def wait_for_sync(self, timeout: float | None = None) -> bool: ...

    def is_stopped(self) -> bool: ...


@runtime_checkable
class AsyncSyncSource(Protocol):
    """Something whose sync can be awaited on the loop (an asyncio handler registration)."""

    def has_synced(self) -> bool: ...

    async def wait_synced(self) -> bool: ...


#: What the wait functions accept: a ``has_synced`` function or an object that has one.
SyncedLike = Callable[[], bool] | HasSynced


async def informer_synced(informer: HasSynced, timeout: float | None = None) -> bool:
    """Wait until ``informer`` has synced, without blocking the loop.

    Semantics: see the module docstring. Equivalent to ``wait_for_cache_sync(informer,
    timeout=timeout)``.

    Args:
        informer: a :class:`~nvinformers.cache.SharedIndexInformer` (or anything with
            ``has_synced``).
        timeout: seconds to wait at most (None: no limit).

    Returns:
        True once synced; False when ``timeout`` passed first or the informer stopped unsynced.

    Raises:
        asyncio.CancelledError: the awaiting task was cancelled.
    """
    return await wait_for_cache_sync(informer, timeout=timeout)


async def wait_for_cache_sync(*has_synced: SyncedLike, timeout: float | None = None) -> bool:
    """Wait until every ``has_synced`` function (or object) reports True.

    The asyncio form of :func:`nvinformers.cache.wait_for_cache_sync`: pass informers'
    ``has_synced`` and handler registrations' ``has_synced`` (or the objects themselves). The
    event loop is never blocked; see the module docstring for how each kind is waited on.

    Args:
        *has_synced: functions returning True once synced, or objects with ``has_synced()``.
        timeout: seconds to wait at most for all of them (None: no limit).

    Returns:
        True when all have synced (also when none is given); False when ``timeout`` passed first
        or an informer stopped before it synced.

    Raises:
        TypeError: an argument is neither callable nor has ``has_synced``.
        asyncio.CancelledError: the awaiting task was cancelled (nothing is left waiting).
    """
    waits = [_waiter_for(item) for item in has_synced]
    try:
        async with asyncio.timeout(timeout):
            for wait in waits:
                if not await wait():
                    return False
    except TimeoutError:
        return False
    return True


def _waiter_for(item: SyncedLike) -> Callable[[], Awaitable[bool]]:
    """Pick the cheapest way to wait for ``item`` (see the module docstring)."""
    owner: object = item
    if inspect.ismethod(item) and item.__name__ == "has_synced":
        owner = item.__self__
    if isinstance(owner, AsyncSyncSource):
        return owner.wait_synced
    if isinstance(owner, _BlockingSyncSource):
        informer = owner
        return lambda: _wait_informer(informer)
    if isinstance(owner, HasSynced):
        fn = owner.has_synced
        return lambda: _poll(fn)
    if callable(item):
        return lambda: _poll(item)
    raise TypeError(
        f"wait_for_cache_sync: expected a has_synced function or an object with has_synced(), "
        f"got {type(item).__name__}"
    )


async def _wait_informer(informer: _BlockingSyncSource) -> bool:
    # The informer signals sync through a threading.Event only, so a thread must wait on it;
    # slicing the wait bounds how long a cancelled waiter keeps an executor thread busy.
    loop = asyncio.get_running_loop()
    while not informer.has_synced():
        if informer.is_stopped():
            return informer.has_synced()
        if await loop.run_in_executor(None, informer.wait_for_sync, SYNC_WAIT_SLICE):
            return True
    return True


async def _poll(fn: Callable[[], bool]) -> bool:
    delay = _FIRST_POLL
    while not fn():
        await asyncio.sleep(delay)
        delay = min(delay * 2, POLL_INTERVAL)
    return True
