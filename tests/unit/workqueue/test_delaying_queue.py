"""DelayingQueue: add_after ordering and timing on a FakeClock, the waiting thread's lifecycle."""

from __future__ import annotations

import math
import random
import threading
from collections.abc import Iterator

import pytest

from nvinformers.clock import FakeClock
from nvinformers.workqueue import DelayingQueue

from .conftest import GUARD, Workers


def settle(clock: FakeClock, deadline: float = math.inf) -> None:
    """Wait until the waiting thread sleeps again, until ``deadline`` (inf: nothing waiting)."""
    assert clock.block_until_waiters(deadline=deadline, timeout=GUARD)


def queued(q: DelayingQueue[str]) -> list[str]:
    out: list[str] = []
    while True:
        item, _ = q.get(timeout=0)
        if item is None:
            return out
        out.append(item)
        q.done(item)


def waiting_threads() -> list[threading.Thread]:
    return [t for t in threading.enumerate() if t.name.startswith("nvinformers-workqueue-delay-")]


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def q(clock: FakeClock) -> Iterator[DelayingQueue[str]]:
    queue: DelayingQueue[str] = DelayingQueue(clock=clock)
    yield queue
    queue.shut_down()


class TestAddAfter:
    @pytest.mark.parametrize("delay", [0.0, -1.0])
    def test_a_delay_of_zero_or_less_adds_at_once(
        self, q: DelayingQueue[str], delay: float
    ) -> None:
        q.add_after("a", delay)
        assert queued(q) == ["a"]

    def test_an_item_becomes_ready_exactly_when_the_clock_reaches_its_time(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add_after("a", 1.0)
        settle(clock, 1.0)
        assert q.len() == 0
        clock.step(0.75)
        settle(clock, 1.0)  # woken only at 1.0: still waiting for it
        assert q.len() == 0
        clock.step(0.25)
        settle(clock)  # the heap is empty again
        assert queued(q) == ["a"]

    def test_items_become_ready_in_order_of_ready_time(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add_after("c", 3.0)
        q.add_after("a", 1.0)
        q.add_after("b", 2.0)
        settle(clock, 1.0)
        clock.step(1.0)
        settle(clock, 2.0)
        assert queued(q) == ["a"]
        clock.step(5.0)
        settle(clock)
        assert queued(q) == ["b", "c"]

    def test_equal_ready_times_keep_insertion_order(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        for item in ("x", "y", "z"):
            q.add_after(item, 1.0)
        settle(clock, 1.0)
        clock.step(1.0)
        settle(clock)
        assert queued(q) == ["x", "y", "z"]

    def test_re_adding_a_waiting_item_keeps_the_earlier_ready_time(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add_after("a", 10.0)
        q.add_after("a", 5.0)  # earlier: wins
        q.add_after("a", 20.0)  # later: ignored
        settle(clock, 5.0)
        clock.step(5.0)
        settle(clock)
        assert queued(q) == ["a"]
        # The replaced 10 s entry must not add "a" a second time.
        clock.step(20.0)
        settle(clock)
        assert queued(q) == []

    def test_a_new_earliest_item_shortens_the_wait(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add_after("late", 10.0)
        settle(clock, 10.0)
        q.add_after("early", 1.0)
        settle(clock, 1.0)
        clock.step(1.0)
        settle(clock, 10.0)
        assert queued(q) == ["early"]

    def test_ready_items_are_deduplicated_with_queued_ones(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add("a")
        q.add_after("a", 1.0)
        settle(clock, 1.0)
        clock.step(1.0)
        settle(clock)
        assert queued(q) == ["a"]

    def test_many_random_delays_come_out_sorted(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        rng = random.Random(7)
        delays = {f"i{n}": float(rng.randrange(1, 50)) for n in range(300)}
        for item, delay in delays.items():
            q.add_after(item, delay)
        got: list[str] = []
        for t in range(1, 51):
            clock.set_time(float(t))
            settle(clock, min((d for d in delays.values() if d > t), default=math.inf))
            got.extend(queued(q))
        expected = sorted(delays, key=lambda item: (delays[item], int(item[1:])))
        assert got == expected

    def test_stale_heap_entries_are_compacted(self, q: DelayingQueue[str]) -> None:
        for n in range(1000):
            q.add_after("a", 1000.0 - n)  # each re-add is earlier: replaces the entry
        assert len(q._waiting) <= 2 * len(q._waiting_by_item) + 1

    def test_nan_delay_is_rejected(self, q: DelayingQueue[str]) -> None:
        with pytest.raises(ValueError, match="NaN"):
            q.add_after("a", math.nan)

    def test_none_is_not_a_valid_item(self) -> None:
        q: DelayingQueue[object] = DelayingQueue()
        with pytest.raises(ValueError, match="None cannot be queued"):
            q.add_after(None, 1.0)
        q.shut_down()


class TestWaitingThread:
    def test_started_lazily_and_named_after_the_queue(self, clock: FakeClock) -> None:
        before = set(waiting_threads())
        q: DelayingQueue[str] = DelayingQueue("lazy", clock=clock)
        q.add_after("a", 0)  # no delay: no thread needed
        assert set(waiting_threads()) == before
        q.add_after("b", 1.0)
        started = set(waiting_threads()) - before
        assert [t.name for t in started] == ["nvinformers-workqueue-delay-lazy"]
        q.shut_down()
        assert not any(t.is_alive() for t in started)

    def test_idle_thread_waits_without_timeout_and_never_wakes(
        self, q: DelayingQueue[str], clock: FakeClock
    ) -> None:
        q.add_after("a", 1.0)
        settle(clock, 1.0)
        clock.step(1.0)
        settle(clock)
        wakeups = q._wakeups
        assert clock.waiters() == [math.inf]
        clock.step(3600.0)  # an hour of nothing
        assert clock.waiters() == [math.inf]
        assert q._wakeups == wakeups

    def test_shut_down_joins_the_thread_and_drops_waiting_items(self, clock: FakeClock) -> None:
        q: DelayingQueue[str] = DelayingQueue("stop", clock=clock)
        q.add_after("a", 1.0)
        (thread,) = [t for t in waiting_threads() if t.name == "nvinformers-workqueue-delay-stop"]
        q.shut_down()
        assert not thread.is_alive()
        assert clock.waiters() == []
        clock.step(2.0)
        assert q.get() == (None, True)

    def test_shut_down_with_drain_joins_the_thread(self, clock: FakeClock) -> None:
        q: DelayingQueue[str] = DelayingQueue("drain", clock=clock)
        q.add_after("a", 1.0)
        (thread,) = [t for t in waiting_threads() if t.name == "nvinformers-workqueue-delay-drain"]
        q.shut_down_with_drain()
        assert not thread.is_alive()

    def test_add_after_after_shutdown_is_dropped(self, clock: FakeClock) -> None:
        q: DelayingQueue[str] = DelayingQueue(clock=clock)
        q.shut_down()
        before = set(waiting_threads())
        q.add_after("a", 0)
        q.add_after("b", 1.0)
        assert set(waiting_threads()) == before  # no thread started for a dropped item
        clock.step(1.0)
        assert q.get() == (None, True)

    def test_works_with_the_real_clock(self) -> None:
        q: DelayingQueue[str] = DelayingQueue()
        q.add_after("a", 0.001)
        assert q.get(timeout=GUARD) == ("a", False)
        q.done("a")
        q.shut_down()


def test_concurrent_add_after_loses_nothing(workers: Workers) -> None:
    """4 producers x 200 items with delays up to 2 ms on the real clock: all 800 come out once."""
    q: DelayingQueue[str] = DelayingQueue()

    def produce(p: int) -> None:
        rng = random.Random(p)
        for n in range(200):
            q.add_after(f"{p}-{n}", rng.choice([0.0, 0.0005, 0.001, 0.002]))

    for p in range(4):
        workers.start(lambda p=p: produce(p), name=f"producer-{p}")  # type: ignore[misc]
    got: set[str] = set()
    for _ in range(800):
        item, shutdown = q.get(timeout=GUARD)
        assert item is not None
        assert not shutdown
        assert item not in got
        got.add(item)
        q.done(item)
    q.shut_down()
    assert len(got) == 800
