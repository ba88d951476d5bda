"""Label maps of Kubernetes objects (:class:`Labels`, ``obj.metadata.labels``) over shared key
tables and interned label values: a memory trick.

The Nodes of a cluster (and the Pods of a Deployment) carry the same label keys in the same order
and mostly the same values. A label map therefore stores a :class:`KeyTable` shared by every map
with those keys, and a tuple of values drawn from a bounded table of interned strings, instead of
a dict of its own strings.

Buys P1/memory (``python -m benchmarks.p1_kube``, 3,000 kubelet-style Nodes with 12 labels),
measured in one process against the plain ways: 3,834 B/Node with both tables, 4,403 B/Node
without value interning (+15 %), 4,739 B/Node with a dict per map (+24 %). Its cost on P1/events
is within the noise (client CPU per event -4 % to +1 % without it, two runs).

Thread-safety: a :class:`Labels` is immutable; share it freely. The tables are module-level dicts
read and filled without a lock; under the GIL a race can only cost a duplicate table or string,
never a wrong one.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator, Mapping
from typing import Any, Final

from nvinformers._frozen import Frozen
from nvinformers.errors import MalformedObjectError

__all__ = ["Labels", "EMPTY_LABELS", "KeyTable", "key_table", "shared_values"]

#: Distinct key sets whose table is shared (beyond it, new tables are private to their map).
MAX_KEY_TABLES: Final = 4096
#: Distinct label values interned (the table stops growing when full; lookups continue).
MAX_VALUES: Final = 16384

_TABLES: dict[tuple[str, ...], KeyTable] = {}
_VALUES: dict[str, str] = {}


class KeyTable:
    """The keys of a label map, in order, and each key's position in the values tuple."""

    __slots__ = ("keys", "index")

    def __init__(self, keys: tuple[str, ...]) -> None:
        self.keys = keys
        self.index: dict[str, int] = {key: i for i, key in enumerate(keys)}


def key_table(keys: tuple[str, ...]) -> KeyTable:
    """The shared table of ``keys`` (strings), made and remembered on first use."""
    table = _TABLES.get(keys)
    if table is None:
        interned = tuple([sys.intern(key) for key in keys])
        table = KeyTable(interned)
        if len(_TABLES) < MAX_KEY_TABLES:
            _TABLES[interned] = table
    return table


def shared_values(values: Iterable[str]) -> tuple[str, ...]:
    """``values`` (strings) as a tuple of interned strings."""
    table = _VALUES
    out: list[str] = []
    for value in values:
        shared = table.get(value)
        if shared is None:
            if len(table) < MAX_VALUES:
                table[value] = value
            shared = value
        out.append(shared)
    return tuple(out)


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
