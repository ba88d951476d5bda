"""Key functions, key splitting, the DeletedFinalStateUnknown tombstone, and the object headers
the cache reads (through the readers GPUs register, through ``metadata`` otherwise)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    DeletedFinalStateUnknown,
    ExplicitKey,
    KeyFuncError,
    cluster_scoped_key_func,
    deletion_handling_meta_namespace_key_func,
    meta_namespace_index_func,
    meta_namespace_key_func,
    split_meta_namespace_key,
)
from nvinformers.cache._store import resource_version_of
from nvinformers.meta import header_accessors
from tests.unit.cache.scripted import ClientModel, gpu


@dataclass
class _Meta:
    name: Any
    namespace: str | None = None


@dataclass
class _KubeLike:
    """Shaped like a Kubernetes client model: cluster-scoped objects have namespace None."""

    metadata: _Meta


class TestMetaNamespaceKeyFunc:
    def test_namespaced_object_is_keyed_namespace_slash_name(self) -> None:
        assert meta_namespace_key_func(GPU.new("gpu-0", namespace="default")) == "default/gpu-0"

    def test_object_without_namespace_is_keyed_by_name(self) -> None:
        assert meta_namespace_key_func(GPU.new("gpu-0")) == "gpu-0"

    def test_namespace_none_counts_as_empty(self) -> None:
        assert meta_namespace_key_func(_KubeLike(_Meta("node-1", None))) == "node-1"

    def test_explicit_key_passes_through_as_plain_str(self) -> None:
        key = meta_namespace_key_func(ExplicitKey("ns/anything"))
        assert key == "ns/anything"
        assert type(key) is str

    def test_tombstone_is_not_unwrapped_and_the_error_says_what_to_use(self) -> None:
        tombstone = DeletedFinalStateUnknown("gpu-0", GPU.new("gpu-0"))
        with pytest.raises(KeyFuncError, match="deletion_handling_meta_namespace_key_func"):
            meta_namespace_key_func(tombstone)

    def test_object_without_metadata_is_rejected_naming_its_type(self) -> None:
        with pytest.raises(KeyFuncError, match=r"dict object .* has no metadata"):
            meta_namespace_key_func({"name": "x"})

    @pytest.mark.parametrize("name", ["", None, 42])
    def test_empty_or_non_str_name_is_rejected(self, name: Any) -> None:
        with pytest.raises(KeyFuncError, match=r"metadata\.name is"):
            meta_namespace_key_func(_KubeLike(_Meta(name, "ns")))

    def test_key_func_error_is_a_value_error(self) -> None:
        assert issubclass(KeyFuncError, ValueError)


class TestDeletionHandlingKeyFunc:
    def test_tombstone_yields_its_recorded_key(self) -> None:
        tombstone = DeletedFinalStateUnknown("ns/gpu-0", GPU.new("other", namespace="x"))
        assert deletion_handling_meta_namespace_key_func(tombstone) == "ns/gpu-0"

    def test_tombstone_without_last_state_still_has_a_key(self) -> None:
        tombstone: DeletedFinalStateUnknown[GPU] = DeletedFinalStateUnknown("gpu-0", None)
        assert deletion_handling_meta_namespace_key_func(tombstone) == "gpu-0"

    def test_plain_objects_are_keyed_like_meta_namespace_key_func(self) -> None:
        gpu = GPU.new("gpu-0", namespace="ns")
        assert deletion_handling_meta_namespace_key_func(gpu) == "ns/gpu-0"
        assert deletion_handling_meta_namespace_key_func(ExplicitKey("k")) == "k"

    def test_bad_objects_are_still_rejected(self) -> None:
        with pytest.raises(KeyFuncError):
            deletion_handling_meta_namespace_key_func(object())


class TestClusterScopedKeyFunc:
    def test_namespace_stamped_by_the_server_is_ignored(self) -> None:
        assert cluster_scoped_key_func(GPU.new("gpu-0", namespace="default")) == "gpu-0"
        assert cluster_scoped_key_func(GPU.new("gpu-0")) == "gpu-0"

    def test_tombstone_and_explicit_key_pass_through(self) -> None:
        assert cluster_scoped_key_func(DeletedFinalStateUnknown("gpu-3", None)) == "gpu-3"
        assert cluster_scoped_key_func(ExplicitKey("gpu-4")) == "gpu-4"

    def test_bad_objects_are_rejected(self) -> None:
        with pytest.raises(KeyFuncError, match="no metadata"):
            cluster_scoped_key_func(42)
        with pytest.raises(KeyFuncError, match=r"metadata\.name is ''"):
            cluster_scoped_key_func(_KubeLike(_Meta("", "default")))


class TestSplitMetaNamespaceKey:
    def test_one_part_is_a_cluster_scoped_name(self) -> None:
        assert split_meta_namespace_key("gpu-0") == ("", "gpu-0")

    def test_two_parts_are_namespace_and_name(self) -> None:
        assert split_meta_namespace_key("ns/gpu-0") == ("ns", "gpu-0")

    def test_more_parts_are_an_error(self) -> None:
        with pytest.raises(ValueError, match=r"unexpected key format: 'a/b/c'"):
            split_meta_namespace_key("a/b/c")

    @given(
        namespace=st.text(alphabet="abc-.0", max_size=5),
        name=st.text(alphabet="xyz-.1", min_size=1, max_size=5),
    )
    def test_round_trips_with_meta_namespace_key_func(self, namespace: str, name: str) -> None:
        key = meta_namespace_key_func(_KubeLike(_Meta(name, namespace)))
        assert split_meta_namespace_key(key) == (namespace, name)


class TestDeletedFinalStateUnknown:
    def test_is_frozen(self) -> None:
        tombstone: DeletedFinalStateUnknown[GPU] = DeletedFinalStateUnknown("gpu-0", None)
        with pytest.raises(dataclasses.FrozenInstanceError):
            tombstone.key = "other"  # type: ignore[misc]

    def test_compares_by_value(self) -> None:
        gpu = GPU.new("gpu-0")
        assert DeletedFinalStateUnknown("gpu-0", gpu) == DeletedFinalStateUnknown("gpu-0", gpu)
        assert DeletedFinalStateUnknown("gpu-0", gpu) != DeletedFinalStateUnknown("gpu-1", gpu)


# ------------------------------------------------- headers: read directly from GPUs (registered)


def test_a_gpus_header_is_read_directly_and_other_objects_through_metadata() -> None:
    g = gpu("gpu-0", 12)
    accessors = header_accessors(GPU)
    assert accessors.direct
    assert (accessors.name(g), accessors.namespace(g), accessors.resource_version(g)) == (
        "gpu-0",
        "",
        "12",
    )
    assert resource_version_of(g) == g.metadata.resource_version == "12"
    plain = ClientModel("p", "ns", "3")
    assert not header_accessors(ClientModel).direct
    assert resource_version_of(plain) == "3"


@pytest.mark.parametrize("key_func", [cluster_scoped_key_func, meta_namespace_key_func])
def test_key_functions_give_the_keys_metadata_implies_for_gpus(key_func: Any) -> None:
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
