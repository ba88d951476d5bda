"""The reconcile loop on an asyncio event loop: controller-runtime's controller, with worker tasks.

:class:`AsyncController` is the asyncio driver of the :mod:`controller core
<nvinformers.controller._core>`, whose thread driver is :class:`~nvinformers.controller.
Controller`: watches (event handlers, predicates), start-up, stopping, metrics, logging and the
reconcile table (:mod:`nvinformers.controller._reconcile`) are the same. The watches' handlers add
to the thread-safe queue on the informers' handler threads (enqueueing never involves the loop);
:meth:`~AsyncController.start` awaits the caches' sync without blocking the loop, then starts
``max_concurrent_reconciles`` worker tasks that ``await queue.get()``
(:class:`~nvinformers.aio._workqueue.AsyncQueue`), so one object is never reconciled concurrently.

What is the loop's: no exception from a reconciler ends a worker task, but ``KeyboardInterrupt``
and ``SystemExit`` are not caught (they belong to ``asyncio.run``): the panic the loop sees is a
``CancelledError`` the reconciler lets escape while its worker is not being cancelled (with
``recover_panic=False`` the controller stops itself; ``error()`` tells why). A stop cancels
reconciles still running after its timeout.
"""

from __future__ import annotations

import asyncio
import inspect
from typing import TYPE_CHECKING

from nvinformers.aio._workqueue import AsyncQueue
from nvinformers.controller import AsyncReconciler, Request
from nvinformers.controller._core import ControllerCore, log

if TYPE_CHECKING:
    from nvinformers.controller._metrics import WorkerStats

__all__ = ["AsyncController"]


