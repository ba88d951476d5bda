"""The reflector: lists, then watches, and feeds every change into a store in order.

Mirrors client-go's ``tools/cache/reflector.go``, and reads like it: :meth:`Reflector.run` is
``Run`` (list-and-watch passes under backoff until stopped), :meth:`Reflector.list_and_watch` is
``ListAndWatch`` (list, or stream-list, then watch), ``_list`` is ``list``, ``_watch`` is
``watch`` (open watches one after another until one must be abandoned) and ``_handle_watch`` is
``handleWatch`` (feed one watch's events into the store, the hot loop).

* **List, then watch.** The first list asks for resource version "0"; later relists ask for the
  last synced revision (so the cache never goes back in time), or for "" (a fresh read) after the
  server said that revision expired. The list replaces the store; the watch then starts from the
  list's revision with bookmarks requested and a timeout drawn from ``[min_watch_timeout,
  2 * min_watch_timeout)`` (5-10 minutes by default) so that a node's watchers do not all reconnect
  together.
* **What ends a watch, and what follows**: client-go's relist/re-watch table, decided in one
  place, :func:`classify` (the table: :mod:`nvinformers.cache._reflector_errors`).
* **Backoff** is client-go's: 800 ms doubling to 30 s, jitter 1.0, reset after 2 minutes without
  backing off. Every pass of list-and-watch is followed by a backoff delay, as in client-go.
* **Stopping** cancels the calls in flight at once, list and watch alike (client-go returns from
  a stopped ``ListAndWatch`` without waiting for its list): the open watch is stopped, and a
  :class:`~nvinformers.cache._listwatch.CancellableLister`'s list is cancelled. A server that
  never answers cannot hold a shutdown.
* **Progress check.** A watch that has delivered nothing, not even a bookmark, for
  ``watch_inactivity_timeout`` seconds (from its start or its last activity, whichever is later)
  is on an idle server or frozen (the silent hang that plagues Python watchers: kopf, the
  official client); the device-apiserver sends no progress bookmarks to tell them apart. So the
  supervisor stops the silent watch and the run thread relists with a consistent read
  (``resource_version=""``), cancellable and under the source's list timeout, applied to the
  store like any relist. The store, not the revision, decides (a server may advance its
  revision without changing an object: kine compacts): a list that changed nothing in the cache
  counts as a bookmark, one that changed objects repaired a frozen stream (what health makes of
  it: :mod:`nvinformers.cache._reflector_health`). Either way the watch restarts from the list's
  revision. Counted in ``stats.progress_checks`` (``current``, ``stale``, ``failed``).
* **Streaming list** (``use_watch_list=True``, KEP-3157): one watch with ``send_initial_events``;
  the ADDED burst is collected until the bookmark annotated ``k8s.io/initial-events-end``, replaces
  the store, and the same stream continues. Until then it is a list, for health as for logs. It
  falls back to a classic list, as client-go does, when the server refuses it (a bad request or
  an unknown method: classic lists from then on), when the stream fails with any error other
  than UNAVAILABLE or an expired revision (which end the pass as usual), or ends before the
  bookmark; and when the server ignores ``send_initial_events`` (the device-apiserver's memory
  storage): no bookmark within ``initial_events_timeout``, or a change before it (classic lists
  from then on).

The reflector owns its collaborators: a :class:`~nvinformers.cache._revisions.RevisionTracker`
(the last revision), an :class:`~nvinformers.cache._open_watch.OpenWatch` (the open watch, its
lock, its supervisor), :attr:`Reflector.health` (a
:class:`~nvinformers.cache._reflector_health.ReflectorHealth`, the one owner of activity, outage
and recovery state), a :class:`~nvinformers.cache._backoff.Backoff` and :attr:`Reflector.stats`.

Threads: :meth:`Reflector.run` runs in the caller's thread and starts two more, both joined before
it returns: ``nvinformers-stop-<name>`` waits for ``stop`` and fires the cancel token (Go's
``wait.ContextForChannel``), and ``nvinformers-watchdog-<name>``, the supervisor, sleeps until the
next deadline (a silent watch to stop for a progress check, a streaming list past its
``initial_events_timeout``, or a change of health that time alone brings) and is woken when a
new, earlier one appears. Lists, progress checks included, run on the caller's thread. No thread
is started per watch, per check or per outage.
"""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from nvinformers.cache._backoff import DEFAULT_BACKOFF, Backoff, BackoffConfig
from nvinformers.cache._fifo import AppliedFunc, ReflectorStore
from nvinformers.cache._listwatch import CancellableLister, ListerWatcher, ListResult
from nvinformers.cache._open_watch import NO_INITIAL_END, SILENT, OpenWatch
from nvinformers.cache._reflector_errors import (
    ReplayedWatchError,
    VeryShortWatchError,
    WatchErrorHandler,
    classify,
)
from nvinformers.cache._reflector_health import DEFAULT_OUTAGE_GRACE, ReflectorHealth
from nvinformers.cache._revisions import RevisionTracker, revision_newer
from nvinformers.cache._store import resource_version_of
from nvinformers.cancel import CancelToken
from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.errors import (
    BadRequestError,
    ExpiredError,
    MethodNotSupportedError,
    ServiceUnavailableError,
    StatusError,
)
from nvinformers.meta import header_accessors
from nvinformers.options import (
    INITIAL_EVENTS_END_ANNOTATION,
    RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
    ListOptions,
)
from nvinformers.watch import EventType
from nvinformers.watch import Interface as WatchInterface

