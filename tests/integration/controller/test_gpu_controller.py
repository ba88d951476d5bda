"""A Controller driven by the real GPU informer over the fake Device API server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from nvinformers import meta
from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.cache import BackoffConfig
from nvinformers.clientset import Clientset
from nvinformers.controller import Controller, DeleteEvent, Request, Result, predicates
from nvinformers.errors import NotFoundError
from nvinformers.informers import SharedInformerFactory, new_gpu_informer
from nvinformers.listers import GPULister
from nvinformers.testing import FakeServer

from .conftest import WAIT

FAST = BackoffConfig(initial=0.001, cap=0.01)


class ReadyObserver:
    """A level-based reconciler: records, per GPU, the Ready state its last reconcile read from
    the cache (None: the GPU is gone)."""

    def __init__(self, lister: GPULister) -> None:
        self.lister = lister
        self.observed: dict[str, bool | None] = {}
        self.reconciles = 0
        self._cond = threading.Condition()

    def reconcile(self, request: Request) -> Result:
        try:
            gpu = self.lister.get(request.name)
        except NotFoundError:
            state: bool | None = None
        else:
            state = meta.is_status_condition_true(gpu.status.conditions, "Ready")
        with self._cond:
            self.observed[request.name] = state
            self.reconciles += 1
            self._cond.notify_all()
        return Result()

    def wait_for(self, expected: dict[str, bool | None]) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: self.observed == expected, WAIT)


def server_state(server: FakeServer, gone: tuple[str, ...] = ()) -> dict[str, bool | None]:
    state: dict[str, bool | None] = {
        g.metadata.name: meta.is_status_condition_true(g.status.conditions, "Ready")
        for g in server.list_gpus().items
    }
    state.update(dict.fromkeys(gone))
    return state


@pytest.fixture
def factory(clientset: Clientset) -> Iterator[SharedInformerFactory]:
    f = SharedInformerFactory(clientset, registry=CollectorRegistry())
    yield f
    f.shutdown(WAIT)


def test_the_controller_reconciles_the_final_state_of_every_gpu(
    server: FakeServer, factory: SharedInformerFactory
) -> None:
    registry = CollectorRegistry()
    gpus = factory.device().v1alpha1().gpus()
    observer = ReadyObserver(gpus.lister())
    ctl = Controller("gpu-ready", observer, max_concurrent_reconciles=3, registry=registry)
    ctl.watch(gpus, predicates=[predicates.resource_version_changed_predicate()])
    stop = threading.Event()
    factory.start(stop)
    ctl.start()
    try:
        assert ctl.wait_for_started(WAIT)
        assert observer.wait_for(server_state(server))
        # Churn: flips (some twice), a delete, a create.
        for i in range(0, 8, 2):
            server.set_ready(f"gpu-{i}", False)
        server.set_ready("gpu-2", True)
        server.set_ready("gpu-5", False)
        server.delete_gpu("gpu-7")
        server.create_gpu(
            GPU.new("gpu-8", uuid="GPU-8", conditions=[Condition(type="Ready", status="False")])
        )
        expected = server_state(server, gone=("gpu-7",))
        assert expected["gpu-2"] is True and expected["gpu-0"] is False
        assert observer.wait_for(expected)
    finally:
        assert ctl.stop(WAIT)
    assert (
        registry.get_sample_value(
            "controller_runtime_reconcile_total", {"controller": "gpu-ready", "result": "error"}
        )
        == 0.0
    )


def test_a_delete_missed_while_disconnected_reaches_the_controller_as_a_tombstone(
    server: FakeServer, clientset: Clientset
) -> None:
    informer = new_gpu_informer(clientset, backoff=FAST, registry=CollectorRegistry())
    observer = ReadyObserver(GPULister(informer.get_indexer()))
    unknown_state_deletes: list[DeleteEvent[Any]] = []

    def record_delete(event: DeleteEvent[Any]) -> bool:
        if event.delete_state_unknown:
            unknown_state_deletes.append(event)
        return True

    ctl = Controller("gpu-ready", observer, registry=CollectorRegistry())
    ctl.watch(informer, predicates=[predicates.Funcs(delete=record_delete)])
    stop = threading.Event()
    thread = threading.Thread(target=informer.run, args=(stop,), name="test-gpu-informer")
    thread.start()
    ctl.start()
    try:
        assert ctl.wait_for_started(WAIT)
        assert observer.wait_for(server_state(server))
        # The delete is never delivered on the watch, and the history that held it is
        # compacted: only a relist can tell the informer, and it does so with a tombstone.
        server.drop_next_events(1)
        server.delete_gpu("gpu-3")
        server.compact()
        server.end_watches()
        assert observer.wait_for(server_state(server, gone=("gpu-3",)))
        assert [e.key for e in unknown_state_deletes] == ["gpu-3"]
        assert unknown_state_deletes[0].object is not None
    finally:
        assert ctl.stop(WAIT)
        stop.set()
        thread.join(WAIT)
        assert not thread.is_alive()
