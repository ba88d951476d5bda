"""The reconcile loop: controller-runtime's ``Controller`` over nvinformers' informers.

A :class:`Controller` watches informers, turns their events into
:class:`~nvinformers.controller.reconcile.Request` objects on a rate-limiting workqueue, and runs
``max_concurrent_reconciles`` worker threads that call the reconciler::

    def reconcile(request: Request) -> Result:
        gpu = lister.get(request.name)          # read the cache, never the socket
        ...
        return Result()

    ctl = Controller("gpu-health", reconcile, max_concurrent_reconciles=2)
    ctl.watch(factory.device().v1alpha1().gpus().informer())
    factory.start(stop)
    ctl.run(stop)                               # blocks; or ctl.start(stop) + ctl.stop()

What happens to a request (``reconcileHandler`` in controller-runtime), and the ``result`` label of
``controller_runtime_reconcile_total`` it counts:

===================================  ============================================  ===============
reconcile ...                        then                                          ``result``
===================================  ============================================  ===============
returns ``Result()``                 ``forget`` (the backoff starts over)          success
returns ``Result(requeue_after=s)``  ``forget``, then ``add_after(request, s)``    requeue_after
raises an ``Exception``              ``add_rate_limited``: per-request backoff     error
                                     (5 ms doubling to 1000 s by default)
raises a :class:`TerminalError` (or  logged, ``forget``, not retried               error
one in its ``__cause__`` chain)
returns anything but a ``Result``    a ``TypeError`` error, retried with backoff   error
raises a ``BaseException`` that is   a *panic*: see below                          error / none
not an ``Exception``
===================================  ============================================  ===============

Errors also count in ``controller_runtime_reconcile_errors_total``, terminal ones in
``controller_runtime_terminal_reconcile_errors_total``. A terminal error is recognised like Go's
``errors.Is``: the exception itself, its explicit ``__cause__`` chain (``raise X from err``), and
the members of exception groups; the implicit ``__context__`` (an exception raised while handling
another) is not followed, as Go does not follow what was not wrapped. Unlike controller-runtime,
a terminal error also forgets the request's failure history (client-go's rule: ``Forget`` when an
item is done being retried, whatever the outcome), so that the next event for that object starts
with a short backoff.

Panics. In Python, raising an ``Exception`` *is* returning an error: the worker catches it,
whatever ``recover_panic`` says, and always survives it. The Python counterpart of a Go panic is a
``BaseException`` that is not an ``Exception`` (``KeyboardInterrupt``, ``SystemExit``,
``GeneratorExit`` or a custom ``BaseException`` subclass): something meant to unwind past every
``except Exception``. It is counted in ``controller_runtime_reconcile_panics_total``. With
``recover_panic=True`` (the default, as in controller-runtime) it is then handled like an error:
logged with its traceback and retried with backoff. With ``recover_panic=False`` it is not caught:
the request is marked done, the worker thread ends, and the controller stops itself —
:meth:`Controller.run` raises :class:`ReconcilePanicError`, and a :class:`Manager` running the
controller shuts down and raises it too, as a Go controller manager exits on an unrecovered panic.

Logging (logger ``nvinformers.controller``): every reconcile error is logged at ERROR with the
controller, the request and the exception. The traceback is logged on the first failure of a run
of failures of one request; its retries (already rate-limited by the backoff) log one line each
with the retry count. Terminal errors are logged once, with the traceback, at ERROR.

Concurrency: the workqueue never hands one request to two workers at once, so the same object is
never reconciled concurrently, whatever ``max_concurrent_reconciles`` is. A request added while
it is being reconciled is reconciled again afterwards.

Starting: :meth:`Controller.run` registers the event handlers, waits until every watched
informer has synced *and* every handler registration has received the informer's initial list
(up to ``cache_sync_timeout``), then starts the workers. On timeout no worker starts and
:class:`CacheSyncTimeoutError` names what had not synced (controller-runtime: "timed out waiting
for cache to be synced").

Stopping: setting the stop event (or :meth:`Controller.stop`) stops the controller gracefully:
the handlers are unregistered, the queue is shut down (delayed retries are dropped), reconciles in
progress finish, and requests still queued are dropped without being reconciled — a reconcile
cannot be cancelled in Python, so draining a long backlog could take arbitrarily long; the
requests are level-based and the next start rediscovers the state from the informers' initial
list. Workers are joined for up to ``shutdown_timeout`` seconds; a reconcile still running after
that is reported and left to finish on its (daemon) thread.
"""