__all__ = [
    "Reflector",
    "ReflectorStats",
    "DEFAULT_WATCH_INACTIVITY_TIMEOUT",
    "DEFAULT_MIN_WATCH_TIMEOUT",
    "DEFAULT_INITIAL_EVENTS_TIMEOUT",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.reflector")

#: Seconds of total silence (no event, no bookmark) on a watch after which the reflector checks
#: progress with a relist. Longer than the Kubernetes bookmark interval (1 min) and than kine's
#: default progress-notify interval (5 min), so a server that sends bookmarks is never checked.
DEFAULT_WATCH_INACTIVITY_TIMEOUT = 360.0
#: Seconds a streaming list may take to deliver its initial-events-end bookmark before the
#: reflector falls back to a classic list (the informer factories pass their list timeout).
DEFAULT_INITIAL_EVENTS_TIMEOUT = 60.0
#: client-go's minimum watch timeout (the actual timeout is drawn from [min, 2 * min)).
DEFAULT_MIN_WATCH_TIMEOUT = 300.0
#: A watch that ends cleanly sooner than this with no event is an error (client-go: 1 s).
_VERY_SHORT_WATCH = 1.0

_EVENT_NAMES: dict[EventType, str] = {t: t.value for t in EventType}


@dataclass
class ReflectorStats:
    """Counters of one reflector, for metrics (state lives in :class:`ReflectorHealth`).

    Written by the reflector's run thread, except ``progress_checks["current"]`` and
    ``["stale"]``, written by whichever thread applies a check's relist (the run thread, or the
    resync timer's drain of the queue): relists are applied one at a time, so no key is ever
    written by two threads at once. Read without a lock by metrics collectors (each read of an
    int or of a dict copy is atomic).
    """

    lists: dict[str, int] = field(default_factory=dict)  # by reason
    list_failures: int = 0
    watch_restarts: dict[str, int] = field(default_factory=dict)  # by reason
    watch_attempts: int = 0
    events: dict[str, int] = field(default_factory=dict)  # by event type
    progress_checks: dict[str, int] = field(default_factory=dict)  # current, stale, failed


class Reflector(Generic[T]):
    """Keeps a store in step with the server through list and watch (see the module docstring).

    The one home of the list-watch options: :class:`SharedIndexInformer`, the informer factories
    and ``new_gpu_informer`` pass them through and document only what they change.

    Args:
        lw: the list-watch source (a :class:`~nvinformers.cache._listwatch.CancellableLister`
            too, for lists that stopping can abort).
        store: where changes go, in order (the informer's queue).
        name: used in logs, metrics and thread names (e.g. ``"gpus"``).
        watch_inactivity_timeout: seconds a watch may deliver nothing (no event, no bookmark)
            before progress is checked with a relist: one that changes nothing shows an idle
            server; one that changes objects shows a frozen stream, which health reports until
            the next event or bookmark (None: never check).
        min_watch_timeout: lower bound of the randomized server-side watch timeout.
        backoff: delays between failed list/watch attempts.
        use_watch_list: try the streaming list protocol before a classic list.
        initial_events_timeout: seconds a streaming list may take to reach its
            initial-events-end bookmark before a classic list replaces it (None: until the
            watch's own timeout).
        outage_grace: seconds without a working watch before health turns unhealthy; also how
            long a recovery must hold before the logs call it one (at least 2 s: a quiet watch
            proves itself only after a second; see
            :class:`~nvinformers.cache._reflector_health.ReflectorHealth`).
        clock: time source (tests inject a :class:`~nvinformers.clock.FakeClock`).
        rng: randomness for watch timeouts and jitter (tests seed it).
        watch_error_handler: called after every failed pass, in addition to the reflector's own
            logging (client-go's ``SetWatchErrorHandler``); exceptions it raises are logged.

    Thread-safety: ``run`` must be called once, from one thread. The other methods may be called
    from any thread.
    """

    def __init__(
        self,
        lw: ListerWatcher[T],
        store: ReflectorStore,
        *,
        name: str,
        watch_inactivity_timeout: float | None = DEFAULT_WATCH_INACTIVITY_TIMEOUT,
        min_watch_timeout: float = DEFAULT_MIN_WATCH_TIMEOUT,
        backoff: BackoffConfig = DEFAULT_BACKOFF,
        use_watch_list: bool = False,
        initial_events_timeout: float | None = DEFAULT_INITIAL_EVENTS_TIMEOUT,
        outage_grace: float = DEFAULT_OUTAGE_GRACE,
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        watch_error_handler: WatchErrorHandler | None = None,
    ) -> None:
        if watch_inactivity_timeout is not None and watch_inactivity_timeout <= 0:
            raise ValueError(
                f"watch_inactivity_timeout must be > 0, got {watch_inactivity_timeout}"
            )
        if initial_events_timeout is not None and initial_events_timeout <= 0:
            raise ValueError(f"initial_events_timeout must be > 0, got {initial_events_timeout}")
        if min_watch_timeout <= 0:
            raise ValueError(f"min_watch_timeout must be > 0, got {min_watch_timeout}")
        self._lw = lw
        self._store = store
        self.name = name
        self._min_watch_timeout = min_watch_timeout
        self._use_watch_list = use_watch_list
        self._initial_events_timeout = initial_events_timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(backoff, clock=clock, rng=self._rng)
        self._error_handler = watch_error_handler
        self.stats = ReflectorStats()
        # Fired (by the stop thread) when run()'s stop is set; every blocking call honours it.
        self._cancel = CancelToken()
        # The supervisor sleeps on it: set when a deadline may have moved earlier, or stopping.
        self._wake = threading.Event()
        self.health = ReflectorHealth(
            name, clock=clock, outage_grace=outage_grace, wake=self._wake.set
        )
        self._revisions = RevisionTracker(name)
        self._current = OpenWatch(
            name,
            health=self.health,
            cancel=self._cancel,
            wake=self._wake,
            clock=clock,
            inactivity_timeout=watch_inactivity_timeout,
            initial_events_timeout=initial_events_timeout,
        )
        # Written by the run thread only; read by anyone.
        self._watch_list_unsupported = False
        self._watch_list_failed = False  # a streaming list failed once (later ones log at DEBUG)
        self._first_list_done = False
        self._replays_seen = 0

    # ----------------------------------------------------------------------------- public API

    def last_sync_resource_version(self) -> str:
        """The last revision the reflector saw (list, event or bookmark); "" before the first list.

        Not synchronised with the store: events up to it may still be queued (client-go's
        ``LastSyncResourceVersion``).
        """
        return self._revisions.last

    def watch_open_for(self) -> float | None:
        """Seconds the current watch has been open (None when no watch is open)."""
        return self._current.open_for()

    def set_watch_error_handler(self, handler: WatchErrorHandler | None) -> None:
        """Replace the watch error handler (the informer allows this only before it starts)."""
        self._error_handler = handler

    def run(self, stop: threading.Event) -> None:
        """List and watch until ``stop`` is set (client-go's ``Run``). Blocks; never raises.

        Errors are logged, counted and retried under backoff. Setting ``stop`` ends the calls in
        flight at once: the open watch is stopped, and a list is cancelled when the source
        supports it (otherwise it runs to its own deadline).
        """
        cancel = self._cancel
        cancel.add_callback(self._wake.set)
        cancel.add_callback(self._current.stop)
        stopper = threading.Thread(
            target=self._cancel_when_set,
            args=(stop,),
            name=f"nvinformers-stop-{self.name}",
            daemon=True,
        )
        supervisor = threading.Thread(
            target=self._current.supervise, name=f"nvinformers-watchdog-{self.name}", daemon=True
        )
        self.health.started()
        stopper.start()
        supervisor.start()
        try:
            while not cancel.cancelled():
                try:
                    self.list_and_watch()
                except Exception as err:  # any failure, including bugs, is retried
                    if cancel.cancelled():
                        break  # the cancellation itself, or what it interrupted
                    self._pass_failed(err)
                if cancel.cancelled() or self._clock.wait(cancel.event, self._backoff.next_delay()):
                    break
        finally:
            if stop.is_set():
                stopper.join()
            # else: run() is leaving on an exception (KeyboardInterrupt on the main thread); the
            # stop thread keeps waiting for ``stop`` (it is a daemon, and holds nothing).
            cancel.cancel()
            supervisor.join()

    def list_and_watch(self) -> None:
        """One pass (client-go's ``ListAndWatch``): list (or stream-list), then watch until the
        watch must be abandoned. Called by :meth:`run`.

        Returns when the reflector is stopped; raises the error that ended the pass otherwise.
        """
        watch: WatchInterface[T] | None = None
        if self._use_watch_list and not self._watch_list_unsupported:
            watch = self._watch_list()
        if self._cancel.cancelled():
            if watch is not None:
                self._current.close(watch)
            return
        if watch is None:
            self._list()
        self._watch(watch)

    # ------------------------------------------------------------------------------- listing

    def _list_reason(self) -> str:
        if not self._first_list_done:
            return "initial"
        if self._revisions.expired:
            return "expired"
        return "relist"

    def _list(self, progress_check: bool = False) -> None:
        """List and replace the store with the result (client-go's ``list``).

        A progress check (see the module docstring) lists with ``resource_version=""`` (a
        consistent read: the server's current state, not a cache of it, is what the store is
        compared with), is no activity by itself, and asks the store what it changed.
        """
        reason = "progress_check" if progress_check else self._list_reason()
        last = self.health.last_activity
        silence = 0.0 if last is None or not progress_check else self._clock.now() - last
        stats = self.stats
        stats.lists[reason] = stats.lists.get(reason, 0) + 1
        options = ListOptions(
            resource_version="" if progress_check else self._revisions.relist_from()
        )
        health = self.health
        health.list_started()
        lw = self._lw
        try:
            result: ListResult[T] = (
                lw.list_with_cancel(options, self._cancel)
                if isinstance(lw, CancellableLister)
                else lw.list(options)
            )
        except Exception as err:
            health.list_ended(ok=False)
            if not self._cancel.cancelled():
                stats.list_failures += 1
            if isinstance(err, ExpiredError):
                # The revision we asked for is gone: the next attempt reads fresh ("").
                self._revisions.expired = True
            raise
        health.list_ended(ok=True, activity=not progress_check)
        resource_version = result.metadata.resource_version
        on_applied: AppliedFunc | None = None
        if progress_check:

            def on_applied(changes: int) -> None:
                self._progress_checked(changes, resource_version, silence)

        self._listed(list(result.items), resource_version, on_applied)
        log.debug("listed %s at revision %s", self.name, resource_version)

    def _listed(
        self, items: list[Any], resource_version: str, on_applied: AppliedFunc | None = None
    ) -> None:
        """A full list (classic or streamed) arrived: replace the store with it."""
        self._revisions.check_list(resource_version)
        self._store.replace(items, resource_version, on_applied=on_applied)
        self._revisions.listed(resource_version)
        self._first_list_done = True

    def _progress_check(self) -> None:
        """The open watch delivered nothing for the inactivity timeout (the supervisor stopped
        it): relist to tell an idle server from a frozen stream (see the module docstring).

        Runs on the run thread; the list is cancellable and under the source's list timeout.
        Raises what the list raised: the pass ends, and the outage rules apply.
        """
        try:
            self._list(progress_check=True)
        except Exception:
            if not self._cancel.cancelled():
                checks = self.stats.progress_checks
                checks["failed"] = checks.get("failed", 0) + 1
            raise

    def _progress_checked(self, changes: int, resource_version: str, silence: float) -> None:
        """A progress check's relist was applied and changed ``changes`` objects.

        Called by the store, on whichever thread applied the relist. The health object decides
        what it means and logs the WARNING when a frozen stream starts an outage.
        """
        checks = self.stats.progress_checks
        result = "current" if changes == 0 else "stale"
        checks[result] = checks.get(result, 0) + 1
        self.health.progress_checked(changes)
        log.debug(
            "%s: watch delivered nothing for %.1f s; a list at revision %s %s",
            self.name,
            silence,
            resource_version,
            "found the cache current (an idle server)"
            if changes == 0
            else f"changed {changes} objects in the cache (a frozen stream)",
        )

    def _watch_list(self) -> WatchInterface[T] | None:
        """Streaming list: returns the open watch after the initial events, or None to fall back
        to a classic list (see the module docstring). Until the initial-events-end bookmark the
        stream is a list in flight, for health as for the supervisor, which stops it past
        ``initial_events_timeout``.

        Raises what ends the pass: UNAVAILABLE, an expired revision, a bug.
        """
        reason = self._list_reason()
        stats = self.stats
        revisions = self._revisions
        options = ListOptions(
            resource_version="" if revisions.expired else revisions.last,
            resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
            send_initial_events=True,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds(),
        )
        watch: WatchInterface[T] | None = None
        health = self.health
        health.list_started()
        listed = False
        try:
            watch = self._lw.watch(options)
            if not self._current.set(watch, streaming=True):
                return None
            initial: list[Any] = []
            for event in watch:
                etype = event.type
                if etype is EventType.ADDED:
                    initial.append(event.object)
                    continue
                if etype is EventType.BOOKMARK:
                    annotations = event.object.metadata.annotations  # type: ignore[attr-defined]
                    if annotations.get(INITIAL_EVENTS_END_ANNOTATION) != "true":
                        continue  # a progress bookmark amid the initial events
                    rv = event.object.metadata.resource_version  # type: ignore[attr-defined]
                    stats.lists[reason] = stats.lists.get(reason, 0) + 1
                    health.list_ended(ok=True)
                    listed = True
                    self._listed(initial, rv)
                    self._current.streamed(watch)
                    return watch
                # A change before the end of the initial events: the server streams a plain
                # watch (it ignores send_initial_events).
                self._watch_list_unsupported = True
                log.warning(
                    "%s: streaming list got %s before the initial-events-end bookmark: the "
                    "server does not follow the streaming-list protocol; using classic lists "
                    "from now on",
                    self.name,
                    etype.value,
                )
                break
            else:
                if self._cancel.cancelled():
                    pass
                elif self._current.stopped_for(watch) == NO_INITIAL_END:
                    self._watch_list_unsupported = True
                    log.warning(
                        "%s: no initial-events-end bookmark within %g s of a streaming list "
                        "(%d initial events received): the server ignores send_initial_events; "
                        "using classic lists from now on",
                        self.name,
                        self._initial_events_timeout,
                        len(initial),
                    )
                else:
                    log.info(
                        "%s: server ended the streaming list before the initial-events-end "
                        "bookmark; falling back to a classic list",
                        self.name,
                    )
        except (BadRequestError, MethodNotSupportedError) as err:
            log.info(
                "%s: server does not support streaming lists (%s); using classic lists",
                self.name,
                err,
            )
            self._watch_list_unsupported = True
        except ExpiredError:
            revisions.expired = True
            raise
        except ServiceUnavailableError:
            raise  # the server is away: a classic list would fail too; back off and retry
        except StatusError as err:
            if self._cancel.cancelled():
                raise
            # client-go: any other error falls back to a classic list ("making progress is
            # better than deadlocking"); the next pass tries streaming again.
            log.log(
                logging.DEBUG if self._watch_list_failed else logging.WARNING,
                "%s: streaming list failed (%s: %s); falling back to a classic list",
                self.name,
                type(err).__name__,
                err,
            )
            self._watch_list_failed = True
        finally:
            if not listed:
                health.list_ended(ok=False)
                if watch is not None:
                    self._current.close(watch)
        return None

    # ------------------------------------------------------------------------------ watching

    def _watch(self, watch: WatchInterface[T] | None) -> None:
        """client-go's ``watch``: open watches one after another until one must be abandoned.

        Returns when the reflector is stopped; raises what ends the pass (a relist) otherwise.
        What ends a watch, and whether a relist follows, is decided by :func:`classify`.
        """
        clock = self._clock
        cancel = self._cancel
        # The first watch of a pass follows a list (or is the streaming list): a server replaying
        # its state on it repeats that list. Later re-watches are checked for replays.
        after_list = True
        while not cancel.cancelled():
            if watch is None:
                watch = self._open_watch()
                if watch is None:
                    continue  # refused (and backed off), or stopped
            start_rv = self._revisions.last
            started = clock.now()
            count = 0
            error: Exception | None = None
            try:
                count = self._handle_watch(watch, "" if after_list else start_rv)
            except Exception as err:
                error = err
            after_list = False
            working, stopped_for = self._current.close(watch)
            watch = None
            if cancel.cancelled():
                return
            if error is not None:
                verdict = classify(error)
                if verdict.relist or working:
                    self._restart(verdict.reason)
                if isinstance(error, ReplayedWatchError):
                    self._replays_seen += 1
                    if self._replays_seen == 1:
                        log.info(
                            "%s: %s; relisting (and after every such re-watch)", self.name, error
                        )
                if verdict.relist:
                    raise error
                # UNAVAILABLE: the server went away. A watch that worked is re-opened at once
                # from the last revision; one that never worked is a failed attempt.
                self.health.failed(error)
                if not working and clock.wait(cancel.event, self._backoff.next_delay()):
                    return
                continue
            if stopped_for == SILENT:
                # Silent for the inactivity timeout: an idle server or a frozen stream? A relist
                # tells (and repairs the cache); the next watch follows that list.
                self._restart("inactivity")
                self._progress_check()
                after_list = True
                continue
            if count == 0 and clock.now() - started < _VERY_SHORT_WATCH:
                self._restart("very_short")
                raise VeryShortWatchError(
                    f"{self.name}: watch ended after less than {_VERY_SHORT_WATCH:.0f} s "
                    "without any event"
                )
            self._restart("closed")

    def _open_watch(self) -> WatchInterface[T] | None:
        """Open a watch from the last revision; None if the server refused it (after backing off,
        client-go's retry of a watch that cannot start) or the reflector was stopped."""
        options = ListOptions(
            resource_version=self._revisions.last,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds(),
        )
        self.stats.watch_attempts += 1
        try:
            watch = self._lw.watch(options)
        except Exception as err:
            if self._cancel.cancelled():
                return None
            if classify(err).relist:
                raise
            # Refused, not broken (UNAVAILABLE): back off, then try the watch again.
            self.health.failed(err)
            self._clock.wait(self._cancel.event, self._backoff.next_delay())
            return None
        return watch if self._current.set(watch) else None

    def _handle_watch(self, watch: WatchInterface[T], replay_below: str = "") -> int:
        """Feed one watch's events into the store; return how many arrived. The hot loop.

        client-go's ``handleWatch``. Returns when the watch ends cleanly or is stopped; raises
        what ended it otherwise. With ``replay_below`` (the revision the watch asked for), an
        ADDED event no newer than it raises :class:`ReplayedWatchError` before it is applied.
        """
        store = self._store
        add, update, delete = store.add, store.update, store.delete
        health = self.health
        events = self.stats.events
        revisions = self._revisions
        # Bound once: the real clock's now is time.monotonic itself, called once per event.
        now = self._clock.now
        added, modified, deleted, bookmark = (
            EventType.ADDED,
            EventType.MODIFIED,
            EventType.DELETED,
            EventType.BOOKMARK,
        )
        event_names = _EVENT_NAMES
        count = 0
        last_cls: type | None = None
        rv_of: Callable[[Any], Any] = resource_version_of
        for event in watch:
            if count:
                health.last_activity = now()  # the lock-free per-event write (see its docs)
            else:
                health.watch_delivered()  # the first one: the watch works
            count += 1
            etype = event.type
            obj = event.object
            cls = type(obj)
            if cls is not last_cls:
                # Direct readers for types that register them (GPUs): see
                # nvinformers.meta.register_header_accessors.
                last_cls = cls
                rv_of = header_accessors(cls).resource_version
            if etype is modified:
                update(obj)
            elif etype is added:
                if replay_below and revision_newer(rv_of(obj), replay_below) is False:
                    raise ReplayedWatchError(
                        f"server replayed its state (ADDED at revision {rv_of(obj)}) on a watch "
                        f"from revision {replay_below}: it ignores requested revisions"
                    )
                add(obj)
            elif etype is deleted:
                delete(obj)
            elif etype is bookmark:
                store.bookmark(rv_of(obj))
            name = event_names[etype]  # not etype.value: an enum property is Python code
            events[name] = events.get(name, 0) + 1
            rv = rv_of(obj)
            if rv:
                current = revisions.last
                # Equal-length decimal revisions compare as strings: the usual case, inline.
                if len(rv) == len(current) and rv.isdigit() and current.isdigit():
                    if rv > current:
                        revisions.last = rv
                elif revisions.newer(rv, current):
                    revisions.last = rv
        return count

    def _watch_timeout_seconds(self) -> int:
        low = self._min_watch_timeout
        return int(low + self._rng.random() * low)

    def _restart(self, reason: str) -> None:
        restarts = self.stats.watch_restarts
        restarts[reason] = restarts.get(reason, 0) + 1

    # ------------------------------------------------------------------------------ stopping

    def _cancel_when_set(self, stop: threading.Event) -> None:
        """The stop thread: fire the cancel token once ``stop`` is set."""
        stop.wait()
        self._cancel.cancel()

    def _pass_failed(self, err: BaseException) -> None:
        """client-go's watch error handler: a pass ended with ``err``; log and count it once."""
        verdict = classify(err)
        if verdict.unexpected:
            log.error("%s: unexpected error in list/watch; retrying", self.name, exc_info=err)
        if verdict.failure:
            self.health.failed(err)
        else:
            log.debug("%s: %s; relisting", self.name, err)
            self.health.noted(err)
        handler = self._error_handler
        if handler is not None:
            try:
                handler(self.name, err)
            except Exception:
                log.exception("%s: watch error handler raised", self.name)
