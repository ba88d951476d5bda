"""ThreadSafeStore: items, index maintenance, batches, replace, failing index functions, threads."""

from __future__ import annotations

import logging
import random
import sys
import threading
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from types import TracebackType
from typing import Any

import pytest

from nvinformers.api.device.v1alpha1 import GPU
from nvinformers.cache import (
    NAMESPACE_INDEX,
    IndexConflictError,
    ThreadSafeStore,
    meta_namespace_index_func,
)
from tests.unit.cache.scripted import ClientModel, gpu


@dataclass(frozen=True)
class Obj:
    name: str
    group: str = "a"
    tags: tuple[str, ...] = ()


def by_group(obj: Obj) -> list[str]:
    return [obj.group]


def by_tags(obj: Obj) -> list[str]:
    return list(obj.tags)


class BoomError(RuntimeError):
    pass


def fails_for_bad_group(obj: Obj) -> list[str]:
    if obj.group == "bad":
        raise BoomError(f"cannot index {obj.name}")
    return [obj.group]


def assert_consistent(store: ThreadSafeStore[Any]) -> None:
    """Every index equals what its function yields over the items; no empty value sets."""
    items = store.snapshot_items()
    for name, func in store.get_indexers().items():
        expected: dict[str, set[str]] = {}
        for key, obj in items.items():
            try:
                values = list(func(obj))
            except Exception:
                values = []  # a failing object is indexed under no values
            for value in values:
                expected.setdefault(value, set()).add(key)
        actual = {v: set(store.index_keys(name, v)) for v in store.list_index_func_values(name)}
        assert actual == expected, f"index {name!r} out of sync with the items"


def new_store() -> ThreadSafeStore[Obj]:
    return ThreadSafeStore({"group": by_group, "tags": by_tags})


