"""KeyedIndexer: the object-based Store / Indexer over a ThreadSafeStore."""

from __future__ import annotations

import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    DeletedFinalStateUnknown,
    IndexConflictError,
    Indexer,
    KeyedIndexer,
    KeyFuncError,
    Store,
    ThreadSafeStore,
    cluster_scoped_key_func,
    meta_namespace_index_func,
    meta_namespace_key_func,
    new_indexer,
    new_store,
)


def gpu(name: str, *, namespace: str = "", rack: str = "a", rv: str = "1") -> GPU:
    return GPU.new(name, namespace=namespace, labels={"rack": rack}, resource_version=rv)


def by_rack(obj: GPU) -> list[str]:
    return [obj.metadata.labels["rack"]]


class TestStore:
    def test_add_get_update_delete(self) -> None:
        store: Store[GPU] = new_store()
        g0 = gpu("gpu-0", namespace="ns")
        store.add(g0)
        assert store.get(g0) is g0
        assert store.get_by_key("ns/gpu-0") is g0
        assert store.list_keys() == ["ns/gpu-0"]
        g0_v2 = gpu("gpu-0", namespace="ns", rv="2")
        store.update(g0_v2)
        assert store.list() == [g0_v2]
        store.delete(g0)
        assert store.list() == []
        store.delete(g0)  # deleting a missing object is a no-op

    def test_delete_of_a_tombstone_uses_its_recorded_key(self) -> None:
        store: Store[GPU] = new_store(meta_namespace_key_func)  # does not unwrap tombstones
        store.add(gpu("gpu-0", namespace="ns"))
        store.delete(DeletedFinalStateUnknown("ns/gpu-0", None))
        assert store.list_keys() == []

    def test_objects_without_a_key_are_rejected(self) -> None:
        store: Store[object] = new_store()
        with pytest.raises(KeyFuncError):
            store.add(object())
        with pytest.raises(KeyFuncError):
            store.get(object())

    def test_replace_swaps_everything_and_a_bad_object_changes_nothing(self) -> None:
        store: Store[GPU] = new_store(cluster_scoped_key_func)
        store.add(gpu("old"))
        store.replace([gpu("gpu-0"), gpu("gpu-1")], "42")
        assert sorted(store.list_keys()) == ["gpu-0", "gpu-1"]
        with pytest.raises(KeyFuncError):
            store.replace([gpu("gpu-2"), object()], "43")  # type: ignore[list-item]
        assert sorted(store.list_keys()) == ["gpu-0", "gpu-1"]

    def test_resync_is_a_no_op(self) -> None:
        store: Store[GPU] = new_store()
        store.add(gpu("gpu-0"))
        store.resync()
        assert store.list_keys() == ["gpu-0"]

    def test_key_func_must_be_callable(self) -> None:
        with pytest.raises(TypeError, match="key_func must be callable"):
            new_store("name")  # type: ignore[arg-type]


class TestIndexer:
    def test_cluster_scoped_gpus_stamped_with_a_namespace_are_found_by_name(self) -> None:
        indexer: Indexer[GPU] = new_indexer(
            cluster_scoped_key_func, {NAMESPACE_INDEX: meta_namespace_index_func}
        )
        stamped = gpu("gpu-0", namespace="default")
        indexer.add(stamped)
        assert indexer.get_by_key("gpu-0") is stamped
        assert indexer.by_index(NAMESPACE_INDEX, "default") == [stamped]
        indexer.delete(gpu("gpu-0"))  # same name, no namespace: same key
        assert indexer.list() == []

    def test_index_queries_delegate_to_the_thread_safe_store(self) -> None:
        indexer: Indexer[GPU] = new_indexer(cluster_scoped_key_func, {"rack": by_rack})
        indexer.add(gpu("gpu-0", rack="a"))
        indexer.add(gpu("gpu-1", rack="b"))
        indexer.add(gpu("gpu-2", rack="a"))
        assert sorted(indexer.index_keys("rack", "a")) == ["gpu-0", "gpu-2"]
        assert [g.metadata.name for g in indexer.by_index("rack", "b")] == ["gpu-1"]
        assert sorted(g.metadata.name for g in indexer.index("rack", gpu("q", rack="a"))) == [
            "gpu-0",
            "gpu-2",
        ]
        assert sorted(indexer.list_index_func_values("rack")) == ["a", "b"]
        assert set(indexer.get_indexers()) == {"rack"}

    def test_indexers_can_be_added_after_objects(self) -> None:
        indexer: Indexer[GPU] = new_indexer(cluster_scoped_key_func)
        indexer.add(gpu("gpu-0", rack="r1"))
        indexer.add_indexers({"rack": by_rack})
        assert indexer.index_keys("rack", "r1") == ["gpu-0"]
        with pytest.raises(IndexConflictError):
            indexer.add_indexers({"rack": by_rack})

    def test_exposes_key_func_length_and_the_underlying_store(self) -> None:
        indexer: KeyedIndexer[GPU] = new_indexer(cluster_scoped_key_func)
        assert indexer.key_func is cluster_scoped_key_func
        assert isinstance(indexer.thread_safe_store, ThreadSafeStore)
        indexer.thread_safe_store.apply([("gpu-0", gpu("gpu-0")), ("gpu-1", gpu("gpu-1"))])
        assert len(indexer) == 2
        assert indexer.get(gpu("gpu-1")) == gpu("gpu-1")
        assert "KeyedIndexer(key_func=cluster_scoped_key_func" in repr(indexer)

    def test_default_key_func_is_meta_namespace_key_func(self) -> None:
        indexer: KeyedIndexer[GPU] = new_indexer()
        assert indexer.key_func is meta_namespace_key_func
        assert new_store().key_func is meta_namespace_key_func
