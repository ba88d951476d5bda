"""The performance fast paths of the cache keep the general paths' semantics.

Each test checks one shortcut taken for speed (the inline queue, direct header readers, bulk keys,
the one-namespace index, shared index tuples, handler lingering) against what the general path
does or against the documented contract. No test here measures time.
"""

from __future__ import annotations

import functools
import gc
import logging
import threading
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    ExplicitKey,
    KeyFuncError,
    ResourceEventHandlerFuncs,
    SharedIndexInformer,
    cluster_scoped_key_func,
    meta_namespace_index_func,
    meta_namespace_key_func,
)
from nvinformers.cache.fifo import DeltaType, RealFIFO
from nvinformers.cache.keys import bulk_keys, header_accessors, resource_version_of
from nvinformers.cache.processor import ADD, DELETE, UPDATE, ProcessorListener
from nvinformers.cache.thread_safe_store import ThreadSafeStore
from tests.unit.cache.scripted import WAIT, ScriptedListerWatcher, gpu

# ---------------------------------------------------------------------------- inline RealFIFO


def test_inline_fifo_processes_each_delta_before_the_push_returns() -> None:
    seen: list[tuple[DeltaType, Any]] = []
    fifo = RealFIFO(process=seen.extend)
    fifo.add("a")
    assert seen == [(DeltaType.ADDED, "a")]
    fifo.update("b")
    fifo.delete("c")
    fifo.bookmark("7")
    assert seen == [
        (DeltaType.ADDED, "a"),
        (DeltaType.UPDATED, "b"),
        (DeltaType.DELETED, "c"),
        (DeltaType.BOOKMARK, "7"),
    ]
    assert len(fifo) == 0


def test_a_delta_pushed_by_another_thread_during_a_drain_is_applied_after_in_order() -> None:
    seen: list[Any] = []
    entered = threading.Event()
    release = threading.Event()

    def process(batch: list[tuple[DeltaType, Any]]) -> None:
        for _, obj in batch:
            if obj == "slow":
                entered.set()
                assert release.wait(WAIT)
            seen.append(obj)

    fifo = RealFIFO(process=process)
    drainer = threading.Thread(target=fifo.update, args=("slow",), name="drainer")
    drainer.start()
    assert entered.wait(WAIT)
    fifo.resync()  # another thread: queued, not processed by this thread
    fifo.update("next")
    assert seen == []
    assert len(fifo) == 2
    release.set()
    drainer.join(WAIT)
    assert seen == ["slow", None, "next"]  # the drainer took what was queued, in order
    assert len(fifo) == 0


def test_a_failing_process_is_logged_and_the_queue_keeps_draining(
    caplog: pytest.LogCaptureFixture,
) -> None:
    seen: list[Any] = []

    def process(batch: list[tuple[DeltaType, Any]]) -> None:
        if batch[0][1] == "bad":
            raise RuntimeError("boom")
        seen.extend(obj for _, obj in batch)

    fifo = RealFIFO(process=process)
    with caplog.at_level(logging.ERROR, logger="nvinformers.cache"):
        fifo.update("bad")
    fifo.update("good")
    assert seen == ["good"]
    assert "failed to process" in caplog.text


def test_an_inline_fifo_has_no_pop_batch_and_drops_deltas_after_close() -> None:
    seen: list[Any] = []
    fifo = RealFIFO(process=seen.extend)
    with pytest.raises(RuntimeError, match="inline"):
        fifo.pop_batch()
    fifo.close()
    fifo.add("late")
    assert seen == []


def test_pop_batch_still_returns_delta_objects() -> None:
    fifo = RealFIFO()
    fifo.add("a")
    fifo.delete("b")
    batch = fifo.pop_batch(timeout=WAIT)
    assert batch is not None
    assert [(d.type, d.obj) for d in batch] == [(DeltaType.ADDED, "a"), (DeltaType.DELETED, "b")]


# -------------------------------------------------------------------- direct header readers


class _Meta:
    def __init__(self, name: str, namespace: str | None, rv: str) -> None:
        self.name = name
        self.namespace = namespace
        self.resource_version = rv


class _Plain:
    """An object read through ``metadata`` (like a Kubernetes client model)."""

    def __init__(self, name: str, namespace: str | None = None, rv: str = "1") -> None:
        self.metadata = _Meta(name, namespace, rv)