from __future__ import annotations

import inspect
import logging
import threading
import time
from collections.abc import Callable, Iterable
from typing import TYPE_CHECKING, Any, Protocol, cast, runtime_checkable

from nvinformers.cache.keys import DeletedFinalStateUnknown, KeyFunc, meta_namespace_key_func
from nvinformers.cache.log_throttle import LogThrottle
from nvinformers.clock import Clock, RealClock
from nvinformers.controller.event import CreateEvent, DeleteEvent, UpdateEvent
from nvinformers.controller.handler import (
    EnqueueRequestForObject,
    EventHandler,
    SkipEventError,
    check_event_handler,
)
from nvinformers.controller.metrics import (
    ERROR,
    REQUEUE_AFTER,
    SUCCESS,
    ControllerMetrics,
    WorkerStats,
    new_controller_metrics,
)
from nvinformers.controller.predicates import Predicate, check_predicates
from nvinformers.controller.reconcile import (
    Reconciler,
    Request,
    Result,
    is_terminal_error,
)
from nvinformers.workqueue import RateLimiter, RateLimitingQueue

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nvinformers.cache.shared_informer import (
        ResourceEventHandlerRegistration,
        SharedIndexInformer,
    )

__all__ = [
    "Controller",
    "CacheSyncTimeoutError",
    "ReconcilePanicError",
    "is_terminal_error",
    "DEFAULT_CACHE_SYNC_TIMEOUT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
]

log = logging.getLogger("nvinformers.controller")

#: controller-runtime's ``CacheSyncTimeout`` default (2 minutes).
DEFAULT_CACHE_SYNC_TIMEOUT = 120.0
#: controller-runtime's ``GracefulShutdownTimeout`` default (30 seconds).
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
#: Seconds between two logged handler problems of one controller (the rest are counted).
_SKIP_LOG_INTERVAL = 10.0
#: Upper bound of the pause between two checks of the caches' sync state.
_SYNC_POLL_MAX = 0.1

ReconcileFunc = Callable[[Request], Result]


class CacheSyncTimeoutError(TimeoutError):
    """The watched caches did not sync within ``cache_sync_timeout``; no worker was started."""


class ReconcilePanicError(RuntimeError):
    """A reconcile raised a non-``Exception`` ``BaseException`` with ``recover_panic=False``.

    The original exception is the ``__cause__``. The controller stopped itself.
    """


@runtime_checkable
class _HasInformer(Protocol):
    """A typed informer accessor such as ``GPUInformer`` (``.informer()``)."""

    def informer(self) -> SharedIndexInformer[Any]: ...


