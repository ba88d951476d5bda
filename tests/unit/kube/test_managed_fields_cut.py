"""managedFields are cut from the text of API-server-shaped objects (the P1/events trick): the
bytes equal what re-serializing without them gives; any other layout is left to the caller."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from nvinformers.kube._managed_fields_cut import object_bytes
from tests.unit.kube.samples import DECOYS, MANAGED, compact, node

CUT = {
    "api-server": node(metadata={"managedFields": MANAGED}),
    "list-item": {"metadata": {"name": "n", "managedFields": MANAGED}, "spec": {"a": [1]}},
    "metadata-last": {
        "kind": "Node",
        "apiVersion": "v1",
        "metadata": {"uid": "u", "managedFields": []},
    },
    "decoys": DECOYS,
}
DECLINED = {
    "not-last-in-metadata": {"metadata": {"managedFields": MANAGED, "name": "n"}},
    "alone-in-metadata": {"metadata": {"managedFields": MANAGED}, "spec": {}},
    "spec-before-metadata": {"spec": {}, "metadata": {"name": "n", "managedFields": MANAGED}},
    "next-key-of-an-entry": {"metadata": {"name": "n", "managedFields": MANAGED}, "time": {}},
    "next-key-prefixed": {"metadata": {"name": "n", "managedFields": MANAGED}, "f:x": 1},
}


def plain(obj: dict[str, Any]) -> bytes:
    """The plain way: drop the field from the decoded object, serialize it again."""
    obj = copy.deepcopy(obj)
    del obj["metadata"]["managedFields"]
    return compact(obj).encode()


@pytest.mark.parametrize("name", list(CUT))
def test_the_cut_equals_re_serializing_without_them(name: str) -> None:
    text = compact(CUT[name])
    decoded = json.loads(text)
    assert object_bytes(text, 0, len(text), decoded, strip=True) == plain(CUT[name])
    assert "managedFields" not in decoded["metadata"]


def test_the_object_may_sit_inside_a_longer_text() -> None:
    obj = CUT["api-server"]
    text = '{"type":"MODIFIED","object":' + compact(obj) + "}"
    start, end = 28, len(text) - 1
    assert object_bytes(text, start, end, json.loads(text[start:end]), strip=True) == plain(obj)


@pytest.mark.parametrize("name", list(DECLINED))
def test_other_layouts_are_left_to_the_caller(name: str) -> None:
    text = compact(DECLINED[name])
    decoded = json.loads(text)
    assert object_bytes(text, 0, len(text), decoded, strip=True) is None
    assert decoded == DECLINED[name]


def test_indented_text_is_left_to_the_caller() -> None:
    text = json.dumps(CUT["api-server"], indent=2)
    assert object_bytes(text, 0, len(text), json.loads(text), strip=True) is None


def test_without_strip_or_managed_fields_the_bytes_are_the_text() -> None:
    text = compact(CUT["api-server"])
    assert object_bytes(text, 0, len(text), json.loads(text), strip=False) == text.encode()
    lean = compact(node())
    assert object_bytes(lean, 0, len(lean), json.loads(lean), strip=True) == lean.encode()
