"""The shared definitions of nvinformers.meta and their two backings (protobuf and JSON).

ObjectMeta, Condition and ListMeta are defined once; a GPU (protobuf) and a Kubernetes object
(JSON) carrying the same data read the same through them. Header accessors are registered per
class and are what the cache reads.
"""

from __future__ import annotations

import copy
import re
from datetime import UTC, datetime
from operator import attrgetter
from typing import Any

import pytest

from nvinformers import kube, meta
from nvinformers._frozen import Frozen
from nvinformers.api.device import v1alpha1
from nvinformers.api.device.v1alpha1 import GPU, Condition, FrozenMap, GPUList
from nvinformers.cache import (
    ThreadSafeStore,
    cluster_scoped_key_func,
    meta_namespace_index_func,
    meta_namespace_key_func,
)
from nvinformers.cache._store import resource_version_of
from nvinformers.kube import KubeObject, Labels

CREATED = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
CHANGED = datetime(2026, 2, 3, 4, 5, 6, tzinfo=UTC)


def a_gpu() -> GPU:
    return GPU.new(
        "gpu-0",
        namespace="default",
        resource_version="7",
        uid="u-1",
        generation=3,
        creation_timestamp=CREATED,
        labels={"rack": "a"},
        annotations={"note": "hi"},
        conditions=[
            Condition(
                type="Ready",
                status="False",
                reason="XidError",
                message="Xid 79",
                observed_generation=3,
                last_transition_time=CHANGED,
            )
        ],
    )


def the_same_as_json(gpu: GPU) -> KubeObject:
    """A Kubernetes object carrying ``gpu``'s metadata and conditions, decoded from JSON."""
    return KubeObject.from_dict(gpu.to_dict())


# ------------------------------------------------------------------------ one definition each


def test_both_object_metas_implement_the_one_protocol_and_read_the_same() -> None:
    gpu = a_gpu()
    protobuf: meta.ObjectMeta = gpu.metadata  # mypy checks both backings against the protocol
    json_backed: meta.ObjectMeta = the_same_as_json(gpu).metadata
    fields = [
        "name",
        "namespace",
        "resource_version",
        "uid",
        "generation",
        "creation_timestamp",
    ]
    for view in (protobuf, json_backed):
        assert [getattr(view, f) for f in fields] == ["gpu-0", "default", "7", "u-1", 3, CREATED]
        assert dict(view.labels) == {"rack": "a"}
        assert dict(view.annotations) == {"note": "hi"}
    assert json_backed.to_dict() == protobuf.to_dict()


def test_both_conditions_implement_the_one_protocol_and_read_the_same() -> None:
    gpu = a_gpu()
    protobuf: tuple[meta.Condition, ...] = gpu.status.conditions
    json_backed: tuple[meta.Condition, ...] = the_same_as_json(gpu).conditions
    fields = attrgetter(
        "type", "status", "reason", "message", "observed_generation", "last_transition_time"
    )
    assert fields(protobuf[0]) == fields(json_backed[0])
    assert fields(protobuf[0]) == ("Ready", "False", "XidError", "Xid 79", 3, CHANGED)
    assert meta.is_status_condition_false(protobuf, "Ready")
    assert meta.is_status_condition_false(json_backed, "Ready")


def test_list_meta_is_one_class_for_both_sources() -> None:
    assert v1alpha1.ListMeta is kube.ListMeta is meta.ListMeta
    assert kube.parse_list(b'{"kind":"NodeList","metadata":{"resourceVersion":"9"}}').metadata == (
        meta.ListMeta(resource_version="9")
    )
    assert GPUList(metadata=meta.ListMeta(resource_version="9")).to_dict()["metadata"] == {
        "resourceVersion": "9"
    }
    paged = meta.ListMeta(resource_version="9", continue_="c", remaining_item_count=0)
    assert paged.to_dict() == {"resourceVersion": "9", "continue": "c", "remainingItemCount": 0}
    assert meta.ListMeta().to_dict() == {}


def _every_view() -> list[Any]:
    gpu = a_gpu()
    node = the_same_as_json(gpu)
    return [
        gpu,
        gpu.metadata,
        gpu.spec,
        gpu.status,
        gpu.status.conditions[0],
        gpu.metadata.labels,
        node,
        node.metadata,
        node.metadata.labels,
    ]


