"""The one clock: the real clock's waits end, the fake clock wakes waiters exactly on time."""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from nvinformers.clock import REAL_CLOCK, Clock, FakeClock, RealClock

# Real-time bound for waits that only guard against a hang (never part of what is asserted).
GUARD = 10.0


class Threads:
    """Runs callables on named threads and keeps what they return (or raise)."""

    def __init__(self) -> None:
        self.threads: list[threading.Thread] = []
        self.results: dict[str, Any] = {}
        self.errors: list[BaseException] = []

    def start(self, name: str, target: Callable[[], Any]) -> threading.Thread:
        def run() -> None:
            try:
                self.results[name] = target()
            except BaseException as exc:  # re-raised by the test thread in finish()
                self.errors.append(exc)

        thread = threading.Thread(target=run, name=f"test-{name}", daemon=True)
        self.threads.append(thread)
        thread.start()
        return thread

    def finished(self, thread: threading.Thread) -> bool:
        """Whether ``thread`` ends within the guard time."""
        thread.join(GUARD)
        if self.errors:
            raise self.errors[0]
        return not thread.is_alive()


@pytest.fixture
def threads() -> Iterator[Threads]:
    t = Threads()
    yield t
    for thread in t.threads:
        thread.join(GUARD)
        assert not thread.is_alive(), f"{thread.name} did not finish"
    if t.errors:
        raise t.errors[0]


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(RealClock(), Clock)
    assert isinstance(FakeClock(), Clock)
    assert isinstance(REAL_CLOCK, RealClock)


class TestRealClock:
    def test_wait_until_ends_at_a_passed_deadline_without_a_notification(
        self, threads: Threads
    ) -> None:
        cond = threading.Condition()

        def wait_past() -> None:
            with cond:
                REAL_CLOCK.wait_until(cond, REAL_CLOCK.now() - 1.0)

        def wait_near() -> None:
            deadline = REAL_CLOCK.now() + 0.001
            with cond:
                while REAL_CLOCK.now() < deadline:
                    REAL_CLOCK.wait_until(cond, deadline)

        # Nobody notifies cond: only the deadline can end these waits.
        assert threads.finished(threads.start("past", wait_past))
        assert threads.finished(threads.start("near", wait_near))

    def test_wait_until_without_deadline_ends_on_notify(self, threads: Threads) -> None:
        cond = threading.Condition()
        ready = False

        def waiter() -> None:
            with cond:
                while not ready:
                    REAL_CLOCK.wait_until(cond, None)

        thread = threads.start("waiter", waiter)
        with cond:
            ready = True
            cond.notify_all()
        assert threads.finished(thread)

    def test_wait_reports_whether_the_event_or_the_time_ended_it(self, threads: Threads) -> None:
        stop = threading.Event()
        assert REAL_CLOCK.wait(stop, 0.001) is False
        thread = threads.start("stopped", lambda: REAL_CLOCK.wait(stop, None))
        stop.set()
        assert threads.finished(thread)
        assert threads.results["stopped"] is True
        assert REAL_CLOCK.wait(stop, 0) is True


class TestFakeClock:
    def test_time_starts_at_zero_and_moves_only_when_told(self) -> None:
        assert FakeClock().now() == 0.0
        clock = FakeClock(start=10.0)
        assert clock.now() == 10.0
        clock.step(0.5)
        assert clock.now() == 10.5
        clock.set_time(20.0)
        assert clock.now() == 20.0

    def test_step_wakes_a_condition_waiter_exactly_at_its_deadline(self, threads: Threads) -> None:
        clock = FakeClock()
        cond = threading.Condition()
        woke_at: list[float] = []

        def waiter() -> None:
            with cond:
                while clock.now() < 2.0:
                    clock.wait_until(cond, 2.0)
                woke_at.append(clock.now())

        thread = threads.start("waiter", waiter)
        assert clock.block_until_waiters(deadline=2.0)
        clock.step(1.5)
        assert clock.waiters() == [2.0]  # not due: not woken, still registered
        clock.step(0.5)
        assert threads.finished(thread)
        assert woke_at == [2.0]
        assert clock.waiters() == []

    def test_an_event_waiter_times_out_exactly_when_fake_time_reaches_its_timeout(
        self, threads: Threads
    ) -> None:
        clock = FakeClock(start=100.0)
        stop = threading.Event()
        thread = threads.start("sleeper", lambda: clock.wait(stop, 5.0))
        assert clock.block_until_waiters(deadline=105.0)
        clock.step(4.9)
        assert clock.waiters() == [105.0]  # not due: still asleep
        assert thread.is_alive()
        clock.step(0.1)
        assert clock.waiters() == []  # due: no longer counted, even before it wakes
        assert threads.finished(thread)
        assert threads.results["sleeper"] is False

    def test_an_event_waiter_ends_when_its_event_is_set_without_time_moving(
        self, threads: Threads
    ) -> None:
        clock = FakeClock()
        stop = threading.Event()
        thread = threads.start("sleeper", lambda: clock.wait(stop, None))
        assert clock.block_until_waiters(deadline=math.inf)
        clock.step(1e9)  # no timeout: time alone never ends it
        assert clock.waiters() == [math.inf]
        stop.set()
        assert threads.finished(thread)
        assert threads.results["sleeper"] is True
        assert clock.now() == 1e9
        assert clock.waiters() == []

    def test_a_wait_that_cannot_block_does_not_register(self) -> None:
        clock = FakeClock(start=3.0)
        cond = threading.Condition()
        with cond:
            clock.wait_until(cond, 3.0)  # the deadline is now
        assert clock.wait(threading.Event(), 0) is False
        stopped = threading.Event()
        stopped.set()
        assert clock.wait(stopped, 5.0) is True
        assert clock.waiters() == []

    def test_waiters_and_block_until_waiters_count_both_kinds_of_wait(
        self, threads: Threads
    ) -> None:
        clock = FakeClock()
        cond = threading.Condition()
        stop = threading.Event()
        released = False

        def condition_waiter() -> None:
            with cond:
                while not released:
                    clock.wait_until(cond, None)

        threads.start("cond", condition_waiter)
        threads.start("event", lambda: clock.wait(stop, 5.0))
        assert clock.block_until_waiters(2)
        assert clock.waiters() == [5.0, math.inf]
        clock.step(5.0)
        assert clock.block_until_waiters(1, deadline=math.inf)
        assert clock.waiters() == [math.inf]
        with cond:
            released = True
            cond.notify_all()
        for thread in threads.threads:
            assert threads.finished(thread)
        assert clock.waiters() == []

    def test_block_until_waiters_times_out(self) -> None:
        assert FakeClock().block_until_waiters(timeout=0) is False

    @pytest.mark.parametrize("seconds", [-1.0, math.nan, math.inf])
    def test_step_rejects_bad_values(self, seconds: float) -> None:
        with pytest.raises(ValueError, match=r"FakeClock\.step"):
            FakeClock().step(seconds)

    def test_set_time_cannot_go_back(self) -> None:
        clock = FakeClock(start=5.0)
        with pytest.raises(ValueError, match="cannot move back"):
            clock.set_time(4.0)
        with pytest.raises(ValueError, match="finite"):
            clock.set_time(math.nan)
