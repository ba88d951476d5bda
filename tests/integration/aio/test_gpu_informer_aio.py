"""nvinformers.aio over a real GPU informer and the fake Device API server (a real Unix socket)."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers import meta
from nvinformers.aio import (
    AsyncController,
    AsyncResourceEventHandlerFuncs,
    add_async_event_handler,
    informer_synced,
    wait_for_cache_sync,
)
from nvinformers.aio._handlers import YIELD_EVERY
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.clientset import Config, new_for_config
from nvinformers.controller import Request, Result
from nvinformers.errors import NotFoundError
from nvinformers.informers import SharedInformerFactory
from nvinformers.listers import GPULister
from nvinformers.testing import FakeServer
from tests.unit.aio.aiohelpers import eventually, run

WAIT = 10.0


@pytest.fixture
def server() -> Iterator[FakeServer]:
    with FakeServer(gpus=4, flip_interval=None, bookmark_interval=None, seed=11) as fake:
        yield fake


@pytest.fixture
def factory(server: FakeServer) -> Iterator[SharedInformerFactory]:
    clientset = new_for_config(Config(target=server.target))
    factory = SharedInformerFactory(clientset, registry=CollectorRegistry())
    yield factory
    factory.shutdown()
    clientset.close()


def ready(gpu: GPU) -> bool:
    return meta.is_status_condition_true(gpu.status.conditions, "Ready")


class ReadyReconciler:
    """Records, per GPU, what the lister said when it was last reconciled."""

    def __init__(self, lister: GPULister) -> None:
        self.lister = lister
        self.state: dict[str, str] = {}
        self.threads: set[int] = set()

    async def reconcile(self, request: Request) -> Result:
        self.threads.add(threading.get_ident())
        try:
            gpu = self.lister.get(request.name)
        except NotFoundError:
            self.state[request.name] = "gone"
        else:
            self.state[request.name] = "ready" if ready(gpu) else "not-ready"
        return Result()


def test_async_handlers_and_a_controller_over_the_fake_server(
    server: FakeServer, factory: SharedInformerFactory
) -> None:
    gpus = factory.device().v1alpha1().gpus()
    informer = gpus.informer()

    async def main() -> None:
        loop_thread = threading.get_ident()
        transitions: list[tuple[str, bool]] = []
        threads: set[int] = set()
        deleted: list[str] = []

        async def on_update(old: GPU, new: GPU) -> None:
            threads.add(threading.get_ident())
            if ready(old) != ready(new):
                transitions.append((new.metadata.name, ready(new)))

        async def on_delete(obj: Any) -> None:
            threads.add(threading.get_ident())
            deleted.append(obj.metadata.name)

        reg = add_async_event_handler(
            informer, AsyncResourceEventHandlerFuncs(on_update=on_update, on_delete=on_delete)
        )
        reconciler = ReadyReconciler(gpus.lister())
        controller = AsyncController(
            "ready", reconciler, max_concurrent_reconciles=2, registry=CollectorRegistry()
        )
        controller.watch(informer)
        factory.start()
        assert await informer_synced(informer, timeout=WAIT)
        assert await wait_for_cache_sync(reg.has_synced, timeout=WAIT)
        await controller.start()
        assert await eventually(lambda: len(reconciler.state) == 4)
        assert set(reconciler.state.values()) == {"ready"}

        await asyncio.to_thread(server.set_ready, "gpu-1", False)
        await asyncio.to_thread(server.delete_gpu, "gpu-3")
        assert await eventually(lambda: reconciler.state == {
            "gpu-0": "ready", "gpu-1": "not-ready", "gpu-2": "ready", "gpu-3": "gone"
        })  # fmt: skip
        assert await eventually(lambda: deleted == ["gpu-3"])
        assert transitions == [("gpu-1", False)]
        assert threads == {loop_thread}
        assert reconciler.threads == {loop_thread}
        assert await controller.stop()
        assert await reg.aclose()

    run(main)


def test_a_flood_of_updates_never_monopolises_the_loop(
    server: FakeServer, factory: SharedInformerFactory
) -> None:
    # The structural check of tests/unit/aio/test_handlers.py, end to end: a heartbeat ticks
    # once per loop iteration; no run of deliveries between two ticks exceeds YIELD_EVERY.
    informer = factory.device().v1alpha1().gpus().informer()
    flips = 500

    async def main() -> None:
        ticks = 0
        stop = False

        async def heartbeat() -> None:
            nonlocal ticks
            while not stop:
                ticks += 1
                await asyncio.sleep(0)

        seen_at: list[int] = []
        last_rv: list[str] = [""]

        def on_update(old: GPU, new: GPU) -> None:
            seen_at.append(ticks)
            last_rv[0] = new.metadata.resource_version

        reg = add_async_event_handler(informer, AsyncResourceEventHandlerFuncs(on_update=on_update))
        factory.start()
        assert await reg.wait_synced()
        beat = asyncio.create_task(heartbeat())

        def flip_many() -> None:
            for i in range(flips):
                server.set_ready("gpu-0", i % 2 == 1)

        await asyncio.to_thread(flip_many)
        final = server.get_gpu("gpu-0").metadata.resource_version
        assert await eventually(lambda: last_rv[0] == final)
        assert len(seen_at) > 2 * YIELD_EVERY  # every flip, unless a relist coalesced some
        stop = True
        await beat
        longest = max(_runs(seen_at))
        assert longest <= YIELD_EVERY
        await reg.aclose()

    run(main, timeout=WAIT * 2)


def _runs(values: list[int]) -> list[int]:
    runs: list[int] = []
    previous: object = object()
    for value in values:
        if value == previous:
            runs[-1] += 1
        else:
            runs.append(1)
            previous = value
    return runs


def test_shutting_down_from_asyncio_cancels_a_hung_list(
    server: FakeServer, factory: SharedInformerFactory
) -> None:
    """Issue 10, case 3: an asyncio program waiting for a cache whose ListGpus never answers
    stops at once: the wait is cancelled, and the shutdown in an executor cancels the list."""
    server.hostile.hang("ListGpus")
    informer = factory.device().v1alpha1().gpus().informer()

    async def main() -> None:
        factory.start()
        waiting = asyncio.ensure_future(informer_synced(informer))
        assert await asyncio.to_thread(server.hostile.wait_for_hung, "ListGpus", 1, WAIT)
        waiting.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiting
        loop = asyncio.get_running_loop()
        await asyncio.wait_for(loop.run_in_executor(None, factory.shutdown), WAIT)
        assert informer.is_stopped()

    try:
        run(main, timeout=3 * WAIT)
        assert server.hostile.wait_for_hung("ListGpus", 0, WAIT)  # cancelled, not abandoned
    finally:
        server.hostile.release()
