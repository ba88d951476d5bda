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

Deltas: every one goes through one path, :meth:`SharedIndexInformer._process` (client-go's
``processDeltas``), and one decision, ``_decide``: add, update, skip a repeat of the cached
revision, or drop an event older than the cache.

Locks: ``_delivery_lock`` is held while a batch is applied and distributed, and while a handler is
registered on a running informer (so a late handler sees a consistent snapshot followed by live
events). ``_state_lock`` guards the started/stopped flags. No user code runs under either, except
index functions (which must be pure and fast) and transforms (which run on the reflector thread).
"""

from __future__ import annotations

import itertools
import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from prometheus_client import CollectorRegistry

from nvinformers.cache._backoff import DEFAULT_BACKOFF, BackoffConfig
from nvinformers.cache._fifo import DeltaType, RealFIFO, Replacement, TransformFunc
from nvinformers.cache._handlers import ResourceEventHandler
from nvinformers.cache._index import Indexers
from nvinformers.cache._informer_metrics import register_informer, unregister_informer
from nvinformers.cache._keys import (
    DeletedFinalStateUnknown,
    KeyFuncError,
    meta_namespace_key_func,
    resource_version_of,
)
from nvinformers.cache._listwatch import ListerWatcher
from nvinformers.cache._processor import ADD, DELETE, UPDATE, Notification, ProcessorListener
from nvinformers.cache._reflector import (
    DEFAULT_INITIAL_EVENTS_TIMEOUT,
    DEFAULT_MIN_WATCH_TIMEOUT,
    DEFAULT_WATCH_INACTIVITY_TIMEOUT,
    Reflector,
    WatchErrorHandler,
    revision_newer,
)
from nvinformers.cache._reflector_health import DEFAULT_OUTAGE_GRACE
from nvinformers.cache._store import KeyedIndexer, new_indexer
from nvinformers.cache._thread_safe_store import ThreadSafeStore
from nvinformers.cancel import Latch
from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.errors import NvInformersError
from nvinformers.meta import header_accessors

__all__ = [
    "SharedIndexInformer",
    "ResourceEventHandlerRegistration",
    "InformerHealth",
    "InformerStoppedError",
    "MINIMUM_RESYNC_PERIOD",
    "DEFAULT_OUTAGE_GRACE",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.informer")

_rv_generic = resource_version_of
_ADDED, _UPDATED, _DELETED = DeltaType.ADDED, DeltaType.UPDATED, DeltaType.DELETED
_REPLACED_ALL, _BOOKMARK, _SYNC = DeltaType.REPLACED_ALL, DeltaType.BOOKMARK, DeltaType.SYNC

#: client-go's ``minimumResyncPeriod``.
MINIMUM_RESYNC_PERIOD = 1.0


class InformerStoppedError(NvInformersError, RuntimeError):
    """The informer has stopped; it cannot be restarted or take new handlers."""


@dataclass(frozen=True, slots=True)
class InformerHealth:
    """A point-in-time health report (see :meth:`SharedIndexInformer.health`).

    Attributes:
        healthy: ``reason == "ok"``.
        reason: "ok", "not synced", "stopped", "no working watch for 6.1 s (...)", "watch
            delivered nothing for 400.2 s while the server changed 3 objects (...)", or "watch
            silent for 400.2 s (...), and the progress check due 5.0 s ago has not started".
        synced: the first list is in the cache.
        watching: a watch stream is open (it may not be working yet).
        seconds_since_last_event: since the last event or bookmark on any watch, the last list,
            or the last progress check that found the cache current (None before the first).
        seconds_down: without a working watch for this long (None while one works).
        last_error: the last error a list or watch ended with ("" before any).
    """

    healthy: bool
    reason: str
    synced: bool
    watching: bool
    seconds_since_last_event: float | None
    seconds_down: float | None
    last_error: str


class ResourceEventHandlerRegistration:
    """Returned by ``add_event_handler``; identifies the handler and reports its sync state."""

    __slots__ = ("_listener",)

    def __init__(self, listener: ProcessorListener) -> None:
        self._listener = listener

    @property
    def name(self) -> str:
        return self._listener.name

    def has_synced(self) -> bool:
        """True once the informer synced and every initial-list add reached this handler."""
        return self._listener.has_synced()

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once the handler was removed or the informer
        stopped (client-go's ``HasSyncedChecker().Done()``)."""
        return self._listener.sync_done

    @property
    def backlog(self) -> int:
        """Notifications waiting for (or being delivered to) this handler."""
        return self._listener.backlog

    @property
    def errors(self) -> int:
        """How many notifications this handler raised on."""
        return self._listener.errors


