"""AsyncQueue: awaitable, cancellation-safe get over the thread-safe rate-limiting queue."""

from __future__ import annotations

import asyncio
import random
import threading
from collections import Counter
from typing import Any

import pytest

from nvinformers.aio import AsyncQueue
from nvinformers.clock import FakeClock
from nvinformers.workqueue import ItemExponentialFailureRateLimiter, RateLimitingQueue
from tests.unit.cache.scripted import WAIT

from .aiohelpers import eventually, run, thread_names


def pumps() -> list[str]:
    return [n for n in thread_names() if n.startswith("nvinformers-aio-queue-")]


def test_get_takes_queued_items_in_order_without_a_thread() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue(name="")
        for item in ("a", "b", "a", "c"):
            q.add(item)
        assert q.len() == 3  # de-duplicated
        got = [await q.get() for _ in range(3)]
        assert got == [("a", False), ("b", False), ("c", False)]
        assert q._pumps == []  # items were there: no pump thread was needed
        for item in ("a", "b", "c"):
            q.done(item)
        await q.aclose()

    run(main)


def test_a_waiting_get_receives_an_item_added_from_another_thread() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue(name="waiting")
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        assert not getter.done()
        adder = threading.Thread(target=q.add, args=("x",), name="test-adder")
        adder.start()
        assert await getter == ("x", False)
        await asyncio.to_thread(adder.join, WAIT)
        q.done("x")
        await q.aclose()
        assert pumps() == []

    run(main)


def test_concurrent_getters_are_served_in_order_each_item_once() -> None:
    async def main() -> None:
        q: AsyncQueue[int] = AsyncQueue()
        getters = [asyncio.create_task(q.get()) for _ in range(5)]
        await asyncio.sleep(0)

        def add_all() -> None:
            for i in range(5):
                q.add(i)

        adder = threading.Thread(target=add_all, name="test-adder")
        adder.start()
        results = [await g for g in getters]
        assert results == [(i, False) for i in range(5)]
        await asyncio.to_thread(adder.join, WAIT)
        await q.aclose()

    run(main)


def test_a_get_cancelled_while_waiting_loses_nothing() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue()
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        getter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await getter
        # The pump may still be blocked in the wrapped get() on the cancelled getter's behalf.
        q.add("x")
        assert await eventually(lambda: q.len() == 1)
        assert await q.get() == ("x", False)
        q.done("x")
        assert q.len() == 0
        await q.aclose()

    run(main)


def test_a_get_cancelled_after_its_item_arrived_puts_it_back_first_in_line() -> None:
    # Deterministic interleaving: the pump's hand-over is scheduled on the loop, then the getter
    # is cancelled after the hand-over ran but before the getter resumed.
    async def main() -> None:
        loop = asyncio.get_running_loop()
        q: AsyncQueue[str] = AsyncQueue()
        handed_over = threading.Event()
        original = loop.call_soon_threadsafe

        def spy(callback: Any, *args: Any, **kwargs: Any) -> Any:
            handle = original(callback, *args, **kwargs)
            if threading.current_thread().name.startswith("nvinformers-aio-queue-"):
                handed_over.set()
            return handle

        loop.call_soon_threadsafe = spy  # type: ignore[method-assign, assignment]
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)  # the getter waits; the pump blocks in the wrapped get()
        q.add("x")
        q.add("y")
        # Block the loop (test only) until the pump scheduled the hand-over of "x": the ready
        # queue is now [hand-over]; our next step is scheduled behind it.
        assert handed_over.wait(WAIT)
        await asyncio.sleep(0)  # runs the hand-over (resolving the getter), then us
        getter.cancel()  # the getter has its item but has not resumed yet
        with pytest.raises(asyncio.CancelledError):
            await getter
        assert q.len() == 2  # "x" kept (it is still being processed in the wrapped queue)
        assert await q.get() == ("x", False)
        assert await q.get() == ("y", False)
        q.done("x")
        q.done("y")
        await q.aclose()

    run(main)


