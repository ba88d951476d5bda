"""Awaiting cache sync from asyncio without blocking the event loop.

The asyncio driver of :mod:`nvinformers.cache._wait`: the same :class:`~nvinformers.cache._wait.
SyncWait` as :func:`nvinformers.cache.wait_for_cache_sync`, awaited instead of blocked on.
Informers and handler registrations (threaded or asyncio) wake the loop with one
``call_soon_threadsafe`` when they sync or give up; no thread waits on the loop's behalf, and only
plain functions are polled. Cancelling the awaiting task leaves nothing behind.
"""

from __future__ import annotations

import asyncio
import contextlib

from nvinformers.cache._wait import POLL_INTERVAL, HasSynced, SyncedLike, SyncWait

__all__ = ["wait_for_cache_sync", "informer_synced", "wait_sync"]


async def wait_for_cache_sync(*has_synced: SyncedLike, timeout: float | None = None) -> bool:
    """Wait until every source reports synced, without blocking the loop.

    The asyncio form of :func:`nvinformers.cache.wait_for_cache_sync`: pass informers, handler
    registrations (threaded or asyncio), their ``has_synced`` methods, or plain functions.

    Returns:
        True when all have synced (also when none is given); False when ``timeout`` passed first
        or an informer stopped (or a handler was removed) before it synced.

    Raises:
        TypeError: an argument is neither callable nor has ``has_synced``.
        asyncio.CancelledError: the awaiting task was cancelled.
    """
    with SyncWait(has_synced) as sync:
        return await wait_sync(sync, timeout)


async def wait_sync(sync: SyncWait, timeout: float | None) -> bool:
    """Await ``sync``'s outcome (the asyncio peer of :meth:`SyncWait.wait`), up to ``timeout``.

    Returns:
        True only when everything synced.
    """
    loop = asyncio.get_running_loop()
    wake = asyncio.Event()

    def notify() -> None:
        with contextlib.suppress(RuntimeError):  # the loop closed: nobody is waiting any more
            loop.call_soon_threadsafe(wake.set)

    sync.on_change(notify)
    try:
        async with asyncio.timeout(timeout):
            while True:
                wake.clear()  # before the check: a signal after it sets it again
                outcome = sync.outcome()
                if outcome is not None:
                    return outcome
                poll = loop.call_later(POLL_INTERVAL, wake.set) if sync.polls else None
                try:
                    await wake.wait()
                finally:
                    if poll is not None:
                        poll.cancel()
    except TimeoutError:
        return False


async def informer_synced(informer: HasSynced, timeout: float | None = None) -> bool:
    """``wait_for_cache_sync(informer, timeout=timeout)``: True once ``informer`` has synced."""
    return await wait_for_cache_sync(informer, timeout=timeout)
