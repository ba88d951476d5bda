"""An asyncio reconcile loop: controller-runtime's controller, with worker tasks on a loop.

:class:`AsyncController` joins informers, a rate-limiting workqueue and an
:class:`~nvinformers.controller.reconcile.AsyncReconciler`:

* :meth:`AsyncController.watch` registers a handler on an informer that turns every add, update
  and delete into a :class:`~nvinformers.controller.reconcile.Request` for the object's key
  (``informer.key_func``; tombstones use the key they carry), or into the requests a map
  function returns (controller-runtime's ``EnqueueRequestForObject`` and
  ``EnqueueRequestsFromMapFunc``). The handler runs on the informer's handler thread and adds
  straight to the thread-safe queue: enqueueing never involves the event loop.
* :meth:`AsyncController.start` waits for the informers' caches (without blocking the loop),
  then starts ``max_concurrent_reconciles`` worker tasks that ``await queue.get()``
  (:class:`~nvinformers.aio.workqueue.AsyncQueue`).
* The queue hands an item to one worker at a time, so one object is never reconciled
  concurrently; an object changed while being reconciled is reconciled again afterwards.
* What happens after a reconcile is the table of :mod:`nvinformers.controller.reconcile`:

  ===========================================  ===============================================
  ``await reconciler.reconcile(request)``      then
  ===========================================  ===============================================
  returns ``Result()``                         ``forget``: the failure history is cleared
  returns ``Result(requeue_after=s)``          ``forget``, then ``add_after(request, s)``
  raises :class:`TerminalError`                logged, counted, forgotten, **not** retried
  raises any other exception                   logged, ``add_rate_limited`` (backoff per item)
  returns something that is not a ``Result``   an error (a ``TypeError`` naming it): retried
  ===========================================  ===============================================

  A terminal error (also one wrapped as ``__cause__``) is forgotten, like the threaded
  :class:`~nvinformers.controller.Controller` does.
  No exception from a reconciler ends a worker task; only cancelling it does.
* :meth:`AsyncController.stop` is graceful: it stops enqueueing, lets in-flight reconciles
  finish (up to a timeout, then cancels them), and drops what was still queued.

Counters (``reconcile_total`` by result, ``reconcile_errors``, ``terminal_reconcile_errors``)
mirror controller-runtime's metric names; the workqueue exports client-go's ``workqueue_*``
metrics under the controller's name.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from prometheus_client import CollectorRegistry

from nvinformers.aio.sync import wait_for_cache_sync
from nvinformers.aio.workqueue import AsyncQueue
from nvinformers.cache.keys import DeletedFinalStateUnknown
from nvinformers.cache.shared_informer import (
    ResourceEventHandlerRegistration,
    SharedIndexInformer,
)
from nvinformers.clock import Clock
from nvinformers.controller.reconcile import (
    AsyncReconciler,
    Request,
    Result,
    is_terminal_error,
)
from nvinformers.workqueue import RateLimiter, RateLimitingQueue

__all__ = ["AsyncController", "MapFunc", "CacheSyncTimeoutError", "DEFAULT_CACHE_SYNC_TIMEOUT"]

log = logging.getLogger("nvinformers.aio.controller")

#: Maps an object to the requests to enqueue for it (controller-runtime's ``MapFunc``).
MapFunc = Callable[[Any], Iterable[Request]]

#: controller-runtime's ``CacheSyncTimeout`` default: 2 minutes.
DEFAULT_CACHE_SYNC_TIMEOUT = 120.0
#: How long :meth:`AsyncController.stop` lets in-flight reconciles finish by default.
DEFAULT_STOP_TIMEOUT = 30.0


class CacheSyncTimeoutError(TimeoutError):
    """The watched informers did not sync within the controller's cache sync timeout."""


