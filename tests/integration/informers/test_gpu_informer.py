"""The GPU informer against a real FakeServer over a Unix socket, under injected faults."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

import grpc
import pytest

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import DeletedFinalStateUnknown, SharedIndexInformer
from nvinformers.errors import NotFoundError
from nvinformers.informers import SharedInformerFactory, new_gpu_informer
from nvinformers.testing import FakeServer
from tests.integration.informers.conftest import FAST_BACKOFF, no_informer_threads
from tests.unit.cache.recording import RecordingHandler
from tests.unit.cache.scripted import WAIT, eventually


def start(
    factory: Callable[..., SharedInformerFactory], handler: Any = None, **kwargs: Any
) -> tuple[SharedInformerFactory, SharedIndexInformer[GPU]]:
    f = factory(**kwargs)
    informer = f.device().v1alpha1().gpus().informer()
    informer.reflector._backoff._config = FAST_BACKOFF  # keep fault recovery fast
    if handler is not None:
        informer.add_event_handler(handler, name="rec")
    f.start()
    assert all(f.wait_for_cache_sync(timeout=WAIT).values())
    return f, informer


def cache_matches_server(informer: SharedIndexInformer[GPU], server: FakeServer) -> bool:
    cached = {g.metadata.name: g.metadata.resource_version for g in informer.get_indexer().list()}
    actual = {g.metadata.name: g.metadata.resource_version for g in server.list_gpus().items}
    return cached == actual


def test_initial_sync_then_updates_and_deletes_in_order(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    f, _ = start(factory, handler)
    assert handler.wait_for_count(8)
    assert all(e.endswith("initial") for e in handler.snapshot())
    server.set_ready("gpu-1", False)
    server.set_ready("gpu-1", True)
    deleted = server.delete_gpu("gpu-2")
    assert handler.wait_for_count(11)
    tail = handler.snapshot()[8:]
    assert tail[0].startswith("update gpu-1@") and tail[1].startswith("update gpu-1@")
    assert tail[2] == f"delete gpu-2@{deleted.metadata.resource_version}"
    lister = f.device().v1alpha1().gpus().lister()
    assert lister.get("gpu-1").metadata.resource_version == tail[1].split("@")[-1]
    with pytest.raises(NotFoundError, match=r'gpus\.device\.nvidia\.com "gpu-2" not found'):
        lister.get("gpu-2")


def test_a_clean_end_of_stream_rewatches_without_listing(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    _, informer = start(factory, handler)
    server.set_ready("gpu-0", False)
    assert handler.wait_for_count(9)
    server.end_watches(None)  # status OK, like a server-side timeout
    assert server.wait_for_calls("WatchGpus", 2, timeout=WAIT)
    server.set_ready("gpu-0", True)
    assert handler.wait_for_count(10)
    assert server.calls["ListGpus"] == 1
    assert eventually(lambda: cache_matches_server(informer, server))


def test_out_of_range_relists_and_delivers_missed_deletes_as_tombstones(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    _, informer = start(factory, handler)
    server.stop()  # outage: the informer backs off and re-watches
    server.delete_gpu("gpu-3")
    server.delete_gpu("gpu-4")
    server.set_ready("gpu-5", False)
    server.compact()  # the history the informer would replay is gone: it must relist
    server.start()
    assert eventually(lambda: cache_matches_server(informer, server))
    assert handler.wait_for_count(11)
    tail = sorted(handler.snapshot()[8:])
    assert tail[0].startswith("delete tombstone:gpu-3@")
    assert tail[1].startswith("delete tombstone:gpu-4@")
    assert tail[2].startswith("update gpu-5@")
    assert server.calls["ListGpus"] >= 2


def test_without_compaction_an_outage_is_healed_by_replay_not_relist(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    start(factory, handler)
    # One event first, so the outage does not look like a "very short watch" (client-go relists
    # after a watch that ends within 1 s without delivering anything).
    server.set_ready("gpu-0", False)
    assert handler.wait_for_count(9)
    server.stop()
    gone = server.delete_gpu("gpu-3")
    server.start()
    assert handler.wait_for_count(10)
    assert handler.snapshot()[9] == f"delete gpu-3@{gone.metadata.resource_version}"
    assert server.calls["ListGpus"] == 1


def test_dropped_events_are_healed_by_the_relist_after_an_error(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    _, informer = start(factory)
    assert server.wait_for_watches(1, timeout=WAIT)
    server.drop_next_events(3)
    for name in ("gpu-0", "gpu-1", "gpu-2"):
        server.set_ready(name, False)
    assert not cache_matches_server(informer, server)
    server.end_watches(grpc.StatusCode.INTERNAL, "stream reset")
    assert eventually(lambda: cache_matches_server(informer, server))
    assert server.calls["ListGpus"] == 2


def test_a_server_that_ignores_the_revision_still_converges(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    _, informer = start(factory, handler)
    server.set_ignore_resource_version(True)
    server.set_ready("gpu-6", False)
    assert handler.wait_for_count(9)
    server.end_watches(None)  # the re-watch gets a full ADDED burst of the current state
    assert server.wait_for_calls("WatchGpus", 2, timeout=WAIT)
    server.set_ready("gpu-7", False)
    assert handler.wait_for_count(10)
    assert eventually(lambda: cache_matches_server(informer, server))
    # The burst repeated unchanged objects: none of them reached the handler.
    assert len(handler.snapshot()) == 10


def test_failing_and_slow_handlers_are_isolated(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    f = factory()
    informer = f.device().v1alpha1().gpus().informer()
    gate = threading.Event()
    slow, bad, good = (
        RecordingHandler(gate=gate),
        RecordingHandler(raise_on="gpu"),
        RecordingHandler(),
    )
    informer.add_event_handler(slow, name="slow")
    bad_reg = informer.add_event_handler(bad, name="bad")
    informer.add_event_handler(good, name="good")
    f.start()
    assert all(f.wait_for_cache_sync(timeout=WAIT).values())
    assert server.wait_for_watches(1, timeout=WAIT)
    for i in range(8):
        server.set_ready(f"gpu-{i}", False)
    assert good.wait_for_count(16)
    assert bad.wait_for_count(16)
    assert eventually(lambda: bad_reg.errors == 16)
    assert eventually(lambda: cache_matches_server(informer, server))
    assert len(slow.snapshot()) == 0
    gate.set()
    assert slow.wait_for_count(16)


def test_a_late_handler_sees_the_cache_then_live_events(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    _, informer = start(factory)
    server.set_ready("gpu-0", False)
    assert eventually(lambda: cache_matches_server(informer, server))
    late = RecordingHandler()
    reg = informer.add_event_handler(late, name="late")
    assert eventually(reg.has_synced)
    server.set_ready("gpu-0", True)
    assert late.wait_for_count(9)
    assert sum(1 for e in late.snapshot() if e.endswith("initial")) == 8
    assert late.snapshot()[8].startswith("update gpu-0@")


def test_resync_replays_without_calling_the_server(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    handler = RecordingHandler()
    start(factory, handler, resync_period=1.0)
    assert handler.wait_for_count(16, timeout=WAIT)  # 8 initial adds, then 8 resync updates
    resyncs = [e for e in handler.snapshot()[8:] if e.startswith("update")]
    assert len(resyncs) >= 8
    assert all(e.split("->")[0][7:] == e.split("->")[1] for e in resyncs)
    assert server.calls["ListGpus"] == 1
    assert server.calls["WatchGpus"] == 1


def test_namespace_default_is_tolerated_by_the_name_keyed_lister(
    factory: Callable[..., SharedInformerFactory],
) -> None:
    from nvinformers.clientset import Config, new_for_config

    with (
        FakeServer(flip_interval=None, stamp_default_namespace=True) as srv,
        new_for_config(Config(target=srv.target)) as cs,
    ):
        informer = new_gpu_informer(cs)
        stop = threading.Event()
        thread = threading.Thread(target=informer.run, args=(stop,))
        thread.start()
        try:
            assert informer.wait_for_sync(WAIT)
            from nvinformers.listers import GPULister

            gpu = GPULister(informer.get_indexer()).get("gpu-0")
            assert gpu.metadata.namespace == "default"
        finally:
            stop.set()
            thread.join(WAIT)


def test_factory_shares_one_informer_and_shutdown_leaves_no_thread(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    f = factory()
    first = f.device().v1alpha1().gpus().informer()
    assert f.device().v1alpha1().gpus().informer() is first
    f.start()
    assert f.wait_for_cache_sync(timeout=WAIT) == {"gpus": True}
    f.shutdown(timeout=WAIT)
    assert first.is_stopped()
    assert eventually(no_informer_threads)
    assert server.wait_for_watches(0, timeout=WAIT)


def test_an_informer_asked_for_after_start_starts_and_wait_for_cache_sync_covers_it(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    f = factory()
    stop = threading.Event()
    f.start(stop)
    assert f.wait_for_cache_sync(stop, timeout=WAIT) == {}  # nothing asked for yet
    gpus = f.device().v1alpha1().gpus()
    lister = gpus.lister()  # asked for after start: starts now, with start's stop event
    assert f.wait_for_cache_sync(stop, timeout=WAIT) == {"gpus": True}
    assert len(lister.list()) == 8
    assert lister.get("gpu-0").metadata.name == "gpu-0"
    server.set_ready("gpu-3", False)
    assert eventually(
        lambda: not meta.is_status_condition_true(lister.get("gpu-3").status.conditions, "Ready")
    )
    stop.set()  # the stop event given to start() stops it too
    assert eventually(gpus.informer().is_stopped)


def test_waiting_on_a_factory_without_informers_names_the_trap(
    factory: Callable[..., SharedInformerFactory], caplog: pytest.LogCaptureFixture
) -> None:
    f = factory()
    f.start()
    assert f.wait_for_cache_sync(timeout=WAIT) == {}
    assert "no informer has been requested from this factory" in caplog.text


def test_an_informer_asked_for_after_shutdown_does_not_start(
    factory: Callable[..., SharedInformerFactory],
) -> None:
    f = factory()
    f.start()
    f.shutdown(timeout=WAIT)
    informer = f.device().v1alpha1().gpus().informer()
    assert f.wait_for_cache_sync(timeout=0.1) == {}
    assert not informer.has_synced()
    assert no_informer_threads()


def test_stopping_while_the_server_is_down_is_prompt(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    f, informer = start(factory)
    server.stop()
    assert eventually(lambda: informer.reflector.health.in_outage)
    f.shutdown(timeout=WAIT)
    assert informer.is_stopped()
    assert isinstance(DeletedFinalStateUnknown("k", None).key, str)


def test_lists_failing_internal_until_the_first_write_are_retried_until_the_informer_syncs(
    server: FakeServer, factory: Callable[..., SharedInformerFactory]
) -> None:
    # NVIDIA's device-apiserver with in-memory storage answers every ListGpus with INTERNAL
    # until something has been written (its store refuses to report revision 0). Found by
    # tests/conformance; docs/compatibility.md.
    server.fail_next_lists(3, grpc.StatusCode.INTERNAL, "Internal error occurred: unexpected error")
    f = factory()
    informer = f.device().v1alpha1().gpus().informer()
    informer.reflector._backoff._config = FAST_BACKOFF
    f.start()
    assert all(f.wait_for_cache_sync(timeout=WAIT).values())
    assert server.calls["ListGpus"] == 4
    assert cache_matches_server(informer, server)
