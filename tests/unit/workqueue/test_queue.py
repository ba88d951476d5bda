"""Queue: de-duplication, order, stinginess, shutdown and drain (client-go queue.go semantics)."""

from __future__ import annotations

import itertools
import math
import random
import threading

import pytest

from nvinformers.clock import FakeClock
from nvinformers.workqueue import Queue

from .conftest import GUARD, Workers


def drain_items(q: Queue[str]) -> list[str]:
    """Get and finish everything currently queued (non-blocking)."""
    out: list[str] = []
    while True:
        item, shutdown = q.get(timeout=0)
        if item is None:
            return out
        assert not shutdown
        out.append(item)
        q.done(item)


class TestAddAndGet:
    def test_items_are_handed_out_in_the_order_they_were_added(self) -> None:
        q: Queue[str] = Queue()
        for item in ("c", "a", "b"):
            q.add(item)
        assert drain_items(q) == ["c", "a", "b"]

    def test_adding_an_item_that_is_already_queued_is_a_no_op(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.add("b")
        q.add("a")
        assert q.len() == len(q) == 2
        assert drain_items(q) == ["a", "b"]

    def test_len_counts_queued_items_not_items_being_processed(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.add("b")
        q.get()
        assert q.len() == 1

    def test_none_is_not_a_valid_item(self) -> None:
        q: Queue[object] = Queue()
        with pytest.raises(ValueError, match="None cannot be queued"):
            q.add(None)

    def test_get_with_timeout_zero_returns_none_false_on_an_empty_queue(self) -> None:
        q: Queue[str] = Queue()
        assert q.get(timeout=0) == (None, False)

    def test_negative_timeout_is_rejected(self) -> None:
        q: Queue[str] = Queue()
        with pytest.raises(ValueError, match="timeout must be >= 0"):
            q.get(timeout=-1)

    def test_get_blocks_until_an_item_is_added(self, workers: Workers) -> None:
        q: Queue[str] = Queue()
        got: list[tuple[str | None, bool]] = []
        thread = workers.start(lambda: got.append(q.get()))
        q.add("a")
        thread.join(GUARD)
        assert got == [("a", False)]

    def test_get_timeout_is_measured_on_the_queue_clock(self, workers: Workers) -> None:
        clock = FakeClock()
        q: Queue[str] = Queue(clock=clock)
        got: list[tuple[str | None, bool]] = []
        thread = workers.start(lambda: got.append(q.get(timeout=5.0)))
        assert clock.block_until_waiters(deadline=5.0)
        clock.step(4.0)
        assert clock.waiters() == [5.0]  # still waiting
        clock.step(1.0)
        thread.join(GUARD)
        assert got == [(None, False)]

    def test_a_timed_get_receives_an_item_added_while_it_waits(self, workers: Workers) -> None:
        clock = FakeClock()
        q: Queue[str] = Queue(clock=clock)
        got: list[tuple[str | None, bool]] = []
        thread = workers.start(lambda: got.append(q.get(timeout=5.0)))
        assert clock.block_until_waiters(deadline=5.0)
        q.add("a")
        thread.join(GUARD)
        assert got == [("a", False)]


class TestProcessing:
    def test_an_item_added_while_processing_is_requeued_by_done(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        assert q.get() == ("a", False)
        q.add("a")
        # Not handed out again while the first worker holds it.
        assert q.len() == 0
        assert q.get(timeout=0) == (None, False)
        q.done("a")
        assert q.len() == 1
        assert q.get(timeout=0) == ("a", False)

    def test_repeated_adds_while_processing_requeue_once(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.get()
        q.add("a")
        q.add("a")
        q.done("a")
        assert drain_items(q) == ["a"]

    def test_an_item_not_re_added_is_gone_after_done(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.get()
        q.done("a")
        assert q.len() == 0
        q.add("a")  # and can be added again
        assert drain_items(q) == ["a"]

    def test_done_for_an_item_not_being_processed_raises(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        with pytest.raises(ValueError, match="not being processed"):
            q.done("a")
        q.get()
        q.done("a")
        with pytest.raises(ValueError, match="not being processed"):
            q.done("a")
        assert q.len() == 0  # the bad calls did not queue anything

    def test_requeued_item_goes_to_the_back(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.get()
        q.add("a")
        q.add("b")
        q.done("a")
        assert drain_items(q) == ["b", "a"]


class TestShutdown:
    def test_adds_after_shutdown_are_dropped(self) -> None:
        q: Queue[str] = Queue()
        q.shut_down()
        q.add("a")
        assert q.len() == 0
        assert q.get() == (None, True)

    def test_get_hands_out_queued_items_during_shutdown_then_reports_it(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.add("b")
        q.shut_down()
        assert q.shutting_down()
        assert q.get() == ("a", False)
        assert q.get() == ("b", False)
        assert q.get() == (None, True)
        assert q.get(timeout=1) == (None, True)

    def test_dirty_item_is_still_requeued_by_done_after_shutdown(self) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.get()
        q.add("a")
        q.shut_down()
        q.add("b")  # dropped
        q.done("a")
        assert q.get() == ("a", False)
        q.done("a")
        assert q.get() == (None, True)

    def test_shutdown_wakes_every_blocked_getter(self, workers: Workers) -> None:
        clock = FakeClock()
        q: Queue[str] = Queue(clock=clock)
        results: list[tuple[str | None, bool]] = []
        lock = threading.Lock()

        def getter(timeout: float | None) -> None:
            result = q.get(timeout=timeout)
            with lock:
                results.append(result)

        threads = [workers.start(lambda: getter(None), name=f"g{i}") for i in range(3)]
        threads.append(workers.start(lambda: getter(100.0), name="timed"))
        assert clock.block_until_waiters(deadline=100.0)
        q.shut_down()
        for thread in threads:
            thread.join(GUARD)
        assert results == [(None, True)] * 4

    def test_shut_down_is_idempotent(self) -> None:
        q: Queue[str] = Queue()
        q.shut_down()
        q.shut_down()
        q.shut_down_with_drain()
        assert q.shutting_down()


class TestShutDownWithDrain:
    def test_returns_at_once_when_nothing_is_queued_or_in_flight(self) -> None:
        q: Queue[str] = Queue()
        q.shut_down_with_drain()
        assert q.get() == (None, True)

    def test_waits_for_in_flight_items(self, workers: Workers) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.add("b")
        q.get()
        q.get()
        finished = threading.Event()
        dones_seen: list[int] = []
        dones: list[str] = []

        def drain() -> None:
            q.shut_down_with_drain()
            dones_seen.append(len(dones))
            finished.set()

        thread = workers.start(drain)
        # As in client-go's test: once get() reports shutdown, the drain has begun.
        assert q.get() == (None, True)
        dones.append("a")
        q.done("a")
        # One item is still in flight. A short join cannot fail spuriously; it catches a drain that
        # returns early.
        thread.join(0.05)
        assert not finished.is_set()
        dones.append("b")
        q.done("b")
        assert finished.wait(GUARD)
        # The drain returned only after both done() calls had started.
        assert dones_seen == [2]

    def test_waits_for_an_item_requeued_by_done(self, workers: Workers) -> None:
        # client-go TestQueueDrainageUsingShutDownWithDrainWithDirtyItem.
        q: Queue[str] = Queue()
        q.add("foo")
        q.get()
        q.add("foo")
        finished = threading.Event()

        def drain() -> None:
            q.shut_down_with_drain()
            finished.set()

        workers.start(drain)
        assert q.get() == (None, True)
        q.done("foo")
        # "foo" went back into the queue: the drain must not be over.
        assert not finished.is_set()
        assert q.get() == ("foo", False)
        assert not finished.is_set()
        q.done("foo")
        assert finished.wait(GUARD)
        assert q.get() == (None, True)

    def test_shut_down_aborts_the_wait(self, workers: Workers) -> None:
        q: Queue[str] = Queue()
        q.add("a")
        q.get()
        finished = threading.Event()

        def drain() -> None:
            q.shut_down_with_drain()
            finished.set()

        workers.start(drain)
        assert q.get() == (None, True)
        q.shut_down()  # "a" is never done
        assert finished.wait(GUARD)


def test_many_workers_never_share_an_item_and_every_add_is_processed(workers: Workers) -> None:
    """Stress: 8 workers, random adds from a producer and from the workers themselves."""
    q: Queue[int] = Queue()
    n_items, n_adds, n_workers = 50, 20_000, 8
    book = threading.Lock()
    seq = itertools.count()
    holding: set[int] = set()
    last_add: dict[int, int] = {}  # item -> sequence number when its latest add() started
    last_get: dict[int, int] = {}  # item -> sequence number when its latest get() returned
    processed = 0
    errors: list[str] = []
    # Set before shutdown so that every add is made before it (adds after shutdown are dropped).
    stop_readding = False

    def note_add(item: int) -> None:
        with book:
            last_add[item] = next(seq)

    def worker(wid: int) -> None:
        nonlocal processed
        rng = random.Random(wid)
        while True:
            item, shutdown = q.get()
            if shutdown:
                return
            assert item is not None
            with book:
                last_get[item] = next(seq)
                if item in holding:
                    errors.append(f"item {item} handed to two workers")
                holding.add(item)
                processed += 1
            if rng.random() < 0.2:
                # Re-add while processing: must come back after done(), never concurrently.
                with book:
                    if not stop_readding:
                        last_add[item] = next(seq)
                        q.add(item)
            with book:
                holding.discard(item)
            q.done(item)

    for wid in range(n_workers):
        workers.start(lambda wid=wid: worker(wid), name=f"stress-{wid}")  # type: ignore[misc]

    rng = random.Random(42)
    for _ in range(n_adds):
        item = rng.randrange(n_items)
        note_add(item)
        q.add(item)
    with book:
        stop_readding = True
    q.shut_down_with_drain()
    workers.join()

    assert errors == []
    assert processed >= n_items  # every item was added at least once (with high probability)
    for item, added in last_add.items():
        assert last_get.get(item, -1) > added, f"the last add of {item} was never processed"


def test_math_inf_timeout_waits_like_no_timeout(workers: Workers) -> None:
    clock = FakeClock()
    q: Queue[str] = Queue(clock=clock)
    got: list[tuple[str | None, bool]] = []
    thread = workers.start(lambda: got.append(q.get(timeout=math.inf)))
    assert clock.block_until_waiters(deadline=math.inf)
    q.add("a")
    thread.join(GUARD)
    assert got == [("a", False)]
