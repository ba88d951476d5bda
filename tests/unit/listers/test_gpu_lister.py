"""GPULister over the GPU informer's indexer (cluster-scoped, keyed by name)."""

from __future__ import annotations

import pytest

from nvinformers import labels
from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    KeyedIndexer,
    cluster_scoped_key_func,
    meta_namespace_index_func,
    new_indexer,
)
from nvinformers.errors import NotFoundError, is_not_found
from nvinformers.listers import GPULister


def gpu(name: str, *, namespace: str = "", **labels_: str) -> GPU:
    return GPU.new(name, namespace=namespace, uuid=f"GPU-{name}", labels=labels_)


def by_rack(obj: GPU) -> list[str]:
    rack = obj.metadata.labels.get("rack")
    return [rack] if rack else []


@pytest.fixture
def indexer() -> KeyedIndexer[GPU]:
    idx: KeyedIndexer[GPU] = new_indexer(
        cluster_scoped_key_func, {NAMESPACE_INDEX: meta_namespace_index_func, "rack": by_rack}
    )
    idx.replace(
        [
            gpu("gpu-0", rack="a", model="h100"),
            gpu("gpu-1", rack="a", model="a100", draining="true"),
            gpu("gpu-2", rack="b", model="h100"),
            gpu("gpu-3"),
        ],
        "10",
    )
    return idx


def names(gpus: list[GPU]) -> list[str]:
    return sorted(g.metadata.name for g in gpus)


class TestGet:
    def test_returns_the_cached_object_itself(self, indexer: KeyedIndexer[GPU]) -> None:
        lister = GPULister(indexer)
        got = lister.get("gpu-1")
        assert got is indexer.get_by_key("gpu-1")
        assert got.spec.uuid == "GPU-gpu-1"

    def test_missing_gpu_raises_the_clientset_not_found_error(
        self, indexer: KeyedIndexer[GPU]
    ) -> None:
        with pytest.raises(NotFoundError) as info:
            GPULister(indexer).get("gpu-9")
        assert str(info.value) == 'gpus.device.nvidia.com "gpu-9" not found'
        assert is_not_found(info.value)
        assert info.value.code == 404
        assert info.value.name == "gpu-9"
        assert info.value.resource == "gpus.device.nvidia.com"

    def test_gpus_stamped_with_namespace_default_are_found_by_name(
        self, indexer: KeyedIndexer[GPU]
    ) -> None:
        stamped = gpu("gpu-7", namespace="default", rack="c")
        indexer.add(stamped)
        lister = GPULister(indexer)
        assert lister.get("gpu-7") is stamped
        assert names(lister.list("rack=c")) == ["gpu-7"]

    def test_is_cluster_scoped(self, indexer: KeyedIndexer[GPU]) -> None:
        lister = GPULister(indexer)
        assert lister.resource == "gpus"
        assert not lister.is_namespaced
        with pytest.raises(ValueError, match="gpus is cluster-scoped"):
            lister.namespaced("default")


class TestList:
    @pytest.mark.parametrize("selector", [None, "", labels.everything()])
    def test_no_selector_lists_everything(
        self, indexer: KeyedIndexer[GPU], selector: labels.Selector | str | None
    ) -> None:
        assert names(GPULister(indexer).list(selector)) == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]

    @pytest.mark.parametrize(
        ("selector", "expected"),
        [
            ("rack=a", ["gpu-0", "gpu-1"]),
            ("rack=a,!draining", ["gpu-0"]),
            ("model in (h100)", ["gpu-0", "gpu-2"]),
            ("rack!=a", ["gpu-2", "gpu-3"]),  # != matches objects without the key
            ("rack", ["gpu-0", "gpu-1", "gpu-2"]),
            ("rack=zzz", []),
        ],
    )
    def test_string_selectors_are_parsed(
        self, indexer: KeyedIndexer[GPU], selector: str, expected: list[str]
    ) -> None:
        assert names(GPULister(indexer).list(selector)) == expected

    def test_selector_objects(self, indexer: KeyedIndexer[GPU]) -> None:
        lister = GPULister(indexer)
        assert names(lister.list(labels.parse("model=h100,rack=b"))) == ["gpu-2"]
        assert names(lister.list(labels.selector_from_set({"rack": "a"}))) == ["gpu-0", "gpu-1"]
        assert lister.list(labels.nothing()) == []

    def test_a_bad_selector_string_raises_selector_parse_error(
        self, indexer: KeyedIndexer[GPU]
    ) -> None:
        with pytest.raises(labels.SelectorParseError):
            GPULister(indexer).list("rack in (a")

    def test_an_empty_cache_lists_nothing(self) -> None:
        lister = GPULister(new_indexer(cluster_scoped_key_func))
        assert lister.list() == []
        assert lister.list("rack=a") == []


class TestIndexes:
    def test_by_index_and_index_keys(self, indexer: KeyedIndexer[GPU]) -> None:
        lister = GPULister(indexer)
        assert names(lister.by_index("rack", "a")) == ["gpu-0", "gpu-1"]
        assert sorted(lister.index_keys("rack", "b")) == ["gpu-2"]
        assert names(lister.by_index(NAMESPACE_INDEX, "")) == ["gpu-0", "gpu-1", "gpu-2", "gpu-3"]

    def test_unknown_index_is_a_clear_error(self, indexer: KeyedIndexer[GPU]) -> None:
        with pytest.raises(ValueError, match='index "node" does not exist'):
            GPULister(indexer).by_index("node", "n1")

    def test_reads_see_later_writes(self, indexer: KeyedIndexer[GPU]) -> None:
        lister = GPULister(indexer)
        indexer.delete(gpu("gpu-0"))
        indexer.update(gpu("gpu-1", rack="b"))
        with pytest.raises(NotFoundError):
            lister.get("gpu-0")
        assert names(lister.by_index("rack", "b")) == ["gpu-1", "gpu-2"]
        assert names(lister.list("rack=b")) == ["gpu-1", "gpu-2"]
