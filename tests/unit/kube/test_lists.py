"""parse_list: list responses into KubeList."""

from __future__ import annotations

import json

import pytest

from nvinformers.errors import MalformedObjectError
from nvinformers.kube import parse_list


def test_items_keep_their_json_and_get_the_list_s_kind() -> None:
    body = (
        b'{"kind":"NodeList","apiVersion":"v1","metadata":{"resourceVersion":"9"},'
        b'"items":[{"metadata":{"name":"a"}},{"metadata":{"name":"b"},"spec":{}}]}'
    )
    result = parse_list(body)
    assert result.metadata.resource_version == "9"
    assert result.kind == "NodeList"
    assert [o.to_bytes() for o in result.items] == [
        b'{"metadata":{"name":"a"}}',
        b'{"metadata":{"name":"b"},"spec":{}}',
    ]
    assert {(o.kind, o.api_version) for o in result.items} == {("Node", "v1")}


def test_paging_state_is_kept() -> None:
    body = b'{"metadata":{"resourceVersion":"3","continue":"c1","remainingItemCount":7}}'
    meta = parse_list(body).metadata
    assert (meta.resource_version, meta.continue_, meta.remaining_item_count) == ("3", "c1", 7)


def test_non_ascii_bodies_decode() -> None:
    obj = {"metadata": {"name": "n", "annotations": {"note": "héllo ✓"}}, "spec": {}}
    body = '{"kind":"NodeList","items":[' + json.dumps(obj, ensure_ascii=False) + "]}"
    (item,) = parse_list(body.encode()).items
    assert item.metadata.annotations["note"] == "héllo ✓"
    assert item.to_dict()["spec"] == {}


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"[]",
        b"\xff{}",
        b'{"items": [1, 2]}',
        b'{"items": {"a": 1}}',
        b'{"items": [{"metadata": {"name": "a"}} {"metadata": {"name": "b"}}]}',
        b'{"kind": "NodeList" "items": []}',
        b'{"kind": 5, "items": []}',
        b'{"metadata": [], "items": []}',
        b'{"items": [',
    ],
)
def test_malformed_lists_are_rejected(body: bytes) -> None:
    with pytest.raises(MalformedObjectError):
        parse_list(body)


def test_empty_list_null_items_and_whitespace() -> None:
    result = parse_list(b' { "kind" : "PodList" , "items" : [ ] , "metadata" : { } } ')
    assert result.items == ()
    assert result.kind == "PodList"
    assert parse_list('{"kind":"PodList","items":null}').items == ()
