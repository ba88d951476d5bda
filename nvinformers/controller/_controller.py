"""The reconcile loop on worker threads: controller-runtime's ``Controller`` for nvinformers.

A :class:`Controller` watches informers, turns their events into
:class:`~nvinformers.controller._reconcile.Request` objects on a rate-limiting workqueue, and runs
``max_concurrent_reconciles`` worker threads that call the reconciler::

    def reconcile(request: Request) -> Result:
        gpu = lister.get(request.name)          # read the cache, never the socket
        ...
        return Result()

    ctl = Controller("gpu-health", reconcile, max_concurrent_reconciles=2)
    ctl.watch(factory.device().v1alpha1().gpus().informer())
    factory.start(stop)
    ctl.run(stop)                               # blocks; or ctl.start(stop) + ctl.stop()

It is the thread driver of the :mod:`controller core <nvinformers.controller._core>` (watches,
start-up, stopping, logging), whose asyncio driver is :class:`nvinformers.aio.AsyncController`;
what follows a reconcile is the table of :mod:`nvinformers.controller._reconcile`. The workqueue
never hands one request to two workers at once: the same object is never reconciled
concurrently; a request added while it is being reconciled is reconciled again afterwards.

An unrecovered panic (``recover_panic=False``) ends its worker and stops the controller:
:meth:`Controller.run` raises :class:`~nvinformers.controller._core.ReconcilePanicError`, and so
does a :class:`~nvinformers.controller.Manager` running it. On stop, workers are joined for up to
``shutdown_timeout`` seconds; a reconcile still running then is reported and left to finish on
its (daemon) thread.
"""

from __future__ import annotations

import inspect
import threading
import time
from collections.abc import Callable
from typing import Any

from nvinformers.controller._core import ControllerCore, ReconcilePanicError, log
from nvinformers.controller._reconcile import Reconciler, Request, Result
from nvinformers.controller._source import InformerSource
from nvinformers.workqueue import RateLimitingQueue

__all__ = ["Controller"]

ReconcileFunc = Callable[[Request], Result]