def test_gpus_are_read_directly_and_other_objects_through_metadata() -> None:
    g = gpu("gpu-0", 12)
    accessors = header_accessors(GPU)
    assert accessors.direct
    assert (accessors.name(g), accessors.namespace(g), accessors.resource_version(g)) == (
        "gpu-0",
        "",
        "12",
    )
    assert resource_version_of(g) == g.metadata.resource_version == "12"
    plain = _Plain("p", "ns", "3")
    assert not header_accessors(_Plain).direct
    assert resource_version_of(plain) == "3"


@pytest.mark.parametrize("key_func", [cluster_scoped_key_func, meta_namespace_key_func])
def test_key_functions_agree_with_metadata_for_gpus(key_func: Any) -> None:
    stamped = GPU.new("gpu-1", namespace="default", resource_version="4")
    plain = GPU.new("gpu-2", resource_version="4")
    for g in (stamped, plain):
        meta = g.metadata
        expected = (
            meta.name
            if key_func is cluster_scoped_key_func or not meta.namespace
            else f"{meta.namespace}/{meta.name}"
        )
        assert key_func(g) == expected
    nameless = GPU.new("", resource_version="4")
    with pytest.raises(KeyFuncError, match=r"metadata\.name"):
        key_func(nameless)
    assert key_func(ExplicitKey("k")) == "k"
    assert meta_namespace_index_func(stamped) == ["default"]
    assert meta_namespace_index_func(plain) == [""]


def test_bulk_keys_is_a_shortcut_only_when_it_gives_the_same_keys() -> None:
    gpus = [gpu(f"gpu-{i}", i + 1) for i in range(5)]
    for key_func in (cluster_scoped_key_func, meta_namespace_key_func):
        assert bulk_keys(key_func, gpus) == [key_func(g) for g in gpus]
    assert bulk_keys(cluster_scoped_key_func, []) == []
    stamped = [GPU.new("g", namespace="ns", resource_version="1")]
    assert bulk_keys(meta_namespace_key_func, stamped) is None  # "ns/g": not the name
    assert bulk_keys(cluster_scoped_key_func, stamped) == ["g"]
    assert bulk_keys(cluster_scoped_key_func, [*gpus, GPU.new("", resource_version="1")]) is None
    assert bulk_keys(cluster_scoped_key_func, [*gpus, _Plain("p")]) is None
    assert bulk_keys(lambda o: "x", gpus) is None
    assert bulk_keys(cluster_scoped_key_func, [DeletedFinalStateUnknown("k", None)]) is None


# --------------------------------------------------------------------------- thread-safe store


def test_a_bulk_namespace_index_equals_the_general_one() -> None:
    gpus = {f"gpu-{i}": gpu(f"gpu-{i}", i + 1) for i in range(20)}
    plain = {f"p-{i}": _Plain(f"p-{i}", None if i % 2 else "", str(i)) for i in range(20)}
    for items in (gpus, plain):
        fast = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
        fast.replace(items)
        slow = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
        for key, obj in items.items():
            slow.add(key, obj)
        assert sorted(fast.index_keys(NAMESPACE_INDEX, "")) == sorted(items)
        assert fast.list_index_func_values(NAMESPACE_INDEX) == [""]
        assert fast._indices == slow._indices
        assert fast._indexed == slow._indexed
    mixed = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
    mixed.replace({"a": GPU.new("a", namespace="x"), "b": GPU.new("b", namespace="y")})
    assert mixed.index_keys(NAMESPACE_INDEX, "x") == ["a"]
    assert mixed.index_keys(NAMESPACE_INDEX, "y") == ["b"]


def test_objects_indexed_under_one_value_share_one_tuple_and_updates_keep_the_index() -> None:
    store = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
    store.add("a", gpu("a", 1))
    store.add("b", gpu("b", 2))
    remembered = store._indexed[NAMESPACE_INDEX]
    assert remembered["a"] is remembered["b"] == ("",)
    store.update("a", GPU.new("a", namespace="moved", resource_version="3"))
    assert store.index_keys(NAMESPACE_INDEX, "moved") == ["a"]
    assert store.index_keys(NAMESPACE_INDEX, "") == ["b"]
    store.delete("b")
    assert store.list_index_func_values(NAMESPACE_INDEX) == ["moved"]


# ------------------------------------------------------------------------ handler lingering


def _has(seen: list[Any], count: int) -> bool:
    return len(seen) == count


