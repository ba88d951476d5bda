"""Controller.watch: informer events -> predicates -> handlers -> requests, tombstones included."""

from __future__ import annotations

import logging
import random
import threading
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, GPUList, ListMeta
from nvinformers.cache import (
    BackoffConfig,
    DeletedFinalStateUnknown,
    SharedIndexInformer,
    cluster_scoped_key_func,
)
from nvinformers.controller import (
    Controller,
    EventHandlerFuncs,
    Request,
    Result,
    enqueue_mapped,
    predicates,
)
from nvinformers.errors import ExpiredError
from nvinformers.watch import Event, EventType
from tests.unit.cache.scripted import ScriptedListerWatcher, eventually, gpu

from .conftest import WAIT, FakeInformer, RecordingReconciler, as_informer, sample

FAST = BackoffConfig(initial=0.001, cap=0.002)


def node_gpu(name: str, rv: int, node: str) -> GPU:
    return gpu(name, rv, node=node)


def by_node(obj: GPU) -> list[Request]:
    node = obj.metadata.labels.get("node")
    return [Request(node)] if node else []


class InformerHarness:
    def __init__(self, lw: ScriptedListerWatcher) -> None:
        self.lw = lw
        self.informer: SharedIndexInformer[GPU] = SharedIndexInformer(
            lw,
            name="gpus",
            key_func=cluster_scoped_key_func,
            backoff=FAST,
            registry=CollectorRegistry(),
            rng=random.Random(3),
        )
        self.stop = threading.Event()
        self.thread = threading.Thread(
            target=self.informer.run, args=(self.stop,), name="test-informer"
        )

    def start(self) -> InformerHarness:
        self.thread.start()
        return self

    def close(self) -> None:
        self.stop.set()
        if self.thread.is_alive() or self.thread.ident is not None:
            self.thread.join(WAIT)
            assert not self.thread.is_alive()


@pytest.fixture
def make_informer() -> Iterator[Callable[..., InformerHarness]]:
    harnesses: list[InformerHarness] = []

    def build(objects: list[GPU]) -> InformerHarness:
        h = InformerHarness(ScriptedListerWatcher(default_list=objects))
        harnesses.append(h)
        return h

    yield build
    for h in harnesses:
        h.close()


def start(controller: Controller) -> Controller:
    controller.start()
    assert controller.wait_for_started(WAIT)
    return controller


# ------------------------------------------------------------------- with a real informer


def test_the_default_handler_requests_each_object_by_its_informer_key(
    make_controller: Callable[..., Controller], make_informer: Callable[..., InformerHarness]
) -> None:
    h = make_informer([gpu("gpu-0", 5), gpu("gpu-1", 7)])
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(h.informer)
    h.start()
    start(ctl)
    assert rec.wait_for_calls(2)
    assert sorted(rec.names()) == ["gpu-0", "gpu-1"]
    watch = h.lw.watch_at(0)
    watch.push(
        Event(EventType.MODIFIED, gpu("gpu-0", 11)),
        Event(EventType.DELETED, gpu("gpu-1", 12)),
        Event(EventType.ADDED, gpu("gpu-2", 13)),
    )
    assert rec.wait_for_count("gpu-0", 2)
    assert rec.wait_for_count("gpu-1", 2)
    assert rec.wait_for_count("gpu-2", 1)
    assert all(r.namespace == "" for r in rec.calls)


def test_a_typed_informer_accessor_can_be_watched(
    make_controller: Callable[..., Controller], make_informer: Callable[..., InformerHarness]
) -> None:
    h = make_informer([gpu("gpu-0", 5)])

    class Accessor:  # like factory.device().v1alpha1().gpus()
        def informer(self) -> SharedIndexInformer[GPU]:
            return h.informer

    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(Accessor())
    h.start()
    start(ctl)
    assert rec.wait_for_count("gpu-0", 1)


def test_the_initial_list_is_queued_before_the_workers_start(
    make_controller: Callable[..., Controller],
    make_informer: Callable[..., InformerHarness],
    registry: CollectorRegistry,
) -> None:
    # The controller waits for its handler registration to sync, not just the informer: when
    # the workers start, every object of the initial list has reached the queue.
    h = make_informer([gpu(f"gpu-{i}", i + 1) for i in range(50)])
    ctl = make_controller()
    ctl.watch(h.informer)
    h.start()
    start(ctl)
    assert (sample(registry, "workqueue_adds_total", name="ctl") or 0) >= 50