class CountingLock:
    """A lock that counts acquisitions (to prove a batch takes the lock once)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.acquisitions = 0

    def __enter__(self) -> CountingLock:
        self._lock.acquire()
        self.acquisitions += 1
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._lock.release()


class TestItems:
    def test_add_get_list_len_contains(self) -> None:
        store = new_store()
        a, b = Obj("a"), Obj("b", group="g2")
        store.add("a", a)
        store.add("b", b)
        assert store.get("a") is a
        assert store.get("missing") is None
        assert sorted(store.list_keys()) == ["a", "b"]
        assert {o.name for o in store.list()} == {"a", "b"}
        assert len(store) == 2
        assert "a" in store
        assert "missing" not in store

    def test_add_of_an_existing_key_replaces_and_update_of_a_missing_key_adds(self) -> None:
        store = new_store()
        store.update("a", Obj("a", group="x"))
        store.add("a", Obj("a", group="y"))
        assert store.get("a") == Obj("a", group="y")
        assert store.index_keys("group", "x") == []
        assert store.index_keys("group", "y") == ["a"]

    def test_delete_removes_the_item_and_a_missing_key_is_a_no_op(self) -> None:
        store = new_store()
        store.add("a", Obj("a", tags=("t1", "t2")))
        store.delete("missing")
        store.delete("a")
        assert len(store) == 0
        assert store.list_index_func_values("group") == []
        assert store.list_index_func_values("tags") == []

    def test_snapshot_items_and_get_indexers_are_copies(self) -> None:
        store = new_store()
        store.add("a", Obj("a"))
        snapshot = store.snapshot_items()
        snapshot["b"] = Obj("b")
        indexers = store.get_indexers()
        indexers["extra"] = by_group
        assert store.list_keys() == ["a"]
        assert set(store.get_indexers()) == {"group", "tags"}

    def test_get_many_returns_the_stored_subset(self) -> None:
        store = new_store()
        store.add("a", Obj("a"))
        store.add("b", Obj("b"))
        assert store.get_many(["a", "zz", "b"]) == {"a": Obj("a"), "b": Obj("b")}


class TestIndexMaintenance:
    def test_update_moves_the_key_and_drops_the_emptied_value_set(self) -> None:
        store = new_store()
        store.add("x", Obj("x", group="a"))
        store.update("x", Obj("x", group="b"))
        # kubernetes#84959: no empty set left behind for "a".
        assert store.list_index_func_values("group") == ["b"]
        assert store.by_index("group", "b") == [Obj("x", group="b")]
        assert store.by_index("group", "a") == []
        assert_consistent(store)

    def test_unchanged_single_value_leaves_the_index_untouched(self) -> None:
        store = new_store()
        store.add("x", Obj("x", group="a"))
        value_set = store._indices["group"]["a"]
        store.update("x", Obj("x", group="a", tags=("new",)))
        # The fast path: the very same set object, not a removed-and-recreated one.
        assert store._indices["group"]["a"] is value_set
        assert store.index_keys("tags", "new") == ["x"]

    def test_index_functions_run_once_per_write_and_never_on_delete(self) -> None:
        calls: list[str] = []

        def counting(obj: Obj) -> list[str]:
            calls.append(obj.name)
            return [obj.group]

        store: ThreadSafeStore[Obj] = ThreadSafeStore({"group": counting})
        store.add("x", Obj("x"))
        store.update("x", Obj("x", group="b"))
        store.delete("x")
        assert calls == ["x", "x"]

    def test_multi_valued_index_dedups_and_index_returns_the_union(self) -> None:
        store = new_store()
        store.add("a", Obj("a", tags=("t1", "t1", "t2")))
        store.add("b", Obj("b", tags=("t2", "t3")))
        store.add("c", Obj("c", tags=("t4",)))
        store.add("d", Obj("d"))
        assert store.index_keys("tags", "t1") == ["a"]
        assert sorted(store.index_keys("tags", "t2")) == ["a", "b"]
        assert sorted(o.name for o in store.index("tags", Obj("q", tags=("t1", "t3")))) == [
            "a",
            "b",
        ]
        assert [o.name for o in store.index("tags", Obj("q", tags=("t4",)))] == ["c"]
        assert store.index("tags", Obj("q")) == []
        store.update("a", Obj("a", tags=("t2",)))
        assert sorted(store.list_index_func_values("tags")) == ["t2", "t3", "t4"]
        assert_consistent(store)

    def test_unknown_index_names_are_a_clear_error_everywhere(self) -> None:
        store = new_store()
        message = 'index "nope" does not exist'
        with pytest.raises(ValueError, match=message):
            store.index_keys("nope", "x")
        with pytest.raises(ValueError, match=message):
            store.by_index("nope", "x")
        with pytest.raises(ValueError, match=message):
            store.list_index_func_values("nope")
        with pytest.raises(ValueError, match=message):
            store.index("nope", Obj("x"))

    def test_index_query_surfaces_the_index_function_failure(self) -> None:
        store: ThreadSafeStore[Obj] = ThreadSafeStore({"group": fails_for_bad_group})
        with pytest.raises(BoomError):
            store.index("group", Obj("q", group="bad"))


class TestAddIndexers:
    def test_existing_items_are_indexed_when_an_index_is_added(self) -> None:
        store: ThreadSafeStore[Obj] = ThreadSafeStore()
        store.add("a", Obj("a", group="g1"))
        store.add("b", Obj("b", group="g2"))
        store.add_indexers({"group": by_group})
        assert store.index_keys("group", "g1") == ["a"]
        store.add("c", Obj("c", group="g1"))
        assert sorted(store.index_keys("group", "g1")) == ["a", "c"]
        assert_consistent(store)

    def test_a_name_conflict_changes_nothing(self) -> None:
        store = new_store()
        store.add("a", Obj("a"))
        with pytest.raises(IndexConflictError, match="'group'"):
            store.add_indexers({"fresh": by_group, "group": by_group})
        assert set(store.get_indexers()) == {"group", "tags"}
        with pytest.raises(ValueError, match='index "fresh" does not exist'):
            store.index_keys("fresh", "a")

    def test_malformed_indexers_are_rejected(self) -> None:
        store = new_store()
        with pytest.raises(TypeError, match="non-empty str"):
            store.add_indexers({"": by_group})
        with pytest.raises(TypeError, match="not callable"):
            store.add_indexers({"x": "by_group"})  # type: ignore[dict-item]


class TestFailingIndexFunctions:
    def test_failure_is_logged_counted_and_the_object_is_indexed_under_no_values(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="nvinformers.cache")
        store: ThreadSafeStore[Obj] = ThreadSafeStore(
            {"safe": by_group, "fragile": fails_for_bad_group}
        )
        store.add("ok", Obj("ok", group="a"))
        store.add("x", Obj("x", group="bad"))
        assert store.index_errors == 1
        assert store.get("x") == Obj("x", group="bad")
        assert store.index_keys("safe", "bad") == ["x"]  # other indexes are unaffected
        assert store.list_index_func_values("fragile") == ["a"]
        [record] = caplog.records
        assert record.name == "nvinformers.cache"
        assert "'fragile'" in record.getMessage()
        assert "'x'" in record.getMessage()
        assert record.exc_info is not None
        assert isinstance(record.exc_info[1], BoomError)
        assert_consistent(store)

    def test_a_later_good_update_indexes_the_object_and_delete_cleans_up(self) -> None:
        store: ThreadSafeStore[Obj] = ThreadSafeStore({"fragile": fails_for_bad_group})
        store.add("x", Obj("x", group="a"))
        store.update("x", Obj("x", group="bad"))  # was indexed under "a": entry must go
        assert store.list_index_func_values("fragile") == []
        store.update("x", Obj("x", group="c"))
        assert store.index_keys("fragile", "c") == ["x"]
        store.delete("x")
        assert store.list_index_func_values("fragile") == []
        assert store.index_errors == 1

    @pytest.mark.parametrize(
        ("returned", "message"),
        [
            ("a-str", "returned the str 'a-str'"),
            ([1], "non-str value 1"),
            (None, "must return a list of str"),
        ],
    )
    def test_malformed_return_values_count_as_failures(
        self, returned: Any, message: str, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="nvinformers.cache")
        store: ThreadSafeStore[Obj] = ThreadSafeStore({"bad": lambda obj: returned})
        store.add("x", Obj("x"))
        assert store.index_errors == 1
        assert store.list_index_func_values("bad") == []
        [record] = caplog.records
        assert record.exc_info is not None
        assert message in str(record.exc_info[1])

    def test_apply_never_raises_and_applies_the_rest_of_the_batch(self) -> None:
        store: ThreadSafeStore[Obj] = ThreadSafeStore({"fragile": fails_for_bad_group})
        store.apply([("a", Obj("a")), ("b", Obj("b", group="bad")), ("c", Obj("c", group="z"))])
        assert sorted(store.list_keys()) == ["a", "b", "c"]
        assert store.index_errors == 1
        assert_consistent(store)

    def test_a_burst_of_failures_is_logged_in_a_bounded_number_of_records(
        self, caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.ERROR, logger="nvinformers.cache")
        store: ThreadSafeStore[Obj] = ThreadSafeStore({"fragile": fails_for_bad_group})
        store.replace({f"o{i}": Obj(f"o{i}", group="bad") for i in range(10)})
        assert store.index_errors == 10
        assert len(caplog.records) == 4
        assert [r.exc_info is not None for r in caplog.records] == [True, True, True, False]
        assert "7 more index function failures" in caplog.records[-1].getMessage()


class TestApply:
    def test_upserts_and_deletes_apply_in_order(self) -> None:
        store = new_store()
        store.add("gone", Obj("gone", group="old"))
        store.add("moved", Obj("moved", group="g1"))
        store.apply(
            [
                ("n1", Obj("n1", group="g1")),
                ("gone", None),
                ("moved", Obj("moved", group="g2")),
                ("n1", Obj("n1", group="g3")),  # a later change to the same key wins
                ("tmp", Obj("tmp")),
                ("tmp", None),
                ("never-existed", None),
            ]
        )
        assert store.snapshot_items() == {
            "n1": Obj("n1", group="g3"),
            "moved": Obj("moved", group="g2"),
        }
        assert sorted(store.list_index_func_values("group")) == ["g2", "g3"]
        assert_consistent(store)

    def test_a_batch_takes_the_lock_once(self) -> None:
        store = new_store()
        lock = CountingLock()
        store._lock = lock  # type: ignore[assignment]
        store.apply([(f"k{i}", Obj(f"k{i}", group=str(i % 7))) for i in range(1000)])
        assert lock.acquisitions == 1
        assert len(store) == 1000
        assert_consistent(store)

    def test_an_empty_batch_is_harmless(self) -> None:
        store = new_store()
        store.apply([])
        assert len(store) == 0


class TestReplace:
    def test_replace_swaps_content_and_rebuilds_every_index(self) -> None:
        store = new_store()
        store.add("old", Obj("old", group="g-old", tags=("t-old",)))
        source = {"a": Obj("a", group="g1", tags=("t1",)), "b": Obj("b", group="g1")}
        store.replace(source)
        source["c"] = Obj("c")  # the store took a copy
        assert sorted(store.list_keys()) == ["a", "b"]
        assert sorted(store.index_keys("group", "g1")) == ["a", "b"]
        assert store.list_index_func_values("tags") == ["t1"]
        assert_consistent(store)
        store.replace({})
        assert len(store) == 0
        assert store.list_index_func_values("group") == []

    def test_an_index_added_while_replace_builds_is_not_lost(self) -> None:
        store: ThreadSafeStore[Obj] = ThreadSafeStore()
        raced = threading.Event()

        def racing(obj: Obj) -> list[str]:
            # replace() calls index functions outside the lock; simulate another thread adding
            # an index at that moment.
            if not raced.is_set():
                raced.set()
                store.add_indexers({"late": by_tags})
            return [obj.group]

        store.add_indexers({"group": racing})
        store.replace({"x": Obj("x", group="g", tags=("t",)), "y": Obj("y", group="h")})
        assert raced.is_set()
        assert set(store.get_indexers()) == {"group", "late"}
        assert store.index_keys("late", "t") == ["x"]
        assert sorted(store.list_index_func_values("group")) == ["g", "h"]


def _operations(rng: random.Random, count: int) -> Iterator[list[tuple[str, Obj | None]]]:
    """Deterministic random batches of upserts and deletes over a small key space."""
    groups = ["g0", "g1", "g2", "g3"]
    tags = ["t0", "t1", "t2"]
    for _ in range(count):
        batch: list[tuple[str, Obj | None]] = []
        for _ in range(rng.choice([1, 1, 1, 5, 20])):
            key = f"k{rng.randrange(150)}"
            if rng.random() < 0.25:
                batch.append((key, None))
            else:
                obj_tags = tuple(rng.sample(tags, rng.randrange(3)))
                batch.append((key, Obj(key, group=rng.choice(groups), tags=obj_tags)))
        yield batch


class TestConcurrency:
    def test_readers_always_see_indices_that_agree_with_items_while_a_writer_churns(
        self,
    ) -> None:
        store = new_store()
        model: dict[str, Obj] = {}
        stop = threading.Event()
        start = threading.Barrier(4, timeout=10)
        errors: list[BaseException] = []

        def reader() -> None:
            try:
                start.wait()
                while not stop.is_set():
                    for group in ("g0", "g1", "g2", "g3"):
                        for obj in store.by_index("group", group):
                            assert obj.group == group, (obj, group)
                    for obj in store.index("tags", Obj("probe", tags=("t1",))):
                        assert "t1" in obj.tags, obj
                    keys = store.index_keys("tags", "t2")
                    for obj in store.get_many(keys).values():
                        # The object may have changed since; only a stored key can be returned.
                        assert obj.name in keys
                    assert len(store.list()) <= 150
            except BaseException as exc:  # surfaced by the main thread's assertion
                errors.append(exc)

        def write(batches: Iterable[list[tuple[str, Obj | None]]]) -> None:
            for batch in batches:
                if len(batch) == 1:
                    key, obj = batch[0]
                    if obj is None:
                        store.delete(key)
                    else:
                        store.update(key, obj)
                else:
                    store.apply(batch)
                for key, obj in batch:
                    if obj is None:
                        model.pop(key, None)
                    else:
                        model[key] = obj

        readers = [threading.Thread(target=reader, name=f"test-reader-{i}") for i in range(3)]
        old_interval = sys.getswitchinterval()
        sys.setswitchinterval(1e-5)  # interleave threads as often as possible
        try:
            for thread in readers:
                thread.start()
            start.wait()
            write(_operations(random.Random(20261127), 1500))
        finally:
            stop.set()
            for thread in readers:
                thread.join(timeout=10)
            sys.setswitchinterval(old_interval)
        assert not any(thread.is_alive() for thread in readers)
        assert errors == []
        assert store.snapshot_items() == model
        assert_consistent(store)


class TestNamespaceIndex:
    """The namespace index: loaded in bulk by replace, kept right by every later change."""

    def test_a_replace_indexes_as_adding_one_by_one_does(self) -> None:
        gpus = {f"gpu-{i}": gpu(f"gpu-{i}", i + 1) for i in range(20)}
        plain = {f"p-{i}": ClientModel(f"p-{i}", None if i % 2 else "", str(i)) for i in range(20)}
        for items in (gpus, plain):
            bulk = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
            bulk.replace(items)
            one_by_one = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
            for key, obj in items.items():
                one_by_one.add(key, obj)
            assert sorted(bulk.index_keys(NAMESPACE_INDEX, "")) == sorted(items)
            assert bulk.list_index_func_values(NAMESPACE_INDEX) == [""]
            assert bulk._indices == one_by_one._indices
            assert bulk._indexed == one_by_one._indexed
        mixed = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
        mixed.replace({"a": GPU.new("a", namespace="x"), "b": GPU.new("b", namespace="y")})
        assert mixed.index_keys(NAMESPACE_INDEX, "x") == ["a"]
        assert mixed.index_keys(NAMESPACE_INDEX, "y") == ["b"]

    def test_objects_indexed_under_one_value_share_one_tuple_and_updates_keep_the_index(
        self,
    ) -> None:
        store = ThreadSafeStore[Any]({NAMESPACE_INDEX: meta_namespace_index_func})
        store.add("a", gpu("a", 1))
        store.add("b", gpu("b", 2))
        remembered = store._indexed[NAMESPACE_INDEX]
        assert remembered["a"] is remembered["b"] == ("",)
        store.update("a", GPU.new("a", namespace="moved", resource_version="3"))
        assert store.index_keys(NAMESPACE_INDEX, "moved") == ["a"]
        assert store.index_keys(NAMESPACE_INDEX, "") == ["b"]
        store.delete("b")
        assert store.list_index_func_values(NAMESPACE_INDEX) == ["moved"]