class Controller(ControllerCore[Reconciler | ReconcileFunc]):
    """Runs a reconciler over the requests its watched informers produce, on worker threads.

    Metrics (on ``registry``): ``controller_runtime_*`` with label ``controller=name`` (see
    :mod:`nvinformers.controller._metrics`), the workqueue's ``workqueue_*`` with ``name=name``.

    Thread-safety: every method may be called from any thread. The reconciler is called from up
    to ``max_concurrent_reconciles`` worker threads at once (never twice at once for one request),
    so it must be thread-safe when that is above 1. No library lock is held while it runs.

    A controller runs once: after it stopped, build a new one.

    Args:
        name, max_concurrent_reconciles, rate_limiter, cache_sync_timeout, shutdown_timeout,
        registry, clock, recover_panic: see :class:`~nvinformers.controller._core.ControllerCore`.
        reconciler: a :class:`~nvinformers.controller._reconcile.Reconciler` (an object with
            ``reconcile(request) -> Result``) or a plain function ``request -> Result``.

    Raises:
        TypeError: ``reconciler`` is neither a reconciler nor a function, or is ``async``.
        ValueError: an option is out of range, or the registry already has clashing metrics.
    """

    def _init_driver(self, reconciler: Reconciler | ReconcileFunc) -> None:
        self._reconcile = _reconcile_func(self._name, reconciler)
        # Guarded by _lock: the worker threads, and the stop event and thread of the run.
        self._workers: list[threading.Thread] = []
        self._stop_event: threading.Event | None = None
        self._run_thread: threading.Thread | None = None

    @property
    def queue(self) -> RateLimitingQueue[Request]:
        """The controller's workqueue (tests and custom sources: ``queue.add(Request(...))``)."""
        return self._queue

    def wait_for_started(self, timeout: float | None = None) -> bool:
        """Block until the workers have started (the caches synced).

        Returns:
            True once started; False if ``timeout`` passed first or the controller stopped
            (or failed) without starting its workers.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._state in ("running", "stopped"), timeout)
            return bool(self._workers)

    def wait_for_stopped(self, timeout: float | None = None) -> bool:
        """Block until the controller has shut down (after a stop or a failure)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state == "stopped", timeout)

    # ---------------------------------------------------------------------------- running

    def run(self, stop: threading.Event) -> None:
        """Run the controller until ``stop`` is set. Blocks.

        Registers the handlers, waits for the caches (see :mod:`nvinformers.controller._core`),
        starts the workers, waits for ``stop``, then stops gracefully. The controller may set
        ``stop`` itself (:meth:`stop`, or an unrecovered panic): give it an event of its own if
        other components must keep running.

        Raises:
            RuntimeError: the controller was already started or stopped.
            CacheSyncTimeoutError: the caches did not sync within ``cache_sync_timeout``.
            ReconcilePanicError: a reconcile panicked with ``recover_panic=False``.
            InformerStoppedError: a watched informer had already stopped.
        """
        sources = self._claim(stop)
        self._run_claimed(stop, sources)

    def start(
        self,
        stop: threading.Event | None = None,
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> threading.Event:
        """Run the controller on a thread of its own (``nvinformers-controller-<name>``).

        Does not block: the thread waits for the caches, then starts the workers (see
        :meth:`wait_for_started`). Errors that end the run (sync failure, unrecovered panic)
        are logged, kept in :meth:`error` and passed to ``on_error`` (called on the controller's
        thread; the :class:`~nvinformers.controller._manager.Manager` uses it to shut down).

        Args:
            stop: stops the controller when set; default: a new event (use :meth:`stop`).
            on_error: called with the error that ended the run, if any.

        Returns:
            The stop event in use.

        Raises:
            RuntimeError: the controller was already started or stopped.
        """
        event = threading.Event() if stop is None else stop
        sources = self._claim(event)
        thread = threading.Thread(
            target=self._run_in_thread,
            args=(event, sources, on_error),
            name=f"nvinformers-controller-{self._name}",
            daemon=True,
        )
        with self._lock:
            self._run_thread = thread
        thread.start()
        return event

    def _claim(self, stop: threading.Event) -> list[InformerSource]:
        sources = self._claim_start()
        with self._lock:
            self._stop_event = stop
        return sources

    def _run_in_thread(
        self,
        stop: threading.Event,
        sources: list[InformerSource],
        on_error: Callable[[BaseException], None] | None,
    ) -> None:
        try:
            self._run_claimed(stop, sources)
        except BaseException as exc:
            # Already logged where it happened; this is the thread's whole body, so nothing
            # else would see it but on_error and error().
            if on_error is not None:
                try:
                    on_error(exc)
                except Exception:
                    log.exception("controller %s: on_error callback failed", self._name)

    def _run_claimed(self, stop: threading.Event, sources: list[InformerSource]) -> None:
        """The body of :meth:`run` once the start was claimed."""
        try:
            with self._start_sources(sources) as sync:
                synced = sync.wait(stop, self._cache_sync_timeout)
                if not self._synced(sync, sources, synced, stop.is_set()):
                    return
            with self._lock:
                if stop.is_set() or not self._run_locked():
                    return
                for index in range(self._max_concurrent):
                    worker = threading.Thread(
                        target=self._worker,
                        name=f"nvinformers-controller-{self._name}-worker-{index}",
                        daemon=True,  # a hung reconcile must not block interpreter exit
                    )
                    self._workers.append(worker)
                    worker.start()
            log.info(
                "controller %s: caches synced; started %d worker(s)",
                self._name,
                self._max_concurrent,
            )
            stop.wait()
        finally:
            self._shut_down()
        error = self.error()
        if isinstance(error, ReconcilePanicError):
            raise error

    def stop(self, timeout: float | None = None, *, wait: bool = True) -> bool:
        """Stop the controller gracefully (see :mod:`nvinformers.controller._core`) and wait.

        Sets the stop event given to :meth:`start` / :meth:`run`. Idempotent. On a controller
        that never started, releases the queue.

        Args:
            timeout: seconds to wait for the shutdown (default: ``shutdown_timeout`` plus a
                second for the handlers).
            wait: False to only request the stop.

        Returns:
            True if the controller has fully stopped within ``timeout``: every worker joined
            (False when a reconcile outlived ``shutdown_timeout``).
        """
        with self._lock:
            event = self._stop_event
            thread = self._run_thread
            # A reconcile that stops its own controller cannot wait for itself to finish.
            on_worker = threading.current_thread() in self._workers
        if event is not None:
            event.set()
        self._begin_stop()
        if not wait or on_worker:
            return self._stopped_cleanly(0)
        limit = self._shutdown_timeout + 1.0 if timeout is None else timeout
        deadline = time.monotonic() + limit
        done = self._stopped_cleanly(limit)
        if thread is not None and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            done = done and not thread.is_alive()
        return done

    def _stopped_cleanly(self, timeout: float) -> bool:
        """Wait until stopped; True if stopped and no worker thread is still running."""
        if not self.wait_for_stopped(timeout):
            return False
        with self._lock:
            workers = list(self._workers)
        current = threading.current_thread()
        return not any(w.is_alive() for w in workers if w is not current)

    # ------------------------------------------------------------------------ internals

    def _shut_down(self) -> None:
        """Stop accepting work, unregister the handlers, join the workers (bounded)."""
        self._begin_stop()
        with self._lock:
            workers = list(self._workers)
            sources = list(self._sources)
        deadline = time.monotonic() + self._shutdown_timeout
        for source in sources:
            if not source.join(deadline - time.monotonic()):
                log.warning(
                    "controller %s: the handler thread on informer %r did not stop in time",
                    self._name,
                    source.informer.name,
                )
        current = threading.current_thread()
        for worker in workers:
            if worker is not current:
                worker.join(max(0.0, deadline - time.monotonic()))
        stuck = [w.name for w in workers if w.is_alive() and w is not current]
        if stuck:
            log.warning(
                "controller %s: %d reconcile(s) still running %.3g s after the stop was "
                "requested (%s); leaving them to finish on their daemon threads",
                self._name,
                len(stuck),
                self._shutdown_timeout,
                ", ".join(stuck),
            )
        self._stopped()

    def _worker(self) -> None:
        """A worker thread: reconcile requests until the queue shuts down."""
        stats = self._metrics.new_worker()
        get, done = self._queue.get, self._queue.done
        now = self._clock.now
        reconcile = self._reconcile
        try:
            while True:
                request, shutdown = get()
                if shutdown:
                    return
                assert request is not None
                try:
                    # A str read needs no lock; once "stopping", queued requests are dropped.
                    if self._state != "running":
                        continue
                    result: object = None
                    error: BaseException | None = None
                    stats.busy = True
                    start = now()
                    try:
                        result = reconcile(request)
                    except BaseException as exc:  # sorted by the table: errors, panics
                        error = exc
                    finally:
                        stats.time.observe(now() - start)
                        stats.busy = False
                    if inspect.iscoroutine(result):
                        result.close()  # never awaited: close it so Python does not warn
                    self._after_reconcile(request, result, error, stats)
                finally:
                    done(request)
        except BaseException as exc:
            # Only an unrecovered panic reaches here (everything else is handled per request).
            self._panic_error(exc)
            with self._lock:
                event = self._stop_event
            if event is not None:
                event.set()

    def __repr__(self) -> str:
        return f"<Controller {self._name!r} {self.status()}>"


def _reconcile_func(name: str, reconciler: object) -> ReconcileFunc:
    method = getattr(reconciler, "reconcile", None)
    func: Any = method if callable(method) else reconciler
    if not callable(func):
        raise TypeError(
            f"Controller {name!r}: reconciler must have a reconcile(request) method or be a "
            f"function of the request, got {reconciler!r}"
        )
    if inspect.iscoroutinefunction(func):
        raise TypeError(
            f"Controller {name!r}: {reconciler!r} is async; Controller calls reconcile on worker "
            "threads and needs a synchronous reconcile(request) -> Result"
        )
    result: ReconcileFunc = func
    return result
