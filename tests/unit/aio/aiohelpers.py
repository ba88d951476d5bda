"""Helpers for the asyncio tests: a guarded asyncio.run, informer harnesses, async polling.

pytest-asyncio is not used: each test runs its coroutine with :func:`run`, which creates a fresh
loop in debug mode (asyncio then also reports non-thread-safe calls into the loop from other
threads and never-awaited coroutines) and bounds the run with a timeout.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Awaitable, Callable, Iterator
from typing import TypeVar

import pytest

from nvinformers.api.device.v1alpha1 import GPUList
from nvinformers.options import ListOptions
from tests.unit.cache.harness import Harness as CacheHarness
from tests.unit.cache.harness import harness_factory
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, ScriptedWatch

R = TypeVar("R")


def run(main: Callable[[], Awaitable[R]], *, timeout: float = WAIT) -> R:
    """Run ``main()`` on a new event loop (debug mode) and close it; fail after ``timeout``."""

    async def guarded() -> R:
        async with asyncio.timeout(timeout):
            return await main()

    return asyncio.run(guarded(), debug=True)


async def eventually(predicate: Callable[[], bool], timeout: float = WAIT) -> bool:
    """Poll ``predicate`` every millisecond on the loop until it holds or ``timeout`` passes.

    For state that nothing announces (counters); returns as soon as it holds.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while not predicate():
        if loop.time() >= deadline:
            return predicate()
        await asyncio.sleep(0.001)
    return True


class GatedListerWatcher:
    """Delegates to a scripted source, but every list blocks until ``gate`` is set."""

    def __init__(self, inner: ScriptedListerWatcher) -> None:
        self.inner = inner
        self.gate = threading.Event()
        self.listing = threading.Event()

    def list(self, options: ListOptions) -> GPUList:
        self.listing.set()
        self.gate.wait(WAIT)
        return self.inner.list(options)

    def watch(self, options: ListOptions) -> ScriptedWatch:
        return self.inner.watch(options)


class Harness(CacheHarness):
    """The cache tests' harness, with access to the scripted source from a coroutine."""

    @property
    def scripted(self) -> ScriptedListerWatcher:
        lw = self.lw
        return lw.inner if isinstance(lw, GatedListerWatcher) else lw

    async def watch(self, index: int = 0) -> ScriptedWatch:
        """The index-th watch the informer opened (waited for off the loop)."""
        return await asyncio.to_thread(self.scripted.watch_at, index)


MakeHarness = Callable[..., Harness]


@pytest.fixture
def informers() -> Iterator[MakeHarness]:
    with harness_factory(Harness, []) as make:
        yield make


def thread_names() -> set[str]:
    return {t.name for t in threading.enumerate()}
