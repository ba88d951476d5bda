"""The one clock of nvinformers: a monotonic ``now`` and waits that a test can drive by hand.

Mirrors ``k8s.io/utils/clock``, which serves both client-go's reflector and its delaying queue:
every time-dependent part of the library (the reflector's backoff and watch inactivity, the
informer's resync, delayed adds, the token bucket, queue and call-duration metrics, the reconcile
loop) reads time through a :class:`Clock`, so that tests drive time with :class:`FakeClock`
instead of sleeping.

Time is a float number of seconds on an arbitrary, monotonic scale (``time.monotonic`` for the real
clock); only differences between two readings of the same clock are meaningful.

The library waits on two primitives, so a clock has two waits, and both go through the clock
because a timed wait measures real time: with a fake clock, a thread waiting for "the clock to
reach t" must be woken by :meth:`FakeClock.step`, not by the operating system's timer.

* :meth:`Clock.wait` sleeps unless a stop event is set (backoff, resync, inactivity checks):
  Go's ``select { case <-stop: case <-clock.After(d): }``.
* :meth:`Clock.wait_until` is a timed ``Condition.wait`` (a queue waiting for an item or for the
  time an item becomes ready).

This module imports nothing else of nvinformers, so every package may use it (the workqueue
included, which depends on nothing else of ours; ``make imports`` checks both).
"""

from __future__ import annotations

import math
import threading
import time
from typing import Protocol, runtime_checkable

__all__ = ["Clock", "RealClock", "FakeClock", "REAL_CLOCK"]


