"""Event handlers in isolation: keys, map functions, tombstones, validation."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import cluster_scoped_key_func, meta_namespace_key_func
from nvinformers.controller import (
    CreateEvent,
    DeleteEvent,
    EventHandlerFuncs,
    Request,
    UpdateEvent,
    enqueue_mapped,
    enqueue_request_for_object,
)
from nvinformers.controller.handler import SkipEventError, check_event_handler


@dataclass
class ListQueue:
    added: list[Request] = field(default_factory=list)

    def add(self, item: Request) -> None:
        self.added.append(item)

    def add_after(self, item: Request, delay: float) -> None:
        self.added.append(item)

    def add_rate_limited(self, item: Request) -> None:
        self.added.append(item)


def gpu(name: str, namespace: str = "", **labels: str) -> GPU:
    return GPU.new(name, namespace=namespace, labels=labels or None)


def test_enqueue_request_for_object_uses_the_informers_key_function() -> None:
    handler, queue = enqueue_request_for_object(), ListQueue()
    stamped = gpu("gpu-0", namespace="default")
    handler.create(CreateEvent(stamped, key_func=cluster_scoped_key_func), queue)
    handler.create(CreateEvent(stamped, key_func=meta_namespace_key_func), queue)
    handler.update(UpdateEvent(stamped, stamped, key_func=cluster_scoped_key_func), queue)
    handler.delete(DeleteEvent(stamped, key_func=cluster_scoped_key_func), queue)
    handler.delete(DeleteEvent(None, delete_state_unknown=True, tombstone_key="ns/pod-0"), queue)
    assert queue.added == [
        Request("gpu-0"),
        Request("gpu-0", namespace="default"),
        Request("gpu-0"),
        Request("gpu-0"),
        Request("pod-0", namespace="ns"),
    ]
    assert repr(handler) == "enqueue_request_for_object()"


def test_enqueue_request_for_object_reports_unkeyable_objects() -> None:
    handler = enqueue_request_for_object()
    with pytest.raises(SkipEventError) as info:
        handler.create(CreateEvent(object()), ListQueue())
    assert info.value.reason == "key_error"
    with pytest.raises(SkipEventError) as info:
        handler.delete(DeleteEvent(None), ListQueue())
    assert info.value.reason == "key_error"


def by_node(obj: GPU) -> list[Request]:
    return [Request(obj.metadata.labels["node"]), Request("all-nodes")]


def test_map_handler_maps_old_and_new_and_deduplicates() -> None:
    handler, queue = enqueue_mapped(by_node), ListQueue()
    old, new = gpu("gpu-0", node="n1"), gpu("gpu-0", node="n2")
    handler.update(UpdateEvent(old, new), queue)
    assert queue.added == [Request("n2"), Request("all-nodes"), Request("n1")]
    queue.added.clear()
    handler.update(UpdateEvent(new, new), queue)  # a resync: mapped once
    assert queue.added == [Request("n2"), Request("all-nodes")]
    assert repr(handler) == "enqueue_mapped('by_node')"


def test_map_handler_maps_the_last_known_state_of_a_tombstone() -> None:
    handler, queue = enqueue_mapped(by_node), ListQueue()
    handler.delete(
        DeleteEvent(gpu("gpu-0", node="n1"), delete_state_unknown=True, tombstone_key="gpu-0"),
        queue,
    )
    assert queue.added == [Request("n1"), Request("all-nodes")]
    with pytest.raises(SkipEventError) as info:
        handler.delete(DeleteEvent(None, delete_state_unknown=True, tombstone_key="gpu-1"), queue)
    assert info.value.reason == "unknown_final_state"
    assert "'gpu-1'" in str(info.value)


def test_map_functions_must_return_requests() -> None:
    queue = ListQueue()
    with pytest.raises(TypeError, match="expected Request objects"):
        enqueue_mapped(lambda obj: ["gpu-0"]).create(CreateEvent(gpu("gpu-0")), queue)  # type: ignore[list-item]
    with pytest.raises(TypeError, match=r"expected an iterable of Request objects \(return \[\]"):
        enqueue_mapped(lambda obj: None).create(CreateEvent(gpu("gpu-0")), queue)  # type: ignore[arg-type,return-value]
    with pytest.raises(TypeError, match="must be callable"):
        enqueue_mapped("gpu-0")  # type: ignore[arg-type]
    assert queue.added == []


def test_event_handler_funcs_ignore_missing_kinds() -> None:
    seen: list[str] = []
    handler = EventHandlerFuncs(delete=lambda event, queue: seen.append(event.key))
    obj = gpu("gpu-0")
    handler.create(CreateEvent(obj), ListQueue())
    handler.update(UpdateEvent(obj, obj), ListQueue())
    handler.delete(DeleteEvent(obj), ListQueue())
    assert seen == ["gpu-0"]


def test_check_event_handler() -> None:
    handler = enqueue_request_for_object()
    assert check_event_handler(handler) is handler
    with pytest.raises(TypeError, match="pass enqueue_mapped"):
        check_event_handler(by_node)

    class InformerStyle:
        def on_add(self, obj: Any, initial: bool) -> None: ...

    with pytest.raises(TypeError, match="informer ResourceEventHandler"):
        check_event_handler(InformerStyle())
