"""A recording event handler for informer tests."""

from __future__ import annotations

import threading
from typing import Any

from nvinformers.cache import DeletedFinalStateUnknown
from tests.unit.cache.scripted import WAIT


def describe(obj: Any) -> str:
    if isinstance(obj, DeletedFinalStateUnknown):
        inner = obj.obj.metadata.resource_version if obj.obj is not None else None
        return f"tombstone:{obj.key}@{inner}"
    return f"{obj.metadata.name}@{obj.metadata.resource_version}"


class RecordingHandler:
    """Records notifications as text: ``add a@5 initial``, ``update a@5->a@6``, ``delete a@7``."""

    def __init__(self, *, raise_on: str | None = None, gate: threading.Event | None = None) -> None:
        self.events: list[str] = []
        self._cond = threading.Condition()
        self.raise_on = raise_on
        self.gate = gate
        self.store_view: list[bool] = []  # for "store updated before notify" checks
        self.indexer: Any = None

    def _record(self, text: str) -> None:
        if self.gate is not None:
            self.gate.wait(WAIT)
        with self._cond:
            self.events.append(text)
            self._cond.notify_all()
        if self.raise_on is not None and self.raise_on in text:
            raise RuntimeError(f"handler failure on {text}")

    def on_add(self, obj: Any, is_in_initial_list: bool) -> None:
        self._check_store(obj, present=True)
        self._record(f"add {describe(obj)}{' initial' if is_in_initial_list else ''}")

    def on_update(self, old: Any, new: Any) -> None:
        self._check_store(new, present=True)
        self._record(f"update {describe(old)}->{describe(new)}")

    def on_delete(self, obj: Any) -> None:
        self._record(f"delete {describe(obj)}")

    def _check_store(self, obj: Any, *, present: bool) -> None:
        if self.indexer is not None:
            self.store_view.append(self.indexer.get_by_key(obj.metadata.name) is not None)

    def wait_for_count(self, n: int, timeout: float = WAIT) -> bool:
        with self._cond:
            return self._cond.wait_for(lambda: len(self.events) >= n, timeout)

    def snapshot(self) -> list[str]:
        with self._cond:
            return list(self.events)