class _Source:
    """One ``watch()``: an informer, predicates and a handler, registered as one informer handler.

    Implements the informer's ``ResourceEventHandler`` protocol. Its methods run on the informer's
    handler thread and only build the event, evaluate the predicates and call the event handler
    (which only adds requests to the queue): cheap, and never blocking beyond the queue's lock.
    """

    __slots__ = (
        "_controller",
        "_handler",
        "_key_func",
        "_predicates",
        "_queue",
        "informer",
        "registration",
    )

    def __init__(
        self,
        controller: Controller,
        informer: SharedIndexInformer[Any],
        handler: EventHandler,
        predicates: tuple[Predicate, ...],
    ) -> None:
        self._controller = controller
        self.informer = informer
        self._handler = handler
        self._predicates = predicates
        # The informer's key function: requests name objects as the informer's cache does
        # (GPUs by name, namespaced objects by namespace/name).
        self._key_func: KeyFunc = getattr(informer, "key_func", meta_namespace_key_func)
        self._queue = controller.queue
        self.registration: ResourceEventHandlerRegistration | None = None

    def register(self) -> None:
        """Register with the informer under a name unique on it (a metrics label)."""
        base = f"controller-{self._controller.name}"
        taken = {r.name for r in self.informer.handlers()}
        name, n = base, 1
        while name in taken:
            n += 1
            name = f"{base}-{n}"
        self.registration = self.informer.add_event_handler(self, name=name)

    def unregister(self, timeout: float) -> bool:
        """Remove the handler and wait up to ``timeout`` s for its thread; True if it ended."""
        registration = self.registration
        if registration is None:
            return True
        return self.informer.shut_down_event_handler(registration, timeout=max(0.0, timeout))

    def pending_sync(self) -> str | None:
        """Why this source is not synced yet, or None when it is."""
        informer = self.informer
        if not informer.has_synced():
            health = getattr(informer, "health", None)
            reason = health().reason if callable(health) else ""
            detail = f" ({reason})" if reason not in ("", "ok", "not synced") else ""
            return f"informer {informer.name!r} has not synced{detail}"
        registration = self.registration
        if registration is None:
            return f"handler on informer {informer.name!r} is not registered"
        if not registration.has_synced():
            return (
                f"handler {registration.name!r} has not received the initial list of informer "
                f"{informer.name!r}"
            )
        return None

    # ----------------------------------------------------- ResourceEventHandler (informer side)

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        try:
            event = CreateEvent(obj, is_in_initial_list, self._key_func)
            for predicate in self._predicates:
                if not predicate.create(event):
                    return
            self._handler.create(event, self._queue)
        except Exception as exc:
            self._controller._event_skipped(exc, "create", obj)

    def on_update(self, old: Any, new: Any) -> None:
        try:
            event = UpdateEvent(old, new, self._key_func)
            for predicate in self._predicates:
                if not predicate.update(event):
                    return
            self._handler.update(event, self._queue)
        except Exception as exc:
            self._controller._event_skipped(exc, "update", new)

    def on_delete(self, obj: Any) -> None:
        try:
            if isinstance(obj, DeletedFinalStateUnknown):
                event: DeleteEvent[Any] = DeleteEvent(obj.obj, True, obj.key, self._key_func)
            else:
                event = DeleteEvent(obj, False, "", self._key_func)
            for predicate in self._predicates:
                if not predicate.delete(event):
                    return
            self._handler.delete(event, self._queue)
        except Exception as exc:
            self._controller._event_skipped(exc, "delete", obj)