@runtime_checkable
class Clock(Protocol):
    """A source of monotonic time that can also wait for a moment in that time.

    Implementations must be thread-safe.
    """

    def now(self) -> float:
        """Return the current time in seconds on this clock's monotonic scale."""
        ...

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Block until ``event`` is set or ``timeout`` seconds of this clock have passed.

        Blocking: up to ``timeout`` seconds of this clock; ``None`` waits for the event only.

        Args:
            event: ends the wait early when set (usually a stop event).
            timeout: seconds on this clock, or ``None``.

        Returns:
            True if ``event`` is set, False if the time ran out first.
        """
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
    """The process's monotonic clock (``time.monotonic``); waits use real time.

    Stateless and thread-safe; :data:`REAL_CLOCK` is the shared instance.
    """

    __slots__ = ()

    # Returns time.monotonic(). The C function itself rather than a method that calls it: the
    # reflector reads the clock once per watch event and a named queue three times per item.
    now = staticmethod(time.monotonic)

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """``event.wait(timeout)``; see :meth:`Clock.wait`."""
        return event.wait(timeout)

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


#: The real clock, the default of every ``clock=`` parameter.
REAL_CLOCK = RealClock()


class _Waiter:
    """One thread blocked in :meth:`FakeClock.wait` or :meth:`FakeClock.wait_until`."""

    __slots__ = ("cond", "deadline", "due")

    def __init__(self, cond: threading.Condition, deadline: float) -> None:
        self.cond = cond
        self.deadline = deadline
        self.due = False  # set under the clock's lock when the fake time reaches the deadline


class FakeClock:
    """A clock that moves only when told to, for deterministic tests (k8s ``FakeClock``).

    Semantics: :meth:`now` returns the fake time, which starts at ``start`` and only moves
    forward through :meth:`step` or :meth:`set_time`. A thread blocked in :meth:`wait` or
    :meth:`wait_until` is woken exactly when the fake time reaches its deadline
    (``now() >= deadline``): the thread that moves the clock wakes it before :meth:`step` returns,
    and from then on it no longer counts as waiting. Waiting threads are registered with the clock
    while they wait, so a test can block until the code under test has gone back to sleep
    (:meth:`block_until_waiters`) and then assert on its state, or step the clock, without races.

    A :meth:`wait` also ends when its event is set. An event cannot notify the clock, so that
    waiter re-checks its event every few milliseconds of real time; fake time itself wakes it at
    once.

    Thread-safety: all methods are thread-safe. :meth:`step` and :meth:`set_time` acquire the
    lock of each condition whose waiter is due, so they must not be called while holding one.

    Args:
        start: the initial fake time in seconds.
    """

    # How often (real seconds) a wait() re-checks its event; see the class docstring.
    _EVENT_POLL = 0.005

    def __init__(self, start: float = 0.0) -> None:
        # _lock guards _now, _waiters and each waiter's `due`. Lock order: a waiter's condition
        # lock may be held when _lock is taken (in the waits), never the reverse: _fire()
        # releases _lock before it notifies the due conditions.
        self._lock = threading.Lock()
        # _changed is notified whenever the set of registered waiters changes.
        self._changed = threading.Condition(self._lock)
        self._now = float(start)
        # Threads currently waiting. A waiter whose deadline has been reached is removed by the
        # thread that moved the clock, so it no longer counts as waiting.
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
            due = self._move_locked(self._now + seconds)
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
            due = self._move_locked(float(t))
        self._fire(due)

    def wait(self, event: threading.Event, timeout: float | None) -> bool:
        """Block until ``event`` is set or the fake time has moved on by ``timeout``.

        See :meth:`Clock.wait`. No real-time timeout applies: only the event or a :meth:`step` /
        :meth:`set_time` reaching the deadline ends the wait.
        """
        if event.is_set():
            return True
        if timeout is not None and timeout <= 0:
            return False
        cond = threading.Condition()  # notified by the step() that finds this waiter due
        with cond:
            with self._lock:
                deadline = math.inf if timeout is None else self._now + timeout
                waiter = self._register_locked(cond, deadline)
            try:
                while not event.is_set():
                    if waiter.due:
                        return False
                    cond.wait(self._EVENT_POLL)
                return True
            finally:
                self._unregister(waiter)

    def wait_until(self, cond: threading.Condition, deadline: float | None) -> None:
        """Wait on ``cond`` until notified or until the fake time reaches ``deadline``.

        See :meth:`Clock.wait_until`. No real-time timeout applies: only a notification of ``cond``
        or a :meth:`step` / :meth:`set_time` reaching ``deadline`` ends the wait.
        """
        with self._lock:
            if deadline is not None and deadline <= self._now:
                return
            waiter = self._register_locked(cond, math.inf if deadline is None else deadline)
        try:
            # The caller holds cond's lock, so a concurrent step() that found this waiter due
            # blocks in _fire() until cond.wait() has released the lock: the wake-up is not lost.
            cond.wait()
        finally:
            self._unregister(waiter)

    def waiters(self) -> list[float]:
        """Return the deadlines of the threads waiting on this clock, sorted.

        A thread waiting without a deadline is reported as ``math.inf``.
        """
        with self._lock:
            return sorted(w.deadline for w in self._waiters)

    def block_until_waiters(
        self, count: int = 1, *, deadline: float | None = None, timeout: float = 10.0
    ) -> bool:
        """Block until at least ``count`` threads wait on this clock (for ``deadline``, if given).

        Use it to let the code under test settle: after an action, wait until its threads are
        asleep again (for the expected deadline), then assert or step the clock.
        ``deadline=math.inf`` matches threads that wait without a deadline.

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

    def _register_locked(self, cond: threading.Condition, deadline: float) -> _Waiter:
        """Register a waiter. Caller holds ``_lock``."""
        waiter = _Waiter(cond, deadline)
        self._waiters.append(waiter)
        self._changed.notify_all()
        return waiter

    def _unregister(self, waiter: _Waiter) -> None:
        """Remove a waiter that stops waiting, unless the clock already removed it as due."""
        with self._lock:
            if not waiter.due:
                self._waiters.remove(waiter)
                self._changed.notify_all()

    def _move_locked(self, now: float) -> list[_Waiter]:
        """Set the time to ``now``; remove, mark and return the waiters whose deadline is
        reached. Caller holds ``_lock``."""
        self._now = now
        due = [w for w in self._waiters if w.deadline <= now]
        if due:
            for waiter in due:
                waiter.due = True
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
