"""Label maps share key tables and interned values (the P1/memory trick), within bounds."""

from __future__ import annotations

import pytest

from nvinformers.kube import KubeObject, Labels, _label_tables
from tests.unit.kube.samples import node, raw


def test_objects_with_the_same_label_keys_share_one_key_table() -> None:
    one = KubeObject.from_bytes(raw(node("n1")))
    two = KubeObject.from_bytes(raw(node("n2")))
    assert one.metadata.labels._table is two.metadata.labels._table
    assert one.metadata.labels == two.metadata.labels
    reordered = Labels({"gpu": "true", "kubernetes.io/os": "linux"})
    assert reordered._table is not one.metadata.labels._table


def test_equal_label_values_are_one_string() -> None:
    one = KubeObject.from_bytes(raw(node("n1")))
    two = KubeObject.from_bytes(raw(node("n2")))
    assert one.metadata.labels["kubernetes.io/os"] is two.metadata.labels["kubernetes.io/os"]


def test_full_tables_stop_growing_and_labels_stay_correct(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(_label_tables, "_TABLES", {})
    monkeypatch.setattr(_label_tables, "_VALUES", {})
    monkeypatch.setattr(_label_tables, "MAX_KEY_TABLES", 1)
    monkeypatch.setattr(_label_tables, "MAX_VALUES", 1)
    first = Labels({"a": "1"})
    second = Labels({"b": "2"})
    again = Labels({"b": "2"})
    assert [m.to_dict() for m in (first, second, again)] == [{"a": "1"}, {"b": "2"}, {"b": "2"}]
    assert list(_label_tables._TABLES) == [("a",)]
    assert _label_tables._VALUES == {"1": "1"}
    assert second._table is not again._table
