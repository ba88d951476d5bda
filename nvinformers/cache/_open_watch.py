"""The open watch, shared by three threads, and the supervisor that stops it past its deadline.

The reflector's run thread opens and closes watches, its cancel callback stops the open one when
the reflector stops, and the supervisor (``nvinformers-watchdog-<name>``, running
:meth:`OpenWatch.supervise`) stops it when it has been silent for ``watch_inactivity_timeout``
(a progress check follows) or when a streaming list is past its ``initial_events_timeout`` (a
classic list follows), and wakes for the deadlines the reflector's health hands out.
"""

from __future__ import annotations

import logging
import threading
from typing import Any

from nvinformers.cache._reflector_health import ReflectorHealth
from nvinformers.cancel import CancelToken
from nvinformers.clock import Clock
from nvinformers.watch import Interface as WatchInterface

__all__ = ["OpenWatch", "SILENT", "NO_INITIAL_END"]

log = logging.getLogger("nvinformers.cache.reflector")

#: Why the supervisor stopped the open watch.
SILENT = "silent"  # silent for the inactivity timeout: a progress check follows
NO_INITIAL_END = "no initial-events-end"  # a streaming list past initial_events_timeout


class OpenWatch:
    """A reflector's open watch and its supervisor (the reflector owns one, and its ``health``).

    The supervisor sleeps on ``wake`` (set when a deadline may have moved earlier, or when
    stopping); a watch set once ``cancel`` fired is stopped at once; a None timeout: no deadline.

    Thread-safety: every method may be called from any thread; ``_lock`` guards the open watch
    and its fields. :meth:`supervise` blocks until ``cancel`` fires; the others block only on
    the lock (``watch.stop()`` is called outside it).
    """

    def __init__(
        self,
        name: str,
        *,
        health: ReflectorHealth,
        cancel: CancelToken,
        wake: threading.Event,
        clock: Clock,
        inactivity_timeout: float | None,
        initial_events_timeout: float | None,
    ) -> None:
        self._name = name
        self._health = health
        self._cancel = cancel
        self._wake = wake
        self._clock = clock
        self._inactivity_timeout = inactivity_timeout
        self._initial_events_timeout = initial_events_timeout
        self._lock = threading.Lock()
        self._watch: WatchInterface[Any] | None = None  # guarded by _lock: the open watch
        self._opened = 0.0  # guarded by _lock: clock time the open watch opened
        # guarded by _lock: the open watch streams a list's initial events
        self._streaming = False
        # guarded by _lock: (the watch the supervisor stopped, why), until it is closed
        self._stopped_by_supervisor: tuple[WatchInterface[Any], str] | None = None

    def open_for(self) -> float | None:
        """Seconds the current watch has been open (None when no watch is open)."""
        with self._lock:
            if self._watch is None:
                return None
            opened = self._opened
        return max(0.0, self._clock.now() - opened)

    def set(self, watch: WatchInterface[Any], streaming: bool = False) -> bool:
        """Make ``watch`` the open watch; False (and the watch stopped) if stopping.

        ``streaming``: it carries a streaming list's initial events (a list, for health and the
        supervisor, until :meth:`streamed`).
        """
        with self._lock:
            if not self._cancel.cancelled():
                self._watch = watch
                self._opened = self._clock.now()
                self._streaming = streaming
                if streaming:
                    self._wake.set()  # a new deadline for the supervisor
                else:
                    self._health.watch_opened()  # which wakes the supervisor
                return True
        # Opened while stopping, after the cancel callback's last look: stop it here, or its
        # iteration could block shutdown.
        watch.stop()
        return False

    def streamed(self, watch: WatchInterface[Any]) -> None:
        """The streaming list's initial events are in: from now on ``watch`` is a watch that
        works (it delivered the end bookmark)."""
        with self._lock:
            if self._watch is watch:
                self._streaming = False
                self._opened = self._clock.now()
        self._health.watch_opened()
        self._health.watch_delivered()
        self._wake.set()  # the supervisor's deadline for this watch changed

    def close(self, watch: WatchInterface[Any]) -> tuple[bool, str | None]:
        """Stop ``watch`` and forget it. Returns (it had been working, why the supervisor
        stopped it: :data:`SILENT`, :data:`NO_INITIAL_END` or None)."""
        with self._lock:
            stopped = self._stopped_by_supervisor
            stopped_for = stopped[1] if stopped is not None and stopped[0] is watch else None
            self._stopped_by_supervisor = None
            if self._watch is watch:
                self._watch = None
                self._streaming = False
            working = self._health.watch_ended()
        watch.stop()
        return working, stopped_for

    def stopped_for(self, watch: WatchInterface[Any]) -> str | None:
        """Why the supervisor stopped ``watch`` (None: it did not)."""
        with self._lock:
            stopped = self._stopped_by_supervisor
        return stopped[1] if stopped is not None and stopped[0] is watch else None

    def stop(self) -> None:
        """Cancel callback: stop the open watch (its iteration then ends at once)."""
        with self._lock:
            watch = self._watch
        if watch is not None:
            watch.stop()

    def supervise(self) -> None:
        """The supervisor: sleep until the next deadline (or a wake-up), then act on it."""
        clock, wake, cancel, health = self._clock, self._wake, self._cancel, self._health
        try:
            while not cancel.cancelled():
                wake.clear()
                delay = health.check()
                watch_in = self._check_deadline()
                if watch_in is not None:
                    delay = watch_in if delay is None else min(delay, watch_in)
                if cancel.cancelled():
                    break
                clock.wait(wake, delay)
        except Exception:  # never let the supervisor die silently
            log.exception("%s: watch supervisor failed", self._name)

    def _check_deadline(self) -> float | None:
        """Stop the open watch once its deadline passed; return the seconds until it is due
        (None: no open watch, no deadline, or already stopped).

        The deadline of a watch is ``inactivity_timeout`` after its start or its last activity,
        whichever is later (then a progress check follows, and health is told it is due); that
        of a streaming list's initial events is ``initial_events_timeout`` after it opened
        (then a classic list follows).
        """
        with self._lock:
            watch = self._watch
            if watch is None or self._stopped_by_supervisor is not None:
                return None
            if self._streaming:
                limit, since, why = self._initial_events_timeout, self._opened, NO_INITIAL_END
            else:
                last = self._health.last_activity
                since = self._opened if last is None else max(last, self._opened)
                limit, why = self._inactivity_timeout, SILENT
            if limit is None:
                return None
            left = since + limit - self._clock.now()
            if left > 0:
                return left
            self._stopped_by_supervisor = (watch, why)
        if why == SILENT:
            self._health.progress_check_due()
        watch.stop()
        return None
