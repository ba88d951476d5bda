"""Informers over the fake clientset: users' unit tests need no socket (the seed's fake-client
pattern), and unlike client-go's fake, nothing written between the list and the watch is lost."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from prometheus_client import CollectorRegistry

from nvinformers.api.device.v1alpha1 import GPU, Condition
from nvinformers.cache import ResourceEventHandlerFuncs
from nvinformers.clientset.fake import FakeClientset
from nvinformers.informers import SharedInformerFactory
from tests.unit.cache.scripted import WAIT


@pytest.fixture
def clientset() -> FakeClientset:
    return FakeClientset(GPU.new("gpu-1", uuid="GPU-1"))


@pytest.fixture
def factory(clientset: FakeClientset) -> Iterator[SharedInformerFactory]:
    f = SharedInformerFactory(clientset, registry=CollectorRegistry())
    yield f
    f.shutdown(timeout=WAIT)


def test_an_object_added_after_sync_reaches_the_handler_and_the_lister(
    clientset: FakeClientset, factory: SharedInformerFactory
) -> None:
    added: list[str] = []
    seen = threading.Condition()

    def on_add(gpu: GPU) -> None:
        with seen:
            added.append(gpu.metadata.name)
            seen.notify_all()

    gpus = factory.device().v1alpha1().gpus()
    gpus.informer().add_event_handler(ResourceEventHandlerFuncs(on_add=on_add))
    factory.start()
    assert factory.wait_for_cache_sync(timeout=WAIT) == {"gpus": True}
    clientset.tracker.add(
        GPU.new("gpu-2", uuid="GPU-2", conditions=[Condition(type="Ready", status="True")])
    )
    with seen:
        assert seen.wait_for(lambda: added == ["gpu-1", "gpu-2"], WAIT)
    assert gpus.lister().get("gpu-2").spec.uuid == "GPU-2"
    assert [a.verb for a in clientset.actions()][:2] == ["list", "watch"]


def test_writes_between_list_and_watch_are_not_lost(clientset: FakeClientset) -> None:
    informer_list = clientset.device_v1alpha1().gpus().list()
    clientset.tracker.add(GPU.new("gpu-2"))  # lands after the list, before the watch opens
    from nvinformers.options import ListOptions

    with (
        clientset.device_v1alpha1()
        .gpus()
        .watch(ListOptions(resource_version=informer_list.metadata.resource_version)) as watch
    ):
        event = next(iter(watch))
    assert event.type == "ADDED"
    assert event.object.metadata.name == "gpu-2"


def test_gpus_are_cluster_scoped_so_the_factory_takes_no_namespace() -> None:
    # client-go's cluster-scoped informers ignore WithNamespace; an option that can only be
    # ignored is refused instead.
    stamped = FakeClientset(GPU.new("gpu-1", namespace="default", uuid="GPU-1"))
    with pytest.raises(TypeError, match="namespace"):
        SharedInformerFactory(stamped, namespace="gpu-operator")  # type: ignore[call-arg]
    # Whatever namespace a server stamps on a GPU, the factory caches it and finds it by name.
    with SharedInformerFactory(stamped, registry=CollectorRegistry()) as factory:
        gpus = factory.device().v1alpha1().gpus()
        gpus.informer()
        factory.start()
        assert factory.wait_for_cache_sync(timeout=WAIT) == {"gpus": True}
        assert gpus.lister().get("gpu-1").metadata.namespace == "default"