def test_a_map_function_maps_both_states_of_an_update_and_relist_tombstones(
    make_controller: Callable[..., Controller], make_informer: Callable[..., InformerHarness]
) -> None:
    h = make_informer([node_gpu("gpu-0", 5, "n1"), node_gpu("gpu-1", 7, "n2")])
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(h.informer, handler=enqueue_mapped(by_node))
    h.start()
    start(ctl)
    assert rec.wait_for_count("n1", 1)
    assert rec.wait_for_count("n2", 1)
    # gpu-0 moves from n1 to n3: both nodes are reconciled.
    h.lw.watch_at(0).push(Event(EventType.MODIFIED, node_gpu("gpu-0", 11, "n3")))
    assert rec.wait_for_count("n3", 1)
    assert rec.wait_for_count("n1", 2)
    # gpu-1 vanishes while the watch is down: the relist's tombstone maps its last state.
    h.lw.lists.append(
        GPUList(items=(node_gpu("gpu-0", 11, "n3"),), metadata=ListMeta(resource_version="20"))
    )
    h.lw.watch_at(0).fail(ExpiredError("too old resource version"))
    assert rec.wait_for_count("n2", 2)
    assert "gpu-0" not in rec.names()


def test_predicates_drop_resyncs_and_filter_by_label(
    make_controller: Callable[..., Controller], make_informer: Callable[..., InformerHarness]
) -> None:
    h = make_informer([gpu("gpu-0", 5, rack="a"), gpu("gpu-1", 7, rack="b")])
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(
        h.informer,
        predicates=[
            predicates.resource_version_changed_predicate(),
            predicates.label_selector_predicate("rack=a"),
        ],
    )
    h.start()
    start(ctl)
    assert rec.wait_for_count("gpu-0", 1)
    h.lw.watch_at(0).push(
        Event(EventType.MODIFIED, gpu("gpu-1", 8, rack="b")),
        Event(EventType.MODIFIED, gpu("gpu-0", 9, rack="a")),
    )
    assert rec.wait_for_count("gpu-0", 2)
    assert "gpu-1" not in rec.names()


# -------------------------------------------------------------------- with a fake informer


def test_a_tombstone_without_a_last_state_is_still_requested_by_key(
    make_controller: Callable[..., Controller],
) -> None:
    informer = FakeInformer()
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(as_informer(informer), predicates=[predicates.label_selector_predicate("rack=a")])
    start(ctl)
    informer.handler.on_delete(DeletedFinalStateUnknown("gpu-9", None))
    assert rec.wait_for_count("gpu-9", 1)


