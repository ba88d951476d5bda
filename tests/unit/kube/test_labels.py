"""Labels: a read-only mapping that selectors match."""

from __future__ import annotations

import pickle

import pytest

from nvinformers import labels
from nvinformers.errors import MalformedObjectError
from nvinformers.kube import EMPTY_LABELS, KubeObject, Labels
from tests.unit.kube.samples import node, raw


def test_mapping_behaviour() -> None:
    lbls = Labels.of({"b": "2", "a": "1"})
    assert list(lbls) == ["b", "a"]
    assert len(lbls) == 2
    assert lbls["a"] == "1"
    assert lbls.get("zz") is None
    assert lbls.get("zz", "d") == "d"
    assert "b" in lbls and "zz" not in lbls
    assert dict(lbls.items()) == {"a": "1", "b": "2"}
    assert lbls == {"a": "1", "b": "2"}
    assert lbls != {"a": "1"}
    assert lbls == Labels({"a": "1", "b": "2"})  # other order: another key table, still equal
    assert lbls != Labels({"b": "2", "a": "x"})
    assert repr(lbls) == "Labels({'b': '2', 'a': '1'})"
    with pytest.raises(KeyError):
        lbls["zz"]


def test_empty_labels_are_shared() -> None:
    obj = KubeObject.from_bytes(b'{"metadata":{"name":"n"}}')
    assert obj.metadata.labels is EMPTY_LABELS
    assert Labels.of({}) is EMPTY_LABELS
    assert obj.metadata.labels == {}


def test_selectors_match_labels() -> None:
    obj = KubeObject.from_bytes(raw(node()))
    assert labels.parse("gpu=true,kubernetes.io/os in (linux)").matches(obj.metadata.labels)
    assert not labels.parse("gpu!=true").matches(obj.metadata.labels)
    assert labels.parse("!missing").matches(obj.metadata.labels)


def test_labels_pickle_and_build_from_a_mapping() -> None:
    lbls = Labels({"x": "y"})
    assert pickle.loads(pickle.dumps(lbls)) == {"x": "y"}
    assert lbls.to_dict() == {"x": "y"}


@pytest.mark.parametrize(
    ("data", "problem"), [({"a": 1}, "label value 1"), ({2: "b"}, "label key 2")]
)
def test_keys_and_values_must_be_strings(data: dict[object, object], problem: str) -> None:
    with pytest.raises(MalformedObjectError, match=problem):
        Labels.of(data)  # type: ignore[arg-type]
