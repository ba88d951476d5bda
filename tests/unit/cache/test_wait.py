"""Waiting for sync: sources signal (a latch each); SyncWait counts them down, polling none."""

from __future__ import annotations

import subprocess
import sys
import threading
from collections.abc import Callable, Iterator

import pytest

from nvinformers.api.device.v1alpha1 import GPUList
from nvinformers.cache import ResourceEventHandlerFuncs, wait_for_cache_sync
from nvinformers.cache._wait import SyncWait
from nvinformers.cancel import Latch
from nvinformers.errors import ServiceUnavailableError
from nvinformers.options import ListOptions
from tests.unit.cache.harness import Harness, harness_factory
from tests.unit.cache.scripted import WAIT, gpu


class CountingSource:
    """A sync source that counts how often it is asked whether it has synced."""

    def __init__(self) -> None:
        self.done = Latch()
        self.synced = False
        self.asked = 0

    def has_synced(self) -> bool:
        self.asked += 1
        return self.synced

    def sync_done(self) -> Latch:
        return self.done

    def finish(self, *, synced: bool = True) -> None:
        self.synced = synced
        self.done.set()


@pytest.fixture
def make() -> Iterator[Callable[..., Harness]]:
    with harness_factory(Harness, [gpu("a", 5), gpu("b", 6)]) as build:
        yield build


def waiter(
    *items: object, stop: threading.Event | None = None
) -> tuple[threading.Thread, list[bool]]:
    """wait_for_cache_sync(stop, *items) on a thread of its own. Only a signal ends it in time: the
    timeout merely guards against a hang, and then the outcome is False."""
    outcome: list[bool] = []
    thread = threading.Thread(
        target=lambda: outcome.append(wait_for_cache_sync(stop, *items, timeout=2 * WAIT)),  # type: ignore[arg-type]
        name="test-waiter",
    )
    thread.start()
    return thread, outcome


def test_a_signalling_source_is_never_polled_and_wakes_the_waiter() -> None:
    sources = [CountingSource(), CountingSource()]
    with SyncWait(sources) as sync:
        for _ in range(1000):
            assert sync.outcome() is None
        assert [s.asked for s in sources] == [0, 0]  # pending latches: nobody was asked
        sources[0].finish()
        assert sync.outcome() is None
        sources[1].finish()
        assert sync.outcome() is True
    thread, outcome = waiter(*sources)
    thread.join(WAIT)
    assert outcome == [True]


def test_a_blocked_thread_wakes_when_the_last_source_signals() -> None:
    sources = [CountingSource(), CountingSource()]
    thread, outcome = waiter(*sources)
    sources[1].finish()
    sources[0].finish()
    thread.join(WAIT)
    assert outcome == [True]


def test_a_source_that_gives_up_ends_the_wait_with_false() -> None:
    sources = [CountingSource(), CountingSource()]
    thread, outcome = waiter(*sources)
    sources[0].finish(synced=False)  # e.g. an informer stopped before it synced
    sources[1].finish()
    thread.join(WAIT)
    assert outcome == [False]


def test_interrupt_ends_a_wait_at_once_and_so_does_stop() -> None:
    source = CountingSource()
    with SyncWait([source]) as sync:
        outcome: list[bool] = []
        thread = threading.Thread(target=lambda: outcome.append(sync.wait()), name="test-waiter")
        thread.start()
        sync.interrupt()
        thread.join(WAIT)
    assert outcome == [False]
    stop = threading.Event()
    thread, outcome = waiter(source, stop=stop)
    stop.set()  # a plain event cannot wake the waiter: it is checked every POLL_INTERVAL
    thread.join(WAIT)
    assert outcome == [False]


def test_plain_functions_are_polled_until_true() -> None:
    flag = threading.Event()
    thread, outcome = waiter(flag.is_set)
    flag.set()
    thread.join(WAIT)
    assert outcome == [True]
    assert wait_for_cache_sync(None, lambda: False, timeout=0.01) is False


def test_informers_and_registrations_signal_their_sync(make: Callable[..., Harness]) -> None:
    h = make()
    seen: list[str] = []
    gate = threading.Event()

    def on_add(obj: object) -> None:
        assert gate.wait(WAIT)
        seen.append(obj.metadata.name)  # type: ignore[attr-defined]

    reg = h.informer.add_event_handler(ResourceEventHandlerFuncs(on_add=on_add))
    thread, outcome = waiter(h.informer, reg.has_synced)
    h.start()
    assert h.informer.sync_done().wait(WAIT)
    assert h.informer.has_synced()
    assert not reg.sync_done().is_set()  # the handler is still held in its first add
    gate.set()
    thread.join(WAIT)
    assert outcome == [True]
    assert sorted(seen) == ["a", "b"]
    assert reg.sync_done().is_set()
    late = h.informer.add_event_handler(ResourceEventHandlerFuncs())
    assert wait_for_cache_sync(None, late, timeout=WAIT)  # replayed the cache, then signalled


class _AlwaysFailing:
    def list(self, options: ListOptions) -> GPUList:
        raise ServiceUnavailableError("server down")

    def watch(self, options: ListOptions) -> object:
        raise AssertionError("never watched: the list fails")


def test_an_informer_that_stops_unsynced_ends_the_wait(make: Callable[..., Harness]) -> None:
    h = make(lw=_AlwaysFailing())
    reg = h.informer.add_event_handler(ResourceEventHandlerFuncs())
    thread, outcome = waiter(h.informer, reg)
    h.start()
    h.stop.set()
    thread.join(WAIT)
    assert outcome == [False]
    assert h.informer.sync_done().is_set() and not h.informer.has_synced()
    assert reg.sync_done().is_set() and not reg.has_synced()
    assert h.informer.wait_for_sync(WAIT) is False  # returns at once: it will never sync


def test_bad_arguments_are_named() -> None:
    with pytest.raises(TypeError, match="got int"):
        wait_for_cache_sync(None, 42)  # type: ignore[arg-type]


def test_the_cache_and_the_kubernetes_source_do_not_import_asyncio() -> None:
    """Only coroutines need asyncio (``SyncWait.wait_async`` imports it when awaited): a thread
    user of the cache without gRPC, such as the Kubernetes source, does not pay its import."""
    code = "import sys, nvinformers.cache, nvinformers.kube; sys.exit('asyncio' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr or "asyncio was imported"
