"""The generic Lister and NamespaceLister over objects shaped like Kubernetes client models."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import pytest

from nvinformers import labels
from nvinformers.cache import NAMESPACE_INDEX, KeyedIndexer, meta_namespace_index_func, new_indexer
from nvinformers.errors import NotFoundError
from nvinformers.listers import Lister


@dataclass
class Meta:
    name: str
    namespace: str = ""
    resource_version: str = ""
    labels: dict[str, str] | None = field(default_factory=dict)


@dataclass
class Pod:
    """Mutable, like a Kubernetes client model."""

    metadata: Meta


def pod(namespace: str, name: str, **labels_: str) -> Pod:
    return Pod(Meta(name=name, namespace=namespace, labels=dict(labels_) or None))


PODS = [
    pod("team-a", "web-0", app="web"),
    pod("team-a", "db-0", app="db"),
    pod("team-b", "web-0", app="web"),
    pod("team-b", "cache-0"),
]


def names(objs: list[Pod]) -> list[str]:
    return sorted(f"{p.metadata.namespace}/{p.metadata.name}" for p in objs)


@pytest.fixture
def indexed() -> KeyedIndexer[Pod]:
    indexer: KeyedIndexer[Pod] = new_indexer(indexers={NAMESPACE_INDEX: meta_namespace_index_func})
    indexer.replace(PODS, "1")
    return indexer


@pytest.fixture
def unindexed() -> KeyedIndexer[Pod]:
    indexer: KeyedIndexer[Pod] = new_indexer()
    indexer.replace(PODS, "1")
    return indexer


class TestNamespaced:
    @pytest.mark.parametrize("fixture", ["indexed", "unindexed"])
    def test_lists_one_namespace_with_and_without_the_namespace_index(
        self, fixture: str, request: pytest.FixtureRequest
    ) -> None:
        indexer: KeyedIndexer[Pod] = request.getfixturevalue(fixture)
        pods = Lister(indexer, resource="pods", namespaced=True)
        assert names(pods.namespaced("team-a").list()) == ["team-a/db-0", "team-a/web-0"]
        assert names(pods.namespaced("team-b").list("app=web")) == ["team-b/web-0"]
        assert pods.namespaced("team-c").list() == []
        assert len(pods.namespaced("").list()) == 4  # "" is all namespaces, as in client-go
        assert names(pods.list("app=web")) == ["team-a/web-0", "team-b/web-0"]

    def test_the_namespace_index_is_used_when_present(
        self, indexed: KeyedIndexer[Pod], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        def no_full_list(self: KeyedIndexer[Pod]) -> list[Pod]:
            raise AssertionError("scanned every object despite the namespace index")

        monkeypatch.setattr(KeyedIndexer, "list", no_full_list)
        pods = Lister(indexed, resource="pods", namespaced=True)
        assert names(pods.namespaced("team-b").list()) == ["team-b/cache-0", "team-b/web-0"]

    def test_the_scan_fallback_warns_once(
        self, unindexed: KeyedIndexer[Pod], caplog: pytest.LogCaptureFixture
    ) -> None:
        caplog.set_level(logging.WARNING, logger="nvinformers.listers")
        pods = Lister(unindexed, resource="pods", namespaced=True)
        pods.namespaced("team-a").list()
        pods.namespaced("team-b").list()
        [record] = caplog.records
        assert "no 'namespace' index" in record.getMessage()

    def test_get_within_a_namespace(self, indexed: KeyedIndexer[Pod]) -> None:
        pods = Lister(indexed, resource="pods.example.io", namespaced=True)
        web = pods.namespaced("team-b").get("web-0")
        assert web is indexed.get_by_key("team-b/web-0")
        with pytest.raises(NotFoundError, match=r'^pods.example.io "db-0" not found$'):
            pods.namespaced("team-b").get("db-0")
        assert pods.namespaced("team-b").namespace == "team-b"

    def test_top_level_get_takes_a_namespace_slash_name_key(
        self, indexed: KeyedIndexer[Pod]
    ) -> None:
        pods = Lister(indexed, resource="pods.example.io", namespaced=True)
        assert pods.get("team-a/db-0").metadata.name == "db-0"
        with pytest.raises(NotFoundError, match=r'^pods.example.io "nope" not found$'):
            pods.get("team-a/nope")


class TestGeneric:
    def test_everything_and_nothing_selectors_do_not_read_labels(self) -> None:
        class Exploding:
            @property
            def labels(self) -> dict[str, str]:
                raise AssertionError("labels read for a selector that selects everything")

            name = "x"
            namespace = ""
            resource_version = ""

        @dataclass
        class Obj:
            metadata: Any

        indexer: KeyedIndexer[Obj] = new_indexer()
        indexer.add(Obj(Exploding()))
        lister = Lister(indexer, resource="things")
        assert len(lister.list()) == 1
        assert len(lister.list("")) == 1
        assert len(lister.list(labels.everything())) == 1
        assert len(lister.list(labels.parse(""))) == 1
        assert lister.list(labels.nothing()) == []
        with pytest.raises(AssertionError, match="labels read"):
            lister.list("a=b")

    def test_objects_without_labels_match_only_negative_selectors(
        self, indexed: KeyedIndexer[Pod]
    ) -> None:
        pods = Lister(indexed, resource="pods", namespaced=True)
        assert names(pods.list("!app")) == ["team-b/cache-0"]
        assert names(pods.list("app notin (web)")) == ["team-a/db-0", "team-b/cache-0"]

    def test_works_over_any_indexer_implementation(self, indexed: KeyedIndexer[Pod]) -> None:
        class Wrapped:
            """Not a KeyedIndexer: the lister must go through get_by_key."""

            def __init__(self, inner: KeyedIndexer[Pod]) -> None:
                self.inner = inner
                self.lookups: list[str] = []

            def __getattr__(self, name: str) -> Any:
                return getattr(self.inner, name)

            def get_by_key(self, key: str) -> Pod | None:
                self.lookups.append(key)
                return self.inner.get_by_key(key)

        wrapped = Wrapped(indexed)
        pods: Lister[Pod] = Lister(wrapped, resource="pods", namespaced=True)
        assert pods.namespaced("team-a").get("web-0").metadata.labels == {"app": "web"}
        assert wrapped.lookups == ["team-a/web-0"]

    def test_resource_is_required(self, indexed: KeyedIndexer[Pod]) -> None:
        with pytest.raises(ValueError, match="resource must be a non-empty"):
            Lister(indexed, resource="")

    def test_exposes_its_indexer(self, indexed: KeyedIndexer[Pod]) -> None:
        lister = Lister(indexed, resource="pods", namespaced=True)
        assert lister.indexer is indexed
        assert lister.is_namespaced
        assert "resource='pods'" in repr(lister)
