"""The one immutability base of nvinformers' API object views.

GPUs (protobuf-backed, :mod:`nvinformers.api.device.v1alpha1._types`) and Kubernetes objects
(JSON-backed, :mod:`nvinformers.kube._objects`), their metadata, conditions and label maps are
shared by the cache with every reader, so none of them can be changed: they all derive from
:class:`Frozen`. A class fills its slots once, when it is built, with ``object.__setattr__``.

Thread-safety: frozen objects may be shared between threads freely.
"""

from __future__ import annotations

from typing import Any, ClassVar, NoReturn, Self

__all__ = ["Frozen"]


class Frozen:
    """Mixin: assigning or deleting an attribute raises ``AttributeError``; copies are the object.

    ``copy.copy`` and ``copy.deepcopy`` return the object itself: nothing in it can change, so a
    copy could only cost memory.
    """

    __slots__ = ()

    #: What the error message offers as a mutable copy (``"to_proto()"`` for the GPU types).
    _mutable_copy: ClassVar[str] = "to_dict()"

    def __setattr__(self, name: str, value: object) -> NoReturn:
        raise AttributeError(
            f"{type(self).__name__} is immutable (cannot set {name!r}); "
            f"use {self._mutable_copy} for a mutable copy"
        )

    def __delattr__(self, name: str) -> NoReturn:
        raise AttributeError(f"{type(self).__name__} is immutable (cannot delete {name!r})")

    def __copy__(self) -> Self:
        return self

    def __deepcopy__(self, memo: dict[int, Any]) -> Self:
        return self
