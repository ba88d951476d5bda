"""The open watch, shared by three threads, and the supervisor that stops it past its deadline.

The run thread opens and closes watches, the cancel callback stops the open one when the
reflector stops, and the supervisor (``nvinformers-watchdog-<name>``) stops it when it has been
silent for ``watch_inactivity_timeout`` (a progress check follows) or when a streaming list is
past its ``initial_events_timeout`` (a classic list follows). ``_watch_lock`` guards the fields.
"""

from __future__ import annotations

import logging
from typing import TypeVar

from nvinformers.cache._reflector_state import ReflectorState
from nvinformers.watch import Interface as WatchInterface

__all__ = ["OpenWatch", "SILENT", "NO_INITIAL_END"]

T = TypeVar("T")

log = logging.getLogger("nvinformers.cache._reflector")

#: Why the supervisor stopped the open watch.
SILENT = "silent"  # silent for the inactivity timeout: a progress check follows
NO_INITIAL_END = "no initial-events-end"  # a streaming list past initial_events_timeout


class OpenWatch(ReflectorState[T]):
    """The reflector's open watch and its supervisor."""

    def watch_open_for(self) -> float | None:
        """Seconds the current watch has been open (None when no watch is open)."""
        with self._watch_lock:
            if self._current is None:
                return None
            opened = self._watch_opened
        return max(0.0, self._clock.now() - opened)

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
        stopped it: :data:`SILENT`, :data:`NO_INITIAL_END` or None)."""
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
                    NO_INITIAL_END,
                )
            else:
                last = self.health.last_activity
                since = self._watch_opened if last is None else max(last, self._watch_opened)
                limit, why = self._inactivity_timeout, SILENT
            if limit is None:
                return None
            left = since + limit - self._clock.now()
            if left > 0:
                return left
            self._stopped_by_supervisor = (watch, why)
        if why == SILENT:
            self.health.progress_check_due()
        watch.stop()
        return None
