"""SharedIndexInformer: one list-watch, one indexed cache, many event handlers.

The contract (client-go's ``SharedInformer`` doc comment, which this mirrors):

* The cache is **eventually consistent** with the server. For each object, the sequence of states
  in the cache is a subsequence of the server's states: states may be skipped, never reordered.
  There is no ordering promise across objects.
* Handlers are notified **after** the store and its indexes are updated; each handler's
  notifications are sequential, and in order per object.
* Identity is the key (``namespace/name``; the name alone for cluster-scoped objects), not the UID:
  a delete and re-create under one name may surface as a single update.
* A delete carries the object's last known state, or a :class:`DeletedFinalStateUnknown` tombstone
  (``.key`` always set, ``.obj`` possibly stale) when the deletion was noticed only by a relist.
* Updates that do not change the resource version (a server repeating its ADDED burst, an
  unchanged object in a relist) are not delivered, except as resyncs.
* An event older than the cached object (by the Device API's integer revisions) is dropped and
  counted: no handler ever sees an object go back in time.
* **Resync is not a relist**: it replays the cache from memory as ``on_update(obj, obj)`` at each
  handler's period and never contacts the server. A relist (after an expired revision or a watch
  error) asks the server for the full state and delivers only differences.
* Objects handed out are shared by the cache, every handler and every lister. nvinformers never
  mutates them; GPUs are immutable, so no caller can corrupt the cache.

Threads (all named ``nvinformers-*``, all joined when :meth:`run` returns): ``run`` itself runs the
reflector, which also applies each change to the store and hands the notifications to the
handlers (the queue between them is drained inline, see :mod:`nvinformers.cache._fifo`: a wake-up
of a separate processing thread per event costs more than the processing); one thread per
handler; the reflector's watch supervisor and its stop thread (which cancels the list and watch
in flight the moment ``stop`` is set); a resync timer when resync is on. Handlers always run on
their own threads, so a slow handler never delays the store, the watch or another handler.

The informer owns its :class:`~nvinformers.cache._reflector.Reflector`, its queue (a
:class:`~nvinformers.cache._fifo.RealFIFO`), its indexer, its handlers (a
:class:`~nvinformers.cache._processor.HandlerRegistry`, client-go's ``sharedProcessor``)
and its one delta path (a :class:`~nvinformers.cache._delta_path.DeltaPath`, client-go's
``processDeltas``), through which every delta goes. The health report:
:func:`nvinformers.cache._reflector_health.informer_health`.

Locks: the delivery lock (the registry's :attr:`~HandlerRegistry.lock`) is held while a batch is
applied and distributed, and while a handler is registered on a running informer (so a late
handler sees a consistent snapshot followed by live events). ``_state_lock`` guards the
started/stopped flags. No user code runs under either, except index functions (which must be
pure and fast) and transforms (which run on the reflector thread).
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from nvinformers.cache._backoff import DEFAULT_BACKOFF, BackoffConfig
from nvinformers.cache._delta_path import DeltaPath
from nvinformers.cache._fifo import RealFIFO, TransformFunc
from nvinformers.cache._handlers import ResourceEventHandler
from nvinformers.cache._informer_metrics import register_informer, unregister_informer
from nvinformers.cache._listwatch import ListerWatcher
from nvinformers.cache._processor import (
    HandlerRegistry,
    InformerStoppedError,
    ResourceEventHandlerRegistration,
)
from nvinformers.cache._reflector import (
    DEFAULT_INITIAL_EVENTS_TIMEOUT,
    DEFAULT_MIN_WATCH_TIMEOUT,
    DEFAULT_WATCH_INACTIVITY_TIMEOUT,
    Reflector,
)
from nvinformers.cache._reflector_errors import WatchErrorHandler
from nvinformers.cache._reflector_health import (
    DEFAULT_OUTAGE_GRACE,
    InformerHealth,
    informer_health,
)
from nvinformers.cache._store import KeyedIndexer, meta_namespace_key_func, new_indexer
from nvinformers.cache._thread_safe_store import Indexers
from nvinformers.cancel import Latch
from nvinformers.clock import REAL_CLOCK, Clock

__all__ = ["SharedIndexInformer"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.informer")


class SharedIndexInformer(Generic[T]):
    """Lists and watches one resource into an indexed cache and notifies handlers.

    See the module docstring for the guarantees. Build one directly over a
    :class:`~nvinformers.cache._listwatch.ListerWatcher`, or get one from
    :class:`nvinformers.informers.SharedInformerFactory`.

    The list-watch options (``watch_inactivity_timeout``, ``min_watch_timeout``, ``backoff``,
    ``use_watch_list``, ``initial_events_timeout``, ``outage_grace``, ``clock``, ``rng``) are
    the :class:`~nvinformers.cache._reflector.Reflector`'s, documented there.

    Args:
        lw: the list-watch source.
        name: bounded identity for logs, metrics and thread names (e.g. ``"gpus"``).
        indexers: extra indexes (the ``namespace`` index is not added implicitly here; the
            factory adds it).
        key_func: the store key of an object (default ``namespace/name``).
        resync_period: default resync period of handlers, seconds (0: no resync). Resync
            replays the cache from memory; it never calls the server.
        transform: applied to every object before it is cached (see :meth:`set_transform`).
        registry: Prometheus registry for the informer's metrics (None: the default registry).
    """

    _names = itertools.count(1)

    def __init__(
        self,
        lw: ListerWatcher[T],
        *,
        name: str = "",
        indexers: Indexers | None = None,
        key_func: Callable[[Any], str] = meta_namespace_key_func,
        resync_period: float = 0.0,
        watch_inactivity_timeout: float | None = DEFAULT_WATCH_INACTIVITY_TIMEOUT,
        min_watch_timeout: float = DEFAULT_MIN_WATCH_TIMEOUT,
        backoff: BackoffConfig = DEFAULT_BACKOFF,
        use_watch_list: bool = False,
        initial_events_timeout: float | None = DEFAULT_INITIAL_EVENTS_TIMEOUT,
        transform: TransformFunc | None = None,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        registry: CollectorRegistry | None = None,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
    ) -> None:
        if resync_period < 0:
            raise ValueError(f"resync_period must be >= 0, got {resync_period}")
        self.name = name or f"informer-{next(self._names)}"
        self._key_func = key_func
        self._indexer = new_indexer(key_func, dict(indexers or {}))
        self._store = self._indexer.thread_safe_store
        self._clock = clock
        self._registry = registry
        self._handlers = HandlerRegistry(
            self.name,
            indexer=self._indexer,
            clock=clock,
            resync_period=resync_period,
            informer_synced=self.has_synced,
        )
        self._deltas: DeltaPath[T] = DeltaPath(
            self.name,
            key_func=key_func,
            store=self._store,
            handlers=self._handlers,
        )
        self._fifo = RealFIFO(transform=transform, process=self._deltas.process)
        self.reflector: Reflector[T] = Reflector(
            lw,
            self._fifo,
            name=self.name,
            watch_inactivity_timeout=watch_inactivity_timeout,
            min_watch_timeout=min_watch_timeout,
            backoff=backoff,
            use_watch_list=use_watch_list,
            initial_events_timeout=initial_events_timeout,
            outage_grace=outage_grace,
            clock=clock,
            rng=rng,
        )
        self._state_lock = threading.Lock()
        self._started = False  # guarded by _state_lock
        self._stopped = False  # guarded by _state_lock

    # ------------------------------------------------------------------------ configuration

    def set_transform(self, transform: TransformFunc | None) -> None:
        """Set the function applied to every object before it is cached.

        It runs on the reflector thread for every object, must be idempotent and must not
        mutate its argument (return a new object). If it raises, the error is logged and
        counted and the object is cached untransformed.

        Raises:
            RuntimeError: the informer has already started.
        """
        with self._state_lock:
            if self._started:
                raise RuntimeError(f"{self.name}: set_transform must be called before start")
            self._fifo.set_transform(transform)

    def set_watch_error_handler(self, handler: WatchErrorHandler | None) -> None:
        """Call ``handler(informer_name, error)`` after every failed list/watch pass.

        For visibility only: the informer retries regardless. The informer's own logging (one
        line per state change) continues.

        Raises:
            RuntimeError: the informer has already started.
        """
        with self._state_lock:
            if self._started:
                raise RuntimeError(
                    f"{self.name}: set_watch_error_handler must be called before start"
                )
            self.reflector.set_watch_error_handler(handler)

    def add_indexers(self, indexers: Indexers) -> None:
        """Add indexes, also while running: existing objects are indexed immediately.

        Raises:
            InformerStoppedError: the informer has stopped.
            IndexConflictError: an index of that name already exists.
        """
        if self.is_stopped():
            raise InformerStoppedError(f"{self.name}: cannot add indexers after stop")
        with self._handlers.lock:
            self._indexer.add_indexers(indexers)

    # ---------------------------------------------------------------------------- handlers

    def add_event_handler(
        self,
        handler: ResourceEventHandler,
        resync_period: float | None = None,
        *,
        name: str | None = None,
    ) -> ResourceEventHandlerRegistration:
        """Register ``handler``; on a running informer it first receives every cached object.

        A handler added after start gets an ``on_add(obj, is_in_initial_list=True)`` for every
        object in the cache, then live events, with nothing missed or repeated in between; its
        registration's ``has_synced()`` turns true once those adds were delivered.

        Args:
            handler: receives the notifications on its own thread.
            resync_period: this handler's resync period in seconds (None: the informer's
                default; 0: none). Periods under 1 s are raised to 1 s; on a running informer,
                periods under its resync check period are raised to it; an informer built with
                resync 0 resyncs nobody (client-go's rules).
            name: metrics label and thread name (bounded: do not use per-object names).

        Raises:
            InformerStoppedError: the informer has stopped.
        """
        with self._state_lock:
            if self._stopped:
                raise InformerStoppedError(f"{self.name}: cannot add a handler after stop")
            period = self._handlers.resync_period(resync_period, self._started)
        return self._handlers.add(handler, period, name)

    def remove_event_handler(self, registration: ResourceEventHandlerRegistration) -> None:
        """Stop delivering to the handler. Idempotent; does not block.

        Queued notifications are dropped; a call in progress finishes on the handler's thread.
        Use :meth:`shut_down_event_handler` to also wait for it.
        """
        self._handlers.remove(registration)

    def shut_down_event_handler(
        self, registration: ResourceEventHandlerRegistration, timeout: float | None = None
    ) -> bool:
        """Remove the handler and wait until its thread has ended; True if it did in time.

        Must not be called from inside the handler itself (it cannot wait for itself).
        """
        return self._handlers.remove(registration).join(timeout)

    def handlers(self) -> tuple[ResourceEventHandlerRegistration, ...]:
        """The registered handlers."""
        return tuple(ResourceEventHandlerRegistration(x) for x in self._handlers.listeners)

    def has_synced(self) -> bool:
        """True once the first full list has been applied to the store (resync is unrelated)."""
        return self._deltas.synced

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once the informer stopped before it synced.

        client-go's ``HasSyncedChecker().Done()``: what :mod:`nvinformers.cache._wait` waits on.
        """
        return self._deltas.sync_done

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until synced, stopped or ``timeout`` seconds passed; returns :meth:`has_synced`."""
        self._deltas.sync_done.wait(timeout)
        return self._deltas.synced

    # ------------------------------------------------------------------------------- reads

    def get_store(self) -> KeyedIndexer[T]:
        """The informer's store (an indexer). Read it; do not write to it."""
        return self._indexer

    def get_indexer(self) -> KeyedIndexer[T]:
        """The informer's indexer (for listers and index lookups)."""
        return self._indexer

    @property
    def key_func(self) -> Callable[[Any], str]:
        return self._key_func

    def last_sync_resource_version(self) -> str:
        """The last revision the reflector saw (not synchronised with the store)."""
        return self.reflector.last_sync_resource_version()

    def last_store_sync_resource_version(self) -> str:
        """The revision the store is known to be current to (lists and bookmarks applied)."""
        return self._deltas.last_store_rv

    def is_stopped(self) -> bool:
        """True once :meth:`run` has returned; a stopped informer never restarts."""
        with self._state_lock:
            return self._stopped

    @property
    def queue_depth(self) -> int:
        """Deltas received but not yet applied to the store."""
        return len(self._fifo)

    @property
    def transform_errors(self) -> int:
        return self._fifo.transform_errors

    # Counters of the delta path: changes applied by kind, events older than the cache
    # dropped, deletes of objects not cached, objects without a usable key.
    @property
    def applied(self) -> dict[str, int]:
        return self._deltas.applied

    @property
    def stale_events_dropped(self) -> int:
        return self._deltas.stale_events_dropped

    @property
    def unknown_deletes(self) -> int:
        return self._deltas.unknown_deletes

    @property
    def key_errors(self) -> int:
        return self._deltas.key_errors

    def health(self) -> InformerHealth:
        """Whether the cache is being kept current, and why not.

        Unhealthy when: not synced yet; stopped; without a working watch for ``outage_grace``
        seconds or more (server down, a hung relist or progress check, errors); or frozen: the
        watch delivered nothing while the server changed objects, as a progress check found —
        the silent hang that leaves other Python informers serving a frozen cache while still
        reporting "synced". An idle server (a progress check that changed nothing) is healthy.
        The reason states the duration. The rules live in
        :class:`~nvinformers.cache._reflector_health.ReflectorHealth`, which the metrics and the
        log lines read too.

        Thread-safety: callable from any thread; does not block.
        """
        return informer_health(
            self.reflector.health.report(), synced=self._deltas.synced, stopped=self.is_stopped()
        )

    def healthy(self) -> bool:
        """Shorthand for ``health().healthy``."""
        return self.health().healthy

    # ------------------------------------------------------------------------------- running

    def run(self, stop: threading.Event) -> None:
        """Run until ``stop`` is set, then stop every thread the informer started. Blocks.

        Running an informer twice is a logged no-op; a stopped informer cannot run again.
        """
        with self._state_lock:
            if self._stopped:
                log.warning("%s: run() called on a stopped informer; ignoring", self.name)
                return
            if self._started:
                log.warning("%s: run() called twice; ignoring", self.name)
                return
            self._started = True
        register_informer(self, self._registry)
        resync: threading.Thread | None = None
        if self._handlers.resync_check_period > 0:
            resync = threading.Thread(
                target=self._resync_timer,
                args=(stop,),
                name=f"nvinformers-resync-{self.name}",
                daemon=True,
            )
        self._handlers.start()
        if resync is not None:
            resync.start()
        try:
            self.reflector.run(stop)
        finally:
            self._fifo.close()
            if resync is not None:
                resync.join()
            with self._state_lock:
                self._stopped = True
            self._deltas.sync_done.set()  # if still unsynced: it never will be
            self._handlers.stop()
            unregister_informer(self, self._registry)

    def _resync_timer(self, stop: threading.Event) -> None:
        # client-go's reflector resync goroutine: every check period, ask the queue to resync;
        # the processing thread then replays the cache to the handlers that are due.
        period = self._handlers.resync_check_period
        while not self._clock.wait(stop, period):
            self._fifo.resync()
