"""The reflector: lists, then watches, and feeds every change into a store in order.

Mirrors client-go's ``tools/cache/reflector.go``, and reads like it: :meth:`Reflector.run` is
``Run`` (list-and-watch passes under backoff until stopped), :meth:`Reflector.list_and_watch` is
``ListAndWatch`` (list, or stream-list, then watch), ``_watch`` is ``watch`` (open watches one
after another until one must be abandoned) and ``_handle_watch`` is ``handleWatch`` (feed one
watch's events into the store). What an error means is decided in one place, :func:`classify`.

* **List, then watch.** The first list asks for resource version "0"; later relists ask for the
  last synced revision (so the cache never goes back in time), or for "" (a fresh read) after the
  server said that revision expired. The list replaces the store; the watch then starts from the
  list's revision with bookmarks requested and a timeout drawn from ``[min_watch_timeout,
  2 * min_watch_timeout)`` (5-10 minutes by default) so that a node's watchers do not all reconnect
  together.
* **What ends a watch, and what follows** (client-go's relist/re-watch table, :func:`classify`):

  ==========================================  ==============================================
  the watch ...                               then
  ==========================================  ==============================================
  ends cleanly (server timeout, EOF)          re-watch from the last revision, no relist
  breaks with UNAVAILABLE after working       re-watch at once from the last revision
  fails with UNAVAILABLE before working       back off, re-watch (no relist)
  (also: the watch cannot even start)
  is silent past ``watch_inactivity_timeout`` progress check: relist at once, then watch from
                                              the list's revision
  ends with 410 Expired                       back off, relist
  ends with any other error, or a malformed   back off, relist
  event
  ends cleanly in < 1 s with no event         back off, relist (client-go's VeryShortWatch)
  ==========================================  ==============================================

* **Backoff** is client-go's: 800 ms doubling to 30 s, jitter 1.0, reset after 2 minutes without
  backing off. Every pass of list-and-watch is followed by a backoff delay, as in client-go.
* **Revision tracking** from events and bookmarks; it never moves backwards (when revisions are
  decimal integers, as the Device API's are), so a server that replays an ADDED burst of old
  objects cannot make the reflector re-watch from the past. Revisions that are not decimal
  integers are kept as opaque strings (and sent back as they are); since no event can then be
  recognised as older than the cache, one WARNING says that stale-event protection is off.
* **Stopping** cancels the calls in flight at once, list and watch alike (client-go returns from
  a stopped ``ListAndWatch`` without waiting for its list): a source that implements
  :class:`~nvinformers.cache._listwatch.CancellableLister` gets a
  :class:`~nvinformers.cancel.CancelToken` that fires when ``stop`` is set, and the open watch is
  stopped. A server that never answers cannot hold a shutdown.
* **Progress check.** A watch that has delivered nothing, not even a bookmark, for
  ``watch_inactivity_timeout`` seconds (counted from its start or from the last activity,
  whichever is later) is either on an idle server or frozen (the silent-hang failure that
  plagues Python watchers: kopf, the official client). Servers that send progress bookmarks to
  idle watches make the difference visible; the device-apiserver does not (its etcd3 storage
  only after a change followed the watch's start, its memory storage never). So the supervisor
  stops the silent watch and the run thread verifies with a relist: a consistent read
  (``resource_version=""``), cancellable and under the source's list timeout, applied to the
  store like any relist. If it changed nothing in the cache, the server was idle: the check
  counts as a bookmark at the list's revision. If it added, updated or deleted objects, the
  stream was frozen while the server changed: the cache is repaired, and health keeps
  reporting the silence (see :mod:`nvinformers.cache._reflector_health`). Either way the watch
  restarts from the list's revision; a check that fails or hangs is an outage like any other.
  The store, not the revision, decides: a server may advance its revision without changing an
  object (kine writes a row when it compacts). Counted in ``stats.progress_checks`` by result
  (``current``, ``stale``, ``failed``).
* **Streaming list** (``use_watch_list=True``, KEP-3157): one watch with ``send_initial_events``;
  the ADDED burst is collected until the bookmark annotated ``k8s.io/initial-events-end``, replaces
  the store, and the same stream continues. Until then it is a list, for health as for logs. It
  falls back to a classic list, as client-go does, when the server refuses it (a bad request or
  an unknown method: classic lists from then on), when the stream fails with any error other
  than UNAVAILABLE or an expired revision (which end the pass as usual), or ends before the
  bookmark; and when the server ignores ``send_initial_events`` (the device-apiserver's memory
  storage): no bookmark within ``initial_events_timeout``, or a change before it (classic lists
  from then on).

Health and logs: :attr:`Reflector.health` (a
:class:`~nvinformers.cache._reflector_health.ReflectorHealth`) owns activity, outage and recovery
state; the reflector reports to it, and it logs one line per outage state change (WARNING when an
outage begins, INFO once the recovery has held), never one per retry.

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
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache._backoff import DEFAULT_BACKOFF, Backoff, BackoffConfig
from nvinformers.cache._fifo import AppliedFunc
from nvinformers.cache._keys import resource_version_of
from nvinformers.cache._listwatch import CancellableLister, ListerWatcher, ListResult
from nvinformers.cache._reflector_health import DEFAULT_OUTAGE_GRACE, ReflectorHealth
from nvinformers.cancel import CancelToken
from nvinformers.clock import REAL_CLOCK, Clock
from nvinformers.errors import (
    BadRequestError,
    ExpiredError,
    MalformedObjectError,
    MethodNotSupportedError,
    NvInformersError,
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
    "ReflectorStore",
    "ReflectorStats",
    "WatchErrorHandler",
    "VeryShortWatchError",
    "ReplayedWatchError",
    "Verdict",
    "classify",
    "DEFAULT_WATCH_INACTIVITY_TIMEOUT",
    "DEFAULT_MIN_WATCH_TIMEOUT",
    "DEFAULT_INITIAL_EVENTS_TIMEOUT",
    "revision_newer",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache._reflector")

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
#: Why the supervisor stopped the open watch.
_SILENT = "silent"  # silent for the inactivity timeout: a progress check follows
_NO_INITIAL_END = "no initial-events-end"  # a streaming list past initial_events_timeout

#: Called with the reflector's name and the error after each failed list-and-watch pass.
WatchErrorHandler = Callable[[str, BaseException], None]


class VeryShortWatchError(NvInformersError):
    """A watch ended cleanly almost immediately without delivering any event."""


class ReplayedWatchError(NvInformersError):
    """A re-watch started with ADDED events no newer than the revision it asked for.

    The server ignored the requested revision and replayed its current state (some Device API
    server builds do). Objects deleted while the reflector was not watching are absent from such
    a burst and would stay in the cache, so the reflector relists instead ("relist when in
    doubt", as the contract asks). A watch that directly follows a list is exempt: its burst is
    the list it follows.
    """


@dataclass(frozen=True, slots=True)
class Verdict:
    """What an error that ended a list or a watch means (see :func:`classify`).

    Attributes:
        reason: the ``watch_restarts`` label when it ended a watch.
        relist: end the pass and relist (False: re-watch from the last revision).
        failure: the server failed (an outage, as the logs tell it); False: routine, logged at
            DEBUG.
        unexpected: not an API error at all (a bug): logged with its traceback.
    """

    reason: str
    relist: bool
    failure: bool
    unexpected: bool = False


_UNAVAILABLE = Verdict("unavailable", relist=False, failure=True)
_EXPIRED = Verdict("expired", relist=True, failure=False)
_VERY_SHORT = Verdict("very_short", relist=True, failure=False)
_REPLAYED = Verdict("replayed", relist=True, failure=False)
_MALFORMED = Verdict("malformed", relist=True, failure=True)
_ERROR = Verdict("error", relist=True, failure=True)
_BUG = Verdict("error", relist=True, failure=True, unexpected=True)


def classify(err: BaseException) -> Verdict:
    """The one place that decides what an error ending a list or a watch means.

    ``ServiceUnavailableError`` (the server went away, or cannot be reached): a failure, and a
    watch it ends is re-opened from the last revision. ``ExpiredError``, a very short watch and a
    replayed watch: routine, relist (client-go logs expiry at V(4)). A malformed object or any
    other API error: a failure, relist. Anything else is a bug: a failure, relist, and its
    traceback is logged.
    """
    if isinstance(err, ServiceUnavailableError):
        return _UNAVAILABLE
    if isinstance(err, ExpiredError):
        return _EXPIRED
    if isinstance(err, VeryShortWatchError):
        return _VERY_SHORT
    if isinstance(err, ReplayedWatchError):
        return _REPLAYED
    if isinstance(err, MalformedObjectError):
        return _MALFORMED
    if isinstance(err, StatusError):
        return _ERROR
    return _BUG


class ReflectorStore(Protocol):
    """The narrow slice of a store the reflector writes to (the informer's :class:`RealFIFO`)."""

    def add(self, obj: Any) -> None: ...

    def update(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(
        self, objects: list[Any], resource_version: str, *, on_applied: AppliedFunc | None = None
    ) -> None:
        """Replace the content with a full list. The reflector passes ``on_applied`` only for a
        progress check; the store must then call it once the list was applied, with the number
        of objects it added, updated or deleted (a store that never calls it leaves checks
        without a result: they neither explain a silence nor report a frozen stream)."""
        ...

    def bookmark(self, resource_version: str) -> None: ...


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


def revision_newer(candidate: str, current: str) -> bool | None:
    """Compare two resource versions when both are decimal integers.

    Returns True if ``candidate`` is strictly newer, False if it is the same or older, and None
    when they cannot be compared (resource versions are opaque in general; the Device API's are
    one global integer revision).
    """
    if candidate.isdigit() and current.isdigit():
        if len(candidate) == len(current):
            # Digit strings of equal length compare as numbers do (no int conversion needed:
            # this runs for every watch event).
            return candidate > current
        return int(candidate) > int(current)
    return None


_EVENT_NAMES: dict[EventType, str] = {t: t.value for t in EventType}


class Reflector(Generic[T]):
    """Keeps a store in step with the server through list and watch (see the module docstring).

    Args:
        lw: the list-watch source (a :class:`~nvinformers.cache._listwatch.CancellableLister`
            too, for lists that stopping can abort).
        store: where changes go, in order (the informer's queue).
        name: used in logs, metrics and thread names (e.g. ``"gpus"``).
        watch_inactivity_timeout: seconds of silence on a watch after which progress is checked
            with a relist (None: never).
        min_watch_timeout: lower bound of the randomized server-side watch timeout.
        backoff: delays between failed attempts.
        use_watch_list: try the streaming list protocol before a classic list.
        initial_events_timeout: seconds a streaming list may take to reach its
            initial-events-end bookmark before a classic list replaces it (None: until the
            watch's own timeout).
        outage_grace: seconds without a working watch before health reports it, at least 2 s
            (see :class:`~nvinformers.cache._reflector_health.ReflectorHealth`).
        clock: time source (tests inject a :class:`~nvinformers.clock.FakeClock`).
        rng: randomness for timeouts and jitter (tests seed it).
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
        self._inactivity_timeout = watch_inactivity_timeout
        self._min_watch_timeout = min_watch_timeout
        self._use_watch_list = use_watch_list
        self._initial_events_timeout = initial_events_timeout
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(backoff, clock=clock, rng=self._rng)
        self._error_handler = watch_error_handler
        self.stats = ReflectorStats()
        # Set when a deadline of the supervisor may have moved earlier, or when stopping.
        self._wake = threading.Event()
        self.health = ReflectorHealth(
            name, clock=clock, outage_grace=outage_grace, wake=self._wake.set
        )
        # Fired (by the stop thread) when run()'s stop is set; every blocking call honours it.
        self._cancel = CancelToken()
        # Written by the run thread only; read by anyone.
        self._last_sync_rv = ""
        self._last_sync_rv_unavailable = False
        self._watch_list_unsupported = False
        self._watch_list_failed = False  # a streaming list failed once (later ones log at DEBUG)
        self._first_list_done = False
        self._replays_seen = 0
        self._opaque_revisions = False  # a revision that is not a decimal integer was seen
        # The open watch, shared with the supervisor and the cancel callback.
        self._watch_lock = threading.Lock()
        self._current: WatchInterface[T] | None = None  # guarded by _watch_lock: the open watch
        self._watch_opened = 0.0  # guarded by _watch_lock: clock time the open watch opened
        # guarded by _watch_lock: the open watch streams a list's initial events
        self._streaming = False
        # guarded by _watch_lock: (the watch the supervisor stopped, why), until it is closed
        self._stopped_by_supervisor: tuple[WatchInterface[T], str] | None = None

    # ----------------------------------------------------------------------------- public API

    def last_sync_resource_version(self) -> str:
        """The last revision the reflector saw (list, event or bookmark); "" before the first list.

        Not synchronised with the store: events up to it may still be queued (client-go's
        ``LastSyncResourceVersion``).
        """
        return self._last_sync_rv

    def watch_open_for(self) -> float | None:
        """Seconds the current watch has been open (None when no watch is open)."""
        with self._watch_lock:
            if self._current is None:
                return None
            opened = self._watch_opened
        return max(0.0, self._clock.now() - opened)

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
        cancel.add_callback(self._stop_watch)
        stopper = threading.Thread(
            target=self._cancel_when_set,
            args=(stop,),
            name=f"nvinformers-stop-{self.name}",
            daemon=True,
        )
        supervisor = threading.Thread(
            target=self._supervise, name=f"nvinformers-watchdog-{self.name}", daemon=True
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
                self._close_watch(watch)
            return
        if watch is None:
            self._list()
        self._watch(watch)

    # ------------------------------------------------------------------------------ listing

    def _relist_resource_version(self) -> str:
        # client-go: "0" first (cheap, may be slightly stale), then the last synced revision so
        # time never goes backwards, and "" (a consistent read) once that revision expired.
        if self._last_sync_rv_unavailable:
            return ""
        if not self._last_sync_rv:
            return "0"
        return self._last_sync_rv

    def _list_reason(self) -> str:
        if not self._first_list_done:
            return "initial"
        if self._last_sync_rv_unavailable:
            return "expired"
        return "relist"

    def _call_list(self, options: ListOptions) -> ListResult[T]:
        lw = self._lw
        if isinstance(lw, CancellableLister):
            result: ListResult[T] = lw.list_with_cancel(options, self._cancel)
            return result
        return lw.list(options)

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
            resource_version="" if progress_check else self._relist_resource_version()
        )
        health = self.health
        health.list_started()
        try:
            result = self._call_list(options)
        except Exception as err:
            health.list_ended(ok=False)
            if not self._cancel.cancelled():
                stats.list_failures += 1
            if isinstance(err, ExpiredError):
                # The revision we asked for is gone: the next attempt reads fresh ("").
                self._last_sync_rv_unavailable = True
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
        self._check_revision(resource_version)
        last = self._last_sync_rv
        if last and revision_newer(last, resource_version) is True:
            # A relist asks for a state at least as new as the last revision seen.
            log.warning(
                "%s: the list is at revision %s, older than the last revision seen (%s): the "
                "server's revisions went backwards (a restart that lost its store?); the cache "
                "takes the list as it is",
                self.name,
                resource_version,
                last,
            )
        if on_applied is None:
            self._store.replace(items, resource_version)
        else:
            self._store.replace(items, resource_version, on_applied=on_applied)
        self._last_sync_rv_unavailable = False
        self._last_sync_rv = resource_version
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
        options = ListOptions(
            resource_version="" if self._last_sync_rv_unavailable else self._last_sync_rv,
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
            if not self._set_watch(watch, streaming=True):
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
                    self._streamed(watch)
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
                elif self._stopped_for(watch) == _NO_INITIAL_END:
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
            self._last_sync_rv_unavailable = True
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
                    self._close_watch(watch)
        return None

    # ----------------------------------------------------------------------------- watching

    def _watch_timeout_seconds(self) -> int:
        low = self._min_watch_timeout
        return int(low + self._rng.random() * low)

    def _watch(self, watch: WatchInterface[T] | None) -> None:
        """client-go's ``watch``: open watches one after another until one must be abandoned.

        Returns when the reflector is stopped; raises what ends the pass (a relist) otherwise.
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
            start_rv = self._last_sync_rv
            started = clock.now()
            count = 0
            error: Exception | None = None
            try:
                count = self._handle_watch(watch, "" if after_list else start_rv)
            except Exception as err:
                error = err
            after_list = False
            working, stopped_for = self._close_watch(watch)
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
            if stopped_for == _SILENT:
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
            resource_version=self._last_sync_rv,
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
        return watch if self._set_watch(watch) else None

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
                # Direct readers for types that allow it (GPUs): see cache.keys.
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
                current = self._last_sync_rv
                # Equal-length decimal revisions compare as strings: the usual case, inline.
                if len(rv) == len(current) and rv.isdigit() and current.isdigit():
                    if rv > current:
                        self._last_sync_rv = rv
                elif self._newer_revision(rv, current):
                    self._last_sync_rv = rv
        return count

    def _newer_revision(self, rv: str, current: str) -> bool:
        """Whether ``rv`` should become the last synced revision (the uncommon comparisons)."""
        self._check_revision(rv)
        return not current or revision_newer(rv, current) is not False

    def _check_revision(self, rv: str) -> None:
        """Warn, once, that revisions which are not decimal integers turn stale-event
        protection off."""
        if rv and not self._opaque_revisions and not rv.isdigit():
            self._opaque_revisions = True
            log.warning(
                "%s: the server's resource version %r is not a decimal integer: an event older "
                "than the cached object cannot be recognised, so stale-event protection is off "
                "for this informer (revisions are kept as opaque strings and sent back as they "
                "are)",
                self.name,
                rv,
            )

    def _restart(self, reason: str) -> None:
        restarts = self.stats.watch_restarts
        restarts[reason] = restarts.get(reason, 0) + 1

    # ------------------------------------------------------------------- the open watch

    def _set_watch(self, watch: WatchInterface[T], streaming: bool = False) -> bool:
        """Make ``watch`` the open watch; False (and the watch stopped) if stopping.

        ``streaming``: it carries a streaming list's initial events (a list, for health and the
        supervisor, until :meth:`_streamed`).
        """
        with self._watch_lock:
            if not self._cancel.cancelled():
                self._current = watch
                self._watch_opened = self._clock.now()
                self._streaming = streaming
                if streaming:
                    self._wake.set()  # a new deadline for the supervisor
                else:
                    self.health.watch_opened()  # which wakes the supervisor
                return True
        # Opened while stopping, after the cancel callback's last look: stop it here, or its
        # iteration could block shutdown.
        watch.stop()
        return False

    def _streamed(self, watch: WatchInterface[T]) -> None:
        """The streaming list's initial events are in: from now on ``watch`` is a watch that
        works (it delivered the end bookmark)."""
        with self._watch_lock:
            if self._current is watch:
                self._streaming = False
                self._watch_opened = self._clock.now()
        self.health.watch_opened()
        self.health.watch_delivered()
        self._wake.set()  # the supervisor's deadline for this watch changed

    def _close_watch(self, watch: WatchInterface[T]) -> tuple[bool, str | None]:
        """Stop ``watch`` and forget it. Returns (it had been working, why the supervisor
        stopped it: :data:`_SILENT`, :data:`_NO_INITIAL_END` or None)."""
        with self._watch_lock:
            stopped = self._stopped_by_supervisor
            stopped_for = stopped[1] if stopped is not None and stopped[0] is watch else None
            self._stopped_by_supervisor = None
            if self._current is watch:
                self._current = None
                self._streaming = False
            working = self.health.watch_ended()
        watch.stop()
        return working, stopped_for

    def _stopped_for(self, watch: WatchInterface[T]) -> str | None:
        """Why the supervisor stopped ``watch`` (None: it did not)."""
        with self._watch_lock:
            stopped = self._stopped_by_supervisor
        return stopped[1] if stopped is not None and stopped[0] is watch else None

    def _stop_watch(self) -> None:
        """Cancel callback: stop the open watch (its iteration then ends at once)."""
        with self._watch_lock:
            watch = self._current
        if watch is not None:
            watch.stop()

    # ---------------------------------------------------------------- stopping and supervision

    def _cancel_when_set(self, stop: threading.Event) -> None:
        """The stop thread: fire the cancel token once ``stop`` is set."""
        stop.wait()
        self._cancel.cancel()

    def _supervise(self) -> None:
        """The supervisor: sleep until the next deadline (or a wake-up), then act on it."""
        clock, wake, cancel = self._clock, self._wake, self._cancel
        try:
            while not cancel.cancelled():
                wake.clear()
                delay = self.health.check()
                watch_in = self._check_watch_deadline()
                if watch_in is not None:
                    delay = watch_in if delay is None else min(delay, watch_in)
                if cancel.cancelled():
                    break
                clock.wait(wake, delay)
        except Exception:  # never let the supervisor die silently
            log.exception("%s: watch supervisor failed", self.name)

    def _check_watch_deadline(self) -> float | None:
        """Stop the open watch once its deadline passed; return the seconds until it is due
        (None: no open watch, no deadline, or already stopped).

        The deadline of a watch is ``watch_inactivity_timeout`` after its start or its last
        activity, whichever is later (then a progress check follows, and health is told it is
        due); that of a streaming list's initial events is ``initial_events_timeout`` after it
        opened (then a classic list follows).
        """
        with self._watch_lock:
            watch = self._current
            if watch is None or self._stopped_by_supervisor is not None:
                return None
            if self._streaming:
                limit, since, why = (
                    self._initial_events_timeout,
                    self._watch_opened,
                    _NO_INITIAL_END,
                )
            else:
                last = self.health.last_activity
                since = self._watch_opened if last is None else max(last, self._watch_opened)
                limit, why = self._inactivity_timeout, _SILENT
            if limit is None:
                return None
            left = since + limit - self._clock.now()
            if left > 0:
                return left
            self._stopped_by_supervisor = (watch, why)
        if why == _SILENT:
            self.health.progress_check_due()
        watch.stop()
        return None

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
