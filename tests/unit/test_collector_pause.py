"""Decoding a large list pauses the cyclic collector, and only while it decodes."""

from __future__ import annotations

import gc
import threading
from collections.abc import Iterator

import pytest

from nvinformers._collector_pause import MIN_ITEMS, decode_all

WAIT = 10.0


@pytest.fixture(autouse=True)
def collector_on() -> Iterator[None]:
    was = gc.isenabled()
    gc.enable()
    try:
        yield
    finally:
        (gc.enable if was else gc.disable)()


def collector_state(item: int) -> tuple[int, bool]:
    return item, gc.isenabled()


def test_a_large_list_is_decoded_with_the_collector_paused_and_it_resumes_after() -> None:
    decoded = decode_all(collector_state, range(MIN_ITEMS))
    assert decoded == tuple((i, False) for i in range(MIN_ITEMS))
    assert gc.isenabled()


def test_a_short_list_leaves_the_collector_alone() -> None:
    decoded = decode_all(collector_state, range(MIN_ITEMS - 1))
    assert decoded == tuple((i, True) for i in range(MIN_ITEMS - 1))
    assert gc.isenabled()


def test_a_failing_decode_resumes_the_collector() -> None:
    def decode(item: int) -> int:
        if item == MIN_ITEMS // 2:
            raise ValueError("bad item")
        return item

    with pytest.raises(ValueError, match="bad item"):
        decode_all(decode, range(MIN_ITEMS))
    assert gc.isenabled()


def test_a_collector_the_user_switched_off_stays_off() -> None:
    gc.disable()
    assert decode_all(collector_state, range(MIN_ITEMS))[-1] == (MIN_ITEMS - 1, False)
    assert not gc.isenabled()


def test_concurrent_decodes_share_one_pause_and_the_last_one_resumes() -> None:
    inside = threading.Event()
    release = threading.Event()

    def slow(item: int) -> int:
        if item == 0:
            inside.set()
            assert release.wait(WAIT)
        return item

    first = threading.Thread(
        target=decode_all, args=(slow, range(MIN_ITEMS)), name="test-first-decode"
    )
    first.start()
    try:
        assert inside.wait(WAIT)
        assert decode_all(collector_state, range(MIN_ITEMS))[0] == (0, False)
        assert not gc.isenabled()  # the first decode is still running: still paused
    finally:
        release.set()
        first.join(WAIT)
    assert not first.is_alive()
    assert gc.isenabled()
