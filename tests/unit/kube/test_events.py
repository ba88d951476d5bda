"""decode_event: watch lines into events, in-stream errors into nvinformers.errors."""

from __future__ import annotations

import json
from typing import Any

import pytest

from nvinformers import errors
from nvinformers.kube import decode_event
from nvinformers.options import INITIAL_EVENTS_END_ANNOTATION
from nvinformers.watch import EventType
from tests.unit.kube.samples import compact

NODE = {"kind": "Node", "apiVersion": "v1", "metadata": {"name": "n1", "resourceVersion": "7"}}


def line(etype: str, obj: Any, **extra: Any) -> bytes:
    return compact({"type": etype, "object": obj, **extra}).encode()


class TestDecodeEvent:
    @pytest.mark.parametrize("etype", ["ADDED", "MODIFIED", "DELETED"])
    def test_object_events_keep_the_object_s_bytes(self, etype: str) -> None:
        event = decode_event(line(etype, NODE) + b"\n")
        assert event.type is EventType(etype)
        assert event.object.metadata.name == "n1"
        assert event.object.metadata.resource_version == "7"
        assert event.object.to_bytes() == compact(NODE).encode()

    def test_bookmarks_carry_a_revision_and_annotations_but_no_name(self) -> None:
        bookmark = {
            "kind": "Node",
            "apiVersion": "v1",
            "metadata": {
                "resourceVersion": "99",
                "creationTimestamp": None,
                "annotations": {INITIAL_EVENTS_END_ANNOTATION: "true"},
            },
        }
        event = decode_event(line("BOOKMARK", bookmark))
        assert event.type is EventType.BOOKMARK
        assert event.object.metadata.resource_version == "99"
        assert event.object.metadata.name == ""
        assert event.object.metadata.annotations[INITIAL_EVENTS_END_ANNOTATION] == "true"

    def test_other_layouts_decode_generically(self) -> None:
        reordered = json.dumps({"object": NODE, "type": "ADDED"}, indent=1).encode()
        event = decode_event(reordered)
        assert event.type is EventType.ADDED
        assert event.object.to_dict() == NODE
        extra = decode_event(line("ADDED", NODE, extra={"x": 1}))
        assert extra.object.to_dict() == NODE

    def test_kind_defaults_fill_in_objects_without_one(self) -> None:
        event = decode_event(
            line("ADDED", {"metadata": {"name": "a"}}), kind="Pod", api_version="v1"
        )
        assert (event.object.kind, event.object.api_version) == ("Pod", "v1")

    def test_non_ascii_lines(self) -> None:
        obj = {"metadata": {"name": "a", "annotations": {"n": "żółw"}}}
        raw = json.dumps({"type": "ADDED", "object": obj}, ensure_ascii=False).encode()
        event = decode_event(raw)
        assert event.object.metadata.annotations["n"] == "żółw"
        assert decode_event(line("ADDED", obj)).object.to_bytes() == compact(obj).encode()

    @pytest.mark.parametrize(
        ("raw", "problem"),
        [
            (b"{not json", "malformed watch event"),
            (b"[1]", "not a JSON object"),
            (b'{"type":"EXPLODED","object":{"metadata":{"name":"a"}}}', "unknown event type"),
            (b'{"type":"ADDED"}', "no object"),
            (b'{"type":"ADDED","object":{"metadata":{}}}', r"metadata\.name"),
            (b'{"type":"ADDED","object":[]}', "expected a JSON object"),
            (b'{"type":"ADDED","object":{"metadata":{"name":"a"}}', "malformed watch event"),
            (b'{"type":"ADDED","object":{"metadata":{"name":"a"}}}}', "malformed watch event"),
            (b"\xff", "not UTF-8"),
        ],
    )
    def test_malformed_lines_raise_malformed_object_error(self, raw: bytes, problem: str) -> None:
        with pytest.raises(errors.MalformedObjectError, match=problem):
            decode_event(raw)


class TestErrorEvents:
    @pytest.mark.parametrize(
        ("code", "reason", "cls"),
        [
            (410, "Expired", errors.ExpiredError),
            (500, "InternalError", errors.InternalError),
            (504, "Timeout", errors.ServiceUnavailableError),
        ],
    )
    def test_in_stream_errors_raise_the_matching_status_error(
        self, code: int, reason: str, cls: type[errors.StatusError]
    ) -> None:
        status = {"kind": "Status", "code": code, "reason": reason, "message": "the message"}
        with pytest.raises(cls) as caught:
            decode_event(line("ERROR", status))
        assert type(caught.value) is cls
        assert (caught.value.code, caught.value.reason) == (code, reason)
        assert caught.value.message == "the message"

    def test_an_error_event_without_a_status_is_internal(self) -> None:
        with pytest.raises(errors.InternalError, match="without a Status"):
            decode_event(b'{"type":"ERROR","object":"gone"}')
