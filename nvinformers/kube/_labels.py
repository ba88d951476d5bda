"""Read-only label maps of Kubernetes objects (``obj.metadata.labels``).

A :class:`Labels` holds a key table shared by every map with the same keys in the same order and a
tuple of interned values (:mod:`nvinformers.kube._label_tables` says why and what it buys).

Thread-safety: immutable; share freely.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any, Final

from nvinformers._frozen import Frozen
from nvinformers.errors import MalformedObjectError
from nvinformers.kube._label_tables import KeyTable, key_table, shared_values

__all__ = ["Labels", "EMPTY_LABELS"]


class Labels(Mapping[str, str], Frozen):
    """A read-only label map.

    Supports everything a ``Mapping`` does (``get``, ``in``, iteration in the server's order,
    ``items()``, equality with any mapping); :class:`nvinformers.labels.Selector` matches it
    directly. Build one with ``Labels.of({"k": "v"})``; read one from ``obj.metadata.labels``.
    Copies are the map itself; it pickles as a dict.

    Raises:
        MalformedObjectError: (on construction) a key or value is not a string.
    """

    __slots__ = ("_table", "_values")
    _table: KeyTable
    _values: tuple[str, ...]

    def __init__(self, data: Mapping[str, str] | None = None) -> None:
        data = data or {}
        for key, value in data.items():
            if type(key) is not str or type(value) is not str:
                bad = f"key {key!r}" if type(key) is not str else f"value {value!r}"
                raise MalformedObjectError(
                    f"malformed Kubernetes object: label {bad} is not a string"
                )
        object.__setattr__(self, "_table", key_table(tuple(data)))
        object.__setattr__(self, "_values", shared_values(data.values()))

    @classmethod
    def of(cls, data: Mapping[str, str] | None) -> Labels:
        """Return a label map with ``data``'s items (the shared empty map when empty).

        Raises:
            MalformedObjectError: a key or value is not a string.
        """
        return cls(data) if data else EMPTY_LABELS

    def __getitem__(self, key: str) -> str:
        i = self._table.index.get(key)
        if i is None:
            raise KeyError(key)
        return self._values[i]

    def get(self, key: str, default: Any = None) -> Any:
        i = self._table.index.get(key)
        return default if i is None else self._values[i]

    def __contains__(self, key: object) -> bool:
        return key in self._table.index

    def __iter__(self) -> Iterator[str]:
        return iter(self._table.keys)

    def __len__(self) -> int:
        return len(self._values)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, Labels) and other._table is self._table:
            return other._values == self._values
        if isinstance(other, Mapping):
            return self.to_dict() == dict(other.items())
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]

    def __reduce__(self) -> tuple[Any, tuple[dict[str, str]]]:
        return (Labels.of, (self.to_dict(),))

    def to_dict(self) -> dict[str, str]:
        """A new ``dict`` of the labels, owned by the caller."""
        return dict(zip(self._table.keys, self._values, strict=True))

    def __repr__(self) -> str:
        return f"Labels({self.to_dict()!r})"


EMPTY_LABELS: Final[Labels] = Labels()
