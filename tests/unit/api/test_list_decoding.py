"""Decoding a GPU list: the objects come out in order, a large list is decoded with the cyclic
collector paused (:mod:`nvinformers._collector_pause`), and the collector is left as it was."""

from __future__ import annotations

import gc
from collections.abc import Iterator

import pytest

from nvinformers._collector_pause import MIN_ITEMS
from nvinformers.api.device.v1alpha1.types import gpus_from_wire
from nvinformers.errors import MalformedObjectError
from tests.unit.cache.scripted import gpu


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def test_a_large_list_decodes_in_order_and_leaves_the_collector_on() -> None:
    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(MIN_ITEMS)]
    assert [g.metadata.name for g in gpus_from_wire(raws)] == [f"g{i}" for i in range(MIN_ITEMS)]
    assert gc.isenabled()


def test_a_malformed_item_fails_the_list_and_leaves_the_collector_on() -> None:
    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(MIN_ITEMS)]
    raws[MIN_ITEMS // 2] = b"\x0a\x05ab"
    with pytest.raises(MalformedObjectError, match="malformed GPU"):
        gpus_from_wire(raws)
    assert gc.isenabled()