def test_a_lingering_handler_thread_delivers_later_notifications_and_stops_at_once() -> None:
    seen: list[Any] = []
    arrived = threading.Condition()

    def on_add(obj: Any) -> None:
        with arrived:
            seen.append(obj)
            arrived.notify_all()

    listener = ProcessorListener(
        ResourceEventHandlerFuncs(on_add=on_add),
        name="h",
        informer_name="i",
        informer_synced=lambda: True,
    )
    listener.start()
    try:
        for batch in range(5):  # each add finds the thread asleep, lingering or delivering
            listener.add_many([(ADD, f"o{batch}", False)])
            with arrived:
                assert arrived.wait_for(functools.partial(_has, seen, batch + 1), WAIT)
        listener.add_many([(UPDATE, "x", "y"), (ADD, "last", False)])
        with arrived:
            assert arrived.wait_for(lambda: "last" in seen, WAIT)
        assert seen == ["o0", "o1", "o2", "o3", "o4", "last"]
    finally:
        listener.stop()
        assert listener.join(WAIT)
    assert listener.backlog == 0


# ------------------------------------------------------------------------- GC pause on decode


def test_decoding_a_list_pauses_the_collector_and_restores_its_state() -> None:
    from nvinformers.api.device.v1alpha1.types import _gc_pause, _gpus_from_wire

    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(3)]
    was = gc.isenabled()
    try:
        gc.enable()
        with _gc_pause:
            assert not gc.isenabled()
            with _gc_pause:  # nested (another thread decoding at the same time)
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()
        assert [g.metadata.name for g in _gpus_from_wire(raws)] == ["g0", "g1", "g2"]
        assert not gc.isenabled()  # a collector the user switched off stays off
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()


# ------------------------------------------------------------------------ the one delta path


class _NoteRecorder:
    """Stands in for a handler's listener: records what the informer hands it."""

    def __init__(self) -> None:
        self.notes: list[Any] = []

    def add_many(self, notes: Any, initial: int = 0) -> None:
        self.notes.extend(notes)


def _bare_informer() -> tuple[Any, _NoteRecorder]:
    informer: SharedIndexInformer[Any] = SharedIndexInformer(
        ScriptedListerWatcher(),
        name="t",
        key_func=cluster_scoped_key_func,
        registry=CollectorRegistry(),
    )
    recorder = _NoteRecorder()
    informer._listeners = (recorder,)  # type: ignore[assignment]
    return informer, recorder


def test_a_single_event_and_a_batch_take_the_same_decisions() -> None:
    """The single-event branch of the delta path (what an event storm takes) and the batch
    path decide every delta with the same rules: add, update, skip a repeat, drop a stale
    event, skip a delete of an unknown key (issue 10: the rules were written five times)."""
    a5, a6, a4 = gpu("a", 5), gpu("a", 6), gpu("a", 4)
    b7, b6, b9 = gpu("b", 7), gpu("b", 6), gpu("b", 9)
    opaque1, opaque0 = gpu("o", "v1"), gpu("o", "v0")
    deltas = [
        (DeltaType.ADDED, a5),
        (DeltaType.ADDED, b7),
        (DeltaType.UPDATED, gpu("a", 5)),  # the same revision: not a change
        (DeltaType.UPDATED, a6),
        (DeltaType.UPDATED, a4),  # older than the cache: dropped
        (DeltaType.DELETED, gpu("c", 3)),  # not cached: skipped
        (DeltaType.DELETED, b6),  # a stale delete: dropped
        (DeltaType.DELETED, b7),
        (DeltaType.ADDED, b9),
        (DeltaType.ADDED, opaque1),
        (DeltaType.UPDATED, opaque0),  # opaque revisions are never stale
    ]
    one_by_one, seen_singly = _bare_informer()
    for delta in deltas:
        one_by_one._process([delta])
    batched, seen_batched = _bare_informer()
    batched._process(list(deltas))
    for informer in (one_by_one, batched):
        assert informer._store.snapshot_items() == {"a": a6, "b": b9, "o": opaque0}
        assert informer.applied == {"added": 4, "updated": 2, "deleted": 1}
        assert (informer.stale_events_dropped, informer.unknown_deletes) == (2, 1)
    assert (
        seen_singly.notes
        == seen_batched.notes
        == [
            (ADD, a5, False),
            (ADD, b7, False),
            (UPDATE, a5, a6),
            (DELETE, b7, None),
            (ADD, b9, False),
            (ADD, opaque1, False),
            (UPDATE, opaque1, opaque0),
        ]
    )