class Controller:
    """Runs a reconciler over the requests its watched informers produce.

    See the module docstring for the reconcile contract, panics, logging, starting and stopping.

    Metrics (on ``registry``): controller-runtime's ``controller_runtime_*`` series with label
    ``controller=name`` (see :mod:`nvinformers.controller.metrics`), and the workqueue's
    ``workqueue_*`` series with label ``name=name``.

    Thread-safety: every method may be called from any thread. The reconciler is called from up
    to ``max_concurrent_reconciles`` worker threads at once (never twice at once for one request),
    so it must be thread-safe when that is above 1. No library lock is held while it runs.

    A controller runs once: after it stopped, build a new one.

    Args:
        name: the controller's name: metrics label, queue name, thread and log names. Keep it
            unique in a process and bounded (not per object).
        reconciler: a :class:`~nvinformers.controller.reconcile.Reconciler` (an object with
            ``reconcile(request) -> Result``) or a plain function ``request -> Result``.
        max_concurrent_reconciles: number of worker threads (controller-runtime's default: 1).
        rate_limiter: paces retries of failed requests; default
            :func:`nvinformers.workqueue.default_controller_rate_limiter` (per request 5 ms
            doubling to 1000 s, overall 10 retries/s with bursts of 100).
        cache_sync_timeout: seconds to wait for the caches to sync before giving up (real time,
            whatever ``clock`` is).
        shutdown_timeout: seconds a stop waits for reconciles in progress.
        registry: the Prometheus registry for the metrics (default: the global one).
        clock: the workqueue's clock (delays of ``requeue_after`` and retries) and the clock
            that times reconciles; tests pass a :class:`nvinformers.clock.FakeClock`.
        recover_panic: what to do when a reconcile raises a ``BaseException`` that is not an
            ``Exception`` (see "Panics" in the module docstring).

    Raises:
        TypeError: ``reconciler`` is neither a reconciler nor a function, or is ``async``.
        ValueError: an option is out of range, or the registry already has clashing metrics.
    """

    def __init__(
        self,
        name: str,
        reconciler: Reconciler | ReconcileFunc,
        *,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Request] | None = None,
        cache_sync_timeout: float = DEFAULT_CACHE_SYNC_TIMEOUT,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
        recover_panic: bool = True,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ValueError(f"Controller: name must be a non-empty string, got {name!r}")
        if (
            isinstance(max_concurrent_reconciles, bool)
            or not isinstance(max_concurrent_reconciles, int)
            or max_concurrent_reconciles < 1
        ):
            raise ValueError(
                f"Controller {name!r}: max_concurrent_reconciles must be an int >= 1, "
                f"got {max_concurrent_reconciles!r}"
            )
        if not cache_sync_timeout > 0:
            raise ValueError(
                f"Controller {name!r}: cache_sync_timeout must be > 0 seconds, "
                f"got {cache_sync_timeout!r}"
            )
        if not shutdown_timeout >= 0:
            raise ValueError(
                f"Controller {name!r}: shutdown_timeout must be >= 0 seconds, "
                f"got {shutdown_timeout!r}"
            )
        self._name = name
        self._reconcile = _reconcile_func(name, reconciler)
        self._max_concurrent = max_concurrent_reconciles
        self._cache_sync_timeout = float(cache_sync_timeout)
        self._shutdown_timeout = float(shutdown_timeout)
        self._recover_panic = recover_panic
        self._clock: Clock = RealClock() if clock is None else clock
        self._metrics: ControllerMetrics = new_controller_metrics(
            name, max_concurrent_reconciles=max_concurrent_reconciles, registry=registry
        )
        self._queue: RateLimitingQueue[Request] = RateLimitingQueue(
            name, rate_limiter=rate_limiter, clock=self._clock, registry=registry
        )

        # _lock guards the fields up to _error. Never held while user code runs, nor while
        # joining threads. _changed is notified on every change of _state or _error.
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        # "new" -> "starting" (handlers registered, waiting for sync) -> "running" (workers up)
        # -> "stopping" -> "stopped". "new" may go straight to "stopped" (stop() before run()).
        self._state = "new"
        self._sources: list[_Source] = []
        self._workers: list[threading.Thread] = []
        self._stop_event: threading.Event | None = None
        self._run_thread: threading.Thread | None = None
        # The error that ended run(): a sync timeout or an unrecovered panic (first one wins).
        self._error: BaseException | None = None

        # Read by the workers without the lock (a bool read is atomic): once True, queued
        # requests are marked done without being reconciled.
        self._stopping = False
        self._started = False  # guarded by _lock: the workers have been started

        self._skip_log = LogThrottle(_SKIP_LOG_INTERVAL)

    # -------------------------------------------------------------------------- properties

    @property
    def name(self) -> str:
        """The controller's name."""
        return self._name

    @property
    def queue(self) -> RateLimitingQueue[Request]:
        """The controller's workqueue (tests and custom sources: ``queue.add(Request(...))``)."""
        return self._queue

    @property
    def metrics(self) -> ControllerMetrics:
        """The controller's metrics state (read it through the registry in production)."""
        return self._metrics

    @property
    def max_concurrent_reconciles(self) -> int:
        """The number of worker threads."""
        return self._max_concurrent

    @property
    def started(self) -> bool:
        """True while the workers run: caches synced, not stopping."""
        with self._lock:
            return self._state == "running"

    def status(self) -> str:
        """A one-line state: ``new``, ``waiting for caches to sync: ...``, ``running``,
        ``stopping``, ``stopped`` or ``failed: <error>``."""
        with self._lock:
            state, error = self._state, self._error
            sources = list(self._sources)
        if error is not None:
            return f"failed: {error}"
        if state == "starting":
            pending = [p for p in (s.pending_sync() for s in sources) if p is not None]
            return "waiting for caches to sync: " + "; ".join(pending) if pending else "starting"
        return state

    def error(self) -> BaseException | None:
        """The error that stopped the controller (sync timeout, unrecovered panic), if any."""
        with self._lock:
            return self._error

    def wait_for_started(self, timeout: float | None = None) -> bool:
        """Block until the workers have started (the caches synced).

        Returns:
            True once started; False if ``timeout`` passed first or the controller stopped
            (or failed) without starting its workers.
        """
        with self._changed:
            self._changed.wait_for(lambda: self._started or self._state == "stopped", timeout)
            return self._started

    def wait_for_stopped(self, timeout: float | None = None) -> bool:
        """Block until the controller has shut down (after a stop or a failure)."""
        with self._changed:
            return self._changed.wait_for(lambda: self._state == "stopped", timeout)

    def _set_state_locked(self, state: str) -> None:
        self._state = state
        self._changed.notify_all()

    # ------------------------------------------------------------------------------ watch

    def watch(
        self,
        informer: SharedIndexInformer[Any] | _HasInformer,
        handler: EventHandler | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> None:
        """Turn ``informer``'s events into requests for this controller.

        Events pass through ``predicates`` (all must accept), then ``handler`` adds requests
        to the queue; the default handler, :func:`~nvinformers.controller.handler.
        enqueue_request_for_object`, requests the object's own key (the informer's
        ``key_func``: GPUs by name). Call it before :meth:`start` / :meth:`run`: the handler
        is registered when the controller starts, and the controller waits for it to receive
        the informer's initial list before starting its workers. Called on a running
        controller, the handler is registered at once (controller-runtime starts such a source
        immediately, without waiting for it to sync).

        Args:
            informer: a :class:`~nvinformers.cache.SharedIndexInformer`, or a typed accessor
                with an ``informer()`` method (``factory.device().v1alpha1().gpus()``).
            handler: the event handler (default: enqueue the object's key).
            predicates: event filters (see :mod:`nvinformers.controller.predicates`).

        Raises:
            TypeError: ``informer``, ``handler`` or a predicate has the wrong type.
            RuntimeError: the controller is stopping or stopped.
        """
        source = _Source(
            self,
            _as_informer(informer),
            EnqueueRequestForObject() if handler is None else check_event_handler(handler),
            check_predicates(predicates),
        )
        with self._lock:
            if self._state in ("stopping", "stopped"):
                raise RuntimeError(f"controller {self._name!r}: cannot watch after stop")
            self._sources.append(source)
            if self._state != "new":
                source.register()

    # ---------------------------------------------------------------------------- running

    def run(self, stop: threading.Event) -> None:
        """Run the controller until ``stop`` is set. Blocks.

        Registers the handlers, waits for the caches (see the module docstring), starts the
        workers, waits for ``stop``, then stops gracefully. The controller may set ``stop``
        itself (:meth:`stop`, or an unrecovered panic): give it an event of its own if other
        components must keep running.

        Raises:
            RuntimeError: the controller was already started or stopped.
            CacheSyncTimeoutError: the caches did not sync within ``cache_sync_timeout``.
            ReconcilePanicError: a reconcile panicked with ``recover_panic=False``.
            InformerStoppedError: a watched informer had already stopped.
        """
        self._claim_start(stop)
        self._run_claimed(stop)

    def start(
        self,
        stop: threading.Event | None = None,
        *,
        on_error: Callable[[BaseException], None] | None = None,
    ) -> threading.Event:
        """Run the controller on a thread of its own (``nvinformers-controller-<name>``).

        Does not block: the thread waits for the caches, then starts the workers (see
        :meth:`wait_for_started`). Errors that end the run (sync timeout, unrecovered panic)
        are logged, kept in :meth:`error` and passed to ``on_error`` (called on the
        controller's thread; the :class:`~nvinformers.controller.manager.Manager` uses it to
        shut down).

        Args:
            stop: stops the controller when set; default: a new event (use :meth:`stop`).
            on_error: called with the error that ended the run, if any.

        Returns:
            The stop event in use.

        Raises:
            RuntimeError: the controller was already started or stopped.
        """
        event = threading.Event() if stop is None else stop
        self._claim_start(event)
        thread = threading.Thread(
            target=self._run_in_thread,
            args=(event, on_error),
            name=f"nvinformers-controller-{self._name}",
            daemon=True,
        )
        with self._lock:
            self._run_thread = thread
        thread.start()
        return event

    def _claim_start(self, stop: threading.Event) -> None:
        """Move from "new" to "starting" (once), remembering the stop event."""
        with self._lock:
            if self._state != "new":
                raise RuntimeError(
                    f"controller {self._name!r} was started more than once (state "
                    f"{self._state!r}); a controller runs once"
                )
            self._set_state_locked("starting")
            self._stop_event = stop

    def _run_in_thread(
        self, stop: threading.Event, on_error: Callable[[BaseException], None] | None
    ) -> None:
        try:
            self._run_claimed(stop)
        except BaseException as exc:
            # Already logged where it happened; this is the thread's whole body, so nothing
            # else would see it but on_error and error().
            if on_error is not None:
                try:
                    on_error(exc)
                except Exception:
                    log.exception("controller %s: on_error callback failed", self._name)

    def _run_claimed(self, stop: threading.Event) -> None:
        """The body of :meth:`run` once the start was claimed."""
        try:
            with self._lock:
                sources = list(self._sources)
                try:
                    for source in sources:
                        source.register()
                except Exception as exc:
                    self._error = exc
                    raise
            log.info(
                "controller %s: starting; waiting for %d source(s) to sync",
                self._name,
                len(sources),
            )
            if not self._wait_for_sync(stop):
                log.info("controller %s: stopped before the caches synced", self._name)
                return
            with self._lock:
                if stop.is_set() or self._state != "starting":
                    return
                for index in range(self._max_concurrent):
                    worker = threading.Thread(
                        target=self._worker,
                        name=f"nvinformers-controller-{self._name}-worker-{index}",
                        daemon=True,  # a hung reconcile must not block interpreter exit
                    )
                    self._workers.append(worker)
                    worker.start()
                self._started = True
                self._set_state_locked("running")
            log.info(
                "controller %s: caches synced; started %d worker(s)",
                self._name,
                self._max_concurrent,
            )
            stop.wait()
        finally:
            self._shut_down()
        with self._lock:
            error = self._error
        if isinstance(error, ReconcilePanicError):
            raise error

    def stop(self, timeout: float | None = None, *, wait: bool = True) -> bool:
        """Stop the controller gracefully (see the module docstring) and wait for it.

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
            never_started = self._state == "new"
            if never_started:
                self._stopping = True
                self._set_state_locked("stopped")
            thread = self._run_thread
            # A reconcile that stops its own controller cannot wait for itself to finish.
            on_worker = threading.current_thread() in self._workers
        if never_started:
            self._queue.shut_down()
            return True
        if event is not None:
            event.set()
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
        with self._changed:
            if not self._changed.wait_for(lambda: self._state == "stopped", timeout):
                return False
            workers = list(self._workers)
        current = threading.current_thread()
        return not any(w.is_alive() for w in workers if w is not current)

    # ------------------------------------------------------------------------ internals

    def _wait_for_sync(self, stop: threading.Event) -> bool:
        """Wait until every source synced; False if ``stop`` was set first.

        Polls with a pause doubling from 1 ms to 100 ms: fast in tests, cheap in production.

        Raises:
            CacheSyncTimeoutError: ``cache_sync_timeout`` passed first.
        """
        deadline = time.monotonic() + self._cache_sync_timeout
        pause = 0.001
        while True:
            with self._lock:
                sources = list(self._sources)
            pending = [p for p in (s.pending_sync() for s in sources) if p is not None]
            if not pending:
                return True
            if stop.is_set():
                return False
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                err = CacheSyncTimeoutError(
                    f"controller {self._name!r}: timed out after {self._cache_sync_timeout:g} s "
                    f"waiting for caches to sync: {'; '.join(pending)}"
                )
                log.error("%s; not starting workers", err)
                with self._lock:
                    self._error = err
                    self._changed.notify_all()
                raise err
            stop.wait(min(pause, remaining))
            pause = min(pause * 2, _SYNC_POLL_MAX)

    def _shut_down(self) -> None:
        """Stop accepting work, unregister the handlers, join the workers (bounded)."""
        with self._lock:
            if self._state == "stopped":
                return
            self._set_state_locked("stopping")
            self._stopping = True
            workers = list(self._workers)
            sources = list(self._sources)
        deadline = time.monotonic() + self._shutdown_timeout
        # Wakes idle workers at once; queued requests are then marked done unreconciled.
        self._queue.shut_down()
        for source in sources:
            if not source.unregister(deadline - time.monotonic()):
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
        with self._lock:
            self._set_state_locked("stopped")
        log.info("controller %s: stopped", self._name)

    def _worker(self) -> None:
        """A worker thread: reconcile requests until the queue shuts down."""
        stats = self._metrics.new_worker()
        queue = self._queue
        get, done = queue.get, queue.done
        try:
            while True:
                request, shutdown = get()
                if shutdown:
                    return
                assert request is not None
                try:
                    if not self._stopping:
                        self._reconcile_handler(request, stats)
                finally:
                    done(request)
        except BaseException as exc:
            # Only an unrecovered panic reaches here (everything else is handled per request).
            self._panicked(exc)

    def _reconcile_handler(self, request: Request, stats: WorkerStats) -> None:
        """Reconcile one request and apply the result table of the module docstring."""
        now = self._clock.now
        outcome: BaseException | None = None
        result: object = None
        stats.busy = True
        start = now()
        try:
            result = self._reconcile(request)
        except BaseException as exc:  # sorted below: errors, terminal errors, panics
            outcome = exc
        finally:
            stats.observe(now() - start)
            stats.busy = False
        queue = self._queue
        if outcome is None:
            if isinstance(result, Result):
                if result.requeue_after > 0:
                    queue.forget(request)
                    queue.add_after(request, result.requeue_after)
                    stats.results[REQUEUE_AFTER] += 1
                else:
                    queue.forget(request)
                    stats.results[SUCCESS] += 1
                return
            outcome = _bad_result(self._name, request, result)
        if isinstance(outcome, Exception):
            self._reconcile_error(request, outcome, stats)
            return
        # A BaseException that is not an Exception: a panic.
        stats.panics += 1
        if not self._recover_panic:
            raise outcome
        stats.errors += 1
        stats.results[ERROR] += 1
        queue.add_rate_limited(request)
        log.error(
            "controller %s: reconcile of %s panicked (%s); recovered, retrying with backoff",
            self._name,
            request,
            type(outcome).__name__,
            exc_info=outcome,
        )

    def _reconcile_error(self, request: Request, err: Exception, stats: WorkerStats) -> None:
        stats.errors += 1
        stats.results[ERROR] += 1
        queue = self._queue
        if is_terminal_error(err):
            stats.terminal_errors += 1
            queue.forget(request)
            log.error(
                "controller %s: reconcile of %s failed with a terminal error, not retrying: %s",
                self._name,
                request,
                err,
                exc_info=err,
            )
            return
        queue.add_rate_limited(request)
        retries = queue.num_requeues(request)
        if retries <= 1:
            log.error(
                "controller %s: reconcile of %s failed, retrying with backoff: %s",
                self._name,
                request,
                err,
                exc_info=err,
            )
        else:
            log.error(
                "controller %s: reconcile of %s failed again (retry %d): %s: %s",
                self._name,
                request,
                retries,
                type(err).__name__,
                err,
            )

    def _panicked(self, exc: BaseException) -> None:
        """An unrecovered panic ended a worker: record it and stop the controller."""
        err = ReconcilePanicError(
            f"controller {self._name!r}: a reconcile raised {type(exc).__name__}"
            f"{': ' + str(exc) if str(exc) else ''} and recover_panic is False; "
            "the controller stops"
        )
        err.__cause__ = exc
        log.critical("%s", err, exc_info=exc)
        with self._lock:
            if self._error is None:
                self._error = err
                self._changed.notify_all()
            event = self._stop_event
        if event is not None:
            event.set()

    def _event_skipped(self, exc: Exception, kind: str, obj: Any) -> None:
        """Count and (rate-limited) log an event a source could not turn into requests."""
        reason = exc.reason if isinstance(exc, SkipEventError) else "handler_error"
        self._metrics.skipped(reason)
        suppressed = self._skip_log.allow()
        if suppressed is None:
            return
        more = f" ({suppressed} more since the last report)" if suppressed else ""
        what = _describe(obj)
        if isinstance(exc, SkipEventError):
            log.warning(
                "controller %s: skipped a %s event of %s: %s%s", self._name, kind, what, exc, more
            )
        else:
            log.error(
                "controller %s: a predicate or event handler raised on a %s event of %s; the "
                "event is dropped%s",
                self._name,
                kind,
                what,
                more,
                exc_info=exc,
            )

    def __repr__(self) -> str:
        return f"<Controller {self._name!r} {self.status()}>"


def _describe(obj: Any) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        return f"tombstone {obj.key!r}"
    name = getattr(getattr(obj, "metadata", None), "name", None)
    return repr(name) if name is not None else type(obj).__name__


def _bad_result(name: str, request: Request, result: object) -> TypeError:
    if inspect.iscoroutine(result):
        result.close()  # never awaited: close it so Python does not warn about it
    return TypeError(
        f"controller {name!r}: reconcile of {request} returned {result!r} "
        f"({type(result).__name__}); it must return a nvinformers.controller.Result "
        "(Result() for success)"
    )


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


def _as_informer(source: object) -> SharedIndexInformer[Any]:
    if hasattr(source, "add_event_handler") and hasattr(source, "has_synced"):
        return cast("SharedIndexInformer[Any]", source)
    if isinstance(source, _HasInformer):
        return source.informer()
    raise TypeError(
        "watch() needs a SharedIndexInformer or a typed informer with an informer() method "
        f"(such as factory.device().v1alpha1().gpus()), got {source!r}"
    )
