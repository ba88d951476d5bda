"""The namespace index function and the index types."""

from __future__ import annotations

from dataclasses import dataclass

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    IndexConflictError,
    Indexers,
    meta_namespace_index_func,
)


@dataclass
class _Meta:
    name: str
    namespace: str | None


@dataclass
class _KubeLike:
    metadata: _Meta


def test_namespace_index_name_matches_client_go() -> None:
    assert NAMESPACE_INDEX == "namespace"


def test_namespace_index_func_returns_the_namespace() -> None:
    assert meta_namespace_index_func(GPU.new("gpu-0", namespace="default")) == ["default"]


def test_cluster_scoped_objects_are_indexed_under_the_empty_namespace() -> None:
    assert meta_namespace_index_func(GPU.new("gpu-0")) == [""]
    assert meta_namespace_index_func(_KubeLike(_Meta("node-1", None))) == [""]


def test_index_conflict_error_is_a_value_error() -> None:
    assert issubclass(IndexConflictError, ValueError)


def test_indexers_accept_functions_returning_lists_or_tuples() -> None:
    # Static check (mypy): both shapes are valid IndexFuncs.
    indexers: Indexers = {
        NAMESPACE_INDEX: meta_namespace_index_func,
        "name": lambda obj: (obj.metadata.name,),
    }
    assert list(indexers["name"](GPU.new("gpu-0"))) == ["gpu-0"]
