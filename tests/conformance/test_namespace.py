"""Namespaces: GPUs are cluster-scoped, but a server may store them under ``default``.

Whether or not the server stamps a namespace, the SDK reads a GPU by its name, and informers key
it by its name, so ``lister.get(name)`` works either way.
"""

from __future__ import annotations

from collections.abc import Callable

import pytest

from nvinformers.api.device.v1alpha1 import gpu_pb2 as pb
from nvinformers.cache import NAMESPACE_INDEX
from nvinformers.clientset import Clientset
from nvinformers.errors import NotFoundError
from nvinformers.informers import SharedInformerFactory
from nvinformers.options import ListOptions
from tests.conformance.support import Writer
from tests.conformance.test_informer import Informed

OTHER_NAMESPACE = "conformance-other"


def test_a_gpu_written_without_a_namespace_is_read_and_cached_by_name(
    clientset: Clientset, writer: Writer, informer_factory: Callable[..., SharedInformerFactory]
) -> None:
    created = writer.create("a")
    name, namespace = created.object_meta.name, created.object_meta.namespace
    assert namespace in ("", "default")
    got = clientset.device_v1alpha1().gpus().get(name)
    assert got.metadata.namespace == namespace
    informed = Informed(informer_factory, clientset, writer)
    assert informed.synced()
    assert informed.informer.get_indexer().list_keys() == [name]
    assert informed.lister.get(name).metadata.uid == created.object_meta.uid
    indexed = informed.informer.get_indexer().by_index(NAMESPACE_INDEX, namespace)
    assert [g.metadata.name for g in indexed] == [name]


def test_a_gpu_in_another_namespace_is_listed_but_not_found_by_name(
    clientset: Clientset, writer: Writer
) -> None:
    created = writer.create("a", namespace=OTHER_NAMESPACE)
    name = created.object_meta.name
    assert created.object_meta.namespace == OTHER_NAMESPACE
    gpus = clientset.device_v1alpha1().gpus()
    listed = gpus.list(ListOptions(label_selector=writer.selector))
    assert [(g.metadata.name, g.metadata.namespace) for g in listed.items] == [
        (name, OTHER_NAMESPACE)
    ]
    # The SDK's get names no namespace; the server looks in "default".
    with pytest.raises(NotFoundError):
        gpus.get(name)
    request = pb.DeleteGpuRequest(name=name, namespace=OTHER_NAMESPACE)
    writer.stub.DeleteGpu(request, timeout=30)
