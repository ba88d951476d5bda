"""Asyncio event handlers: delivery on the loop, order, batching, failures, removal."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

from nvinformers.aio import (
    AsyncResourceEventHandlerDetailedFuncs,
    AsyncResourceEventHandlerFuncs,
    add_async_event_handler,
    wait_for_cache_sync,
)
from nvinformers.aio._handlers import YIELD_EVERY
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.watch import Event, EventType
from tests.unit.cache.recording import describe
from tests.unit.cache.scripted import WAIT, gpu
from tests.unit.cache.scripted import eventually as thread_eventually

from .aiohelpers import MakeHarness, eventually, run, thread_names


class AsyncRecorder:
    """Records notifications as text, with the thread each ran on; may raise or wait."""

    def __init__(self, *, raise_on: str | None = None, gate: asyncio.Event | None = None) -> None:
        self.events: list[str] = []
        self.threads: set[int] = set()
        self.raise_on = raise_on
        self.gate = gate
        self._changed = asyncio.Event()

    async def _record(self, text: str) -> None:
        self.threads.add(threading.get_ident())
        if self.gate is not None:
            await self.gate.wait()
        self.events.append(text)
        self._changed.set()
        if self.raise_on is not None and self.raise_on in text:
            raise RuntimeError(f"handler failure on {text}")

    async def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        await self._record(f"add {describe(obj)}{' initial' if is_in_initial_list else ''}")

    async def on_update(self, old: Any, new: Any) -> None:
        await self._record(f"update {describe(old)}->{describe(new)}")

    async def on_delete(self, obj: Any) -> None:
        await self._record(f"delete {describe(obj)}")

    async def wait_for_count(self, n: int) -> None:
        async with asyncio.timeout(WAIT):
            while len(self.events) < n:
                self._changed.clear()
                await self._changed.wait()


def modified(name: str, rv: int) -> Event[GPU]:
    return Event(EventType.MODIFIED, gpu(name, rv))


def test_notifications_arrive_in_order_on_the_loop_thread(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5), gpu("b", 7)])

    async def main() -> None:
        recorder = AsyncRecorder()
        reg = add_async_event_handler(h.informer, recorder, name="rec")
        assert not reg.has_synced()
        h.start()
        assert await reg.wait_synced()
        assert sorted(recorder.events) == ["add a@5 initial", "add b@7 initial"]
        w = await h.watch()
        w.push(
            modified("a", 11),
            modified("a", 12),
            Event(EventType.ADDED, gpu("c", 13)),
            Event(EventType.DELETED, gpu("b", 14)),
        )
        await recorder.wait_for_count(6)
        assert recorder.events[2:] == [
            "update a@5->a@11",
            "update a@11->a@12",
            "add c@13",
            "delete b@14",
        ]
        assert recorder.threads == {threading.get_ident()}
        assert reg.delivered == 6
        assert reg.errors == 0
        assert reg.backlog == 0
        assert await reg.aclose()

    run(main)


def test_funcs_take_coroutine_functions_and_plain_functions(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        seen: list[str] = []
        done = asyncio.Event()

        async def on_add(obj: GPU) -> None:
            await asyncio.sleep(0)  # really suspends
            seen.append(f"add {describe(obj)}")

        def on_update(old: GPU, new: GPU) -> None:  # plain function, called on the loop
            assert threading.get_ident() == loop_thread
            seen.append(f"update {describe(new)}")

        async def on_delete(obj: Any) -> None:
            seen.append(f"delete {describe(obj)}")
            done.set()

        detailed: list[bool] = []

        async def on_add_detailed(obj: GPU, initial: bool) -> None:
            detailed.append(initial)

        loop_thread = threading.get_ident()
        add_async_event_handler(
            h.informer,
            AsyncResourceEventHandlerFuncs(on_add=on_add, on_update=on_update, on_delete=on_delete),
        )
        reg = add_async_event_handler(
            h.informer, AsyncResourceEventHandlerDetailedFuncs(on_add=on_add_detailed)
        )
        h.start()
        w = await h.watch()
        w.push(
            modified("a", 6),
            Event(EventType.ADDED, gpu("b", 7)),
            Event(EventType.DELETED, gpu("a", 8)),
        )
        async with asyncio.timeout(WAIT):
            await done.wait()
        assert seen == ["add a@5", "update a@6", "add b@7", "delete a@8"]
        assert await eventually(lambda: len(detailed) == 2)
        assert detailed == [True, False]
        assert reg.errors == 0

    run(main)


def test_a_late_handler_replays_the_cache_and_syncs_only_once_delivered(
    informers: MakeHarness,
) -> None:
    h = informers([gpu("a", 5), gpu("b", 7)])

    async def main() -> None:
        h.start()
        assert await wait_for_cache_sync(h.informer.has_synced)
        gate = asyncio.Event()
        recorder = AsyncRecorder(gate=gate)
        reg = add_async_event_handler(h.informer, recorder)
        synced = asyncio.create_task(wait_for_cache_sync(reg.has_synced))
        # The adds were handed over to the loop, but the handler has not finished them.
        assert await eventually(lambda: reg.informer_registration is not None)
        inner = reg.informer_registration
        assert inner is not None
        assert await eventually(inner.has_synced)
        for _ in range(5):
            await asyncio.sleep(0)
        assert not reg.has_synced()
        assert not synced.done()
        gate.set()
        assert await synced
        assert reg.has_synced()
        assert sorted(recorder.events) == ["add a@5 initial", "add b@7 initial"]

    run(main)


def test_a_raising_handler_is_logged_counted_and_keeps_receiving(
    informers: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = informers([gpu("a", 5)])

    class CancelsItself(AsyncRecorder):
        async def on_delete(self, obj: Any) -> None:
            await super().on_delete(obj)
            raise asyncio.CancelledError  # a stray cancellation of its own, not ours

    async def main() -> None:
        failing = CancelsItself(raise_on="->a@6")
        healthy = AsyncRecorder()
        bad = add_async_event_handler(h.informer, failing, name="failing")
        good = add_async_event_handler(h.informer, healthy, name="healthy")
        h.start()
        w = await h.watch()
        w.push(modified("a", 6), modified("a", 7), Event(EventType.DELETED, gpu("a", 8)))
        await healthy.wait_for_count(4)
        await failing.wait_for_count(4)
        await asyncio.sleep(0)
        assert failing.events == healthy.events
        assert bad.errors == 2  # the RuntimeError and the stray CancelledError
        assert good.errors == 0
        assert not bad.closed
        assert bad.delivered == 4

    with caplog.at_level(logging.ERROR, logger="nvinformers.aio"):
        run(main)
    assert "handler failing raised in on_update (it keeps receiving events)" in caplog.text


def test_a_burst_costs_one_wakeup_and_no_task_while_the_loop_is_busy(
    informers: MakeHarness,
) -> None:
    # While the consumer is busy (its handler waits on a gate), 1000 notifications pile up in
    # the buffer: the handler thread schedules at most one wake-up for all of them.
    h = informers([gpu("a", 1)])
    n = 1000

    async def main() -> None:
        loop = asyncio.get_running_loop()
        gate = asyncio.Event()
        recorder = AsyncRecorder(gate=gate)
        reg = add_async_event_handler(h.informer, recorder)
        h.start()
        inner = await _inner(reg)
        assert await eventually(lambda: reg.backlog == 1 and inner.backlog == 0)
        tasks_before = len(asyncio.all_tasks())
        wakeups = _spy_call_soon_threadsafe(loop)
        w = await h.watch()
        w.push(*(modified("a", rv) for rv in range(2, n + 2)))
        assert await eventually(lambda: reg.backlog == n + 1 and inner.backlog == 0)
        assert len(wakeups) <= 1
        assert len(asyncio.all_tasks()) == tasks_before
        gate.set()
        await recorder.wait_for_count(n + 1)
        assert recorder.events[1:] == [f"update a@{rv - 1}->a@{rv}" for rv in range(2, n + 2)]
        assert len(asyncio.all_tasks()) == tasks_before

    run(main)


def test_ten_thousand_events_never_monopolise_the_loop(informers: MakeHarness) -> None:
    # How "the loop is never blocked" is asserted, robustly: not with wall-clock gaps (this
    # machine is shared and a GIL switch alone can take milliseconds), but structurally. A
    # heartbeat task ticks once per loop iteration; the handler never suspends, the worst case
    # for monopolising the loop. Each delivery records the heartbeat's count, so the longest
    # run of deliveries without a tick in between is the most work done on the loop in one go.
    # It must stay within YIELD_EVERY, whatever the speed of the machine.
    h = informers([gpu("a", 1)])
    n = 10_000

    async def main() -> None:
        ticks = 0
        stop = False

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        seen_at: list[int] = []
        order: list[str] = []
        threads: set[int] = set()
        tasks_seen: set[int] = set()

        def on_update(old: GPU, new: GPU) -> None:
            seen_at.append(ticks)
            order.append(new.metadata.resource_version)
            threads.add(threading.get_ident())
            tasks_seen.add(len(asyncio.all_tasks()))

        reg = add_async_event_handler(
            h.informer, AsyncResourceEventHandlerFuncs(on_update=on_update)
        )
        h.start()
        assert await reg.wait_synced()
        beat = asyncio.create_task(heartbeat())
        w = await h.watch()
        # Built and pushed off the loop: 10k GPU objects are the test's work, not the loop's.
        await asyncio.to_thread(lambda: w.push(*(modified("a", rv) for rv in range(2, n + 2))))
        assert await eventually(lambda: len(order) == n, timeout=WAIT * 2)
        stop = True
        await beat
        assert order == [str(rv) for rv in range(2, n + 2)]
        assert threads == {threading.get_ident()}
        assert len(tasks_seen) == 1  # no task was created per event
        longest = max(_runs(seen_at))
        assert longest <= YIELD_EVERY, f"{longest} deliveries in one loop step"

    run(main, timeout=WAIT * 3)


def _runs(values: list[int]) -> list[int]:
    """Lengths of the runs of equal consecutive values."""
    runs: list[int] = []
    previous = object()
    for value in values:
        if value == previous:
            runs[-1] += 1
        else:
            runs.append(1)
            previous = value
    return runs


def test_remove_and_aclose_stop_delivery_and_join_the_handler_thread(
    informers: MakeHarness,
) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        removed = AsyncRecorder()
        closed = AsyncRecorder()
        control = AsyncRecorder()
        reg_removed = add_async_event_handler(h.informer, removed, name="removed")
        reg_closed = add_async_event_handler(h.informer, closed, name="closed")
        add_async_event_handler(h.informer, control, name="control")
        h.start()
        await control.wait_for_count(1)
        await removed.wait_for_count(1)
        await closed.wait_for_count(1)
        reg_removed.remove()
        assert await reg_closed.aclose()
        assert "nvinformers-handler-gpus-closed" not in thread_names()
        w = await h.watch()
        w.push(modified("a", 6))
        await control.wait_for_count(2)
        for _ in range(5):
            await asyncio.sleep(0)
        assert removed.events == ["add a@5 initial"]
        assert closed.events == ["add a@5 initial"]
        assert reg_removed.closed
        assert await reg_removed.aclose()
        assert len(h.informer.handlers()) == 1

    run(main)


def test_aclose_cancels_a_call_that_does_not_finish_in_time(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        recorder = AsyncRecorder(gate=asyncio.Event())  # never opened
        reg = add_async_event_handler(h.informer, recorder)
        h.start()
        assert await eventually(lambda: reg.backlog == 1 and recorder.threads != set())
        assert await reg.aclose(timeout=0.01) is False
        assert reg.closed

    run(main)


def test_a_loop_ending_without_aclose_detaches_the_handler(
    informers: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    h = informers([gpu("a", 5)])
    recorder_events: list[str] = []

    async def main() -> Any:
        reg = add_async_event_handler(
            h.informer,
            AsyncResourceEventHandlerFuncs(on_add=lambda obj: recorder_events.append("add")),
            name="forgotten",
        )
        h.start()
        assert await reg.wait_synced()
        return reg  # asyncio.run cancels the consumer task on the way out

    with caplog.at_level(logging.INFO, logger="nvinformers.aio"):
        reg = run(main)
    assert reg.closed
    assert "stopped with its event loop; removing it" in caplog.text
    assert h.informer.handlers() == ()
    assert recorder_events == ["add"]


def test_a_closed_loop_drops_notifications_with_a_log_line_instead_of_raising(
    informers: MakeHarness, caplog: pytest.LogCaptureFixture
) -> None:
    # Registered from a thread without a running loop, for an explicit loop that never runs
    # and is then closed: the informer's handler thread must drop, log and detach.
    h = informers([gpu("a", 5), gpu("b", 6)])
    loop = asyncio.new_event_loop()
    reg = add_async_event_handler(h.informer, AsyncRecorder(), loop=loop)
    loop.close()
    inner = reg.informer_registration
    assert inner is not None
    with caplog.at_level(logging.WARNING, logger="nvinformers.aio"):
        h.start()
        assert h.informer.wait_for_sync(WAIT)
        assert thread_eventually(lambda: reg.dropped >= 1 and h.informer.handlers() == ())
    assert inner.errors == 0  # nothing was raised in the informer's handler thread
    assert reg.closed
    assert "is dropping notifications: the event loop is closed" in caplog.text


def test_registering_from_another_thread_with_an_explicit_loop(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        loop = asyncio.get_running_loop()
        recorder = AsyncRecorder()
        regs: list[Any] = []
        thread = threading.Thread(
            target=lambda: regs.append(add_async_event_handler(h.informer, recorder, loop=loop)),
            name="test-registrar",
        )
        thread.start()
        await asyncio.to_thread(thread.join, WAIT)
        h.start()
        await recorder.wait_for_count(1)
        assert recorder.threads == {threading.get_ident()}
        assert await regs[0].wait_synced()

    run(main)


def test_without_a_running_loop_a_loop_must_be_given(informers: MakeHarness) -> None:
    h = informers()
    with pytest.raises(RuntimeError, match="no running event loop"):
        add_async_event_handler(h.informer, AsyncRecorder())


# ------------------------------------------------------------------------------------ helpers


async def _inner(reg: Any) -> Any:
    assert await eventually(lambda: reg.informer_registration is not None)
    return reg.informer_registration


def _spy_call_soon_threadsafe(loop: asyncio.AbstractEventLoop) -> list[str]:
    """Record the threads that call ``loop.call_soon_threadsafe`` from now on."""
    calls: list[str] = []
    original = loop.call_soon_threadsafe

    def spy(callback: Any, *args: Any, **kwargs: Any) -> Any:
        if threading.current_thread().name.startswith("nvinformers-handler-"):
            calls.append(threading.current_thread().name)
        return original(callback, *args, **kwargs)

    loop.call_soon_threadsafe = spy  # type: ignore[method-assign, assignment]
    return calls
