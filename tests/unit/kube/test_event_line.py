"""Watch lines in the API server's layout are split into type and object span while decoding (the
P1/events trick); other layouts are left to the plain decoder."""

from __future__ import annotations

import json

import pytest

from nvinformers.kube._managed_fields_cut import split_event_line
from tests.unit.kube.samples import compact, node


@pytest.mark.parametrize("tail", ["}", "}\n", "} \r\n"])
def test_the_object_s_span_and_decoded_form(tail: str) -> None:
    obj = node(metadata={"annotations": {"note": "żółw"}})
    text = '{"type":"MODIFIED","object":' + compact(obj) + tail
    split = split_event_line(text)
    assert split is not None
    etype, decoded, start, end = split
    assert etype == "MODIFIED"
    assert decoded == obj
    assert text[start:end] == compact(obj)


@pytest.mark.parametrize(
    "text",
    [
        json.dumps({"type": "ADDED", "object": node()}),  # spaces after the separators
        compact({"object": node(), "type": "ADDED"}),
        compact({"type": "ADDED", "object": node(), "extra": 1}),
        '{"type":"ADDED","object":{"metadata":',
        '{"type":"ADDED","object":{}}}',
        '{"type":"' + "A" * 60 + '","object":{}}',
        "[]",
    ],
)
def test_other_layouts_and_invalid_lines_are_left_to_the_plain_decoder(text: str) -> None:
    assert split_event_line(text) is None