class SharedIndexInformer(Generic[T]):
    """Lists and watches one resource into an indexed cache and notifies handlers.

    See the module docstring for the guarantees. Build one directly over a
    :class:`~nvinformers.cache._listwatch.ListerWatcher`, or get one from
    :class:`nvinformers.informers.SharedInformerFactory`.

    Args:
        lw: the list-watch source.
        name: bounded identity for logs, metrics and thread names (e.g. ``"gpus"``).
        indexers: extra indexes (the ``namespace`` index is not added implicitly here; the
            factory adds it).
        key_func: the store key of an object (default ``namespace/name``).
        resync_period: default resync period of handlers, seconds (0: no resync).
        watch_inactivity_timeout: check progress with a relist when a watch has delivered
            nothing (no event, no bookmark) for this long (None: never); see :meth:`health`.
        min_watch_timeout: lower bound of the randomized server-side watch timeout.
        backoff: delays between failed list/watch attempts.
        use_watch_list: try the streaming list protocol first.
        initial_events_timeout: seconds a streaming list may take to reach its
            initial-events-end bookmark before a classic list replaces it (None: until the
            watch's own timeout).
        transform: applied to every object before it is cached (see :meth:`set_transform`).
        outage_grace: seconds without a working watch before :meth:`health` turns unhealthy;
            also how long a recovery must hold before the logs call it one (at least 2 s: a
            quiet watch proves itself only after a second).
        registry: Prometheus registry for the informer's metrics (None: the default registry).
        clock: time source; tests inject a fake one.
        rng: randomness for watch timeouts and jitter.
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
        self._indexer: KeyedIndexer[T] = new_indexer(key_func, dict(indexers or {}))
        self._store: ThreadSafeStore[T] = self._indexer.thread_safe_store
        self._fifo = RealFIFO(transform=transform, process=self._process)
        self._clock = clock
        self._registry = registry
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
        # client-go: the default resync period doubles as the resync check period.
        self._default_resync = self._clamp_resync(resync_period)
        self._resync_check_period = self._default_resync
        self._state_lock = threading.Lock()
        self._started = False  # guarded by _state_lock
        self._stopped = False  # guarded by _state_lock
        self._delivery_lock = threading.Lock()
        self._listeners: tuple[ProcessorListener, ...] = ()  # replaced under _delivery_lock
        self._handler_names = itertools.count(1)
        self._synced = False
        self._last_store_rv = ""
        # Set once synced, or once stopped unsynced (see sync_done); set outside every lock.
        self._sync_done = Latch()
        # Statistics, written by the processing thread only.
        self.applied: dict[str, int] = {"added": 0, "updated": 0, "deleted": 0}
        self.stale_events_dropped = 0
        self.unknown_deletes = 0
        self.key_errors = 0

    @staticmethod
    def _clamp_resync(period: float) -> float:
        if period <= 0:
            return 0.0
        return max(period, MINIMUM_RESYNC_PERIOD)

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
        with self._delivery_lock:
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
        period = self._default_resync if resync_period is None else resync_period
        period = self._clamp_resync(period)
        with self._state_lock:
            if self._stopped:
                raise InformerStoppedError(f"{self.name}: cannot add a handler after stop")
            started = self._started
            if period > 0:
                if self._resync_check_period == 0:
                    log.warning(
                        "%s: handler asked for resync every %.1f s, but the informer was "
                        "built without resync; it will not be resynced",
                        self.name,
                        period,
                    )
                    period = 0.0
                elif period < self._resync_check_period:
                    if started:
                        period = self._resync_check_period
                    else:
                        self._resync_check_period = period
        listener = ProcessorListener(
            handler,
            name=name or f"handler-{next(self._handler_names)}",
            informer_name=self.name,
            informer_synced=self.has_synced,
            resync_period=period,
        )
        listener.next_resync = self._clock.now() + period
        with self._delivery_lock:
            if started:
                objects = self._indexer.list()
                listener.add_many([(ADD, obj, True) for obj in objects], initial=len(objects))
            self._listeners = (*self._listeners, listener)
            if started:
                listener.start()
        listener.check_synced()  # synced already, with nothing to replay
        return ResourceEventHandlerRegistration(listener)

    def remove_event_handler(self, registration: ResourceEventHandlerRegistration) -> None:
        """Stop delivering to the handler. Idempotent; does not block.

        Queued notifications are dropped; a call in progress finishes on the handler's thread.
        Use :meth:`shut_down_event_handler` to also wait for it.
        """
        listener = registration._listener
        with self._delivery_lock:
            self._listeners = tuple(x for x in self._listeners if x is not listener)
        listener.stop()

    def shut_down_event_handler(
        self, registration: ResourceEventHandlerRegistration, timeout: float | None = None
    ) -> bool:
        """Remove the handler and wait until its thread has ended; True if it did in time.

        Must not be called from inside the handler itself (it cannot wait for itself).
        """
        self.remove_event_handler(registration)
        return registration._listener.join(timeout)

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

    def has_synced(self) -> bool:
        """True once the first full list has been applied to the store (resync is unrelated)."""
        return self._synced

    def sync_done(self) -> Latch:
        """Set once :meth:`has_synced` is True, or once the informer stopped before it synced.

        client-go's ``HasSyncedChecker().Done()``: what :mod:`nvinformers.cache._wait` waits on.
        """
        return self._sync_done

    def wait_for_sync(self, timeout: float | None = None) -> bool:
        """Block until synced, stopped or ``timeout`` seconds passed; returns :meth:`has_synced`."""
        self._sync_done.wait(timeout)
        return self._synced

    def last_sync_resource_version(self) -> str:
        """The last revision the reflector saw (not synchronised with the store)."""
        return self.reflector.last_sync_resource_version()

    def last_store_sync_resource_version(self) -> str:
        """The revision the store is known to be current to (lists and bookmarks applied)."""
        return self._last_store_rv

    def is_stopped(self) -> bool:
        """True once :meth:`run` has returned; a stopped informer never restarts."""
        with self._state_lock:
            return self._stopped

    def handlers(self) -> tuple[ResourceEventHandlerRegistration, ...]:
        """The registered handlers."""
        return tuple(ResourceEventHandlerRegistration(x) for x in self._listeners)

    @property
    def queue_depth(self) -> int:
        """Deltas received but not yet applied to the store."""
        return len(self._fifo)

    @property
    def transform_errors(self) -> int:
        return self._fifo.transform_errors

    def health(self) -> InformerHealth:
        """Whether the cache is being kept current, and why not.

        Unhealthy when: not synced yet; stopped; without a working watch for ``outage_grace``
        seconds or more — counted from the moment the last working watch ended, whether or not
        a list or re-watch is in flight (server down, a hung relist or progress check, errors);
        or frozen: the watch delivered nothing (no event, no bookmark on any watch, however
        often restarted) while the server changed objects, as a progress check found — the
        silent hang that leaves other Python informers serving a frozen cache while still
        reporting "synced". A watch silent for ``watch_inactivity_timeout`` is checked with a
        relist: one that changes nothing in the cache shows an idle server (healthy, as on a
        node where nothing happens and the server sends no bookmarks), one that changes
        objects repairs the cache and keeps health false until the next event or bookmark. The
        reason states the duration. The rules live in
        :class:`~nvinformers.cache._reflector_health.ReflectorHealth`, which the metrics and the
        log lines read too.

        Thread-safety: callable from any thread; does not block.
        """
        link = self.reflector.health.report()
        synced = self._synced
        reason = "ok"
        if self.is_stopped():
            reason = "stopped"
        elif not synced:
            reason = "not synced"
        elif link.problem is not None:
            reason = link.problem
        return InformerHealth(
            healthy=reason == "ok",
            reason=reason,
            synced=synced,
            watching=link.watching,
            seconds_since_last_event=link.seconds_since_last_event,
            seconds_down=link.seconds_down,
            last_error=link.last_error,
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
        if self._resync_check_period > 0:
            resync = threading.Thread(
                target=self._resync_timer,
                args=(stop,),
                name=f"nvinformers-resync-{self.name}",
                daemon=True,
            )
        with self._delivery_lock:
            for listener in self._listeners:
                listener.start()
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
            self._sync_done.set()  # if still unsynced: it never will be
            with self._delivery_lock:
                listeners = self._listeners
            for listener in listeners:
                listener.stop()
            for listener in listeners:
                listener.join()
            unregister_informer(self, self._registry)

    # ----------------------------------------------------------------------------- processing

    def _signal_synced(self) -> None:
        """Announce the first sync; called after ``_synced`` was set, outside the locks."""
        self._sync_done.set()
        for listener in self._listeners:
            listener.check_synced()

    def _resync_timer(self, stop: threading.Event) -> None:
        # client-go's reflector resync goroutine: every check period, ask the queue to resync;
        # the processing thread then replays the cache to the handlers that are due.
        period = self._resync_check_period
        while not self._clock.wait(stop, period):
            self._fifo.resync()

    def _key(self, obj: Any) -> str | None:
        try:
            return self._key_func(obj)
        except KeyFuncError as err:
            self.key_errors += 1
            log.error("%s: dropping an object without a usable key: %s", self.name, err)
            return None

    def _decide(
        self, dtype: DeltaType, obj: Any, old: Any, initial: bool = False, listed: bool = False
    ) -> Notification | None:
        """What one delta does to the cache: the notification to deliver, or None to skip it.

        The one place these rules live (client-go's ``processDeltas`` decides add or update by
        whether the key is cached; nvinformers adds the revision rules), for watch events and
        relisted objects alike:

        ====================================  ==========================================
        the key is ...                        then
        ====================================  ==========================================
        not cached, delta is a delete         skipped (already gone: a relist removed it)
        not cached                            add (``is_in_initial_list`` = ``initial``)
        cached at the same revision           skipped (a repeat: not a change), deletes
                                              excepted
        cached at a newer revision, from a    dropped and counted (a stale event)
        watch event
        cached, delta is a delete             delete
        cached                                update
        ====================================  ==========================================

        Revisions are compared only when both are decimal integers (see
        :func:`~nvinformers.cache._reflector.revision_newer`): opaque ones are never stale. A
        relisted object is never stale either: a relist asks for a state at least as new as
        anything seen, so an older object in it means the server's revisions went backwards (a
        restart that lost its store), and the list is the truth (the reflector logs it).

        Args:
            dtype: ADDED, UPDATED or DELETED (a relisted object counts as UPDATED).
            obj: the object the delta carries.
            old: what the cache holds under the object's key (None: nothing).
            initial: an add belongs to the first full list.
            listed: the object comes from a relist.
        """
        if old is None:
            if dtype is _DELETED:
                self.unknown_deletes += 1
                return None
            self.applied["added"] += 1
            return (ADD, obj, initial)
        cls = type(obj)
        rv_of = header_accessors(cls).resource_version
        new_rv = rv_of(obj)
        old_rv = rv_of(old) if type(old) is cls else _rv_generic(old)
        if dtype is not _DELETED and old_rv == new_rv and new_rv:
            return None
        if not listed and revision_newer(old_rv, new_rv) is True:
            self.stale_events_dropped += 1
            return None
        if dtype is _DELETED:
            self.applied["deleted"] += 1
            return (DELETE, obj, None)
        self.applied["updated"] += 1
        return (UPDATE, old, obj)

    def _process(self, batch: list[tuple[DeltaType, Any]]) -> None:
        """Apply a batch of deltas to the store, then queue the notifications to every handler.

        The one delta path (client-go's ``processDeltas`` over a RealFIFO batch): every add,
        update and delete is decided by :meth:`_decide`; a relist is diffed against the store by
        :meth:`_replace`, which decides each listed object the same way. Two branches only skip
        bookkeeping: a batch of one event (what an event storm delivers, one by one, inline) is
        committed at once, and a relist into an empty store (the initial sync) is loaded in bulk
        by :meth:`_load`, every object being new.

        A relist that carries ``on_applied`` (the reflector's progress check) is told, once
        applied, how many objects it added, updated or deleted.

        Runs on the thread that pushed into the queue (the reflector's, or the resync timer's),
        one batch at a time, in order (see :class:`RealFIFO`).
        """
        store: ThreadSafeStore[Any] = self._store
        if len(batch) == 1:
            dtype, obj = batch[0]
            if dtype is _UPDATED or dtype is _ADDED or dtype is _DELETED:
                try:
                    key = self._key_func(obj)
                except KeyFuncError as err:
                    self.key_errors += 1
                    log.error("%s: dropping an object without a usable key: %s", self.name, err)
                    return
                # No store lock for this read: only this thread writes to the store (the queue
                # has a single drainer), and a dict read is atomic.
                note = self._decide(dtype, obj, store._items.get(key))
                if note is None:
                    return
                notes = (note,)
                lock = self._delivery_lock
                lock.acquire()
                try:
                    if dtype is _DELETED:
                        store.delete(key)
                    else:
                        store.add(key, obj)
                    for listener in self._listeners:
                        listener.add_many(notes)
                finally:
                    lock.release()
                return
            if dtype is _REPLACED_ALL and not len(store):
                self._load(obj)
                return
        key_of = self._key
        changes: list[tuple[str, Any]] = []
        pending: dict[str, Any] = {}  # key → object or None (deleted), overlays the store
        notes_list: list[Notification] = []
        # Relists that asked to be told what they changed (the reflector's progress check).
        reports: list[tuple[Callable[[int], None], int]] = []
        became_synced = False
        resync = False
        initial = 0
        for dtype, obj in batch:
            if dtype is _UPDATED or dtype is _ADDED or dtype is _DELETED:
                okey = key_of(obj)
                if okey is None:
                    continue
                old = pending[okey] if okey in pending else store.get(okey)
                note = self._decide(dtype, obj, old)
                if note is None:
                    continue
                notes_list.append(note)
                value = None if dtype is _DELETED else obj
                pending[okey] = value
                changes.append((okey, value))
            elif dtype is _REPLACED_ALL:
                first = not self._synced and not became_synced
                before = len(notes_list)
                n_initial = self._replace(obj, pending, changes, notes_list, first)
                if first:
                    became_synced = True
                    initial += n_initial
                if obj.on_applied is not None:
                    # Every add, update and delete of the relist is one notification.
                    reports.append((obj.on_applied, len(notes_list) - before))
            elif dtype is _BOOKMARK:
                self._last_store_rv = obj
            elif dtype is _SYNC:
                resync = True
        if changes or notes_list or became_synced:
            with self._delivery_lock:
                if changes:
                    store.apply(changes)
                if notes_list:
                    for listener in self._listeners:
                        listener.add_many(notes_list, initial)
                if became_synced:
                    self._synced = True
        if became_synced:
            self._signal_synced()
        for report, changed in reports:  # once applied, outside the lock
            report(changed)
        if resync:
            self._resync_due_listeners()

    def _load(self, replacement: Replacement[Any]) -> None:
        """:meth:`_process` for a list into an empty store (the initial sync), in bulk.

        Every object is an add (:meth:`_decide` with nothing cached), the first one wins on a
        duplicate key, notifications go out in list order: the outcome of the general path, with
        the store filled in one :meth:`ThreadSafeStore.replace` (indexes built outside the store
        lock) and no notification built when no handler is registered.
        """
        items: dict[str, Any] = {}
        for obj in replacement.objects:
            key = self._key(obj)
            if key is not None and key not in items:
                items[key] = obj
        initial = not self._synced
        store = self._store
        with self._delivery_lock:
            store.replace(items)
            listeners = self._listeners
            if listeners and items:
                notes: list[Notification] = [(ADD, obj, initial) for obj in items.values()]
                for listener in listeners:
                    listener.add_many(notes, len(notes) if initial else 0)
            self.applied["added"] += len(items)
            self._last_store_rv = replacement.resource_version
            if initial:
                self._synced = True
        if initial:
            self._signal_synced()
        if replacement.on_applied is not None:
            replacement.on_applied(len(items))  # into an empty store: every object is an add

    def _replace(
        self,
        replacement: Replacement[Any],
        pending: dict[str, Any],
        changes: list[tuple[str, Any]],
        notes: list[Notification],
        initial: bool,
    ) -> int:
        """Diff a relist against the store (plus this batch's pending changes); return how many
        initial-list adds it queued.

        Each listed object is decided by :meth:`_decide` as a listed update; a cached object the
        list lacks was deleted while nobody watched, and is delivered as a
        :class:`DeletedFinalStateUnknown` (client-go's ``Replace``).
        """
        current: dict[str, Any] = self._store.snapshot_items()
        for pkey, value in pending.items():
            if value is None:
                current.pop(pkey, None)
            else:
                current[pkey] = value
        added = 0
        seen: set[str] = set()
        key_of = self._key
        decide = self._decide
        for obj in replacement.objects:
            key = key_of(obj)
            if key is None or key in seen:
                continue
            seen.add(key)
            note = decide(_UPDATED, obj, current.get(key), initial, True)
            if note is None:
                continue
            if note[0] == ADD:
                added += 1
            notes.append(note)
            pending[key] = obj
            changes.append((key, obj))
        for gone, old in current.items():
            if gone not in seen:
                pending[gone] = None
                changes.append((gone, None))
                notes.append((DELETE, DeletedFinalStateUnknown(gone, old), None))
                self.applied["deleted"] += 1
        self._last_store_rv = replacement.resource_version
        return added if initial else 0

    # ------------------------------------------------------------------------------- resync

    def _resync_due_listeners(self) -> None:
        now = self._clock.now()
        due = [x for x in self._listeners if x.resync_period > 0 and now >= x.next_resync]
        if not due:
            return
        with self._delivery_lock:
            objects = self._indexer.list()
            notes: list[Notification] = [(UPDATE, obj, obj) for obj in objects]
            for listener in due:
                listener.add_many(notes)
                listener.next_resync = now + listener.resync_period
