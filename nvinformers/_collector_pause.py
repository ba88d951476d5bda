"""Decode a large list response with CPython's cyclic garbage collector paused.

Buys S2 (list to synced): without the pause the client's CPU grows by +35 to +86 % at 100,000
GPUs (medians of four alternating A/B runs) and +33 % at 10,000 (``benchmarks/README.md``).
Every decoded object is one the collector tracks, and every one is kept, so while a large list is
decoded the collector runs hundreds of young collections and several full ones (each walking every
object decoded so far) that can free nothing.

The hazard, and its bounds: the collector has one switch for the whole process, so while a list
is decoded it does not run for the application's other threads either. Their memory is still
freed by reference counting; only garbage held in reference cycles waits, and it is collected
once the pause ends. The pause

* covers one ``map`` of the decoder over the items of one response (no I/O, no lock taken, no
  user code: nothing in it can wait on another thread), so it lasts as long as that decoding:
  about 3 µs per GPU on a 2-vCPU VM (30 ms for 10,000 GPUs, 300 ms for 100,000);
* is not taken at all for fewer than :data:`MIN_ITEMS` items (a node's 8 GPUs never pause it);
* is counted, so concurrent decodes share one pause, and the collector is switched back on only
  if it was on when the first began (a collector the user switched off stays off).

Thread-safety: safe from any thread.
"""

from __future__ import annotations

import gc
import threading
from collections.abc import Callable, Collection
from typing import Final, TypeVar

__all__ = ["MIN_ITEMS", "decode_all"]

#: Lists shorter than this are decoded with the collector left alone: at most one young
#: collection (every 700 allocations) is saved below it.
MIN_ITEMS: Final = 1000

R = TypeVar("R")
T = TypeVar("T")


class _CollectorPause:
    """``with _pause:`` pauses the collector; counted, so concurrent decodes share one pause."""

    __slots__ = ("_count", "_lock", "_resume")

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = 0  # decodes running with the collector paused; guarded by _lock
        self._resume = False  # switch it back on when the last one ends; guarded by _lock

    def __enter__(self) -> None:
        with self._lock:
            if self._count == 0:
                self._resume = gc.isenabled()
                gc.disable()
            self._count += 1

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._count -= 1
            if self._count == 0 and self._resume:
                gc.enable()


_pause = _CollectorPause()


def decode_all(decode: Callable[[R], T], items: Collection[R]) -> tuple[T, ...]:
    """``tuple(map(decode, items))``, with the collector paused when there are many items.

    Args:
        decode: the decoder of one item; it must not block (see the module doc).
        items: the items of one list response.

    Raises:
        Whatever ``decode`` raises (the collector's state is restored first).
    """
    if len(items) < MIN_ITEMS:
        return tuple(map(decode, items))
    with _pause:
        return tuple(map(decode, items))
