"""The controller core both drivers share (controller-runtime's ``pkg/internal/controller``).

:class:`ControllerCore` holds a controller's options, workqueue, watches
(:class:`~nvinformers.controller._source.InformerSource`), metrics, lifecycle and what follows a
reconcile; its drivers add only how reconciles are called: :class:`~nvinformers.controller.
Controller` (worker threads) and :class:`~nvinformers.aio.AsyncController` (worker tasks).

Lifecycle, one state machine (:data:`TRANSITIONS`): ``new → starting → running → stopping →
stopped``; ``starting → stopping`` when stopped while waiting for the caches, ``new → stopped``
when stopped before it started. A controller runs once.

Starting: the watches are registered (outside every lock), then the driver waits with
:class:`~nvinformers.cache._wait.SyncWait` until every watched informer has synced and every
registration has received the initial list, up to ``cache_sync_timeout``. On timeout (or when a
watched informer stops first) no worker starts: :class:`~nvinformers.errors.
CacheSyncTimeoutError` names what had not synced. A watch added to a controller already starting
or running is registered at once and not waited for (as controller-runtime starts such a source).

Stopping: the handlers are unregistered, the queue is shut down (delayed retries are dropped),
reconciles in progress finish (up to ``shutdown_timeout``) and requests still queued are dropped:
a Python reconcile cannot be cancelled, so draining a backlog could take arbitrarily long, and
requests are level-based: the next start rediscovers the state from the informers' initial list.

After a reconcile, :func:`~nvinformers.controller._reconcile.judge` (the table) decides; the core
applies the verdict to the queue and the worker's :class:`~nvinformers.controller._metrics.
WorkerStats`, and logs (logger ``nvinformers.controller``) every error at ERROR: with the
traceback on the first failure of one request and for terminal errors, one line per retry after
that (retries are already rate-limited).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any, Final, Generic, TypeVar

from nvinformers.cache import DeletedFinalStateUnknown
from nvinformers.cache._processor import LogThrottle
from nvinformers.cache._wait import SyncWait
from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.controller._metrics import (
    RESULT_LABELS,
    ControllerMetrics,
    WorkerStats,
    new_controller_metrics,
)
from nvinformers.controller._reconcile import Request, Verdict, judge
from nvinformers.controller._source import InformerSource
from nvinformers.controller.handler import EventHandler, SkipEventError
from nvinformers.controller.predicates import Predicate
from nvinformers.errors import NvInformersError
from nvinformers.workqueue import RateLimiter, RateLimitingQueue

if TYPE_CHECKING:
    from prometheus_client import CollectorRegistry

    from nvinformers.cache import SharedIndexInformer
    from nvinformers.controller._source import HasInformer

__all__ = [
    "ControllerCore",
    "CacheSyncTimeoutError",
    "ReconcilePanicError",
    "TRANSITIONS",
    "DEFAULT_CACHE_SYNC_TIMEOUT",
    "DEFAULT_SHUTDOWN_TIMEOUT",
]

log = logging.getLogger("nvinformers.controller")

R = TypeVar("R")

#: controller-runtime's ``CacheSyncTimeout`` default (2 minutes).
DEFAULT_CACHE_SYNC_TIMEOUT = 120.0
#: controller-runtime's ``GracefulShutdownTimeout`` default (30 seconds).
DEFAULT_SHUTDOWN_TIMEOUT = 30.0
#: Seconds between two logged handler problems of one controller (the rest are counted).
_SKIP_LOG_INTERVAL = 10.0

#: The lifecycle: state -> the states it may move to.
TRANSITIONS: Final[dict[str, frozenset[str]]] = {
    "new": frozenset({"starting", "stopped"}),
    "starting": frozenset({"running", "stopping"}),
    "running": frozenset({"stopping"}),
    "stopping": frozenset({"stopped"}),
    "stopped": frozenset(),
}

_RESULT_INDEX: Final = {label: i for i, label in enumerate(RESULT_LABELS)}


class CacheSyncTimeoutError(NvInformersError, TimeoutError):
    """A controller's caches did not sync within ``cache_sync_timeout``, or a watched informer
    stopped before it synced; no worker was started. The message names what had not synced."""


class ReconcilePanicError(NvInformersError, RuntimeError):
    """A reconcile raised a non-``Exception`` ``BaseException`` with ``recover_panic=False``.

    The original exception is the ``__cause__``. The controller stopped itself.
    """


class ControllerCore(Generic[R]):
    """What both controller drivers share (see the module docstring); ``R`` is the type of
    reconciler the driver runs.

    Thread-safety: every method may be called from any thread (the asyncio driver calls them on
    its loop: none blocks beyond ``_lock``). ``_lock`` guards ``_state``, ``_sources``,
    ``_error`` and ``_sync``; it is never held while user code runs, nor while a thread is
    joined. ``_changed`` is notified on every change of ``_state`` or ``_error``.

    Args:
        name: metrics label, queue, thread, task and log name; unique in a process, bounded.
        reconciler: what the driver calls (see the driver).
        max_concurrent_reconciles: number of workers (controller-runtime's default: 1).
        rate_limiter: paces retries of failed requests; default
            :func:`nvinformers.workqueue.default_controller_rate_limiter` (per request 5 ms
            doubling to 1000 s, overall 10 retries/s with bursts of 100).
        cache_sync_timeout: seconds to wait for the caches to sync before giving up (real time,
            whatever ``clock`` is).
        shutdown_timeout: seconds a stop waits for reconciles in progress.
        registry: the Prometheus registry for the metrics (default: the global one).
        clock: the workqueue's clock (delays of ``requeue_after`` and retries) and the clock that
            times reconciles; tests pass a :class:`nvinformers.clock.FakeClock`.
        recover_panic: see "Panics" in :mod:`nvinformers.controller._reconcile`.

    Raises:
        TypeError: the driver cannot run ``reconciler``.
        ValueError: an option is out of range, or the registry already has clashing metrics.
    """

    def __init__(
        self,
        name: str,
        reconciler: R,
        *,
        max_concurrent_reconciles: int = 1,
        rate_limiter: RateLimiter[Request] | None = None,
        cache_sync_timeout: float = DEFAULT_CACHE_SYNC_TIMEOUT,
        shutdown_timeout: float = DEFAULT_SHUTDOWN_TIMEOUT,
        registry: CollectorRegistry | None = None,
        clock: Clock | None = None,
        recover_panic: bool = True,
    ) -> None:
        driver = type(self).__name__
        if not isinstance(name, str) or not name:
            raise ValueError(f"{driver}: name must be a non-empty string, got {name!r}")
        if (
            isinstance(max_concurrent_reconciles, bool)
            or not isinstance(max_concurrent_reconciles, int)
            or max_concurrent_reconciles < 1
        ):
            raise ValueError(
                f"{driver} {name!r}: max_concurrent_reconciles must be an int >= 1, "
                f"got {max_concurrent_reconciles!r}"
            )
        if not cache_sync_timeout > 0:
            raise ValueError(
                f"{driver} {name!r}: cache_sync_timeout must be > 0 seconds, "
                f"got {cache_sync_timeout!r}"
            )
        if not shutdown_timeout >= 0:
            raise ValueError(
                f"{driver} {name!r}: shutdown_timeout must be >= 0 seconds, "
                f"got {shutdown_timeout!r}"
            )
        self._name = name
        self._max_concurrent = max_concurrent_reconciles
        self._cache_sync_timeout = float(cache_sync_timeout)
        self._shutdown_timeout = float(shutdown_timeout)
        self._recover_panic = recover_panic
        self._clock: Clock = REAL_CLOCK if clock is None else clock
        self._metrics: ControllerMetrics = new_controller_metrics(
            name, max_concurrent_reconciles=max_concurrent_reconciles, registry=registry
        )
        self._queue: RateLimitingQueue[Request] = RateLimitingQueue(
            name, rate_limiter=rate_limiter, clock=self._clock, registry=registry
        )
        self._lock = threading.Lock()
        self._changed = threading.Condition(self._lock)
        self._state = "new"
        self._sources: list[InformerSource] = []
        # The error that ended the run: a sync failure or an unrecovered panic (first one wins).
        self._error: BaseException | None = None
        self._sync: SyncWait | None = None  # while starting: the wait for the caches
        self._skip_log = LogThrottle(_SKIP_LOG_INTERVAL)
        self._init_driver(reconciler)

    def _init_driver(self, reconciler: R) -> None:
        """The driver's own set-up: check and keep ``reconciler``, create its fields.

        Raises:
            TypeError: the driver cannot run ``reconciler``.
        """
        raise NotImplementedError

    # -------------------------------------------------------------------------- properties

    @property
    def name(self) -> str:
        """The controller's name."""
        return self._name

    @property
    def metrics(self) -> ControllerMetrics:
        """The controller's metrics state (read it through the registry in production)."""
        return self._metrics

    @property
    def max_concurrent_reconciles(self) -> int:
        """The number of workers."""
        return self._max_concurrent

    @property
    def started(self) -> bool:
        """True while the workers run: caches synced, not stopping."""
        with self._lock:
            return self._state == "running"

    @property
    def stopping(self) -> bool:
        """True once the controller is stopping or stopped."""
        with self._lock:
            return self._state in ("stopping", "stopped")

    def status(self) -> str:
        """A one-line state: ``new``, ``waiting for caches to sync: ...``, ``running``,
        ``stopping``, ``stopped`` or ``failed: <error>``."""
        with self._lock:
            state, error = self._state, self._error
            sources = list(self._sources)
        if error is not None:
            return f"failed: {error}"
        if state == "starting":
            pending = _pending(sources)
            return "waiting for caches to sync: " + "; ".join(pending) if pending else "starting"
        return state

    def error(self) -> BaseException | None:
        """The error that stopped the controller (sync failure, unrecovered panic), if any."""
        with self._lock:
            return self._error

    # ------------------------------------------------------------------------------ watch

    def watch(
        self,
        informer: SharedIndexInformer[Any] | HasInformer,
        handler: EventHandler | None = None,
        predicates: Iterable[Predicate] = (),
    ) -> None:
        """Turn ``informer``'s events into requests for this controller.

        Events pass through ``predicates`` (all must accept), then ``handler`` adds requests to
        the queue; the default handler, :func:`~nvinformers.controller.handler.
        enqueue_request_for_object`, requests the object's own key (the informer's ``key_func``:
        GPUs by name); :func:`~nvinformers.controller.handler.enqueue_mapped` maps objects to
        other requests. Call it before starting: the handler is registered when the controller
        starts, and the controller waits for it to receive the informer's initial list before
        starting its workers. On a controller already starting or running, the handler is
        registered at once, and not waited for.

        Args:
            informer: a :class:`~nvinformers.cache.SharedIndexInformer`, or a typed accessor
                with an ``informer()`` method (``factory.device().v1alpha1().gpus()``).
            handler: the event handler (default: enqueue the object's key).
            predicates: event filters (see :mod:`nvinformers.controller.predicates`).

        Raises:
            TypeError: ``informer``, ``handler`` or a predicate has the wrong type.
            RuntimeError: the controller is stopping or stopped.
            InformerStoppedError: the controller runs and the informer has stopped.
        """
        source = InformerSource(informer, handler, predicates)
        with self._lock:
            if self._state in ("stopping", "stopped"):
                raise RuntimeError(f"controller {self._name!r}: cannot watch after stop")
            self._sources.append(source)
            running = self._state != "new"
        if running:
            source.start(self._name, self._queue, self._event_skipped)

    # ------------------------------------------------------------------------- lifecycle

    def _set_state_locked(self, state: str) -> None:
        if state not in TRANSITIONS[self._state]:
            raise RuntimeError(
                f"controller {self._name!r}: cannot go from {self._state} to {state}"
            )
        self._state = state
        self._changed.notify_all()

    def _claim_start(self) -> list[InformerSource]:
        """new -> starting (once); return the watches to start.

        Raises:
            RuntimeError: the controller was already started or stopped.
        """
        with self._lock:
            if self._state != "new":
                raise RuntimeError(
                    f"controller {self._name!r} was started more than once (state "
                    f"{self._state!r}); a controller runs once"
                )
            self._set_state_locked("starting")
            # Taken with the state change: a watch() from now on registers itself.
            return list(self._sources)

    def _start_sources(self, sources: list[InformerSource]) -> SyncWait:
        """Register ``sources`` (outside the lock) and return the wait for their sync.

        The caller closes the wait. A stop while starting interrupts it.

        Raises:
            InformerStoppedError: a watched informer had already stopped (kept in ``error()``).
        """
        log.info(
            "controller %s: starting; waiting for %d source(s) to sync", self._name, len(sources)
        )
        try:
            for source in sources:
                source.start(self._name, self._queue, self._event_skipped)
        except Exception as exc:
            self._fail(exc)
            raise
        sync = SyncWait(item for source in sources for item in source.sync_items())
        with self._lock:
            self._sync = sync
            interrupted = self._state != "starting"
        if interrupted:
            sync.interrupt()
        return sync

    def _synced(
        self, sync: SyncWait, sources: list[InformerSource], synced: bool, stopped: bool
    ) -> bool:
        """After ``sync`` returned ``synced``: True to start the workers, False when stopping
        (``stopped``: the driver saw its own stop request).

        Raises:
            CacheSyncTimeoutError: the caches did not sync in time, or an informer gave up.
        """
        with self._lock:
            self._sync = None
            stopping = stopped or self._state != "starting"
        if synced and not stopping:
            return True
        if stopping:
            log.info("controller %s: stopped before the caches synced", self._name)
            return False
        pending = "; ".join(_pending(sources)) or "a source gave up"
        if sync.outcome() is False:
            message = f"gave up waiting for caches to sync: {pending}"
        else:
            message = (
                f"timed out after {self._cache_sync_timeout:g} s waiting for caches to sync: "
                f"{pending}"
            )
        err = CacheSyncTimeoutError(f"controller {self._name!r}: {message}")
        log.error("%s; not starting workers", err)
        self._fail(err)
        raise err

    def _run_locked(self) -> bool:
        """starting -> running, if nothing stopped the start. Caller holds ``_lock``."""
        if self._state != "starting":
            return False
        self._set_state_locked("running")
        return True

    def _begin_stop(self) -> bool:
        """-> stopping (-> stopped if never started); interrupt the start, shut the queue down.

        Does not block: the driver then waits for its workers and joins the watches.

        Returns:
            True for the first caller; False if already stopping or stopped.
        """
        with self._lock:
            if self._state in ("stopping", "stopped"):
                return False
            self._set_state_locked("stopped" if self._state == "new" else "stopping")
            sync = self._sync
        if sync is not None:
            sync.interrupt()
        # Wakes idle workers at once; requests still queued are then marked done unreconciled
        # (the workers reconcile only while the state is "running").
        self._queue.shut_down()
        return True

    def _stopped(self) -> None:
        """stopping -> stopped."""
        with self._lock:
            if self._state == "stopping":
                self._set_state_locked("stopped")
        log.info("controller %s: stopped", self._name)

    def _fail(self, error: BaseException) -> None:
        """Record the error that ends the run (the first one wins)."""
        with self._lock:
            if self._error is None:
                self._error = error
                self._changed.notify_all()

    # -------------------------------------------------------------------- after a reconcile

    def _after_reconcile(
        self, request: Request, result: object, error: BaseException | None, stats: WorkerStats
    ) -> None:
        """Apply the table to one reconcile's outcome: queue, metrics, log.

        Raises:
            BaseException: an unrecovered panic, re-raised for the driver to stop on.
        """
        verdict = judge(result, error, recover_panic=self._recover_panic)
        if verdict.panic:
            stats.panics += 1
        if verdict.reraise:
            raise verdict.error  # type: ignore[misc]  # set on every panic
        stats.results[_RESULT_INDEX[verdict.result]] += 1
        queue = self._queue
        if verdict.forget:
            queue.forget(request)
        if verdict.requeue_after > 0:
            queue.add_after(request, verdict.requeue_after)
        if verdict.rate_limited:
            queue.add_rate_limited(request)
        if verdict.error is not None:
            stats.errors += 1
            if verdict.terminal:
                stats.terminal_errors += 1
            self._log_error(request, verdict)

    def _log_error(self, request: Request, verdict: Verdict) -> None:
        err = verdict.error
        retries = 0 if verdict.terminal or verdict.panic else self._queue.num_requeues(request)
        if verdict.terminal:
            what = f"failed with a terminal error, not retrying: {err}"
        elif verdict.panic:
            what = f"panicked ({type(err).__name__}); recovered, retrying with backoff"
        elif retries <= 1:
            what = f"failed, retrying with backoff: {err}"
        else:
            what = f"failed again (retry {retries}): {type(err).__name__}: {err}"
        trace = err if retries <= 1 else None  # the retries of one failure: one line each
        log.error("controller %s: reconcile of %s %s", self._name, request, what, exc_info=trace)

    def _panic_error(self, exc: BaseException) -> ReconcilePanicError:
        """Record an unrecovered panic as the controller's error and return it."""
        err = ReconcilePanicError(
            f"controller {self._name!r}: a reconcile raised {type(exc).__name__}"
            f"{': ' + str(exc) if str(exc) else ''} and recover_panic is False; "
            "the controller stops"
        )
        err.__cause__ = exc
        log.critical("%s", err, exc_info=exc)
        self._fail(err)
        return err

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
                self._name, kind, what, more, exc_info=exc,
            )  # fmt: skip


def _pending(sources: list[InformerSource]) -> list[str]:
    return [p for p in (s.pending_sync() for s in sources) if p is not None]


def _describe(obj: Any) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        return f"tombstone {obj.key!r}"
    name = getattr(getattr(obj, "metadata", None), "name", None)
    return repr(name) if name is not None else type(obj).__name__
