"""The reflector: lists, then watches, and feeds every change into a store in order.

Mirrors client-go's ``tools/cache/reflector.go``:

* **List, then watch.** The first list asks for resource version "0"; later relists ask for the
  last synced revision (so the cache never goes back in time), or for "" (a fresh read) after the
  server said that revision expired. The list replaces the store; the watch then starts from the
  list's revision with bookmarks requested and a timeout drawn from ``[min_watch_timeout,
  2 * min_watch_timeout)`` (5-10 minutes by default) so that a node's watchers do not all reconnect
  together.
* **What ends a watch, and what follows** (client-go's relist/re-watch table):

  ==========================================  ==============================================
  the watch ...                               then
  ==========================================  ==============================================
  ends cleanly (server timeout, EOF)          re-watch from the last revision, no relist
  breaks with UNAVAILABLE (server went away)  re-watch from the last revision, no relist
  fails to start with UNAVAILABLE             back off, re-watch (no relist)
  is silent past ``watch_inactivity_timeout`` re-watch from the last revision, no relist
  ends with 410 Expired                       back off, relist
  ends with any other error, or a malformed   back off, relist
  event
  ends cleanly in < 1 s with no event         back off, relist (client-go's VeryShortWatch)
  ==========================================  ==============================================

* **Backoff** is client-go's: 800 ms doubling to 30 s, jitter 1.0, reset after 2 minutes without
  backing off. Every pass of list-and-watch is followed by a backoff delay, as in client-go.
* **Revision tracking** from events and bookmarks; it never moves backwards (when revisions are
  decimal integers, as the Device API's are), so a server that replays an ADDED burst of old
  objects cannot make the reflector re-watch from the past.
* **Inactivity.** A supervisor thread stops a watch that has delivered nothing, not even a
  bookmark, for ``watch_inactivity_timeout`` seconds: the silent-hang failure that plagues Python
  watchers (kopf, the official client) becomes a counted re-watch.
* **Streaming list** (``use_watch_list=True``, KEP-3157): one watch with ``send_initial_events``;
  the ADDED burst is collected until the bookmark annotated ``k8s.io/initial-events-end``, replaces
  the store, and the same stream continues. A server that refuses it, or ends the stream before
  the bookmark, gets a classic list instead.

Logging says what happened once per state change (first failure: WARNING; repeats: DEBUG;
recovery: INFO), not once per retry.

Threads: :meth:`Reflector.run` runs in the caller's thread and starts one supervisor thread
(``nvinformers-watchdog-<name>``), joined before ``run`` returns. A watch opened during an outage
also starts a short-lived ``nvinformers-recovery-<name>`` thread that marks the outage over once
the watch has stayed open :data:`RECOVERED_AFTER` seconds (an idle node sends no event to mark
it); it ends after that second, or at once when ``stop`` is set.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Generic, Protocol, TypeVar

from nvinformers.cache.backoff import DEFAULT_BACKOFF, Backoff, BackoffConfig
from nvinformers.cache.clock import REAL_CLOCK, Clock, RealClock
from nvinformers.cache.keys import header_accessors, resource_version_of
from nvinformers.cache.listwatch import ListerWatcher
from nvinformers.errors import (
    BadRequestError,
    ExpiredError,
    MalformedObjectError,
    MethodNotSupportedError,
    ServiceUnavailableError,
    StatusError,
)
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
    "RECOVERED_AFTER",
    "DEFAULT_WATCH_INACTIVITY_TIMEOUT",
    "DEFAULT_MIN_WATCH_TIMEOUT",
    "revision_newer",
]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache.reflector")

#: Seconds of total silence (no event, no bookmark) after which a watch is presumed dead. Longer
#: than the Device API server's default bookmark interval, so a healthy idle watch is never cut.
DEFAULT_WATCH_INACTIVITY_TIMEOUT = 360.0
#: client-go's minimum watch timeout (the actual timeout is drawn from [min, 2 * min)).
DEFAULT_MIN_WATCH_TIMEOUT = 300.0
#: A watch that ends cleanly sooner than this with no event is an error (client-go: 1 s).
_VERY_SHORT_WATCH = 1.0
#: A watch that has stayed open this long without failing proves the server is back (a failing
#: one fails within milliseconds), even if the cluster is idle and no event has arrived yet.
RECOVERED_AFTER = 1.0

#: Called with the reflector's name and the error after each failed list-and-watch pass.
WatchErrorHandler = Callable[[str, BaseException], None]


class VeryShortWatchError(Exception):
    """A watch ended cleanly almost immediately without delivering any event."""


class ReplayedWatchError(Exception):
    """A re-watch started with ADDED events no newer than the revision it asked for.

    The server ignored the requested revision and replayed its current state (some Device API
    server builds do). Objects deleted while the reflector was not watching are absent from such
    a burst and would stay in the cache, so the reflector relists instead ("relist when in
    doubt", as the contract asks). A watch that directly follows a list is exempt: its burst is
    the list it follows.
    """


class ReflectorStore(Protocol):
    """The narrow slice of a store the reflector writes to (the informer's :class:`RealFIFO`)."""

    def add(self, obj: Any) -> None: ...

    def update(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(self, objects: list[Any], resource_version: str) -> None: ...

    def bookmark(self, resource_version: str) -> None: ...


@dataclass
class ReflectorStats:
    """Counters and state of one reflector, for metrics and health checks.

    Written only by the reflector's threads; read (without a lock: single attribute reads are
    atomic) by metrics collectors and health checks.
    """

    lists: dict[str, int] = field(default_factory=dict)  # by reason
    list_failures: int = 0
    watch_restarts: dict[str, int] = field(default_factory=dict)  # by reason
    watch_attempts: int = 0
    events: dict[str, int] = field(default_factory=dict)  # by event type
    watching: bool = False
    #: clock time of the last event or bookmark, or of the watch's start
    last_activity: float | None = None
    #: clock time the cache stopped being fed (None while a watch is healthy)
    down_since: float | None = None
    consecutive_failures: int = 0
    last_error: str = ""


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
        lw: the list-watch source.
        store: where changes go, in order (the informer's queue).
        name: used in logs, metrics and thread names (e.g. ``"gpus"``).
        watch_inactivity_timeout: seconds of silence after which a watch is restarted (None: never).
        min_watch_timeout: lower bound of the randomized server-side watch timeout.
        backoff: delays between failed attempts.
        use_watch_list: try the streaming list protocol before a classic list.
        clock: time source (tests inject a :class:`~nvinformers.cache.clock.FakeClock`).
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
        clock: Clock = REAL_CLOCK,
        rng: random.Random | None = None,
        watch_error_handler: WatchErrorHandler | None = None,
    ) -> None:
        if watch_inactivity_timeout is not None and watch_inactivity_timeout <= 0:
            raise ValueError(
                f"watch_inactivity_timeout must be > 0, got {watch_inactivity_timeout}"
            )
        if min_watch_timeout <= 0:
            raise ValueError(f"min_watch_timeout must be > 0, got {min_watch_timeout}")
        self._lw = lw
        self._store = store
        self.name = name
        self._inactivity_timeout = watch_inactivity_timeout
        self._min_watch_timeout = min_watch_timeout
        self._use_watch_list = use_watch_list
        self._clock = clock
        self._rng = rng or random.Random()
        self._backoff = Backoff(backoff, clock=clock, rng=self._rng)
        self._error_handler = watch_error_handler
        self.stats = ReflectorStats()
        # Written by the run thread only; read by anyone.
        self._last_sync_rv = ""
        self._last_sync_rv_unavailable = False
        self._watch_list_unsupported = False
        self._first_list_done = False
        # The current watch and why it was stopped, shared with the supervisor thread.
        self._watch_lock = threading.Lock()
        self._watch: WatchInterface[T] | None = None  # guarded by _watch_lock
        self._stopped_for_inactivity: WatchInterface[T] | None = None  # guarded by _watch_lock
        self._closed = False  # guarded by _watch_lock: run() is stopping; stop new watches
        self._watch_opened = 0.0  # guarded by _watch_lock: clock time the current watch opened
        # Outage bookkeeping, written by the run thread and (recovery of an idle watch) by the
        # short-lived recovery thread of _confirm_recovery: guarded by _health_lock.
        self._health_lock = threading.Lock()
        self._failing_since: float | None = None
        self._failures_in_outage = 0
        self._replays_seen = 0  # run thread only
        self._stop: threading.Event | None = None  # set once by run()

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
            if self._watch is None:
                return None
            opened = self._watch_opened
        return max(0.0, self._clock.now() - opened)

    def set_watch_error_handler(self, handler: WatchErrorHandler | None) -> None:
        """Replace the watch error handler (the informer allows this only before it starts)."""
        self._error_handler = handler

    def run(self, stop: threading.Event) -> None:
        """List and watch until ``stop`` is set. Blocks; never raises.

        Errors are logged, counted and retried under backoff. Setting ``stop`` ends a blocked
        watch promptly; a list in flight finishes first (its source bounds it with a deadline).
        """
        self._stop = stop
        supervisor = threading.Thread(
            target=self._supervise,
            args=(stop,),
            name=f"nvinformers-watchdog-{self.name}",
            daemon=True,
        )
        supervisor.start()
        try:
            while not stop.is_set():
                try:
                    self.list_and_watch(stop)
                except Exception as err:  # any failure, including bugs, is retried
                    self._on_pass_failed(err)
                if stop.is_set():
                    break
                if self._clock.wait(stop, self._backoff.next_delay()):
                    break
        finally:
            self._set_watch(None)
            supervisor.join()

    def list_and_watch(self, stop: threading.Event) -> None:
        """One pass: list (or stream-list), then watch until the watch must be abandoned.

        Returns normally when ``stop`` is set; raises the error that ended the pass otherwise.
        """
        watch: WatchInterface[T] | None = None
        if self._use_watch_list and not self._watch_list_unsupported:
            watch = self._watch_list(stop)
        if watch is None:
            if stop.is_set():
                return
            self._list()
        self._watch_loop(watch, stop)

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

    def _list(self) -> None:
        reason = self._list_reason()
        stats = self.stats
        stats.lists[reason] = stats.lists.get(reason, 0) + 1
        options = ListOptions(resource_version=self._relist_resource_version())
        try:
            result = self._lw.list(options)
        except ExpiredError:
            # The revision we asked for is gone: the next attempt reads fresh ("").
            stats.list_failures += 1
            self._last_sync_rv_unavailable = True
            raise
        except Exception:
            stats.list_failures += 1
            raise
        resource_version = result.metadata.resource_version
        self._store.replace(list(result.items), resource_version)
        self._last_sync_rv_unavailable = False
        self._last_sync_rv = resource_version
        self._first_list_done = True
        self._on_recovered()
        log.debug("listed %s at revision %s", self.name, resource_version)

    def _watch_list(self, stop: threading.Event) -> WatchInterface[T] | None:
        """Streaming list: returns the open watch after the initial events, or None to fall back."""
        reason = self._list_reason()
        stats = self.stats
        options = ListOptions(
            resource_version="" if self._last_sync_rv_unavailable else self._last_sync_rv,
            resource_version_match=RESOURCE_VERSION_MATCH_NOT_OLDER_THAN,
            send_initial_events=True,
            allow_watch_bookmarks=True,
            timeout_seconds=self._watch_timeout_seconds(),
        )
        try:
            watch = self._lw.watch(options)
            self._set_watch(watch)
            initial: list[Any] = []
            for event in watch:
                self._touch()
                etype = event.type
                if etype is EventType.ADDED:
                    initial.append(event.object)
                elif etype is EventType.BOOKMARK:
                    annotations = event.object.metadata.annotations  # type: ignore[attr-defined]
                    if annotations.get(INITIAL_EVENTS_END_ANNOTATION) == "true":
                        rv = event.object.metadata.resource_version  # type: ignore[attr-defined]
                        stats.lists[reason] = stats.lists.get(reason, 0) + 1
                        self._store.replace(initial, rv)
                        self._last_sync_rv_unavailable = False
                        self._last_sync_rv = rv
                        self._first_list_done = True
                        return watch
                else:
                    # Only ADDED and bookmarks may precede the end of the initial events.
                    log.warning(
                        "%s: streaming list got %s before the initial-events-end bookmark; "
                        "falling back to a classic list",
                        self.name,
                        etype,
                    )
                    break
            else:
                if not stop.is_set():
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
            self._set_watch(None)
            raise
        except Exception:
            self._set_watch(None)
            raise
        self._set_watch(None)
        return None

    # ----------------------------------------------------------------------------- watching

    def _watch_timeout_seconds(self) -> int:
        low = self._min_watch_timeout
        return int(low + self._rng.random() * low)

    def _watch_loop(self, watch: WatchInterface[T] | None, stop: threading.Event) -> None:
        clock = self._clock
        stats = self.stats
        # The first watch of a pass follows a list (or is the streaming list): a server replaying
        # its state on it repeats that list. Later re-watches are checked for replays.
        after_list = True
        start_rv = self._last_sync_rv
        while not stop.is_set():
            if watch is None:
                start_rv = self._last_sync_rv
                options = ListOptions(
                    resource_version=self._last_sync_rv,
                    allow_watch_bookmarks=True,
                    timeout_seconds=self._watch_timeout_seconds(),
                )
                stats.watch_attempts += 1
                try:
                    watch = self._lw.watch(options)
                except ServiceUnavailableError as err:
                    # client-go: connection refused at watch start → back off, re-watch.
                    self._note_failure(err)
                    if clock.wait(stop, self._backoff.next_delay()):
                        return
                    continue
                self._set_watch(watch)
            started = clock.now()
            count = 0
            detect_replay = not after_list
            after_list = False
            try:
                count = self._consume(watch, start_rv if detect_replay else "")
            except ReplayedWatchError as err:
                self._set_watch(None)
                self._restart("replayed")
                self._replays_seen += 1
                if self._replays_seen == 1:
                    log.info("%s: %s; relisting (and after every such re-watch)", self.name, err)
                raise
            except ServiceUnavailableError as err:
                self._set_watch(None)
                watch = None
                if count == 0 and self.stats.down_since is not None:
                    # The server is still unreachable: back off before the next attempt.
                    self._note_failure(err)
                    if clock.wait(stop, self._backoff.next_delay()):
                        return
                    continue
                # The stream broke (server restart): re-watch from the last revision.
                self._restart("unavailable")
                self._note_failure(err)
                continue
            except ExpiredError:
                self._set_watch(None)
                self._restart("expired")
                raise
            except MalformedObjectError:
                self._set_watch(None)
                self._restart("malformed")
                raise
            except Exception:
                self._set_watch(None)
                self._restart("error")
                raise
            stopped_for_inactivity = self._take_inactivity_flag(watch)
            self._set_watch(None)
            watch = None
            if stop.is_set():
                return
            if stopped_for_inactivity:
                log.warning(
                    "%s: watch delivered nothing for %.0f s; restarting it",
                    self.name,
                    self._inactivity_timeout,
                )
                self._restart("inactivity")
                continue
            if count == 0 and clock.now() - started < _VERY_SHORT_WATCH:
                self._restart("very_short")
                raise VeryShortWatchError(
                    f"{self.name}: watch ended after less than {_VERY_SHORT_WATCH:.0f} s "
                    "without any event"
                )
            self._restart("closed")

    def _consume(self, watch: WatchInterface[T], replay_below: str = "") -> int:
        """Feed one watch's events into the store; return how many arrived. The hot loop.

        With ``replay_below`` (the revision the watch asked for), an ADDED event no newer than it
        raises :class:`ReplayedWatchError` before it is applied.
        """
        store = self._store
        add, update, delete = store.add, store.update, store.delete
        stats = self.stats
        events = stats.events
        # The real clock's now() is time.monotonic(): call it directly (once per event).
        now = time.monotonic if isinstance(self._clock, RealClock) else self._clock.now
        added, modified, deleted, bookmark = (
            EventType.ADDED,
            EventType.MODIFIED,
            EventType.DELETED,
            EventType.BOOKMARK,
        )
        event_names = _EVENT_NAMES
        count = 0
        recovered = False
        last_cls: type | None = None
        rv_of: Callable[[Any], Any] = resource_version_of
        for event in watch:
            stats.last_activity = now()
            if not recovered:
                recovered = True
                self._on_recovered()
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
                if (
                    not current
                    # revision_newer(rv, current) is not False, inlined for the usual case:
                    # equal-length decimal revisions compare as strings.
                    or (
                        rv > current
                        if len(rv) == len(current) and rv.isdigit() and current.isdigit()
                        else revision_newer(rv, current) is not False
                    )
                ):
                    self._last_sync_rv = rv
        return count

    def _restart(self, reason: str) -> None:
        restarts = self.stats.watch_restarts
        restarts[reason] = restarts.get(reason, 0) + 1

    # --------------------------------------------------------------- supervision and health

    def _touch(self) -> None:
        self.stats.last_activity = self._clock.now()

    def _set_watch(self, watch: WatchInterface[T] | None) -> None:
        with self._watch_lock:
            previous = self._watch
            closed = self._closed
            self._watch = None if closed else watch
            if watch is not None:
                self.stats.last_activity = self._watch_opened = self._clock.now()
        self.stats.watching = watch is not None and not closed
        if previous is not None and previous is not watch:
            previous.stop()
        if closed and watch is not None:
            # Opened while run() was being stopped, after the supervisor's last look: stop it
            # here, or its iteration could block shutdown.
            watch.stop()
        elif watch is not None and self.stats.down_since is not None and self._stop is not None:
            # A watch opened during an outage. If it has nothing to say, no event will mark the
            # recovery and the supervisor may sleep for its whole inactivity period: a short-lived
            # thread confirms it once the watch has stayed open RECOVERED_AFTER seconds.
            threading.Thread(
                target=self._confirm_recovery,
                args=(watch, self._stop),
                name=f"nvinformers-recovery-{self.name}",
                daemon=True,
            ).start()

    def _confirm_recovery(self, watch: WatchInterface[T], stop: threading.Event) -> None:
        """Mark the outage over if ``watch`` is still the open watch after RECOVERED_AFTER."""
        try:
            if self._clock.wait(stop, RECOVERED_AFTER):
                return
            with self._watch_lock:
                current = self._watch is watch
            if current and self.stats.down_since is not None:
                self._on_recovered()
        except Exception:  # never die silently
            log.exception("%s: recovery check failed", self.name)

    def _take_inactivity_flag(self, watch: WatchInterface[T]) -> bool:
        with self._watch_lock:
            if self._stopped_for_inactivity is watch:
                self._stopped_for_inactivity = None
                return True
            return False

    def _supervise(self, stop: threading.Event) -> None:
        """Stop the current watch when ``stop`` is set or when it has been silent too long."""
        clock = self._clock
        limit = self._inactivity_timeout
        try:
            while True:
                timeout = limit
                with self._watch_lock:
                    watch = self._watch
                    last = self.stats.last_activity
                if limit is not None and watch is not None and last is not None:
                    idle = clock.now() - last
                    if idle >= limit:
                        with self._watch_lock:
                            if self._watch is watch:
                                self._stopped_for_inactivity = watch
                        watch.stop()
                        timeout = limit
                    else:
                        timeout = limit - idle
                if clock.wait(stop, timeout):
                    break
        except Exception:  # never let the supervisor die silently
            log.exception("%s: watch supervisor failed", self.name)
        finally:
            with self._watch_lock:
                self._closed = True
                watch = self._watch
            if watch is not None:
                watch.stop()

    def _note_failure(self, err: BaseException) -> None:
        stats = self.stats
        stats.consecutive_failures += 1
        stats.last_error = f"{type(err).__name__}: {err}"
        with self._health_lock:
            if stats.down_since is None:
                stats.down_since = self._clock.now()
            first = self._failing_since is None
            if first:
                self._failing_since = self._clock.now()
                self._failures_in_outage = 0
            self._failures_in_outage += 1
        if first:
            log.warning("%s: list/watch failing: %s; retrying with backoff", self.name, err)
        else:
            log.debug("%s: list/watch still failing: %s", self.name, err)

    def _on_recovered(self) -> None:
        """The server answers again (an event, a list, or an idle watch that stays open).

        Called by the run thread and by :meth:`_confirm_recovery`; logs the recovery once.
        """
        stats = self.stats
        with self._health_lock:
            stats.down_since = None
            stats.consecutive_failures = 0
            since, failures = self._failing_since, self._failures_in_outage
            self._failing_since = None
        if since is not None:
            log.info(
                "%s: list/watch recovered after %d failed attempts over %.1f s",
                self.name,
                failures,
                self._clock.now() - since,
            )

    def _on_pass_failed(self, err: BaseException) -> None:
        if isinstance(err, ExpiredError | VeryShortWatchError | ReplayedWatchError):
            # Routine: the informer relists. client-go logs expiry at V(4).
            log.debug("%s: %s; relisting", self.name, err)
            self.stats.last_error = f"{type(err).__name__}: {err}"
        elif not isinstance(err, StatusError):
            log.error("%s: unexpected error in list/watch; retrying", self.name, exc_info=err)
            self._note_failure(err)
        else:
            self._note_failure(err)
        handler = self._error_handler
        if handler is not None:
            try:
                handler(self.name, err)
            except Exception:
                log.exception("%s: watch error handler raised", self.name)
