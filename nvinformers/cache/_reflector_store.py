"""What a reflector writes to: the slice of a store it needs (the informer's queue is one)."""

from __future__ import annotations

from typing import Any, Protocol

from nvinformers.cache._fifo import AppliedFunc

__all__ = ["ReflectorStore"]


class ReflectorStore(Protocol):
    """The narrow slice of a store the reflector writes to (the informer's :class:`RealFIFO`)."""

    def add(self, obj: Any) -> None: ...

    def update(self, obj: Any) -> None: ...

    def delete(self, obj: Any) -> None: ...

    def replace(
        self, objects: list[Any], resource_version: str, *, on_applied: AppliedFunc | None = None
    ) -> None:
        """Replace the content with a full list. The reflector passes ``on_applied`` only for a
        progress check; the store must then call it once the list was applied, with the number
        of objects it added, updated or deleted (a store that never calls it leaves checks
        without a result: they neither explain a silence nor report a frozen stream)."""
        ...

    def bookmark(self, resource_version: str) -> None: ...
