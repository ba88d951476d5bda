"""Clocks: the real clock's waits and the fake clock's deterministic wake-ups."""

from __future__ import annotations

import math
import threading

import pytest

from nvinformers.workqueue import Clock, FakeClock, RealClock

from .conftest import GUARD, Workers


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(RealClock(), Clock)
    assert isinstance(FakeClock(), Clock)


class TestRealClock:
    def test_now_is_monotonic(self) -> None:
        clock = RealClock()
        readings = [clock.now() for _ in range(100)]
        assert readings == sorted(readings)

    def test_a_past_deadline_returns_at_once(self) -> None:
        clock = RealClock()
        cond = threading.Condition()
        with cond:
            clock.wait_until(cond, clock.now() - 1.0)

    def test_waiting_without_deadline_ends_on_notify(self, workers: Workers) -> None:
        clock = RealClock()
        cond = threading.Condition()
        done = threading.Event()
        ready = False

        def waiter() -> None:
            with cond:
                while not ready:
                    clock.wait_until(cond, None)
            done.set()

        workers.start(waiter)
        with cond:
            ready = True
            cond.notify_all()
        assert done.wait(GUARD)

    def test_a_near_deadline_expires(self) -> None:
        clock = RealClock()
        cond = threading.Condition()
        deadline = clock.now() + 0.001
        with cond:
            while clock.now() < deadline:
                clock.wait_until(cond, deadline)
        assert clock.now() >= deadline


class TestFakeClock:
    def test_time_moves_only_when_told(self) -> None:
        clock = FakeClock(start=10.0)
        assert clock.now() == 10.0
        clock.step(0.5)
        assert clock.now() == 10.5
        clock.set_time(20.0)
        assert clock.now() == 20.0

    def test_step_wakes_a_waiter_exactly_at_its_deadline(self, workers: Workers) -> None:
        clock = FakeClock()
        cond = threading.Condition()
        woke_at: list[float] = []

        def waiter() -> None:
            with cond:
                while clock.now() < 2.0:
                    clock.wait_until(cond, 2.0)
                woke_at.append(clock.now())

        thread = workers.start(waiter)
        assert clock.block_until_waiters(deadline=2.0)
        clock.step(1.5)
        assert clock.waiters() == [2.0]  # not due: not woken, still registered
        clock.step(0.5)
        thread.join(GUARD)
        assert woke_at == [2.0]
        assert clock.waiters() == []

    def test_waiters_lists_deadlines_and_inf_for_none(self, workers: Workers) -> None:
        clock = FakeClock()
        cond = threading.Condition()
        stop = False

        def waiter(deadline: float | None) -> None:
            with cond:
                while not stop:
                    clock.wait_until(cond, deadline)
                    if deadline is not None and clock.now() >= deadline:
                        return

        workers.start(lambda: waiter(None))
        workers.start(lambda: waiter(5.0))
        assert clock.block_until_waiters(2)
        assert clock.waiters() == [5.0, math.inf]
        clock.step(5.0)
        assert clock.block_until_waiters(1, deadline=math.inf)
        with cond:
            stop = True
            cond.notify_all()
        workers.join()
        assert clock.waiters() == []

    def test_a_past_deadline_returns_without_registering(self) -> None:
        clock = FakeClock(start=3.0)
        cond = threading.Condition()
        with cond:
            clock.wait_until(cond, 3.0)
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
