"""Clocks for the workqueue: the real monotonic clock and a fake one for tests.

Mirrors ``k8s.io/utils/clock`` as used by client-go's workqueue: every time-dependent part of
the package (delayed adds, the token bucket, duration metrics) reads time through a
:class:`Clock` so that tests can drive time by hand with :class:`FakeClock` instead of sleeping.

Time is a float number of seconds on an arbitrary, monotonic scale (``time.monotonic`` for the real
clock); only differences between two readings of the same clock are meaningful.

Waiting goes through the clock too (:meth:`Clock.wait_until`), because a timed wait on a
``threading.Condition`` measures real time: with a fake clock, a thread waiting for "the clock
to reach t" must be woken by :meth:`FakeClock.step`, not by the operating system's timer.
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "FakeClock"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time that can also wait for a moment in that time.

    Implementations must be thread-safe.
    """

    def now(self) -> float:
        """Return the current time in seconds on this clock's monotonic scale."""
        ...

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` until it is notified or this clock reaches ``deadline``.

        The caller must hold ``cond``'s lock, exactly as for ``Condition.wait``; the lock is
        released while waiting and held again on return. Like ``Condition.wait``, this may return
        early (notification, spurious wake-up): callers re-check their predicate and the time in
        a loop.

        Args:
            cond: the condition to wait on; its lock is held by the caller.
            deadline: the time on this clock at which to stop waiting, or ``None`` to wait only
                for a notification. A deadline that has already passed returns at once.
        """
        ...


class RealClock:
    """The process's monotonic clock (``time.monotonic``); timed waits use real time.

    Stateless and thread-safe.
    """

    __slots__ = ()

    # Returns time.monotonic(). The C function itself rather than a method that calls it: the
    # metrics of a named queue read the clock three times per item.
    now = staticmethod(time.monotonic)

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` until notified or until ``time.monotonic()`` reaches ``deadline``.

        See :meth:`Clock.wait_until`.
        """
        if deadline is None:
            cond.wait()
            return
        timeout = deadline - time.monotonic()
        if timeout > 0:
            cond.wait(timeout)

    def __repr__(self) -> str:
        return "RealClock()"


class _Waiter:
    """One thread blocked in :meth:`FakeClock.wait_until`."""

    __slots__ = ("cond", "deadline")

    def __init__(self, cond: threading.Condition, deadline: float) -> None:
        self.cond = cond
        self.deadline = deadline


class FakeClock:
    """A clock that moves only when told to, for deterministic tests (client-go's ``FakeClock``).

    Semantics: :meth:`now` returns the fake time, which starts at ``start`` and only moves
    forward through :meth:`step` or :meth:`set_time`. A thread blocked in :meth:`wait_until` with
    a deadline is woken exactly when the fake time reaches that deadline (``now() >= deadline``):
    the thread that moves the clock notifies it before :meth:`step` returns. Waiting threads are
    registered with the clock while they wait, so a test can block until the code under test has
    gone back to sleep (:meth:`block_until_waiters`) and then assert on its state without races.

    Thread-safety: all methods are thread-safe. :meth:`step` and :meth:`set_time` acquire the
    lock of each condition whose waiter is due, so they must not be called while holding one.

    Args:
        start: the initial fake time in seconds.
    """

    def __init__(self, start: float = 0.0) -> None:
        # _lock guards _now and _waiters. Lock order: a waiter's condition lock may be held when
        # _lock is taken (in wait_until), never the reverse: _fire() releases _lock before it
        # notifies the due conditions.
        self._lock = threading.Lock()
        # _changed is notified whenever the set of registered waiters changes.
        self._changed = threading.Condition(self._lock)
        self._now = float(start)
        # Threads currently blocked in wait_until. A waiter whose deadline has been reached is
        # removed by the thread that moved the clock, so it no longer counts as waiting.
        self._waiters: list[_Waiter] = []

    def now(self) -> float:
        """Return the current fake time."""
        with self._lock:
            return self._now

    def step(self, seconds: float) -> None:
        """Advance the fake time by ``seconds`` and wake every waiter that is now due.

        Raises:
            ValueError: ``seconds`` is negative or not a finite number.
        """
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"FakeClock.step: seconds must be finite and >= 0, got {seconds!r}")
        with self._lock:
            self._now += seconds
            due = self._take_due_locked()
        self._fire(due)

    def set_time(self, t: float) -> None:
        """Move the fake time to ``t`` and wake every waiter that is now due.

        Raises:
            ValueError: ``t`` is earlier than the current fake time (time never goes backwards on a
                monotonic clock) or not finite.
        """
        if not math.isfinite(t):
            raise ValueError(f"FakeClock.set_time: t must be finite, got {t!r}")
        with self._lock:
            if t < self._now:
                raise ValueError(
                    f"FakeClock.set_time: cannot move back from {self._now!r} to {t!r}"
                )
            self._now = float(t)
            due = self._take_due_locked()
        self._fire(due)

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` until notified or until the fake time reaches ``deadline``.

        See :meth:`Clock.wait_until`. No real-time timeout applies: only a notification of ``cond``
        or a :meth:`step` / :meth:`set_time` reaching ``deadline`` ends the wait.
        """
        with self._lock:
            if deadline is not None and deadline <= self._now:
                return
            waiter = _Waiter(cond, math.inf if deadline is None else deadline)
            self._waiters.append(waiter)
            self._changed.notify_all()
        try:
            # The caller holds cond's lock, so a concurrent step() that found this waiter due
            # blocks in _fire() until cond.wait() has released the lock: the wake-up is not lost.
            cond.wait()
        finally:
            with self._lock:
                try:
                    self._waiters.remove(waiter)
                except ValueError:
                    pass  # already removed by the step() that woke us
                else:
                    self._changed.notify_all()

    def waiters(self) -> list[float]:
        """Return the deadlines of the threads blocked in :meth:`wait_until`, sorted.

        A thread waiting without a deadline is reported as ``math.inf``.
        """
        with self._lock:
            return sorted(w.deadline for w in self._waiters)

    def block_until_waiters(
        self, count: int = 1, *, deadline: float | None = None, timeout: float = 10.0
    ) -> bool:
        """Block until at least ``count`` threads wait on this clock (for ``deadline``, if given).

        Use it to let the code under test settle: after an action, wait until its thread is asleep
        again (for the expected deadline), then assert. ``deadline=math.inf`` matches threads that
        wait without a deadline.

        Blocking: up to ``timeout`` seconds of real time.

        Args:
            count: the number of waiting threads to wait for.
            deadline: if set, count only threads waiting for exactly this fake time.
            timeout: real seconds to wait at most.

        Returns:
            True if the condition was met, False on timeout.
        """

        def enough() -> bool:
            if deadline is None:
                return len(self._waiters) >= count
            return sum(1 for w in self._waiters if w.deadline == deadline) >= count

        with self._lock:
            return self._changed.wait_for(enough, timeout)

    def _take_due_locked(self) -> list[_Waiter]:
        """Remove and return the waiters whose deadline is reached. Caller holds ``_lock``."""
        now = self._now
        due = [w for w in self._waiters if w.deadline <= now]
        if due:
            self._waiters = [w for w in self._waiters if w.deadline > now]
            self._changed.notify_all()
        return due

    @staticmethod
    def _fire(due: list[_Waiter]) -> None:
        """Notify the conditions of due waiters. Caller must not hold ``_lock``."""
        for waiter in due:
            with waiter.cond:
                waiter.cond.notify_all()

    def __repr__(self) -> str:
        return f"FakeClock(now={self.now()!r})"