class AsyncController(ControllerCore[AsyncReconciler]):
    """Reconciles requests from watched informers with worker tasks on the running loop.

    Thread-safety: :meth:`watch`, :meth:`enqueue` and the reads may be called from any thread;
    :meth:`start` and :meth:`stop` are coroutines of one loop.

    Args:
        name, max_concurrent_reconciles, rate_limiter, cache_sync_timeout, shutdown_timeout,
        registry, clock, recover_panic: see :class:`~nvinformers.controller._core.ControllerCore`
            (``shutdown_timeout`` is :meth:`stop`'s default timeout).
        reconciler: an object with ``async def reconcile(request) -> Result``.

    Raises:
        ValueError: an option is out of range, or the registry already has clashing metrics.
    """

    def _init_driver(self, reconciler: AsyncReconciler) -> None:
        self._reconciler = reconciler
        self._async_queue: AsyncQueue[Request] = AsyncQueue(self._queue)
        self._workers: list[tuple[asyncio.Task[None], WorkerStats]] = []  # loop only
        self._stop_called = False  # loop only: stop() ran (a panic may begin a stop without it)
        self._done = asyncio.Event()  # set when stop() has finished

    @property
    def queue(self) -> AsyncQueue[Request]:
        """The controller's queue (``queue.queue`` is the thread-safe one)."""
        return self._async_queue

    @property
    def active_workers(self) -> int:
        """Workers currently inside a reconcile."""
        return self._metrics.active_workers()

    def enqueue(self, request: Request) -> None:
        """Add ``request`` to the queue directly (from any thread).

        Raises:
            TypeError: ``request`` is not a :class:`~nvinformers.controller.Request`.
        """
        if not isinstance(request, Request):
            raise TypeError(f"enqueue: expected a Request, got {type(request).__name__}")
        self._queue.add(request)

    # ---------------------------------------------------------------------------- lifecycle

    async def start(self) -> None:
        """Register the watches, wait for the caches to sync, start the workers. Returns then.

        A :meth:`stop` while waiting ends the wait: ``start`` then returns without workers.
        On failure the controller is stopped before the error is raised.

        Raises:
            RuntimeError: already started, or stopped.
            CacheSyncTimeoutError: the caches did not sync within the cache sync timeout (or an
                informer stopped before it synced); no worker was started.
            InformerStoppedError: a watched informer had already stopped.
        """
        sources = self._claim_start()
        try:
            with self._start_sources(sources) as sync:
                synced = await sync.wait_async(self._cache_sync_timeout)
                if not self._synced(sync, sources, synced, False):
                    return
        except BaseException:
            await self.stop()
            raise
        loop = asyncio.get_running_loop()
        with self._lock:
            if not self._run_locked():
                return
            for index in range(self._max_concurrent):
                stats = self._metrics.new_worker()
                task = loop.create_task(
                    self._worker(stats), name=f"nvinformers-controller-{self._name}-{index}"
                )
                self._workers.append((task, stats))
        log.info(
            "controller %s: caches synced; started %d worker(s)", self._name, len(self._workers)
        )

    async def stop(self, timeout: float | None = None) -> bool:
        """Stop gracefully: stop enqueueing, finish in-flight reconciles, end the workers.

        Idle workers are cancelled at once (a worker waiting in ``get`` loses no item); busy
        ones finish their reconcile and end. After ``timeout`` seconds (default:
        ``shutdown_timeout``), reconciles still running are cancelled. Items still queued are
        dropped. The handlers are removed from the informers and their threads joined in the
        default executor. Idempotent: a second call waits for the first one.

        Returns:
            True if every in-flight reconcile finished within ``timeout``.
        """
        if self._stop_called:
            await self._done.wait()
            return True
        self._stop_called = True
        self._begin_stop()
        limit = self._shutdown_timeout if timeout is None else timeout
        try:
            with self._lock:
                sources = list(self._sources)
            for source in sources:
                source.remove()
            for task, stats in self._workers:
                if not stats.busy:
                    task.cancel()
            graceful = True
            tasks = [task for task, _ in self._workers]
            if tasks:
                _, pending = await asyncio.wait(tasks, timeout=limit)
                if pending:
                    graceful = False
                    log.warning(
                        "controller %s: %d reconcile(s) still running after %s s; cancelling",
                        self._name,
                        len(pending),
                        limit,
                    )
                    for task in pending:
                        task.cancel()
                    await asyncio.wait(pending)
            await self._async_queue.aclose()
            loop = asyncio.get_running_loop()
            for source in sources:
                await loop.run_in_executor(None, source.join, limit)
            self._stopped()
            return graceful
        finally:
            self._done.set()

    async def __aenter__(self) -> AsyncController:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    # ------------------------------------------------------------------------------ workers

    async def _worker(self, stats: WorkerStats) -> None:
        queue = self._async_queue
        now = self._clock.now
        current = asyncio.current_task()
        while self._state == "running":  # a str read needs no lock
            request, shutdown = await queue.get()
            if shutdown or request is None:
                return
            try:
                if self._state != "running":
                    continue  # stopping: queued requests are dropped
                result: object = None
                error: BaseException | None = None
                stats.busy = True
                start = now()
                try:
                    pending = self._reconciler.reconcile(request)
                    if not inspect.isawaitable(pending):
                        raise TypeError(
                            f"reconcile({request}) returned {type(pending).__name__}, not an "
                            "awaitable: AsyncController needs an AsyncReconciler "
                            "(async def reconcile)"
                        )
                    result = await pending
                except asyncio.CancelledError as exc:
                    if current is not None and current.cancelling():
                        raise  # the worker is being stopped
                    error = exc  # the reconciler let a cancellation of its own escape
                except Exception as exc:
                    error = exc
                finally:
                    stats.time.observe(now() - start)
                    stats.busy = False
                try:
                    self._after_reconcile(request, result, error, stats)
                except BaseException as exc:  # an unrecovered panic: the controller stops
                    self._panic_error(exc)
                    self._begin_stop()
                    return
            finally:
                queue.done(request)

    def __repr__(self) -> str:
        return (
            f"<AsyncController {self._name!r} {self.status()} active={self.active_workers} "
            f"queued={self._queue.len()}>"
        )