@pytest.mark.parametrize("view", _every_view(), ids=lambda v: type(v).__name__)
def test_every_view_is_frozen_by_the_one_base(view: Any) -> None:
    assert Frozen in type(view).__mro__
    hints = ["to_proto()"] if hasattr(view, "to_proto") else ["dict(...)", "to_dict()"]
    hint = "|".join(map(re.escape, hints))
    with pytest.raises(AttributeError, match=rf"immutable \(cannot set 'x'\); use ({hint}) for"):
        view.x = 1
    with pytest.raises(AttributeError, match=r"immutable \(cannot delete"):
        del view.x
    assert copy.copy(view) is view
    assert copy.deepcopy(view) is view


def test_frozen_maps_are_frozen_by_the_one_base() -> None:
    assert issubclass(FrozenMap, Frozen)
    assert issubclass(Labels, Frozen)


# ------------------------------------------------------------------------- header accessors


class _Header:
    def __init__(self, name: str, namespace: str, rv: str) -> None:
        self.n, self.ns, self.rv = name, namespace, rv

    @property
    def metadata(self) -> Any:
        raise AssertionError("the cache read metadata instead of the registered readers")


class _Registered(_Header):
    pass


class _Sub(_Registered):
    pass


meta.register_header_accessors(
    _Registered, name=attrgetter("n"), namespace=attrgetter("ns"), resource_version=attrgetter("rv")
)


def test_the_cache_reads_registered_readers_for_the_class_and_its_subclasses() -> None:
    for obj in (_Registered("a", "ns", "5"), _Sub("a", "ns", "5")):
        assert meta.header_accessors(type(obj)).direct
        assert meta_namespace_key_func(obj) == "ns/a"
        assert cluster_scoped_key_func(obj) == "a"
        assert meta_namespace_index_func(obj) == ["ns"]
        assert resource_version_of(obj) == "5"
        store = ThreadSafeStore[Any]({"namespace": meta_namespace_index_func})
        store.replace({"ns/a": obj})
        assert store.index_keys("namespace", "ns") == ["ns/a"]


def test_kube_objects_are_read_through_metadata() -> None:
    node = the_same_as_json(a_gpu())
    generic = meta.header_accessors(KubeObject)
    assert not generic.direct
    assert (generic.name(node), generic.namespace(node), generic.resource_version(node)) == (
        "gpu-0",
        "default",
        "7",
    )


def test_registering_again_replaces_the_readers_even_for_a_class_looked_up_before() -> None:
    class Late(_Header):
        pass

    obj = Late("b", "", "1")
    assert not meta.header_accessors(Late).direct  # seen before it registers
    meta.register_header_accessors(
        Late, name=attrgetter("n"), namespace=attrgetter("ns"), resource_version=attrgetter("rv")
    )
    assert meta_namespace_key_func(obj) == "b"
    meta.register_header_accessors(
        Late,
        name=lambda o: "renamed",
        namespace=attrgetter("ns"),
        resource_version=attrgetter("rv"),
    )
    assert meta_namespace_key_func(obj) == "renamed"


def test_a_registered_reader_that_yields_no_name_falls_back_to_the_named_error() -> None:
    class Nameless(_Header):
        metadata = None

    meta.register_header_accessors(
        Nameless,
        name=attrgetter("n"),
        namespace=attrgetter("ns"),
        resource_version=attrgetter("rv"),
    )
    with pytest.raises(ValueError, match="has no metadata"):
        meta_namespace_key_func(Nameless("", "", "1"))


def test_registration_rejects_what_cannot_be_a_reader() -> None:
    readers: dict[str, Any] = {
        "name": attrgetter("n"),
        "namespace": attrgetter("ns"),
        "resource_version": "rv",
    }
    with pytest.raises(TypeError, match="_Header's resource_version reader is not callable"):
        meta.register_header_accessors(_Header, **readers)
    with pytest.raises(TypeError, match="for a class"):
        meta.register_header_accessors(_Header("a", "", "1"), **readers)  # type: ignore[arg-type]
    assert not meta.header_accessors(_Header).direct
