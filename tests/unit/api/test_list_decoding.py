"""Decoding a GPU list: the objects come out in order, and the cyclic collector, paused while a
large list is decoded (:mod:`nvinformers._collector_pause`), is left as the caller had it."""

from __future__ import annotations

import gc

import pytest

from nvinformers._collector_pause import MIN_ITEMS
from nvinformers.api.device.v1alpha1._types import gpus_from_wire
from nvinformers.errors import MalformedObjectError
from tests.unit.cache.scripted import gpu


def test_a_large_list_decodes_in_order_and_leaves_the_collector_as_it_was() -> None:
    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(MIN_ITEMS)]
    was = gc.isenabled()
    assert [g.metadata.name for g in gpus_from_wire(raws)] == [f"g{i}" for i in range(MIN_ITEMS)]
    assert gc.isenabled() == was


def test_a_malformed_item_fails_the_list_and_leaves_the_collector_as_it_was() -> None:
    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(MIN_ITEMS)]
    raws[MIN_ITEMS // 2] = b"\x0a\x05ab"
    was = gc.isenabled()
    with pytest.raises(MalformedObjectError, match="malformed GPU"):
        gpus_from_wire(raws)
    assert gc.isenabled() == was
