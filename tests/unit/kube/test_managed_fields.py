"""metadata.managedFields are dropped at ingest (lists and watch events) and by the transform,
whatever the object's layout, and kept when asked."""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from nvinformers.kube import KubeObject, decode_event, parse_list, strip_managed_fields
from tests.unit.kube.samples import DECOYS, MANAGED, compact, node

Ingest = Callable[[str, bool], KubeObject]


def listed(text: str, strip: bool) -> KubeObject:
    (item,) = parse_list('{"kind":"NodeList","items":[' + text + "]}", strip=strip).items
    return item


def watched(text: str, strip: bool) -> KubeObject:
    return decode_event(('{"type":"ADDED","object":' + text + "}\n").encode(), strip=strip).object


def transformed(text: str, strip: bool) -> KubeObject:
    obj = KubeObject.from_bytes(text)
    return strip_managed_fields(obj) if strip else obj


INGEST = [pytest.param(f, id=f.__name__) for f in (listed, watched, transformed)]


NAMED: dict[str, Any] = {"name": "n", "managedFields": MANAGED}
LAYOUTS: dict[str, dict[str, Any]] = {
    # the API server's: kind, apiVersion, metadata (managedFields last), spec, status
    "api-server": node(metadata={"managedFields": MANAGED}),
    "metadata-last": {"kind": "Node", "apiVersion": "v1", "metadata": NAMED},
    "managed-first": {"metadata": {"managedFields": MANAGED, "name": "n"}, "spec": {"x": 1}},
    "managed-middle": {"metadata": {"name": "n", "managedFields": MANAGED, "uid": "u"}, "spec": {}},
    "empty": {"metadata": {"name": "n", "managedFields": []}, "status": {}},
    # the next top-level key could be a managedFields entry key
    "next-key-time": {"metadata": NAMED, "time": {"a": 1}},
    "next-key-prefixed": {"metadata": NAMED, "f:x": 1, "spec": {}},
    "decoys": DECOYS,
    "spec-first": {
        "spec": {"x": 1, "managedFields": [{"manager": "decoy"}]},
        "metadata": NAMED,
    },
}


@pytest.mark.parametrize("ingest", INGEST)
@pytest.mark.parametrize("indent", [None, 2], ids=["compact", "indented"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_managed_fields_are_dropped_in_any_layout(
    ingest: Ingest, indent: int | None, layout: str
) -> None:
    obj = LAYOUTS[layout]
    text = compact(obj) if indent is None else json.dumps(obj, indent=indent)
    expected = copy.deepcopy(obj)
    del expected["metadata"]["managedFields"]
    result = ingest(text, True)
    assert result.get("metadata", "managedFields") is None
    assert {k: v for k, v in result.to_dict().items() if k in expected} == expected
    kept = ingest(text, False)
    assert kept.get("metadata", "managedFields") == obj["metadata"]["managedFields"]


@pytest.mark.parametrize("ingest", INGEST)
def test_objects_without_managed_fields_are_unchanged(ingest: Ingest) -> None:
    text = compact(node())
    assert ingest(text, True).to_bytes() == text.encode()


def test_the_transform_returns_objects_without_managed_fields_themselves() -> None:
    lean = KubeObject.from_dict(node())
    assert strip_managed_fields(lean) is lean
    decoy = KubeObject.from_dict(node(metadata={"labels": {"managedFields": "x"}}))
    assert strip_managed_fields(decoy) is decoy