class _EnqueueHandler:
    """The threaded handler :meth:`AsyncController.watch` registers: events → requests.

    Runs on the informer's handler thread and only calls the thread-safe queue's ``add``.
    """

    __slots__ = ("_controller", "_queue", "_key_func", "_map_func")

    def __init__(
        self,
        controller: str,
        queue: RateLimitingQueue[Request],
        key_func: Callable[[Any], str],
        map_func: MapFunc | None,
    ) -> None:
        self._controller = controller
        self._queue = queue
        self._key_func = key_func
        self._map_func = map_func

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._enqueue(obj)

    def on_update(self, old: Any, new: Any) -> None:
        if self._map_func is not None:
            # controller-runtime maps both states: a label change may move the object from
            # one owner's request to another's. The queue de-duplicates.
            self._enqueue(old)
        self._enqueue(new)

    def on_delete(self, obj: Any) -> None:
        if isinstance(obj, DeletedFinalStateUnknown):
            if self._map_func is None:
                self._enqueue_key(obj.key)
                return
            if obj.obj is None:
                log.warning(
                    "controller %s: cannot map a deletion of %s with unknown final state",
                    self._controller,
                    obj.key,
                )
                return
            obj = obj.obj
        self._enqueue(obj)

    def _enqueue_key(self, key: str) -> None:
        try:
            request = Request.from_key(key)
        except ValueError:
            log.error(
                "controller %s: cannot make a request of key %r; ignored", self._controller, key
            )
            return
        self._queue.add(request)

    def _enqueue(self, obj: Any) -> None:
        try:
            if self._map_func is None:
                self._enqueue_key(self._key_func(obj))
                return
            requests: Iterable[object] = self._map_func(obj)
            for request in requests:
                if not isinstance(request, Request):
                    log.error(
                        "controller %s: map function returned %r, expected Request; ignored",
                        self._controller,
                        request,
                    )
                    continue
                self._queue.add(request)
        except Exception:
            log.exception(
                "controller %s: cannot compute the request for an object", self._controller
            )