def test_random_cancellations_never_lose_or_duplicate_items() -> None:
    # Getters cancelled after random, tiny timeouts race against a producer thread that adds
    # one item per attempt: every item added is received exactly once, whichever way each race
    # goes (taken directly, delivered by the pump, kept after a cancellation, handed back).
    n = 1000

    async def main() -> Counter[int]:
        q: AsyncQueue[int] = AsyncQueue()
        rng = random.Random(7)
        received: Counter[int] = Counter()
        attempt = threading.Semaphore(0)

        def produce() -> None:
            for i in range(n):
                assert attempt.acquire(timeout=WAIT)
                q.add(i)

        producer = threading.Thread(target=produce, name="test-producer")
        producer.start()
        while sum(received.values()) < n:
            getter = asyncio.create_task(q.get())
            await asyncio.sleep(0)
            attempt.release()
            done, _ = await asyncio.wait({getter}, timeout=rng.choice((0, 1e-4, 1e-3)))
            if not done:
                getter.cancel()
            try:
                item, shutdown = await getter
            except asyncio.CancelledError:
                continue
            assert not shutdown and item is not None
            received[item] += 1
            q.done(item)
        await asyncio.to_thread(producer.join, WAIT)
        assert q.len() == 0
        await q.aclose()
        return received

    received = run(main, timeout=WAIT * 2)
    assert received == Counter(range(n))


def test_shut_down_drains_queued_items_then_reports_shutdown_and_ends_the_pump() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue(name="drain")
        waiting = [asyncio.create_task(q.get()) for _ in range(2)]
        await asyncio.sleep(0)
        assert await eventually(lambda: pumps() == ["nvinformers-aio-queue-drain"])
        q.shut_down()
        assert [await w for w in waiting] == [(None, True), (None, True)]
        assert await q.get() == (None, True)
        await q.aclose()
        assert pumps() == []

        q2: AsyncQueue[str] = AsyncQueue()
        q2.add("left")
        q2.shut_down()
        q2.add("dropped")  # adds after shutdown are dropped
        assert await q2.get() == ("left", False)
        assert await q2.get() == (None, True)
        q2.done("left")
        await q2.aclose()

    run(main)


def test_shut_down_with_drain_waits_for_in_flight_items() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue()
        q.add("a")
        item, _ = await q.get()
        drained = asyncio.create_task(q.shut_down_with_drain())
        for _ in range(5):
            await asyncio.sleep(0)
        assert not drained.done()
        assert q.shutting_down()
        assert item == "a"
        q.done(item)
        await drained
        await q.aclose()

    run(main)


def test_rate_limited_delayed_and_forgotten_items_are_delegated() -> None:
    clock = FakeClock()
    inner: RateLimitingQueue[str] = RateLimitingQueue(
        rate_limiter=ItemExponentialFailureRateLimiter(1.0, 10.0), clock=clock
    )

    async def main() -> None:
        q = AsyncQueue(inner)
        assert q.queue is inner
        q.add_rate_limited("a")
        q.add_rate_limited("a")
        assert q.num_requeues("a") == 2
        q.add_after("b", 5.0)
        assert q.len() == 0
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        clock.step(2.0)  # "a" waited 1 s (the earlier of its two ready times)
        assert await getter == ("a", False)
        q.forget("a")
        assert q.num_requeues("a") == 0
        q.done("a")
        getter = asyncio.create_task(q.get())
        await asyncio.sleep(0)
        clock.step(3.0)
        assert await getter == ("b", False)
        q.done("b")
        await q.aclose()

    run(main)


def test_a_queue_belongs_to_one_loop_and_checks_its_arguments() -> None:
    q: AsyncQueue[str] = AsyncQueue()
    q.add("a")
    assert run(q.get) == ("a", False)
    with pytest.raises(RuntimeError, match="second event loop"):
        run(q.get)
    q.shut_down()
    with pytest.raises(ValueError, match="differs"):
        AsyncQueue(RateLimitingQueue("one"), name="two")


def test_cancelled_gets_start_no_threads() -> None:
    async def main() -> None:
        q: AsyncQueue[str] = AsyncQueue(name="once")
        for _ in range(50):
            getter = asyncio.create_task(q.get())
            await asyncio.sleep(0)
            getter.cancel()
            with pytest.raises(asyncio.CancelledError):
                await getter
        assert len(q._pumps) == 1  # one pump, reused; not a thread per call
        await q.aclose()
        assert pumps() == []

    run(main)
