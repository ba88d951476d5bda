"""Time as the cache sees it: a monotonic ``now`` and an interruptible ``wait``.

Injected into the reflector (backoff, watch inactivity) and the informer (resync) so that tests can
drive time deterministically with :class:`FakeClock` instead of sleeping.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

__all__ = ["Clock", "RealClock", "FakeClock", "REAL_CLOCK"]


class Clock(Protocol):
    """A monotonic clock whose waits end early when a stop event is set."""

    def now(self) -> float:
        """Monotonic seconds (only differences are meaningful)."""
        ...

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Block until ``event`` is set (return True) or ``timeout`` seconds pass (return False).

        ``timeout=None`` waits for the event only.
        """
        ...


class RealClock:
    """The wall clock: ``time.monotonic`` and ``Event.wait``."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        return event.wait(timeout)


REAL_CLOCK = RealClock()


class FakeClock:
    """A clock that moves only when a test calls :meth:`step`.

    Waiters block until the fake time reaches their deadline or their event is set. Tests call
    :meth:`wait_for_waiters` to know that the code under test is blocked on the clock before
    stepping it, which makes timing-dependent behaviour deterministic.

    Thread-safety: all methods may be called from any thread.
    """

    # How often a waiter re-checks its event: an Event cannot notify our Condition, so the waiter
    # polls it. Only the event side polls; fake time itself wakes waiters immediately.
    _EVENT_POLL = 0.005

    def __init__(self, start: float = 1000.0) -> None:
        self._cond = threading.Condition()
        self._now = start  # guarded by _cond
        self._waiters = 0  # guarded by _cond: threads blocked in wait()

    def now(self) -> float:
        with self._cond:
            return self._now

    def step(self, seconds: float) -> None:
        """Advance the fake time and wake every waiter whose deadline has passed."""
        with self._cond:
            self._now += seconds
            self._cond.notify_all()

    @property
    def waiters(self) -> int:
        with self._cond:
            return self._waiters

    def wait_for_waiters(self, count: int = 1, timeout: float = 10.0) -> bool:
        """Block (in real time) until at least ``count`` threads wait on this clock."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._waiters < count:
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    return False
                self._cond.wait(min(remaining, self._EVENT_POLL))
        return True

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        with self._cond:
            deadline = None if timeout is None else self._now + timeout
            self._waiters += 1
            self._cond.notify_all()
            try:
                while True:
                    if event.is_set():
                        return True
                    if deadline is not None and self._now >= deadline:
                        return False
                    self._cond.wait(self._EVENT_POLL)
            finally:
                self._waiters -= 1
