"""Build frozen GPUs by filling a mutable twin and switching its class.

Buys S2 (list to synced, 100,000 GPUs): without it the client's CPU grows by 12-14 % (median of
9 alternating runs, ``benchmarks/README.md``; S1 moves by 3.6 %, within noise). A GPU is built
for every listed object and every watch event, and after the validating parse (~1.6 µs) its
construction is the largest cost left per GPU.

How: a :class:`~nvinformers.api.device.v1alpha1.GPU` is frozen (``__setattr__`` raises), so the
plain way to fill its four slots is ``object.__setattr__`` per slot (~0.45 µs a GPU). Instead a
twin class that shares the GPU's slot layout (:class:`GPUSlots`, to which neither adds a slot)
fills them with ordinary assignments in its ``__init__`` and then becomes a GPU by assigning
``self.__class__`` (~0.05 µs): CPython allows that between classes of one layout, and checks it.
The object is a GPU before anyone else sees it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar, cast

__all__ = ["GPUSlots", "gpu_builder"]


class GPUSlots:
    """The storage of a GPU: the wire bytes and the header decoded from them.

    The base of both the GPU class and its twin; the only class that declares their slots.
    """

    __slots__ = ("_raw", "_name", "_namespace", "_resource_version")
    _raw: bytes
    _name: str
    _namespace: str
    _resource_version: str


G = TypeVar("G", bound=GPUSlots)


def gpu_builder(frozen: type[G]) -> Callable[[bytes, str, str, str], G]:
    """Return ``build(raw, name, namespace, resource_version)`` making ``frozen`` instances.

    Args:
        frozen: a subclass of :class:`GPUSlots` that adds no slots.

    Raises:
        TypeError: ``frozen`` adds slots (its layout differs from the twin's).
    """
    if not issubclass(frozen, GPUSlots) or frozen.__basicsize__ != GPUSlots.__basicsize__:
        raise TypeError(f"{frozen.__name__} must derive from GPUSlots and add no slots")

    class Thawed(GPUSlots):
        __slots__ = ()

        def __init__(self, raw: bytes, name: str, namespace: str, resource_version: str) -> None:
            self._raw = raw
            self._name = name
            self._namespace = namespace
            self._resource_version = resource_version
            self.__class__ = frozen  # type: ignore[assignment]

    Thawed.__qualname__ = f"Thawed{frozen.__name__}"
    return cast(Callable[[bytes, str, str, str], G], Thawed)
