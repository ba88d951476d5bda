"""Decoding a GPU list: the objects come out in order, and the cyclic garbage collector, paused
while the list is decoded (nested decodes included), is left as the caller had it."""

from __future__ import annotations

import gc

from tests.unit.cache.scripted import gpu


def test_decoding_a_list_leaves_the_collector_as_it_found_it() -> None:
    from nvinformers.api.device.v1alpha1.types import _gc_pause, _gpus_from_wire

    raws = [gpu(f"g{i}", i + 1).to_bytes() for i in range(3)]
    was = gc.isenabled()
    try:
        gc.enable()
        with _gc_pause:
            assert not gc.isenabled()
            with _gc_pause:  # nested (another thread decoding at the same time)
                assert not gc.isenabled()
            assert not gc.isenabled()
        assert gc.isenabled()
        gc.disable()
        assert [g.metadata.name for g in _gpus_from_wire(raws)] == ["g0", "g1", "g2"]
        assert not gc.isenabled()  # a collector the user switched off stays off
    finally:
        if was:
            gc.enable()
        else:
            gc.disable()