class AsyncController:
    """Reconciles requests from watched informers with worker tasks on the running loop.

    See the module docstring for the semantics.

    Thread-safety: :meth:`watch` and :meth:`enqueue` may be called from any thread;
    :meth:`start` and :meth:`stop` are coroutines of one loop.

    Args:
        name: the controller's name (logs, task names, the ``name`` label of the queue's
            metrics). Must be non-empty.
        reconciler: an object with ``async def reconcile(request) -> Result``.
        max_concurrent_reconciles: worker tasks, i.e. how many different objects may be
            reconciled at once.
        rate_limiter: paces retries (default: the workqueue's default controller limiter).
        cache_sync_timeout: seconds :meth:`start` waits for the informers to sync.
        clock: the workqueue's clock (delays of ``add_after``); tests inject a fake one.
        registry: Prometheus registry for the workqueue's metrics (None: the default).

    Raises:
        ValueError: ``name`` is empty or ``max_concurrent_reconciles`` is below 1.
    """

    def __init__(
        self,
        name: str,
        reconciler: AsyncReconciler,
        *,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Request] | None = None,
        cache_sync_timeout: float = DEFAULT_CACHE_SYNC_TIMEOUT,
        clock: Clock | None = None,
        registry: CollectorRegistry | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"AsyncController: name must be a non-empty str, got {name!r}")
        if isinstance(max_concurrent_reconciles, bool) or not (
            isinstance(max_concurrent_reconciles, int) and max_concurrent_reconciles >= 1
        ):
            raise ValueError(
                "AsyncController: max_concurrent_reconciles must be an int >= 1, got "
                f"{max_concurrent_reconciles!r}"
            )
        self.name = name
        self._reconciler = reconciler
        self._max_concurrent = max_concurrent_reconciles
        self._cache_sync_timeout = cache_sync_timeout
        self._queue: AsyncQueue[Request] = AsyncQueue(
            RateLimitingQueue(name, rate_limiter=rate_limiter, clock=clock, registry=registry)
        )
        self._watches: list[tuple[SharedIndexInformer[Any], ResourceEventHandlerRegistration]] = []
        self._workers: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()  # indexes of workers inside a reconcile
        self._started = False
        self._stopping = False
        self._stop_requested = asyncio.Event()
        self._stopped = asyncio.Event()
        # Counters (controller-runtime's metric names), written on the loop.
        self.reconcile_total: Counter[str] = Counter()  # success, error, requeue_after
        self.reconcile_errors = 0
        self.terminal_reconcile_errors = 0

    # ------------------------------------------------------------------------------ wiring

    @property
    def queue(self) -> AsyncQueue[Request]:
        """The controller's queue (``queue.queue`` is the thread-safe one)."""
        return self._queue

    @property
    def max_concurrent_reconciles(self) -> int:
        return self._max_concurrent

    @property
    def stopping(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopping

    @property
    def active_workers(self) -> int:
        """Workers currently inside a reconcile."""
        return len(self._busy)

    def watch(
        self,
        informer: SharedIndexInformer[Any],
        map_func: MapFunc | None = None,
        *,
        name: str | None = None,
    ) -> ResourceEventHandlerRegistration:
        """Enqueue requests for ``informer``'s events.

        Without ``map_func``: one request for the object's key (``informer.key_func``; a
        tombstone's recorded key for deletions noticed by a relist). With ``map_func``: the
        requests it returns for the object (for an update, for the old and the new state; for
        a tombstone, for its last known state). ``map_func`` runs on the informer's handler
        thread: it must be quick and thread-safe (read listers, not the network).

        Call it before :meth:`start` so that :meth:`start` waits for this informer's sync.

        Returns:
            The handler's registration on the informer.

        Raises:
            RuntimeError: the controller is stopping or stopped.
            InformerStoppedError: the informer has stopped.
        """
        if self._stopping:
            raise RuntimeError(f"controller {self.name}: cannot watch after stop")
        handler = _EnqueueHandler(self.name, self._queue.queue, informer.key_func, map_func)
        suffix = f"-{len(self._watches) + 1}" if self._watches else ""
        registration = informer.add_event_handler(
            handler, name=name or f"controller-{self.name}{suffix}"
        )
        self._watches.append((informer, registration))
        return registration

    def enqueue(self, request: Request) -> None:
        """Add ``request`` to the queue directly (from any thread)."""
        if not isinstance(request, Request):
            raise TypeError(f"enqueue: expected a Request, got {type(request).__name__}")
        self._queue.add(request)

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Wait for the watched informers to sync, then start the worker tasks. Returns then.

        Raises:
            RuntimeError: already started, or stopped.
            CacheSyncTimeoutError: the caches did not sync within the cache sync timeout (or an
                informer stopped before it synced); no worker was started.
        """
        if self._started or self._stopping:
            raise RuntimeError(f"controller {self.name}: already started or stopped")
        self._started = True
        synced_funcs = [f for inf, reg in self._watches for f in (inf.has_synced, reg.has_synced)]
        log.info("controller %s: waiting for %d cache(s) to sync", self.name, len(self._watches))
        # Wait for the caches or for stop(), whichever comes first (controller-runtime's
        # WaitForCacheSync ends when its context is cancelled).
        syncing = asyncio.ensure_future(
            wait_for_cache_sync(*synced_funcs, timeout=self._cache_sync_timeout)
        )
        stopping = asyncio.ensure_future(self._stop_requested.wait())
        try:
            await asyncio.wait({syncing, stopping}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for waiter in (syncing, stopping):
                waiter.cancel()
        if self.stopping:
            log.info("controller %s: stopped before the caches synced", self.name)
            return
        if not syncing.result():
            raise CacheSyncTimeoutError(
                f"controller {self.name}: timed out waiting for caches to sync "
                f"({self._cache_sync_timeout} s)"
            )
        loop = asyncio.get_running_loop()
        self._workers = [
            loop.create_task(self._worker(i), name=f"nvinformers-controller-{self.name}-{i}")
            for i in range(self._max_concurrent)
        ]
        log.info("controller %s: started %d worker(s)", self.name, self._max_concurrent)

    async def stop(self, timeout: float | None = DEFAULT_STOP_TIMEOUT) -> bool:
        """Stop gracefully: stop enqueueing, finish in-flight reconciles, end the workers.

        Idle workers are cancelled at once (a worker waiting in ``get`` loses no item); busy
        ones finish their reconcile and end. After ``timeout`` seconds, reconciles still
        running are cancelled. Items still queued are dropped. The handlers are removed from
        the informers and their threads joined in the default executor. Idempotent.

        Returns:
            True if every in-flight reconcile finished within ``timeout``.
        """
        if self._stopping:
            await self._stopped.wait()
            return True
        self._stopping = True
        self._stop_requested.set()
        try:
            for informer, registration in self._watches:
                informer.remove_event_handler(registration)
            self._queue.shut_down()
            for index, task in enumerate(self._workers):
                if index not in self._busy:
                    task.cancel()
            graceful = True
            if self._workers:
                _, pending = await asyncio.wait(self._workers, timeout=timeout)
                if pending:
                    graceful = False
                    log.warning(
                        "controller %s: %d reconcile(s) still running after %s s; cancelling",
                        self.name,
                        len(pending),
                        timeout,
                    )
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending)
            await self._queue.aclose()
            loop = asyncio.get_running_loop()
            for informer, registration in self._watches:
                await loop.run_in_executor(
                    None, informer.shut_down_event_handler, registration, timeout
                )
            log.info("controller %s: stopped", self.name)
            return graceful
        finally:
            self._stopped.set()

    async def __aenter__(self) -> AsyncController:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------ workers

    async def _worker(self, index: int) -> None:
        queue = self._queue
        busy = self._busy
        while not self._stopping:
            request, shutdown = await queue.get()
            if shutdown or request is None:
                return
            busy.add(index)
            try:
                await self._reconcile_handler(request)
            except Exception:  # a bug in the bookkeeping below must not end the worker
                log.exception("controller %s: failed to handle %s", self.name, request)
            finally:
                busy.discard(index)
                queue.done(request)

    async def _reconcile_handler(self, request: Request) -> None:
        queue = self._queue
        try:
            pending = self._reconciler.reconcile(request)
            if not inspect.isawaitable(pending):
                raise TypeError(
                    f"reconcile({request}) returned {type(pending).__name__}, not an awaitable: "
                    "AsyncController needs an AsyncReconciler (async def reconcile)"
                )
            result = await pending
            if not isinstance(result, Result):
                raise TypeError(
                    f"reconcile({request}) returned {result!r}, expected a Result "
                    "(return Result() for success)"
                )
        except asyncio.CancelledError:
            task = asyncio.current_task()
            if task is not None and task.cancelling():
                raise  # the worker is being stopped
            self._on_error(request)  # the reconciler let a cancellation of its own escape
            return
        except Exception as err:
            if is_terminal_error(err):
                # Not retried; its failure history is dropped (as the threaded Controller does).
                self.reconcile_errors += 1
                self.terminal_reconcile_errors += 1
                self.reconcile_total["error"] += 1
                queue.forget(request)
                log.error(
                    "controller %s: terminal error reconciling %s; not retrying",
                    self.name,
                    request,
                    exc_info=err,
                )
                return
            self._on_error(request)
            return
        if result.requeue_after > 0:
            queue.forget(request)
            queue.add_after(request, result.requeue_after)
            self.reconcile_total["requeue_after"] += 1
            return
        queue.forget(request)
        self.reconcile_total["success"] += 1

    def _on_error(self, request: Request) -> None:
        self.reconcile_errors += 1
        self.reconcile_total["error"] += 1
        self._queue.add_rate_limited(request)
        log.exception(
            "controller %s: error reconciling %s; retrying (%d requeues so far)",
            self.name,
            request,
            self._queue.num_requeues(request),
        )

    def __repr__(self) -> str:
        return (
            f"<AsyncController {self.name} workers={len(self._workers)} "
            f"active={self.active_workers} queued={self._queue.len()}>"
        )
