"""Awaiting cache sync from asyncio: nvinformers.aio.wait_for_cache_sync over scripted informers."""

from __future__ import annotations

import asyncio
import threading

import pytest

from nvinformers.aio import informer_synced, wait_for_cache_sync
from nvinformers.api.device.v1alpha1 import GPUList
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.errors import ServiceUnavailableError
from nvinformers.options import ListOptions
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, gpu

from .aiohelpers import GatedListerWatcher, MakeHarness, run, thread_names


def test_waiting_returns_true_once_the_informer_has_synced(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        waiter = asyncio.create_task(wait_for_cache_sync(h.informer.has_synced))
        await asyncio.sleep(0)
        assert not waiter.done()
        h.start()
        assert await waiter
        assert h.informer.get_indexer().get_by_key("a") is not None

    run(main)


def test_the_loop_keeps_running_while_a_sync_is_pending(informers: MakeHarness) -> None:
    # Structural check that waiting never blocks the loop: the informer's list call is held
    # inside the source until a coroutine on the loop opens the gate. If the wait blocked the
    # loop, nothing could open it; a watchdog thread opens it after WAIT seconds so that such a
    # bug fails the test instead of hanging it.
    gated = GatedListerWatcher(ScriptedListerWatcher(default_list=[gpu("a", 5)]))
    h = informers(lw=gated)
    watchdog_fired = threading.Event()

    def watchdog() -> None:
        watchdog_fired.set()
        gated.gate.set()

    timer = threading.Timer(WAIT, watchdog)

    async def main() -> int:
        h.start()
        waiter = asyncio.create_task(wait_for_cache_sync(h.informer.has_synced))
        assert await asyncio.to_thread(gated.listing.wait, WAIT)
        ticks = 0
        for _ in range(200):  # a heartbeat: other tasks keep running while the wait is pending
            await asyncio.sleep(0)
            ticks += 1
        assert not waiter.done()
        gated.gate.set()
        assert await waiter
        return ticks

    timer.start()
    try:
        assert run(main) == 200
    finally:
        timer.cancel()
        timer.join()
    assert not watchdog_fired.is_set()


def test_timeout_returns_false(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])  # never started
    assert run(lambda: wait_for_cache_sync(h.informer.has_synced, timeout=0.05)) is False
    assert run(lambda: informer_synced(h.informer, timeout=0.01)) is False


class _AlwaysFailing:
    def list(self, options: ListOptions) -> GPUList:
        raise ServiceUnavailableError("server down")

    def watch(self, options: ListOptions) -> object:
        raise AssertionError("never watched: the list fails")


def test_an_informer_that_stops_unsynced_ends_the_wait_with_false(
    informers: MakeHarness,
) -> None:
    h = informers(lw=_AlwaysFailing())

    async def main() -> bool:
        h.start()
        waiter = asyncio.create_task(informer_synced(h.informer))  # no timeout
        await asyncio.sleep(0)
        h.stop.set()
        return await waiter

    assert run(main) is False
    assert h.informer.is_stopped()


def test_a_cancelled_wait_leaves_nothing_behind(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5)])

    async def main() -> None:
        waiter = asyncio.create_task(informer_synced(h.informer))
        for _ in range(3):
            await asyncio.sleep(0)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        h.start()
        assert await informer_synced(h.informer)

    run(main)
    # asyncio.run joined the default executor; no executor thread outlives the loop.
    assert not any(name.startswith("asyncio_") for name in thread_names())


def test_plain_functions_are_polled_until_true() -> None:
    flag = threading.Event()

    async def main() -> bool:
        waiter = asyncio.create_task(wait_for_cache_sync(flag.is_set))
        await asyncio.sleep(0)
        assert not waiter.done()
        threading.Thread(target=flag.set, name="test-setter").start()
        return await waiter

    assert run(main)


def test_objects_and_threaded_registrations_are_accepted(informers: MakeHarness) -> None:
    h = informers([gpu("a", 5), gpu("b", 6)])
    reg = h.informer.add_event_handler(ResourceEventHandlerFuncs(on_add=lambda obj: None))

    async def main() -> bool:
        h.start()
        return await wait_for_cache_sync(h.informer, reg, reg.has_synced, h.informer.has_synced)

    assert run(main)
    assert reg.has_synced()


def test_nothing_to_wait_for_is_synced() -> None:
    assert run(wait_for_cache_sync)


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="got int"):
        run(lambda: wait_for_cache_sync(42))  # type: ignore[arg-type]
