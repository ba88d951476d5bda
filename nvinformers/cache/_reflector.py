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
* **What ends a watch, and what follows**: client-go's relist/re-watch table, decided in one
  place, :func:`classify` (the table: :mod:`nvinformers.cache._reflector_errors`).
* **Backoff** is client-go's: 800 ms doubling to 30 s, jitter 1.0, reset after 2 minutes without
  backing off. Every pass of list-and-watch is followed by a backoff delay, as in client-go.
* **Revision tracking** from events and bookmarks; it never moves backwards when revisions are
  decimal integers, and opaque ones are kept as they are (:mod:`nvinformers.cache._revisions`).
* **Stopping** cancels the calls in flight at once, list and watch alike (client-go returns from
  a stopped ``ListAndWatch`` without waiting for its list): a source that implements
  :class:`~nvinformers.cache._listwatch.CancellableLister` gets a
  :class:`~nvinformers.cancel.CancelToken` that fires when ``stop`` is set, and the open watch is
  stopped. A server that never answers cannot hold a shutdown.
* **Progress check.** A watch silent for ``watch_inactivity_timeout`` is stopped, and a relist
  tells an idle server from a frozen stream (:mod:`nvinformers.cache._list_phase`).
* **Streaming list** (``use_watch_list=True``, KEP-3157), with client-go's fallbacks to a classic
  list (:mod:`nvinformers.cache._list_phase`).

The layers, each a module named for its concept, stack into :class:`Reflector`:
:mod:`~nvinformers.cache._reflector_state` (configuration, counters, state),
:mod:`~nvinformers.cache._revisions`, :mod:`~nvinformers.cache._open_watch` (the open watch and
its supervisor), :mod:`~nvinformers.cache._list_phase`, :mod:`~nvinformers.cache._watch_loop`,
and this module (running, stopping, and what a failed pass does).

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
import threading
from typing import TypeVar

from nvinformers.cache._reflector_errors import (
    ReplayedWatchError,
    Verdict,
    VeryShortWatchError,
    WatchErrorHandler,
    classify,
)
from nvinformers.cache._reflector_state import (
    DEFAULT_INITIAL_EVENTS_TIMEOUT,
    DEFAULT_MIN_WATCH_TIMEOUT,
    DEFAULT_WATCH_INACTIVITY_TIMEOUT,
    ReflectorStats,
    ReflectorStore,
)
from nvinformers.cache._revisions import revision_newer
from nvinformers.cache._watch_loop import WatchLoop
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


class Reflector(WatchLoop[T]):
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

    # ----------------------------------------------------------------------------- public API

    def last_sync_resource_version(self) -> str:
        """The last revision the reflector saw (list, event or bookmark); "" before the first list.

        Not synchronised with the store: events up to it may still be queued (client-go's
        ``LastSyncResourceVersion``).
        """
        return self._last_sync_rv

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

    # ---------------------------------------------------------------- stopping and supervision

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
