"""asyncio bridges: embed nvinformers' thread-based informers in an event loop.

Informers, their caches and the workqueue stay thread-based (their threads are named and joined
as everywhere in nvinformers); this package lets coroutines use them without ever blocking the
loop, for operators written with asyncio frameworks such as kopf:

* :func:`wait_for_cache_sync` / :func:`informer_synced` — await cache sync (defined here, over
  :meth:`nvinformers.cache._wait.SyncWait.wait_async`);
* :func:`add_async_event_handler` — informer notifications delivered on the loop, to coroutine or
  plain handlers, in order, batched across the thread boundary (:mod:`nvinformers.aio._handlers`);
* :class:`AsyncQueue` — ``await queue.get()`` over the thread-safe rate-limiting workqueue,
  cancellation-safe (:mod:`nvinformers.aio._workqueue`);
* :class:`AsyncController` — controller-runtime's reconcile loop with worker tasks on the loop,
  the asyncio driver of the same core as :class:`nvinformers.controller.Controller`
  (:mod:`nvinformers.aio._reconcile`).

Threading model in one line: threads produce (reflector, informer processing, per-handler
threads, the queue's pump), the loop consumes; every hand-over to the loop is one
``call_soon_threadsafe`` per batch, and nothing on the loop waits for a thread.
"""

from nvinformers.aio._handlers import (
    AsyncEventHandlerRegistration,
    AsyncResourceEventHandler,
    AsyncResourceEventHandlerDetailedFuncs,
    AsyncResourceEventHandlerFuncs,
    add_async_event_handler,
)
from nvinformers.aio._reconcile import AsyncController
from nvinformers.aio._workqueue import AsyncQueue
from nvinformers.cache._wait import HasSynced, SyncedLike, SyncWait
from nvinformers.controller import CacheSyncTimeoutError, MapFunc

__all__ = [
    # sync
    "wait_for_cache_sync",
    "informer_synced",
    # handlers
    "add_async_event_handler",
    "AsyncResourceEventHandler",
    "AsyncResourceEventHandlerFuncs",
    "AsyncResourceEventHandlerDetailedFuncs",
    "AsyncEventHandlerRegistration",
    # workqueue
    "AsyncQueue",
    # controller
    "AsyncController",
    "CacheSyncTimeoutError",
    "MapFunc",
]


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
        return await sync.wait_async(timeout)


async def informer_synced(informer: HasSynced, timeout: float | None = None) -> bool:
    """``wait_for_cache_sync(informer, timeout=timeout)``: True once ``informer`` has synced."""
    return await wait_for_cache_sync(informer, timeout=timeout)