def test_a_tombstone_without_a_last_state_cannot_be_mapped_and_is_counted(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    informer = FakeInformer()
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(as_informer(informer), handler=enqueue_mapped(by_node))
    start(ctl)
    with caplog.at_level(logging.WARNING, logger="nvinformers.controller"):
        informer.handler.on_delete(DeletedFinalStateUnknown("gpu-9", None))
        informer.handler.on_delete(DeletedFinalStateUnknown("gpu-8", node_gpu("gpu-8", 3, "n7")))
    assert rec.wait_for_count("n7", 1)
    skipped = "nvinformers_controller_events_skipped_total"
    assert sample(registry, skipped, controller="ctl", reason="unknown_final_state") == 1.0
    assert "gpu-9" in caplog.text
    assert "last state is unknown" in caplog.text


def test_a_raising_handler_or_predicate_is_counted_and_the_source_keeps_working(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    def exploding_map(obj: GPU) -> list[Request]:
        if obj.metadata.name == "gpu-bad":
            raise RuntimeError("map failed")
        return [Request(obj.metadata.name)]

    def exploding_filter(obj: GPU) -> bool:
        if obj.metadata.name == "gpu-worse":
            raise RuntimeError("filter failed")
        return True

    informer = FakeInformer()
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(
        as_informer(informer),
        handler=enqueue_mapped(exploding_map),
        predicates=[predicates.new_predicate_funcs(exploding_filter)],
    )
    start(ctl)
    with caplog.at_level(logging.ERROR, logger="nvinformers.controller"):
        informer.handler.on_add(gpu("gpu-bad", 1), False)
        informer.handler.on_add(gpu("gpu-worse", 1), False)
        informer.handler.on_add(gpu("gpu-good", 1), False)
    assert rec.wait_for_count("gpu-good", 1)
    skipped = "nvinformers_controller_events_skipped_total"
    assert sample(registry, skipped, controller="ctl", reason="handler_error") == 2.0
    # Logging is rate-limited: the first problem is logged with its traceback.
    assert "map failed" in caplog.text


def test_an_object_without_a_key_is_counted_as_a_key_error(
    make_controller: Callable[..., Controller], registry: CollectorRegistry
) -> None:
    informer = FakeInformer()
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)
    ctl.watch(as_informer(informer))
    start(ctl)
    informer.handler.on_add(object(), False)
    informer.handler.on_add(gpu("a/b/c", 1), False)  # a key Request.from_key cannot split
    informer.handler.on_add(gpu("gpu-0", 1), False)
    assert rec.wait_for_count("gpu-0", 1)
    skipped = "nvinformers_controller_events_skipped_total"
    assert sample(registry, skipped, controller="ctl", reason="key_error") == 2.0


def test_handlers_only_enqueue_and_never_wait_for_busy_workers(
    make_controller: Callable[..., Controller],
) -> None:
    gate = threading.Event()
    rec = RecordingReconciler()

    def blocked(request: Request) -> Result:
        assert gate.wait(WAIT)
        return Result()

    rec.script("gpu-0", blocked)
    informer = FakeInformer()
    ctl = make_controller(reconciler=rec, max_concurrent_reconciles=1)
    ctl.watch(as_informer(informer))
    start(ctl)
    informer.handler.on_add(gpu("gpu-0", 1), False)
    assert rec.wait_for(lambda: rec.in_flight == 1)
    # The only worker is busy: 200 events are still accepted at once by the handler.
    for i in range(1, 201):
        informer.handler.on_update(gpu(f"gpu-{i}", 1), gpu(f"gpu-{i}", 2))
    assert ctl.queue.len() == 200
    gate.set()
    assert rec.wait_for_calls(201)


def test_custom_event_handler_funcs_receive_events_and_the_queue(
    make_controller: Callable[..., Controller],
) -> None:
    informer = FakeInformer()
    rec = RecordingReconciler()
    ctl = make_controller(reconciler=rec)

    def on_update(event: Any, queue: Any) -> None:
        if event.object_old.metadata.labels.get("rack") != event.object_new.metadata.labels.get(
            "rack"
        ):
            queue.add(Request("rack-changed-" + event.key))

    ctl.watch(as_informer(informer), handler=EventHandlerFuncs(update=on_update))
    start(ctl)
    informer.handler.on_add(gpu("gpu-0", 1, rack="a"), False)  # ignored: no create function
    informer.handler.on_update(gpu("gpu-0", 1, rack="a"), gpu("gpu-0", 2, rack="b"))
    assert rec.wait_for_count("rack-changed-gpu-0", 1)
    assert rec.names() == ["rack-changed-gpu-0"]


def test_registrations_get_unique_names_and_are_removed_on_stop(
    make_controller: Callable[..., Controller],
) -> None:
    informer = FakeInformer()
    ctl = make_controller()
    ctl.watch(as_informer(informer))
    ctl.watch(as_informer(informer), handler=enqueue_mapped(by_node))
    assert informer.registrations == []  # registered when the controller starts
    start(ctl)
    assert [r.name for r in informer.registrations] == ["controller-ctl", "controller-ctl-2"]
    assert ctl.stop(WAIT)
    assert informer.registrations == []
    assert [r.name for r in informer.removed] == ["controller-ctl", "controller-ctl-2"]


def test_a_watch_on_a_running_controller_is_registered_at_once(
    make_controller: Callable[..., Controller],
) -> None:
    rec = RecordingReconciler()
    ctl = start(make_controller(reconciler=rec))
    informer = FakeInformer()
    ctl.watch(as_informer(informer))
    informer.handler.on_add(gpu("gpu-0", 1), False)
    assert rec.wait_for_count("gpu-0", 1)


def test_watch_rejects_what_is_not_an_informer_handler_or_predicate(
    make_controller: Callable[..., Controller],
) -> None:
    ctl = make_controller()
    informer = FakeInformer()
    with pytest.raises(TypeError, match="needs a SharedIndexInformer"):
        ctl.watch(object())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="pass enqueue_mapped"):
        ctl.watch(as_informer(informer), handler=by_node)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="informer ResourceEventHandler"):
        ctl.watch(as_informer(informer), handler=RecordingHandlerLike())  # type: ignore[arg-type]
    with pytest.raises(TypeError, match=r"did you mean resource_version_changed_predicate\(\)"):
        ctl.watch(as_informer(informer), predicates=[predicates.resource_version_changed_predicate])  # type: ignore[list-item]
    with pytest.raises(TypeError, match="wrap it in a list"):
        ctl.watch(as_informer(informer), predicates=predicates.label_changed_predicate())  # type: ignore[arg-type]
    assert informer.registrations == []
    ctl.stop()
    with pytest.raises(RuntimeError, match="cannot watch after stop"):
        ctl.watch(as_informer(informer))


class RecordingHandlerLike:
    def on_add(self, obj: Any, is_in_initial_list: bool) -> None: ...

    def on_update(self, old: Any, new: Any) -> None: ...

    def on_delete(self, obj: Any) -> None: ...


def test_skipped_event_logs_are_rate_limited(
    make_controller: Callable[..., Controller],
    registry: CollectorRegistry,
    caplog: pytest.LogCaptureFixture,
) -> None:
    informer = FakeInformer()
    ctl = make_controller()
    ctl.watch(as_informer(informer), handler=enqueue_mapped(by_node))
    start(ctl)
    with caplog.at_level(logging.WARNING, logger="nvinformers.controller"):
        for i in range(20):
            informer.handler.on_delete(DeletedFinalStateUnknown(f"gpu-{i}", None))
    skipped = "nvinformers_controller_events_skipped_total"
    assert eventually(
        lambda: sample(registry, skipped, controller="ctl", reason="unknown_final_state") == 20.0
    )
    assert len([r for r in caplog.records if "skipped" in r.getMessage()]) == 1
